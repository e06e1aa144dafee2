"""The ASGI middleware row: req/s of an app behind k8sauthn vs the same app without it.

Two uvicorn servers (h11, asyncio) are pinned to CPU 0; two wrk processes on CPU 1 load both
AT THE SAME TIME, so the kernel's fair scheduler gives each server half of CPU 0 and whatever
else runs on the machine slows both alike: the ratio of their req/s is the ratio of their
per-request costs, which is what "≥ 0.90 of its req/s" means for a CPU-bound server. (Loading
them one after the other was tried first: on a shared 2-core machine the absolute req/s moved
by 3x between consecutive 2-second runs.) Every request carries the same valid bearer token (the
plain app ignores it), so the middleware does a warm cache hit through the full default chain
plus header parsing, credential stripping and the scope update.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _fixtures import TOKEN, need, token_file
from _harness import Case, Measured, Pair, Settings

HERE = Path(__file__).resolve().parent
SERVER_CPU, LOAD_CPU = 0, 1


@contextmanager
def server(mode: str, tokens: Path) -> Iterator[int]:
    """Start ``_asgi_server.py`` in ``mode``; yield its port; stop it."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "_asgi_server.py"), mode, str(tokens), str(SERVER_CPU)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip().isdigit():
            proc.kill()
            _, err = proc.communicate(timeout=10)
            raise RuntimeError(f"{mode} server did not start: {err.strip()[-300:]}")
        yield int(line)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def load_generator() -> str:
    """``wrk`` when installed, else this directory's Python load generator."""
    return "wrk" if shutil.which("wrk") else "python"


def _wrk_command(port: int, seconds: float, connections: int) -> list[str]:
    if load_generator() == "wrk":
        cmd = _real_wrk(port, seconds, connections)
    else:
        cmd = [
            sys.executable,
            str(HERE / "_loadgen.py"),
            str(port),
            f"{seconds:g}",
            str(connections),
            TOKEN,
        ]
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        cmd = ["taskset", "-c", str(LOAD_CPU), *cmd]
    return cmd


def _real_wrk(port: int, seconds: float, connections: int) -> list[str]:
    return [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "-H",
        f"Authorization: Bearer {TOKEN}",
        f"http://127.0.0.1:{port}/",
    ]


def _requests_per_second(stdout: str) -> float:
    if "Non-2xx" in stdout:
        raise AssertionError(f"non-2xx responses under load: {stdout}")
    m = re.search(r"Requests/sec:\s+([\d.]+)", stdout)
    if m is None:
        raise RuntimeError(f"cannot read wrk output: {stdout[-300:]}")
    return float(m.group(1))


def wrk(port: int, seconds: float, connections: int = 16) -> float:
    """Requests per second wrk measures against ``port`` over ``seconds``."""
    cmd = _wrk_command(port, seconds, connections)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=True)
    return _requests_per_second(out.stdout)


def wrk_both(ports: tuple[int, int], seconds: float, connections: int) -> tuple[float, float]:
    """Requests per second of two wrk runs started together, one per port."""
    procs = [
        subprocess.Popen(
            _wrk_command(port, seconds, connections),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for port in ports
    ]
    outs = [p.communicate(timeout=seconds + 30)[0] for p in procs]
    a, b = (_requests_per_second(o) for o in outs)
    return a, b


def _check(port: int) -> None:
    import httpx

    ok = httpx.get(f"http://127.0.0.1:{port}/", headers={"authorization": f"Bearer {TOKEN}"})
    bad = httpx.get(f"http://127.0.0.1:{port}/", headers={"authorization": "Bearer nope"})
    if ok.status_code != 200 or bad.status_code != 401:
        raise AssertionError(f"middleware answers {ok.status_code}/{bad.status_code}, not 200/401")


def compare(
    settings: Settings,
    connections: int = 16,
    rounds: int | None = None,
    seconds: float | None = None,
) -> Measured:
    """Median of per-round (middleware req/s) / (plain req/s), rounds alternating order."""
    need("k8sauthn.middleware.asgi")
    need("k8sauthn.config.build")
    if rounds is None or seconds is None:
        rounds, seconds = (3, 2.0) if settings.quick else (7, 4.0)
    tokens = token_file()
    with server("plain", tokens) as plain, server("middleware", tokens) as guarded:
        _check(guarded)
        for port in (plain, guarded):  # warm both (imports, first-request paths)
            wrk(port, 1.0, connections)
        ratios, p_rps, m_rps = [], [], []
        for _ in range(rounds):
            plain_rps, guarded_rps = wrk_both((plain, guarded), seconds, connections)
            p_rps.append(plain_rps)
            m_rps.append(guarded_rps)
            ratios.append(guarded_rps / plain_rps)
            time.sleep(0.2)
    return Measured(
        value=statistics.median(ratios),
        low=min(ratios),
        high=max(ratios),
        path_cost=statistics.median(m_rps),
        floor_cost=statistics.median(p_rps),
        unit="req/s",
        note=(
            f"2 {load_generator()} load generators -c{connections} at once, {rounds} rounds of "
            f"{seconds:g}s, both servers on half a core"
        ),
    )


def _drive(coro: Any) -> None:
    # Both apps finish without suspending (a cached token needs no effect), so the coroutine is
    # driven by hand: no event loop in the measurement.
    try:
        coro.send(None)
    except StopIteration:
        return
    raise AssertionError("the app suspended")


def in_process(settings: Settings) -> Pair:
    """One request through the middleware app vs the bare app, called directly (no server)."""
    need("k8sauthn.middleware.asgi")
    import _asgi_server

    # A long cache TTL: a miss would need the event loop (single flight), which this row avoids.
    guarded = _asgi_server.with_middleware(str(token_file()), cache_ttl=3600)
    plain = _asgi_server.app
    headers = [
        (b"host", b"127.0.0.1:8443"),
        (b"user-agent", b"kubectl/v1.31.0 (linux/amd64) kubernetes/abcdef"),
        (b"accept", b"application/json, */*"),
        (b"authorization", f"Bearer {TOKEN}".encode()),
    ]
    base = {"type": "http", "method": "GET", "path": "/", "raw_path": b"/", "query_string": b""}
    sent: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            sent.append(message["status"])

    def path() -> None:
        _drive(guarded(dict(base, headers=list(headers)), receive, send))

    def floor() -> None:
        _drive(plain(dict(base, headers=list(headers)), receive, send))

    def check() -> None:
        import asyncio

        # The first request misses the cache and runs its single flight on a real loop.
        asyncio.run(guarded(dict(base, headers=list(headers)), receive, send))
        sent.clear()
        path()
        if sent != [200]:
            raise AssertionError(f"the middleware answered {sent}")

    return Pair(path, floor, check=check)


CASES = [
    Case(
        "ASGI middleware under uvicorn, cached token",
        "the same app without the middleware",
        "throughput",
        0.90,
        measure=compare,
    ),
    Case(
        "ASGI middleware in-process, 4 headers (cost added per request)",
        "the bare app called the same way",
        "study",
        None,
        pair=in_process,
        group="study",
    ),
]
