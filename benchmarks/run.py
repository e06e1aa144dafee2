"""Run every hot-path benchmark against its floor and print the Markdown table.

    python benchmarks/run.py [--quick] [--json PATH] [--markdown PATH] [--only TEXT] [--profile]

Each ratio row times the path and its floor in this process with samples interleaved, and
reports the median of the per-sample ratios with their min and max (benchmarks/README.md).
The exit status is non-zero only when a row is worse than twice its goal (a gross regression);
never because of an absolute time, a missed goal, or a module that has not landed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The benchmark modules import each other flatly; tests._pki is the test-suite certificate maker.
for entry in (str(HERE), str(ROOT), str(ROOT / "src")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import attrs  # noqa: E402

from _harness import (  # noqa: E402
    Case,
    Result,
    Settings,
    markdown_table,
    profile_path,
    run_case,
)

MODULES = (
    "bench_tokens",
    "bench_oidc",
    "bench_x509",
    "bench_middleware",
    "bench_concurrency",
    "bench_memory",
    "bench_scaling",
)


def _cases() -> list[Case]:
    import importlib

    cases: list[Case] = []
    for name in MODULES:
        cases.extend(importlib.import_module(name).CASES)
    return cases


def _pin_to_one_cpu() -> str:
    # One core for the in-process rows: no migrations between samples. The middleware row pins
    # its server and load generator to cores of their own.
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned"
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[-1]})
    return f"pinned to CPU {cpus[-1]} of {len(cpus)}"


def _environment(pinning: str, quick: bool) -> dict[str, str]:
    import cryptography

    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "cryptography": cryptography.__version__,
        "pinning": pinning,
        "mode": "quick" if quick else "full",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI's short run (< 3 minutes)")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--markdown", type=Path, help="write the Markdown tables here")
    parser.add_argument("--only", action="append", default=[], help="rows whose name contains")
    parser.add_argument(
        "--strict", action="store_true", help="also fail on rows that error or are not available"
    )
    parser.add_argument(
        "--profile", action="store_true", help="print a cProfile of each selected row's path"
    )
    args = parser.parse_args(argv)

    settings = Settings.for_run(args.quick)
    pinning = _pin_to_one_cpu()
    env = _environment(pinning, args.quick)
    print(f"k8sauthn benchmarks ({env['mode']}): {env['python']}, {env['machine']}, {pinning}")

    results: list[Result] = []
    started = time.monotonic()
    for case in _cases():
        if args.quick and not case.in_quick:
            continue
        if args.only and not any(o.lower() in case.name.lower() for o in args.only):
            continue
        if args.profile:
            print(profile_path(case, settings), flush=True)
        t0 = time.monotonic()
        result = run_case(case, settings)
        results.append(result)
        shown = f"{result.ratio:.3g}" if result.ratio is not None else "-"
        print(
            f"  {result.status:>5}  {shown:>8}  {case.name}  ({time.monotonic() - t0:.1f}s)"
            + (f"  [{result.note}]" if result.status in ("error", "n/a") else ""),
            flush=True,
        )

    body = _markdown(results, env, time.monotonic() - started)
    print()
    print(body)

    out = ROOT / "benchmarks" / "results"
    stamp = "quick" if args.quick else "full"
    json_path = args.json or out / f"{stamp}.json"
    md_path = args.markdown or out / f"{stamp}.md"
    for p in (json_path, md_path):
        p.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(
        json.dumps(
            {"environment": env, "results": [attrs.asdict(r) for r in results]},
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )
    md_path.write_text(body + "\n")
    print(f"\nwrote {json_path} and {md_path}")

    gross = [r for r in results if r.status == "GROSS"]
    broken = [r for r in results if r.status in ("error", "n/a")]
    if gross:
        print("GROSS REGRESSION (worse than twice the goal): " + ", ".join(r.name for r in gross))
        return 1
    if args.strict and broken:
        print("--strict: rows not measured: " + ", ".join(r.name for r in broken))
        return 1
    return 0


def _markdown(results: list[Result], env: dict[str, str], seconds: float) -> str:
    parts = [
        f"## k8sauthn hot paths ({env['mode']} run, {env['date']})",
        "",
        f"Python {env['python']}, cryptography {env['cryptography']}, {env['machine']}, "
        f"{env['pinning']}; {seconds:.0f} s. Ratios are medians of interleaved per-sample ratios "
        "(min-max in brackets); costs are median per-call times.",
        "",
        markdown_table(results, group="goal"),
    ]
    if any(r.group == "study" for r in results):
        parts += [
            "",
            "### How cost grows (studies, no goal)",
            "",
            markdown_table(results, group="study"),
        ]
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(main())
