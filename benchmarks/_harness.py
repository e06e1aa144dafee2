"""The measuring machinery: cases, interleaved path/floor sampling, verdicts and tables.

Absolute times on a shared 2-core machine are noise; a ratio measured in the same process with
path and floor samples interleaved is not (both suffer the same frequency scaling, cache state
and neighbours). Every ratio row is therefore measured as::

    for each sample: time the path for n_p calls, time the floor for n_f calls (order alternates)
    ratio_i = (path time per call) / (floor time per call)

and reported as the median of the ratios with their min and max.
"""

from __future__ import annotations

import gc
import statistics
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Final, Literal

import attrs

__all__ = [
    "Case",
    "Measured",
    "NotAvailable",
    "Pair",
    "Result",
    "Settings",
    "interleave",
    "run_case",
]

# "ratio": path/floor cost, lower is better, goal is a maximum.
# "throughput": path/floor req/s, higher is better, goal is a minimum.
# "count": an exact count (backend calls), goal is the expected number.
# "memory": MiB of growth, goal is a maximum.
# "study": a measurement for docs/performance.md, no goal.
Kind = Literal["ratio", "throughput", "count", "memory", "study"]


class NotAvailable(Exception):
    """The module a case measures does not exist (yet): reported, never a failure."""


@attrs.frozen
class Settings:
    """How hard to measure. ``quick`` is CI's short run (the whole set well under 3 minutes)."""

    quick: bool
    samples: int
    sample_seconds: float

    @classmethod
    def for_run(cls, quick: bool) -> Settings:
        if quick:
            return cls(quick=True, samples=31, sample_seconds=0.004)
        return cls(quick=False, samples=101, sample_seconds=0.006)


@attrs.frozen
class Pair:
    """A path and its floor as zero-argument callables, plus a correctness check of the path.

    ``check`` runs once before timing and raises if the path does not do what the row claims
    (a benchmark of a path that silently returns None would be a lie). ``close`` frees anything
    the setup started.
    """

    path: Callable[[], object]
    floor: Callable[[], object]
    check: Callable[[], None] = lambda: None
    close: Callable[[], None] = lambda: None


@attrs.frozen
class Measured:
    """A non-ratio outcome (count, memory, throughput) computed by the case itself."""

    value: float
    low: float
    high: float
    path_cost: float | None = None  # what the path measured, in the unit of ``unit``
    floor_cost: float | None = None
    unit: str = ""
    note: str = ""


@attrs.frozen
class Case:
    """One row of the table."""

    name: str
    floor: str
    kind: Kind
    goal: float | None
    pair: Callable[[Settings], Pair] | None = None  # a ratio row: path vs floor callables
    measure: Callable[[Settings], Measured] | None = None  # anything else
    in_quick: bool = True
    group: str = "goal"  # "goal" rows gate CI; "study" rows feed docs/performance.md


@attrs.frozen
class Result:
    name: str
    floor: str
    kind: Kind
    goal: float | None
    status: str  # ok | miss | GROSS | n/a | error | info
    ratio: float | None = None
    low: float | None = None
    high: float | None = None
    path_cost: float | None = None
    floor_cost: float | None = None
    unit: str = ""
    samples: int = 0
    note: str = ""
    group: str = "goal"


_EMPTY: Final = Result(name="", floor="", kind="study", goal=None, status="info")


def _time_calls(fn: Callable[[], object], n: int) -> float:
    """CPU seconds per call of ``fn`` over ``n`` calls.

    This thread's CPU time, not the wall clock: on a machine shared with other CPU-bound jobs
    the scheduler alternates time slices of a few ms between us and them, and wall-clock samples
    of a similar length then catch those slices unevenly (one side of a pair doubled, run after
    run). CPU time leaves them out; what remains shared (caches, the sibling hyperthread) slows
    path and floor alike and is what the interleaving is for.
    """
    perf = time.thread_time
    rng = range(n)
    t0 = perf()
    for _ in rng:
        fn()
    return (perf() - t0) / n


def _calibrate(fn: Callable[[], object], seconds: float) -> int:
    """A call count whose loop takes about ``seconds`` (at least one call)."""
    n = 1
    while True:
        elapsed = _time_calls(fn, n) * n
        if elapsed >= seconds / 4 or n >= 1 << 24:
            break
        n *= 4 if elapsed < seconds / 40 else 2
    per_call = max(elapsed / n, 1e-9)
    return max(1, round(seconds / per_call))


def interleave(
    path: Callable[[], object], floor: Callable[[], object], settings: Settings
) -> tuple[list[float], list[float]]:
    """Per-call seconds of ``path`` and ``floor``, sampled alternately (order flips each time)."""
    n_path = _calibrate(path, settings.sample_seconds)
    n_floor = _calibrate(floor, settings.sample_seconds)
    paths: list[float] = []
    floors: list[float] = []
    gc.collect()
    for i in range(settings.samples):
        if i % 2:
            floors.append(_time_calls(floor, n_floor))
            paths.append(_time_calls(path, n_path))
        else:
            paths.append(_time_calls(path, n_path))
            floors.append(_time_calls(floor, n_floor))
    return paths, floors


def profile_path(case: Case, settings: Settings, top: int = 20) -> str:
    """cProfile of a ratio row's path for about a second: where its time goes (``--profile``)."""
    import cProfile
    import io
    import pstats

    if case.pair is None:
        return f"{case.name}: not a path/floor row, nothing to profile"
    pair = case.pair(settings)
    try:
        pair.check()
        n = _calibrate(pair.path, 0.3)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(n):
            pair.path()
        profiler.disable()
    finally:
        pair.close()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    return f"### profile: {case.name} ({n} calls)\n{out.getvalue()}"


def _ratio_status(kind: Kind, goal: float | None, value: float) -> str:
    if goal is None or kind == "study":
        return "info"
    if kind == "throughput":  # higher is better; gross when under half the goal
        return "ok" if value >= goal else ("GROSS" if value < goal / 2 else "miss")
    if kind == "count":
        return "ok" if value == goal else ("GROSS" if value > 2 * goal else "miss")
    return "ok" if value <= goal else ("GROSS" if value > 2 * goal else "miss")


def run_case(case: Case, settings: Settings) -> Result:
    """Measure one case; a missing module is ``n/a`` and a crash is ``error`` (both reported)."""
    base = attrs.evolve(
        _EMPTY, name=case.name, floor=case.floor, kind=case.kind, goal=case.goal, group=case.group
    )
    try:
        if case.pair is not None:
            pair = case.pair(settings)
            try:
                pair.check()
                paths, floors = interleave(pair.path, pair.floor, settings)
            finally:
                pair.close()
            ratios = [p / f for p, f in zip(paths, floors, strict=True)]
            ratio = statistics.median(ratios)
            return attrs.evolve(
                base,
                status=_ratio_status(case.kind, case.goal, ratio),
                ratio=ratio,
                low=min(ratios),
                high=max(ratios),
                path_cost=statistics.median(paths) * 1e6,
                floor_cost=statistics.median(floors) * 1e6,
                unit="µs",
                samples=len(ratios),
            )
        assert case.measure is not None
        m = case.measure(settings)
        return attrs.evolve(
            base,
            status=_ratio_status(case.kind, case.goal, m.value),
            ratio=m.value,
            low=m.low,
            high=m.high,
            path_cost=m.path_cost,
            floor_cost=m.floor_cost,
            unit=m.unit,
            note=m.note,
        )
    except NotAvailable as exc:
        return attrs.evolve(base, status="n/a", note=f"not available: {exc}")
    except Exception as exc:
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return attrs.evolve(base, status="error", note=tb[:300])


# -- presentation ----------------------------------------------------------------------------
def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _goal_text(r: Result) -> str:
    if r.goal is None:
        return "—"
    return {
        "ratio": f"≤ {r.goal:g}x",
        "throughput": f"≥ {r.goal:g}x",
        "count": f"= {r.goal:g}",
        "memory": f"≤ {r.goal:g} MiB",
        "study": "—",
    }[r.kind]


def _value_text(r: Result) -> str:
    if r.ratio is None:
        return "—"
    if r.kind == "memory" or r.unit == "MiB":
        return f"{r.ratio:.1f} MiB"
    if r.kind == "count" or r.unit == "calls":
        return f"{r.ratio:g}"
    if r.kind in ("ratio", "throughput") or r.unit in ("µs", "req/s"):
        return f"{r.ratio:.2f}x ({_fmt(r.low)}-{_fmt(r.high)})"
    return f"{_fmt(r.ratio)} ({_fmt(r.low)}-{_fmt(r.high)})"


def markdown_table(results: Iterable[Result], *, group: str = "goal") -> str:
    """The Markdown table of one group of results."""
    lines = [
        "| path | floor | path cost | floor cost | ratio / value (min-max) | goal | status |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.group != group:
            continue
        unit = f" {r.unit}" if r.unit else ""
        path_cost = "—" if r.path_cost is None else f"{_fmt(r.path_cost)}{unit}"
        floor_cost = "—" if r.floor_cost is None else f"{_fmt(r.floor_cost)}{unit}"
        status = r.status if not r.note else f"{r.status}: {r.note}"
        lines.append(
            f"| {r.name} | {r.floor} | {path_cost} | {floor_cost} | {_value_text(r)} "
            f"| {_goal_text(r)} | {status} |"
        )
    return "\n".join(lines)
