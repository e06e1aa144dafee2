"""The asyncio runner: drives the same flows with an ``httpx.AsyncClient``."""

from __future__ import annotations

import asyncio
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


class AsyncAuthenticator:
    """Runs an authenticator graph from asyncio (ASGI). Same names as :class:`Authenticator`.

    A flow that performs no effect (a cache hit, a static token, a certificate) completes
    without awaiting anything, so the hot path costs no event-loop round trip.
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
            lambda tls: httpx.AsyncClient(**_common.default_client_kwargs(tls))
        )
        self._clock = clock
        self._audiences = tuple(audiences) or None
        self._clients: dict[TLSConfig | None, httpx.AsyncClient] = {}
        self._flights: dict[bytes, asyncio.Future[Any]] = {}

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

    def context(self, audiences: Sequence[str] | None = None) -> Context:
        """A fresh context: now, and the given audiences (default: the API audiences)."""
        auds = tuple(audiences) if audiences else self._audiences
        return Context(now=self._clock(), audiences=auds)

    async def authenticate_request(
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
            return await self.run(pending)
        ctx = ctx or Context(self._clock(), self._audiences)
        request_flow: _RequestFlow | None = getattr(self._root, "request_flow", None)
        if request_flow is None:
            raise TypeError("this authenticator has no request authenticator")
        return await self.run(request_flow(request, ctx))

    async def authenticate_token(
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
            return await self.run(pending)
        token_flow: _TokenFlow | None = getattr(self.root, "token_flow", None)
        if token_flow is not None:
            return await self.run(token_flow(token, ctx))
        return await self.authenticate_request(_common.token_view(token), ctx)

    async def run(self, flow: Flow[T]) -> T:
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
                    send = await self._fetch(effect)
                elif isinstance(effect, Sleep):
                    await asyncio.sleep(max(0.0, effect.seconds))
                elif isinstance(effect, Shared):
                    send = await self._shared(effect)
                else:  # pragma: no cover - a programming error in a flow
                    raise TypeError(f"unknown effect {type(effect).__name__}")
            except asyncio.CancelledError:
                flow.close()
                raise
            except Exception as exc:  # delivered into the flow, which decides
                throw = exc

    async def aclose(self) -> None:
        """Close every HTTP client this runner opened."""
        clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            await c.aclose()

    async def __aenter__(self) -> AsyncAuthenticator:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _client(self, tls: TLSConfig | None) -> httpx.AsyncClient:
        client = self._clients.get(tls)
        if client is None:
            client = self._clients[tls] = self._factory(tls)
        return client

    async def _fetch(self, fetch: Fetch) -> Any:
        client = self._client(fetch.tls)
        try:
            # httpx's timeout bounds each socket operation; a server trickling bytes would
            # restart it forever. Go's http.Client.Timeout bounds the whole exchange: so do we.
            async with (
                asyncio.timeout(fetch.timeout),
                client.stream(**_common.request_kwargs(fetch)) as resp,
            ):
                body = bytearray()
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > fetch.max_bytes:
                        raise _common.too_large(fetch, self._clock())
                return _common.fetched(resp.status_code, resp.headers, bytes(body), self._clock())
        except httpx.HTTPError as exc:
            raise _common.transport_error(fetch, exc, self._clock()) from None
        except TimeoutError:
            expired = httpx.TimeoutException("the whole exchange exceeded its timeout")
            raise _common.transport_error(fetch, expired, self._clock()) from None

    async def _shared(self, effect: Shared) -> Any:
        fut = self._flights.get(effect.key)
        if fut is None:
            fut = self._flights[effect.key] = asyncio.get_running_loop().create_future()
            task = asyncio.ensure_future(self._lead(effect, fut))
            # The leader runs as its own task so that a cancelled caller does not cancel the
            # shared call: it still fills the cache for the others (spec §14.4 step 5).
            task.add_done_callback(lambda _t: None)
        return await asyncio.shield(fut)

    async def _lead(self, effect: Shared, fut: asyncio.Future[Any]) -> None:
        try:
            fut.set_result(await self.run(effect.start()))
        except BaseException as exc:  # handed to every waiter
            fut.set_exception(exc)
            fut.exception()  # mark retrieved: no "never retrieved" warning when nobody waits
        finally:
            del self._flights[effect.key]
