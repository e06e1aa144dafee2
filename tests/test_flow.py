"""The flow runners: effects performed by the sync and async runners, single flight."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from k8sauthn import BackendUnavailable, Fetch, Fetched, Flow, Shared, Sleep, pure, run_pure
from k8sauthn.io import AsyncAuthenticator, Authenticator


class _Root:
    def token_flow(self, token, ctx):  # pragma: no cover - not used
        return pure(None)


def _fetch_flow(url: str) -> Flow[int]:
    fetched = yield Fetch("GET", url)
    assert isinstance(fetched, Fetched)
    return fetched.status


def test_run_pure_returns_value() -> None:
    """A flow without effects completes in run_pure."""
    assert run_pure(pure(7)) == 7


def test_run_pure_refuses_effects() -> None:
    """run_pure raises when a flow asks for I/O."""
    with pytest.raises(RuntimeError, match="Fetch"):
        run_pure(_fetch_flow("http://x"))


def test_sync_runner_fetch_and_transport_error() -> None:
    """The sync runner performs Fetch with httpx and throws BackendUnavailable on failure."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "down":
            raise httpx.ConnectError("refused")
        return httpx.Response(204)

    runner = Authenticator(
        _Root(), client_factory=lambda tls: httpx.Client(transport=httpx.MockTransport(handler))
    )
    assert runner.run(_fetch_flow("http://up/")) == 204
    with pytest.raises(BackendUnavailable, match="ConnectError"):
        runner.run(_fetch_flow("http://down/"))


def test_sync_runner_bounds_body() -> None:
    """A response larger than max_bytes is a BackendUnavailable, not a memory blow-up."""

    def flow() -> Flow[None]:
        yield Fetch("GET", "http://big/", max_bytes=10)

    runner = Authenticator(
        _Root(),
        client_factory=lambda tls: httpx.Client(
            transport=httpx.MockTransport(lambda r: httpx.Response(200, content=b"x" * 100))
        ),
    )
    with pytest.raises(BackendUnavailable, match="exceeds 10 bytes"):
        runner.run(flow())


def test_sync_single_flight_runs_once() -> None:
    """Concurrent Shared effects with one key run the sub-flow once; all get its value."""
    calls = 0
    gate = threading.Event()

    def inner() -> Flow[str]:
        nonlocal calls
        calls += 1
        yield Sleep(0.05)
        return "v"

    def outer() -> Flow[str]:
        return (yield Shared(b"k", inner))

    runner = Authenticator(_Root())
    results: list[str] = []

    def worker() -> None:
        gate.wait()
        results.append(runner.run(outer()))

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert results == ["v"] * 20
    assert calls <= 2  # threads that arrive after the flight finished start a new one
    assert calls >= 1


async def test_async_single_flight_shares_errors() -> None:
    """In the async runner, one flight serves every waiter, errors included."""
    calls = 0

    def inner() -> Flow[str]:
        nonlocal calls
        calls += 1
        yield Sleep(0.01)
        raise BackendUnavailable("down")

    def outer() -> Flow[str]:
        return (yield Shared(b"k", inner))

    runner = AsyncAuthenticator(_Root())
    results = await asyncio.gather(
        *(runner.run(outer()) for _ in range(50)), return_exceptions=True
    )
    assert calls == 1
    assert all(isinstance(r, BackendUnavailable) for r in results)
