"""The reference ASGI app of ``k8sauthn serve``: kube-apiserver's authentication surface.

Endpoints (everything else is 401 without credentials, 404 with them):

* ``POST /apis/authentication.k8s.io/{v1,v1beta1,v1alpha1}/selfsubjectreviews`` -> 201, the
  caller's own user (``kubectl auth whoami``). The body is ignored: kubectl 1.32+ sends protobuf,
  which is never answered with 415.
* ``POST /apis/authentication.k8s.io/{v1,v1beta1}/tokenreviews`` -> a cluster's authentication
  webhook. The caller must itself authenticate and be allowed by :class:`TokenReviewPolicy`
  (kube-apiserver requires ``create tokenreviews`` permission).
* ``GET /healthz``, ``/livez``, ``/readyz`` -> ``ok`` without authentication (kube-apiserver's
  default RBAC lets anyone read them); ``GET /metrics`` -> Prometheus text (authenticated).
* ``GET /version`` is deliberately not served: the kubectl dispatcher picks an old kubectl when
  it sees a version (see docs/server.md).

Failures are 401 with kube-apiserver's ``Status`` body; the reason is logged, never returned.
Every request writes one JSON access-log line with the user and the authenticator that decided,
never a credential.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, MutableMapping, Sequence
from typing import Any, Final

import attrs

from .._protocols import RequestAuthenticator
from .._types import (
    ALL_UNAUTHENTICATED,
    ANONYMOUS_USER,
    BOOTSTRAP_USER_PREFIX,
    CREDENTIAL_ID_KEY,
    Headers,
    RequestView,
    Response,
    UserInfo,
)
from ..exceptions import AuthenticationError
from ..io import AsyncAuthenticator
from ..middleware._common import NotAuthenticated, accepted, der_chain_from_pem, status_body
from ..middleware.asgi import ScopeAuthenticator
from ..reviews import ReviewError, parse_token_review, self_subject_review, token_review_flow
from ._metrics import Metrics
from ._protocol import PEER_CHAIN_DER_KEY

__all__ = ["ReferenceApp", "TokenReviewPolicy"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

access_log: Final = logging.getLogger("k8sauthn.access")
log: Final = logging.getLogger("k8sauthn.server")

#: kube-apiserver's default request body limit (``MaxRequestBodyBytes``, 3 MiB).
MAX_BODY_BYTES: Final = 3 << 20
_GROUP_PREFIX: Final = "/apis/authentication.k8s.io/"
_SSR_VERSIONS: Final = frozenset({"v1", "v1beta1", "v1alpha1"})
_TR_VERSIONS: Final = frozenset({"v1", "v1beta1"})
_HEALTH: Final = frozenset({"/healthz", "/livez", "/readyz"})
_JSON: Final = [(b"content-type", b"application/json")]
_UNAUTHORIZED: Final = status_body(401, "Unauthorized", "Unauthorized")
_NOT_FOUND: Final = status_body(404, "NotFound", "the server could not find the requested resource")
_NOT_ALLOWED: Final = status_body(
    405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
)
_TOO_LARGE: Final = status_body(413, "RequestEntityTooLarge", "the request body is too large")


def _frozen(names: Iterable[str]) -> frozenset[str]:
    return frozenset(names)


@attrs.frozen
class TokenReviewPolicy:
    """Who may POST TokenReviews: never anonymous; if lists are given, only those users/groups."""

    users: frozenset[str] = attrs.field(default=frozenset(), converter=_frozen)
    groups: frozenset[str] = attrs.field(default=frozenset(), converter=_frozen)

    def allows(self, user: UserInfo) -> bool:
        if user.name == ANONYMOUS_USER or ALL_UNAUTHENTICATED in user.groups:
            return False
        if not self.users and not self.groups:
            return True
        return user.name in self.users or not self.groups.isdisjoint(user.groups)


def _forbidden(user: UserInfo) -> bytes:
    # The text kube-apiserver's authorizer answers with.
    message = (
        f'tokenreviews.authentication.k8s.io is forbidden: User "{user.name}" cannot create '
        'resource "tokenreviews" in API group "authentication.k8s.io" at the cluster scope'
    )
    return status_body(403, "Forbidden", message)


#: Chains up to this many PEM characters are remembered; with at most 256 of them the cache
#: stays under 8 MiB whatever certificates clients choose to present.
_CACHED_CHAIN_CHARS: Final = 32 * 1024


@functools.lru_cache(maxsize=256)
def _cached_der_chain(pems: tuple[str, ...]) -> tuple[bytes, ...]:
    return der_chain_from_pem(pems)


def _der_chain(pems: tuple[str, ...]) -> tuple[bytes, ...]:
    # One TLS connection hands over the same chain for each of its requests: decode it once.
    if sum(map(len, pems)) > _CACHED_CHAIN_CHARS:
        return der_chain_from_pem(pems)
    return _cached_der_chain(pems)


def peer_chain_from_scope(scope: Scope) -> tuple[bytes, ...]:
    """DER certificates from the ASGI ``tls`` extension (leaf first); empty without TLS.

    ``k8sauthn.server``'s own TLS layer also hands over the DER chain, which is used as is;
    another server's PEM strings are decoded (and remembered, per distinct chain).
    """
    tls = (scope.get("extensions") or {}).get("tls") or {}
    der: tuple[bytes, ...] | None = tls.get(PEER_CHAIN_DER_KEY)
    if der is not None:
        return der
    pems = tls.get("client_cert_chain") or ()
    return _der_chain(tuple(pems)) if pems else ()


def decided_by(view: RequestView, resp: Response, strip_headers: Collection[str]) -> str:
    """Which authenticator accepted, inferred from the user and the credential presented."""
    user = resp.user
    if user.name == ANONYMOUS_USER:
        return "anonymous"
    for cred in user.extra.get(CREDENTIAL_ID_KEY, ()):
        if cred.startswith("X509SHA256="):
            return "x509"
        if cred.startswith("JTI="):
            return "jwt"
    if user.name.startswith(BOOTSTRAP_USER_PREFIX):
        return "bootstrap"
    if view.headers.first("authorization") is not None:
        return "token"
    if view.peer_chain:
        asserted = any(
            n != "authorization" and (n in strip_headers or n.startswith("x-remote-"))
            for n in view.headers
        )
        return "requestheader" if asserted else "x509"
    return "unknown"


class ReferenceApp:
    """The ASGI app. Build it with :meth:`from_chain` from ``k8sauthn.config.build.build()``."""

    def __init__(
        self,
        root: RequestAuthenticator | None,
        authn: AsyncAuthenticator | None,
        *,
        api_audiences: Sequence[str] = (),
        strip_headers: Collection[str] = (),
        tokenreview: TokenReviewPolicy = TokenReviewPolicy(),
        metrics: Metrics | None = None,
        access_log_enabled: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = root
        self.authn = authn
        self.api_audiences = tuple(api_audiences)
        self.strip_headers = frozenset(h.lower() for h in strip_headers)
        self.tokenreview = tokenreview
        self.metrics = metrics
        self.access_log_enabled = access_log_enabled
        self.clock = clock
        # Builds each request's view with lazily decoded headers: a cached token reads one.
        self._views = (
            ScopeAuthenticator(authenticator=authn, peer_chain=peer_chain_from_scope)
            if authn is not None
            else None
        )

    @classmethod
    def from_chain(cls, chain: Any, **kwargs: Any) -> ReferenceApp:
        """From a ``Chain`` (``request``, ``api_audiences``, ``strip_headers``)."""
        root: RequestAuthenticator | None = chain.request if chain is not None else None
        auds = tuple(getattr(chain, "api_audiences", ()) or ())
        authn = AsyncAuthenticator(root, audiences=auds) if root is not None else None
        return cls(
            root,
            authn,
            api_audiences=auds,
            strip_headers=tuple(getattr(chain, "strip_headers", ()) or ()),
            **kwargs,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        # WebSockets: nothing is served over them; uvicorn closes the socket (403).

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.authn is not None:
                    await self.authn.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        path: str = scope["path"]
        method: str = scope["method"]
        record: dict[str, Any] = {"method": method, "path": path}
        if (path in _HEALTH or path.rpartition("/")[0] in _HEALTH) and method in ("GET", "HEAD"):
            status = await _respond(send, 200, b"ok", [(b"content-type", b"text/plain")])
            return self._log(record, status, start)
        try:
            view = (
                self._views.view(scope)
                if self._views is not None
                else RequestView(
                    headers=Headers.from_raw(scope["headers"]),
                    peer_chain=peer_chain_from_scope(scope),
                    path=path,
                )
            )
        except AuthenticationError as exc:
            record["reason"] = str(exc)
            status = await _respond(send, 401, _UNAUTHORIZED, _JSON)
            return self._log(record, status, start)
        resp = await self._authenticate(view, record)
        if resp is None:
            status = await _respond(send, 401, _UNAUTHORIZED, _JSON)
            return self._log(record, status, start)
        record["user"] = resp.user.name
        record["authenticator"] = decided_by(view, resp, self.strip_headers)
        status = await self._route(scope, receive, send, resp.user)
        return self._log(record, status, start)

    async def _authenticate(self, view: RequestView, record: dict[str, Any]) -> Response | None:
        if self.root is None or self.authn is None:
            record["reason"] = "no authenticator is configured"
            return None
        t0 = time.perf_counter()
        result = "success"
        resp: Response | None = None
        try:
            # The runner's synchronous step answers a cached or pure credential without
            # building a flow; accepted() is the filter's no-opinion and audience verdict.
            ctx = self.authn.context()
            resp = accepted(await self.authn.authenticate_request(view, ctx), ctx)
        except AuthenticationError as exc:
            # "Unable to authenticate the request": error texts never carry a credential.
            result = "failure" if isinstance(exc, NotAuthenticated) else "error"
            record["reason"] = str(exc)
        if self.metrics is not None:
            self.metrics.attempt(result, time.perf_counter() - t0, resp)
        return resp

    async def _route(self, scope: Scope, receive: Receive, send: Send, user: UserInfo) -> int:
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith(_GROUP_PREFIX):
            version, _, resource = path[len(_GROUP_PREFIX) :].partition("/")
            if resource == "selfsubjectreviews" and version in _SSR_VERSIONS:
                if method != "POST":
                    return await _respond(send, 405, _NOT_ALLOWED, _JSON)
                if await _read_body(receive) is None:
                    return await _respond(send, 413, _TOO_LARGE, _JSON)
                answer = self_subject_review(user, version, created=self.clock())
                return await _respond(send, 201, _dump(answer), _JSON)
            if resource == "tokenreviews" and version in _TR_VERSIONS:
                if method != "POST":
                    return await _respond(send, 405, _NOT_ALLOWED, _JSON)
                return await self._token_review(receive, send, user, version)
        if path == "/metrics" and method in ("GET", "HEAD") and self.metrics is not None:
            body, content_type = self.metrics.exposition()
            return await _respond(send, 200, body, [(b"content-type", content_type.encode())])
        return await _respond(send, 404, _NOT_FOUND, _JSON)

    async def _token_review(
        self, receive: Receive, send: Send, user: UserInfo, version: str
    ) -> int:
        if not self.tokenreview.allows(user):
            return await _respond(send, 403, _forbidden(user), _JSON)
        body = await _read_body(receive)
        if body is None:
            return await _respond(send, 413, _TOO_LARGE, _JSON)
        assert self.root is not None
        assert self.authn is not None
        try:
            review = parse_token_review(body, default_version=f"authentication.k8s.io/{version}")
            flow = token_review_flow(
                self.root, review, now=self.clock(), api_audiences=self.api_audiences
            )
            doc = await self.authn.run(flow)
        except ReviewError as exc:
            return await _respond(send, exc.code, _dump(exc.status()), _JSON)
        return await _respond(send, 201, _dump(doc), _JSON)

    def _log(self, record: dict[str, Any], status: int, start: float) -> None:
        # Checked first: encoding a line nobody will read costs more than the cached lookup.
        if not self.access_log_enabled or not access_log.isEnabledFor(logging.INFO):
            return
        record["status"] = status
        record["duration_ms"] = round((time.perf_counter() - start) * 1000, 3)
        access_log.info("%s", json.dumps(record, separators=(",", ":")))


async def _read_body(receive: Receive, limit: int = MAX_BODY_BYTES) -> bytes | None:
    """The request body, or None when it exceeds ``limit`` bytes (read no further)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
    return status


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
