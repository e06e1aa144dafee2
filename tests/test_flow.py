"""The flow runners: effects performed by the sync and async runners, single flight."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from k8sauthn import (
    BackendUnavailable,
    Context,
    Fetch,
    Fetched,
    Flow,
    Headers,
    RequestView,
    Response,
    Shared,
    Sleep,
    TLSConfig,
    UserInfo,
    pure,
    run_pure,
)
from k8sauthn.io import AsyncAuthenticator, Authenticator, default_client_kwargs
from k8sauthn.io._common import ssl_context, transport_error


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


# -- the runners' remaining paths ---------------------------------------------------------------


class _TokenRoot:
    """A token authenticator that records the contexts it is given."""

    def __init__(self) -> None:
        self.contexts: list[Context] = []

    def token_flow(self, token: str, ctx: Context, /) -> Flow[Response | None]:
        self.contexts.append(ctx)
        return pure(Response(UserInfo(token)) if token == "good" else None)


class _RequestRoot:
    def request_flow(self, request: RequestView, ctx: Context, /) -> Flow[Response | None]:
        return pure(Response(UserInfo(request.headers.first("authorization") or "")))


def _mock(handler):  # type: ignore[no-untyped-def]
    return lambda tls: httpx.Client(transport=httpx.MockTransport(handler))


def _amock(handler):  # type: ignore[no-untyped-def]
    return lambda tls: httpx.AsyncClient(transport=httpx.MockTransport(handler))


def test_sync_token_root_and_audiences() -> None:
    """A token root gets the token; the API audiences fill the context unless overridden."""
    root = _TokenRoot()
    runner = Authenticator(root, clock=lambda: 5.0, audiences=["api"])
    resp = runner.authenticate_token("good")
    assert resp is not None
    assert resp.user.name == "good"
    runner.authenticate_token("x", audiences=["other"])
    assert [(c.now, c.audiences) for c in root.contexts] == [(5.0, ("api",)), (5.0, ("other",))]
    with pytest.raises(TypeError, match="no request authenticator"):
        runner.authenticate_request(RequestView())


def test_sync_request_root_gets_token_as_bearer() -> None:
    """authenticate_token on a request root sends the token as an Authorization header."""
    resp = Authenticator(_RequestRoot()).authenticate_token("tok")
    assert resp is not None
    assert resp.user.name == "Bearer tok"
    resp = Authenticator(_RequestRoot()).authenticate_request(
        RequestView(headers=Headers([("Authorization", "x")]))
    )
    assert resp is not None
    assert resp.user.name == "x"


async def test_async_roots() -> None:
    """The async runner has the same entry points and the same TypeError."""
    runner = AsyncAuthenticator(_TokenRoot(), audiences=["api"])
    assert await runner.authenticate_token("good") is not None
    with pytest.raises(TypeError):
        await runner.authenticate_request(RequestView())
    resp = await AsyncAuthenticator(_RequestRoot()).authenticate_token("t")
    assert resp is not None
    assert resp.user.name == "Bearer t"
    assert (
        await AsyncAuthenticator(_RequestRoot()).authenticate_request(RequestView())
    ) is not None


async def test_async_fetch_paths() -> None:
    """The async runner fetches, bounds the body and throws transport errors into the flow."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "down":
            raise httpx.ConnectTimeout("slow")
        if request.url.host == "big":
            return httpx.Response(200, content=b"x" * 100)
        return httpx.Response(201, headers={"X-H": "v"})

    def big() -> Flow[None]:
        yield Fetch("GET", "http://big/", max_bytes=10)

    async with AsyncAuthenticator(_Root(), client_factory=_amock(handler)) as runner:
        assert await runner.run(_fetch_flow("http://up/")) == 201
        with pytest.raises(BackendUnavailable, match="timed out"):
            await runner.run(_fetch_flow("http://down/"))
        with pytest.raises(BackendUnavailable, match="exceeds 10 bytes"):
            await runner.run(big())
        assert len(runner._clients) == 1
    assert runner._clients == {}


async def test_async_sleep_and_shared_value() -> None:
    """Sleep is awaited and a Shared effect returns its sub-flow's value."""

    def inner() -> Flow[int]:
        yield Sleep(0)
        return 3

    def outer() -> Flow[int]:
        return (yield Shared(b"k", inner))

    assert await AsyncAuthenticator(_Root()).run(outer()) == 3


async def test_async_cancelled_waiter_does_not_cancel_flight() -> None:
    """A cancelled caller leaves the shared call running for the others (spec §14.4 step 5)."""
    done: list[str] = []

    def inner() -> Flow[str]:
        yield Sleep(0.05)
        done.append("ran")
        return "v"

    def outer() -> Flow[str]:
        return (yield Shared(b"k", inner))

    runner = AsyncAuthenticator(_Root())
    first = asyncio.ensure_future(runner.run(outer()))
    second = asyncio.ensure_future(runner.run(outer()))
    await asyncio.sleep(0.01)
    first.cancel()
    assert await second == "v"
    assert done == ["ran"]
    with pytest.raises(asyncio.CancelledError):
        await first


def test_sync_flow_can_handle_transport_error() -> None:
    """A flow that catches BackendUnavailable continues with its own answer."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    def tolerant() -> Flow[str]:
        try:
            yield Fetch("GET", "http://down/")
        except BackendUnavailable:
            return "fallback"
        return "fetched"  # pragma: no cover

    with Authenticator(_Root(), client_factory=_mock(handler)) as runner:
        assert runner.run(tolerant()) == "fallback"
    assert runner._clients == {}


def test_transport_error_hides_url_password() -> None:
    """A URL with userinfo is reported without its password."""
    err = transport_error(Fetch("GET", "https://user:pw@host/x"), httpx.ConnectError("x"))
    assert "pw" not in str(err)
    assert "ConnectError" in str(err)


def test_ssl_context_variants(root_ca) -> None:  # type: ignore[no-untyped-def]
    """System roots by default; a CA bundle, skip-verify and client certificates when asked."""
    import ssl

    assert ssl_context(None) is True
    assert ssl_context(TLSConfig()) is True
    ctx = ssl_context(TLSConfig(ca_pem=root_ca.pem))
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    insecure = ssl_context(TLSConfig(insecure_skip_verify=True))
    assert isinstance(insecure, ssl.SSLContext)
    assert insecure.verify_mode == ssl.CERT_NONE
    client = root_ca.issue("client")
    mtls = ssl_context(
        TLSConfig(ca_pem=root_ca.pem, client_cert_pem=client.pem, client_key_pem=client.key_pem)
    )
    assert isinstance(mtls, ssl.SSLContext)
    kwargs = default_client_kwargs(None)
    assert (kwargs["follow_redirects"], kwargs["trust_env"]) == (False, False)
    assert "secret" not in repr(TLSConfig(client_key_pem=b"secret"))


def test_sync_single_flight_shares_errors() -> None:
    """In the sync runner the leader's exception reaches every waiting thread."""
    calls = 0

    def inner() -> Flow[str]:
        nonlocal calls
        calls += 1
        yield Sleep(0.2)
        raise BackendUnavailable("down")

    def outer() -> Flow[str]:
        return (yield Shared(b"k", inner))

    runner = Authenticator(_Root())
    gate = threading.Event()
    errors: list[BaseException] = []

    def worker() -> None:
        gate.wait()
        try:
            runner.run(outer())
        except BackendUnavailable as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert len(errors) == 8
    assert calls == 1
