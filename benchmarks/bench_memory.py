"""Memory: distinct random tokens through the token cache must not grow memory without bound.

The cache is the one kube-apiserver puts in front of a webhook (success and failure both cached
for 2 minutes, so a flood of random tokens is the worst case) over an authenticator that accepts
every token with a user of its own. Each run happens in a fresh interpreter (this file run as a
script) so that nothing else measured in the same process moves the numbers. Growth is what
``tracemalloc`` counts as live Python allocations after the flood, minus before.

``--quick`` sends 2.5x10^5 tokens (about 4 times the default maximum size) and extrapolates
to 10^6 from the growth between the peaks of the two halves of the run (a bounded cache has
the same peak in both; an unbounded one grows linearly).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from _harness import Case, Measured, Settings

HERE = Path(__file__).resolve().parent
MiB = 1 << 20


def flood(n: int, maxsize: int | None) -> dict[str, float]:
    """In this process: send ``n`` random tokens through a cache; memory at n/2 and n (MiB)."""
    sys.path.insert(0, str(HERE.parent / "src"))
    import time
    import tracemalloc

    from k8sauthn import Context, Flow, Response, UserInfo, pure
    from k8sauthn.chain.cache import CachedTokenAuthenticator
    from k8sauthn.io import Authenticator

    class AcceptAll:
        def token_flow(self, token: str, ctx: Context, /) -> Flow[Response | None]:
            return pure(Response(UserInfo(name="user-" + token[:8], groups=("flood",))))

    if maxsize is None:  # the cache's default size
        cache = CachedTokenAuthenticator(AcceptAll(), success_ttl=120, failure_ttl=120)
    else:
        cache = CachedTokenAuthenticator(
            AcceptAll(), success_ttl=120, failure_ttl=120, maxsize=maxsize
        )
    runner = Authenticator(cache)
    run, flow = runner.run, cache.token_flow
    urandom = os.urandom
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    marks: list[tuple[int, float, int]] = []  # (tokens sent, MiB, entries held)
    step = max(1, n // 20)
    ctx = Context(now=time.time())
    for i in range(1, n + 1):
        run(flow(urandom(24).hex(), ctx))
        if i % step == 0:
            marks.append((i, (tracemalloc.get_traced_memory()[0] - base) / MiB, len(cache)))
    seconds = time.perf_counter() - t0
    # Dict compaction makes the live size oscillate once the cache is full: compare the peaks
    # of the two halves of the run. A bounded cache has the same peak in both; an unbounded one
    # grows by the slope between them.
    mid = len(marks) // 2
    peak1, peak2 = max(m[1] for m in marks[:mid]), max(m[1] for m in marks[mid:])
    return {
        "peak1": peak1,
        "peak2": peak2,
        "slope": (peak2 - peak1) / (n / 2),
        "entries": len(cache),
        "seconds": seconds,
        "maxsize": cache.maxsize,
    }


def _in_subprocess(n: int, maxsize: int | None = None) -> dict[str, float]:
    args = [sys.executable, str(Path(__file__).resolve()), str(n)]
    if maxsize is not None:
        args.append(str(maxsize))
    out = subprocess.run(args, capture_output=True, text=True, check=False, timeout=900)
    if out.returncode:
        raise RuntimeError(out.stderr.strip()[-300:])
    return dict(json.loads(out.stdout))


def memory_growth(settings: Settings) -> Measured:
    n = 250_000 if settings.quick else 1_000_000
    r = _in_subprocess(n)
    peak = max(r["peak1"], r["peak2"])
    value = peak
    if settings.quick:
        # Extrapolate only a real trend: under 5 % between the halves' peaks is compaction noise.
        slope = r["slope"] if r["peak2"] > 1.05 * r["peak1"] else 0.0
        value = peak + slope * (1_000_000 - n)
        note = (
            f"2.5x10^5 tokens sent, peak {peak:.1f} MiB; extrapolated to 10^6 from the growth "
            f"between the two halves' peaks ({r['peak1']:.1f} -> {r['peak2']:.1f} MiB)"
        )
    else:
        note = f"10^6 tokens in {r['seconds']:.0f}s; peak of each half {r['peak1']:.1f}"
        note += f" / {r['peak2']:.1f} MiB"
    note += f"; {int(r['entries'])} entries held (maxsize {int(r['maxsize'])})"
    return Measured(value=value, low=r["peak1"], high=r["peak2"], note=note, unit="MiB")


def cache_size_study(settings: Settings) -> Measured:
    """Memory per entry when the cache is allowed 10^6 entries (docs/performance.md)."""
    n = 1_000_000
    r = _in_subprocess(n, maxsize=n)
    peak = max(r["peak1"], r["peak2"])
    per_entry = peak * MiB / max(1, r["entries"])
    return Measured(
        value=peak,
        low=r["peak1"],
        high=r["peak2"],
        unit="MiB",
        note=f"maxsize=10^6, full: {per_entry:.0f} bytes per entry (incl. the user)",
    )


CASES = [
    Case(
        "memory growth, 10^6 distinct random tokens through the cache",
        "—",
        "memory",
        64,
        measure=memory_growth,
    ),
    Case(
        "memory of a cache holding 10^6 entries (maxsize raised)",
        "—",
        "study",
        None,
        measure=cache_size_study,
        in_quick=False,
        group="study",
    ),
]


if __name__ == "__main__":
    size = int(sys.argv[2]) if len(sys.argv) > 2 else None
    print(json.dumps(flood(int(sys.argv[1]), size)))
