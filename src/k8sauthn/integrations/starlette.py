"""Starlette: an ``AuthenticationBackend`` whose user carries the Kubernetes identity.

::

    from k8sauthn.integrations.starlette import authentication_middleware
    app = Starlette(routes=..., middleware=[authentication_middleware(chain=build(options))])

``request.user`` is a :class:`KubernetesUser` and ``request.auth.scopes`` holds ``authenticated``
(for every non-anonymous user) and ``group:<name>`` per group, so ``@requires("authenticated")``
and ``@requires("group:admins")`` work. A rejected credential gets 401 with kube-apiserver's Status
body (Starlette's default ``on_error`` answers 400); a user lacking a scope gets Starlette's 403.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    BaseUser,
    UnauthenticatedUser,
)
from starlette.authentication import AuthenticationError as StarletteAuthenticationError
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import Response as HTTPResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .._types import Response, UserInfo
from ..exceptions import AuthenticationError
from ..middleware._common import UNAUTHORIZED_BODY, is_anonymous, log_failure
from ..middleware.asgi import ScopeAuthenticator, send_rejection, send_with_warnings

__all__ = [
    "KubernetesAuthenticationMiddleware",
    "KubernetesBackend",
    "KubernetesUser",
    "authentication_middleware",
    "scopes_for",
]


class KubernetesUser(BaseUser):
    """A Starlette user made from an accepted :class:`~k8sauthn.Response`."""

    __slots__ = ("response",)

    def __init__(self, response: Response) -> None:
        self.response = response

    @property
    def info(self) -> UserInfo:
        return self.response.user

    @property
    def name(self) -> str:
        return self.response.user.name

    @property
    def uid(self) -> str:
        return self.response.user.uid

    @property
    def groups(self) -> tuple[str, ...]:
        return self.response.user.groups

    @property
    def extra(self) -> Mapping[str, tuple[str, ...]]:
        return self.response.user.extra

    @property
    def is_authenticated(self) -> bool:
        """False for ``system:anonymous`` (or a member of ``system:unauthenticated``)."""
        return not is_anonymous(self.response)

    @property
    def display_name(self) -> str:
        return self.response.user.name

    @property
    def identity(self) -> str:
        return self.response.user.uid or self.response.user.name

    def __repr__(self) -> str:
        return f"KubernetesUser(name={self.name!r}, groups={self.groups!r})"


def scopes_for(response: Response) -> list[str]:
    """Starlette scopes: ``authenticated`` unless anonymous, plus ``group:<name>`` per group."""
    scopes = [] if is_anonymous(response) else ["authenticated"]
    scopes.extend(f"group:{g}" for g in response.user.groups)
    return scopes


class KubernetesBackend(AuthenticationBackend):
    """Runs the k8sauthn chain for Starlette; takes the arguments of ``ScopeAuthenticator``.

    A skipped path (``skip_paths``) or an empty chain yields Starlette's unauthenticated user.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.auth = ScopeAuthenticator(**kwargs)

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        if self.auth.skips(conn.scope):
            return None
        try:
            done = await self.auth.authenticate(conn.scope)
        except AuthenticationError as exc:
            log_failure(exc)
            # The reason stays in the log: the client only ever learns "Unauthorized" (§15).
            raise StarletteAuthenticationError("Unauthorized") from None
        resp = done.response
        return AuthCredentials(scopes_for(resp)), KubernetesUser(resp)

    def on_error(self, conn: HTTPConnection, exc: Exception) -> HTTPResponse:
        """401 with the Status body and ``WWW-Authenticate`` (Starlette's default is a 400)."""
        headers = dict(self.auth.policy.failure_headers())
        media_type = headers.pop("content-type")
        return HTTPResponse(UNAUTHORIZED_BODY, 401, headers=headers, media_type=media_type)


class KubernetesAuthenticationMiddleware(AuthenticationMiddleware):
    """Starlette's ``AuthenticationMiddleware`` with :class:`KubernetesBackend` built in.

    It sets ``request.user`` and ``request.auth`` as the stock middleware does, and answers like
    the pure ASGI middleware: a rejection is 401 with the Status body (a WebSocket handshake gets
    it when the server supports denial responses, else close code 1008, where Starlette closes
    with 1000), and authenticator warnings become ``Warning`` headers, on a 401 too (spec §7.1).
    """

    def __init__(self, app: ASGIApp, /, **kwargs: Any) -> None:
        backend = KubernetesBackend(**kwargs)
        super().__init__(app, backend=backend, on_error=backend.on_error)
        self.kubernetes = backend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        auth = self.kubernetes.auth
        if auth.skips(scope):
            scope["auth"], scope["user"] = AuthCredentials(), UnauthenticatedUser()
            await self.app(scope, receive, send)
            return
        ctx = auth.context()
        try:
            done = await auth.authenticate(scope, ctx)
        except AuthenticationError as exc:
            log_failure(exc)
            await send_rejection(scope, receive, send, auth.policy, ctx.warnings)
            return
        scope["auth"] = AuthCredentials(scopes_for(done.response))
        scope["user"] = KubernetesUser(done.response)
        if done.warnings and scope["type"] == "http":
            send = send_with_warnings(send, done.warnings)
        await self.app(scope, receive, send)


def authentication_middleware(**kwargs: Any) -> Middleware:
    """A ``Starlette(middleware=[...])`` entry; takes the arguments of ``ScopeAuthenticator``."""
    return Middleware(KubernetesAuthenticationMiddleware, **kwargs)
