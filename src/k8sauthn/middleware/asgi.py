"""A pure ASGI authentication middleware (HTTP and WebSocket) over the async runner.

::

    app = AuthenticationMiddleware(app, chain=build(options))

On success the accepted :class:`~k8sauthn.Response` is in ``scope["k8sauthn.user"]`` and the
credential headers are gone from ``scope["headers"]`` (spec §10.4). On failure an HTTP request
gets 401 with kube-apiserver's Status body; a WebSocket handshake gets the same 401 when the server
supports the ``websocket.http.response`` extension, and is otherwise closed with code 1008
(policy violation) before it is accepted.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Final, TypeAlias

import attrs

from .._types import Context, Headers, RequestView, Response
from ..chain._step import Pending, RequestStep, Step
from ..exceptions import AuthenticationError
from ..io import AsyncAuthenticator, ClientFactory
from ..peercert import tls_extension_chain
from ._common import (
    UNAUTHORIZED_BODY,
    ChainLike,
    FilterPolicy,
    FilterSetup,
    NotAuthenticated,
    accepted,
    log_failure,
    warning_header,
    without_token_protocol,
)

__all__ = [
    "USER_KEY",
    "ASGIApp",
    "Authenticated",
    "AuthenticationMiddleware",
    "PeerChainReader",
    "Scope",
    "ScopeAuthenticator",
    "send_rejection",
    "send_with_warnings",
]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]
PeerChainReader: TypeAlias = Callable[[Scope], tuple[bytes, ...]]

USER_KEY: Final = "k8sauthn.user"
_PROTOCOL: Final = b"sec-websocket-protocol"
_CLOSE_POLICY_VIOLATION: Final = 1008
_FILTERED: Final = frozenset({"http", "websocket"})


@attrs.frozen
class Authenticated:
    """An accepted request: the chain's response and the warnings to send back (spec §7.1)."""

    response: Response
    warnings: tuple[str, ...] = ()


class _ScopeHeaders(Headers):
    """The scope's header byte pairs, decoded only when an authenticator needs more than one.

    A cached bearer token reads a single header (``first("authorization")``), which this answers
    by scanning the raw pairs; building the whole case-insensitive map for it cost more than the
    cache hit itself. Any other use builds the map on first access (``__getattr__`` is only
    consulted for the unset ``_map`` / ``_pairs`` slots), so behaviour is that of ``Headers``.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:  # no super(): built lazily
        self._raw = raw

    def __getattr__(self, name: str) -> Any:
        if name not in ("_map", "_pairs"):
            raise AttributeError(name)
        full = Headers.from_raw(self._raw)
        self._map, self._pairs = full._map, full._pairs
        return getattr(full, name)

    def first(self, name: str) -> str | None:
        key = name.lower()
        if not key.isascii():  # no ASCII header name lower-cases to it: the slow, exact path
            return super().first(name)
        wanted = key.encode()
        size = len(wanted)
        for raw_name, value in self._raw:
            # Servers send lower-case names (h11, uvicorn): compare, and lower-case only on a tie.
            if len(raw_name) == size and (raw_name == wanted or raw_name.lower() == wanted):
                return value.decode("latin-1")
        return None


class ScopeAuthenticator:
    """Authenticates an ASGI scope; shared by the middleware and the framework integrations.

    Give it a ready ``authenticator`` (an :class:`~k8sauthn.io.AsyncAuthenticator` over a request
    chain, whose ``audiences`` are the API audiences) or a built ``chain``
    (``k8sauthn.config.build``), from which the runner, API audiences and strip lists are taken.
    ``peer_chain`` reads the client certificates from a scope (default: the ASGI TLS extension,
    ``k8sauthn.peercert.tls_extension_chain``, which ``k8sauthn.server`` and the
    ``k8sauthn.peercert`` uvicorn protocol fill; pass ``TrustedProxyCertificate`` behind a
    TLS-terminating proxy).
    """

    def __init__(
        self,
        *,
        authenticator: AsyncAuthenticator | None = None,
        chain: ChainLike | None = None,
        skip_paths: Iterable[str] = (),
        strip_headers: Iterable[str] = (),
        strip_prefixes: Iterable[str] = (),
        www_authenticate: str | None = "Bearer",
        peer_chain: PeerChainReader = tls_extension_chain,
        client_factory: ClientFactory | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        setup = FilterSetup.create(
            authenticator,
            chain,
            lambda root, audiences: AsyncAuthenticator(
                root, client_factory=client_factory, clock=clock, audiences=audiences
            ),
            skip_paths=skip_paths,
            strip_headers=strip_headers,
            strip_prefixes=strip_prefixes,
            www_authenticate=www_authenticate,
        )
        self.authenticator = setup.authenticator
        self.policy = setup.policy
        self._step: RequestStep | None = setup.step
        self._peer_chain = peer_chain
        self._has_skips = bool(self.policy.skip_paths or self.policy.skip_prefixes)
        # ASGI header names are bytes: match them without decoding on the hot path.
        self._strip_names = frozenset(n.encode("latin-1") for n in self.policy.strip_headers)
        self._strip_prefixes = tuple(p.encode("latin-1") for p in self.policy.strip_prefixes)

    @property
    def enabled(self) -> bool:
        """False when the chain is empty: every request passes with no user (spec §15 step 1)."""
        return self._step is not None

    def skips(self, scope: Scope) -> bool:
        """Whether this request bypasses authentication (a skipped path, or no chain at all)."""
        return self._step is None or (self._has_skips and self.policy.skips(scope.get("path", "/")))

    def view(self, scope: Scope) -> RequestView:
        """The :class:`~k8sauthn.RequestView` the chain sees for this scope."""
        return RequestView(
            # A snapshot: the list itself is stripped in place once a user is accepted.
            headers=_ScopeHeaders(tuple(scope.get("headers") or ())),
            peer_chain=self._peer_chain(scope),
            path=scope.get("path", "/"),
        )

    def context(self) -> Context:
        """A fresh context for one request: now, and the API audiences."""
        authn = self.authenticator
        return authn.context() if authn is not None else Context(now=time.time())

    async def authenticate(self, scope: Scope, ctx: Context | None = None) -> Authenticated:
        """Accept the request or raise :class:`~k8sauthn.exceptions.AuthenticationError`.

        On success the credentials are stripped from ``scope["headers"]`` in place and the
        response is stored in ``scope["k8sauthn.user"]``. Nothing is changed on failure; pass
        your own ``ctx`` to read the warnings recorded before a rejection.
        """
        if ctx is None:
            ctx = self.context()
        outcome = self._answer(scope, ctx)
        if type(outcome) is Pending:
            outcome = await self._finish(outcome)
        resp = self._admit(scope, outcome, ctx)
        return Authenticated(resp, tuple(ctx.warnings))

    def _answer(self, scope: Scope, ctx: Context) -> Step:
        """The chain's answer, or the flow still to run for it (a cache miss, a webhook call)."""
        step = self._step
        if step is None:
            raise NotAuthenticated()
        return step(self.view(scope), ctx)

    async def _finish(self, pending: Pending) -> Response | None:
        authn = self.authenticator
        if authn is None:  # pragma: no cover - a step exists only with a runner
            raise NotAuthenticated()
        return await authn.run(pending.flow)

    def _admit(self, scope: Scope, outcome: Step, ctx: Context) -> Response:
        """Apply the filter's verdict; on success strip the credentials and store the user."""
        resp = accepted(outcome, ctx)  # type: ignore[arg-type]  # Pending was run by the caller
        raw = scope.get("headers") or []
        kept = self._stripped(raw)
        if type(raw) is list:
            # In place, as Go's Header.Del: a Starlette Headers (a FastAPI Request's, say) made
            # earlier from this list sees the credentials gone too.
            raw[:] = kept
        else:
            scope["headers"] = kept
        scope[USER_KEY] = resp
        return resp

    def _stripped(self, raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        names, prefixes = self._strip_names, self._strip_prefixes
        kept: list[tuple[bytes, bytes]] = []
        protocols: list[str] = []
        for pair in raw:
            lname = pair[0].lower()
            if lname == _PROTOCOL:
                protocols.append(pair[1].decode("latin-1"))
            elif lname not in names and not lname.startswith(prefixes):
                kept.append(pair)
        if protocols:
            rest = without_token_protocol(protocols)
            if rest is not None:
                kept.append((_PROTOCOL, rest.encode("latin-1")))
        return kept

    async def aclose(self) -> None:
        """Close the runner's HTTP clients (webhook, OIDC discovery)."""
        if self.authenticator is not None:
            await self.authenticator.aclose()


class AuthenticationMiddleware:
    """Pure ASGI middleware running kube-apiserver's authentication filter (spec §15).

    Takes the keyword arguments of :class:`ScopeAuthenticator`, so it works with Starlette's
    ``Middleware(AuthenticationMiddleware, chain=chain)``. Lifespan and other scopes pass through.
    """

    def __init__(self, app: ASGIApp, /, **kwargs: Any) -> None:
        self.app = app
        self.auth = ScopeAuthenticator(**kwargs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        auth = self.auth
        if scope["type"] not in _FILTERED or auth.skips(scope):
            await self.app(scope, receive, send)
            return
        ctx = auth.context()
        # ScopeAuthenticator.authenticate, inlined: this is the per-request hot path.
        try:
            outcome = auth._answer(scope, ctx)
            if type(outcome) is Pending:
                outcome = await auth._finish(outcome)
            auth._admit(scope, outcome, ctx)
        except AuthenticationError as exc:
            log_failure(exc)
            # kube-apiserver's warning recorder wraps the filter: a 401 carries warnings too.
            await send_rejection(scope, receive, send, auth.policy, ctx.warnings)
            return
        if ctx.warnings and scope["type"] == "http":
            send = send_with_warnings(send, ctx.warnings)
        await self.app(scope, receive, send)

    async def aclose(self) -> None:
        """Close the runner's HTTP clients."""
        await self.auth.aclose()


async def send_rejection(
    scope: Scope,
    receive: Receive,
    send: Send,
    policy: FilterPolicy,
    warnings: Iterable[str] = (),
) -> None:
    """Answer a rejected HTTP request or WebSocket handshake with 401 and the Status body.

    A WebSocket handshake gets the 401 only through the ``websocket.http.response`` extension;
    otherwise it is closed with 1008 (policy violation) before being accepted, which the server
    turns into an HTTP 403.
    """
    headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in policy.failure_headers()]
    headers.append((b"content-length", str(len(UNAUTHORIZED_BODY)).encode()))
    headers += [(b"warning", warning_header(w).encode("latin-1")) for w in warnings]
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": UNAUTHORIZED_BODY})
        return
    message = await receive()  # websocket.connect; a disconnect means nobody to answer
    if message["type"] != "websocket.connect":
        return
    if "websocket.http.response" in (scope.get("extensions") or {}):
        await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": UNAUTHORIZED_BODY})
    else:
        await send({"type": "websocket.close", "code": _CLOSE_POLICY_VIOLATION})


def send_with_warnings(send: Send, warnings: Iterable[str]) -> Send:
    """``send`` adding a ``Warning`` header per recorded warning to the response start."""
    extra = [(b"warning", warning_header(w).encode("latin-1")) for w in warnings]

    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = dict(message)
            message["headers"] = [*message.get("headers", ()), *extra]
        await send(message)

    return sender
