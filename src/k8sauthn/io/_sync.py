"""The synchronous runner: drives flows with an ``httpx.Client`` and threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias, TypeVar

import httpx

from .._flow import Fetch, Flow, Shared, Sleep, TLSConfig
from .._protocols import RequestAuthenticator, TokenAuthenticator
from .._types import Context, RequestView, Response
from ..chain._step import Pending, RequestStep
from . import _common
from ._common import ClientFactory

T = TypeVar("T")
_RequestFlow: TypeAlias = Callable[[RequestView, Context], Flow[Response | None]]
_TokenFlow: TypeAlias = Callable[[str, Context], Flow[Response | None]]


class _Flight:
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class Authenticator:
    """Runs an authenticator graph synchronously (scripts, WSGI, admission servers).

    ``root`` is a request authenticator, a token authenticator, or both. ``client_factory``
    builds the ``httpx.Client`` for each distinct backend TLS configuration (inject one to use
    proxies, a custom transport, or a mock transport in tests). ``audiences`` are the API
    audiences put into every request's context (``--api-audiences``).
    """

    def __init__(
        self,
        root: RequestAuthenticator | TokenAuthenticator,
        *,
        client_factory: ClientFactory | None = None,
        clock: Callable[[], float] = time.time,
        audiences: Sequence[str] = (),
    ) -> None:
        self.root = root  # (the property also looks up the root's step, once)
        self._factory = client_factory or (
            lambda tls: httpx.Client(**_common.default_client_kwargs(tls))
        )
        self._clock = clock
        self._audiences = tuple(audiences) or None
        self._clients: dict[TLSConfig | None, httpx.Client] = {}
        self._lock = threading.Lock()
        self._flights: dict[bytes, _Flight] = {}

    @property
    def root(self) -> RequestAuthenticator | TokenAuthenticator:
        """The authenticator graph this runner drives."""
        return self._root

    @root.setter
    def root(self, root: RequestAuthenticator | TokenAuthenticator) -> None:
        self._root = root
        # Looked up once, not per request: getattr builds a bound method every time (and a
        # runtime-checkable Protocol check would cost ~3 us).
        self._request_step: RequestStep | None = getattr(root, "request_step", None)

    # -- public API -------------------------------------------------------------------------
    def context(self, audiences: Sequence[str] | None = None) -> Context:
        """A fresh context: now, and the given audiences (default: the API audiences)."""
        auds = tuple(audiences) if audiences else self._audiences
        return Context(now=self._clock(), audiences=auds)

    def authenticate_request(
        self, request: RequestView, ctx: Context | None = None
    ) -> Response | None:
        """Accepted ``Response``, ``None`` (no opinion), or raises ``AuthenticationError``."""
        request_step = self._request_step
        if request_step is not None:
            # The synchronous step (k8sauthn.chain._step): a cached or pure answer comes back
            # without building or driving any flow; otherwise it hands over the flow to run.
            outcome = request_step(request, ctx or Context(self._clock(), self._audiences))
            if type(outcome) is not Pending:  # a step answers Response | None | Pending
                return outcome  # type: ignore[return-value]
            pending: Flow[Response | None] = outcome.flow
            return self.run(pending)
        ctx = ctx or Context(self._clock(), self._audiences)
        request_flow: _RequestFlow | None = getattr(self._root, "request_flow", None)
        if request_flow is None:
            raise TypeError("this authenticator has no request authenticator")
        return self.run(request_flow(request, ctx))

    def authenticate_token(
        self, token: str, audiences: Sequence[str] | None = None
    ) -> Response | None:
        """Authenticate a bare token through the token chain (or the request chain, as Bearer)."""
        ctx = self.context(audiences)
        token_step = getattr(self.root, "token_step", None)
        if token_step is not None:  # as in authenticate_request
            outcome = token_step(token, ctx)
            if type(outcome) is not Pending:
                return outcome  # type: ignore[no-any-return]
            pending: Flow[Response | None] = outcome.flow
            return self.run(pending)
        token_flow: _TokenFlow | None = getattr(self.root, "token_flow", None)
        if token_flow is not None:
            return self.run(token_flow(token, ctx))
        return self.authenticate_request(_common.token_view(token), ctx)

    def run(self, flow: Flow[T]) -> T:
        """Drive any flow to completion, performing its effects."""
        send: Any = None
        throw: BaseException | None = None
        while True:
            try:
                effect = flow.send(send) if throw is None else flow.throw(throw)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            send, throw = None, None
            try:
                if isinstance(effect, Fetch):
                    send = self._fetch(effect)
                elif isinstance(effect, Sleep):
                    time.sleep(max(0.0, effect.seconds))
                elif isinstance(effect, Shared):
                    send = self._shared(effect)
                else:  # pragma: no cover - a programming error in a flow
                    raise TypeError(f"unknown effect {type(effect).__name__}")
            except Exception as exc:  # delivered into the flow, which decides
                throw = exc

    def close(self) -> None:
        """Close every HTTP client this runner opened."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            c.close()

    def __enter__(self) -> Authenticator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- effects ----------------------------------------------------------------------------
    def _client(self, tls: TLSConfig | None) -> httpx.Client:
        with self._lock:
            client = self._clients.get(tls)
            if client is None:
                client = self._clients[tls] = self._factory(tls)
            return client

    def _fetch(self, fetch: Fetch) -> Any:
        client = self._client(fetch.tls)
        # httpx's timeout bounds each socket operation; a body trickled a byte at a time would
        # restart it forever. Go's http.Client.Timeout bounds the whole exchange: so do we.
        give_up = time.monotonic() + fetch.timeout
        try:
            with client.stream(**_common.request_kwargs(fetch)) as resp:
                body = bytearray()
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > fetch.max_bytes:
                        raise _common.too_large(fetch, self._clock())
                    if time.monotonic() > give_up:
                        raise httpx.ReadTimeout("the whole exchange exceeded its timeout")
                return _common.fetched(resp.status_code, resp.headers, bytes(body), self._clock())
        except httpx.HTTPError as exc:
            raise _common.transport_error(fetch, exc, self._clock()) from None

    def _shared(self, effect: Shared) -> Any:
        with self._lock:
            flight = self._flights.get(effect.key)
            leader = flight is None
            if flight is None:
                flight = self._flights[effect.key] = _Flight()
        if leader:
            try:
                flight.value = self.run(effect.start())
            except BaseException as exc:
                flight.error = exc
            finally:
                with self._lock:
                    del self._flights[effect.key]
                flight.done.set()
        else:
            flight.done.wait()
        if flight.error is not None:
            raise flight.error
        return flight.value
