"""Litestar: an ``AbstractAuthenticationMiddleware`` subclass and group guards.

::

    app = Litestar(
        route_handlers=[...],
        middleware=[DefineMiddleware(KubernetesAuthenticationMiddleware, chain=chain,
                                     exclude=["^/healthz$"])],
        exception_handlers=STATUS_EXCEPTION_HANDLERS,   # optional: Kubernetes Status bodies
    )

``request.user`` is the :class:`~k8sauthn.UserInfo` and ``request.auth`` the whole
:class:`~k8sauthn.Response`. Litestar's own ``exclude`` (regex), ``exclude_from_auth_key`` (route
opt) and ``exclude_http_methods`` (``OPTIONS`` by default) options keep working; the remaining
keyword arguments are those of ``ScopeAuthenticator``. Guard a route with
``guards=[requires_groups("admins")]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from litestar import Request
from litestar import Response as HTTPResponse
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware.authentication import (
    AbstractAuthenticationMiddleware,
    AuthenticationResult,
)
from litestar.types import (
    ASGIApp,
    Empty,
    ExceptionHandlersMap,
    Method,
    Receive,
    Scope,
    Scopes,
    Send,
)
from litestar.utils.scope.state import ScopeState

from .._types import UserInfo
from ..exceptions import AuthenticationError
from ..middleware._common import log_failure, status_body, warning_header
from ..middleware.asgi import ScopeAuthenticator

_WARNINGS_KEY: Final = "k8sauthn.warnings"

__all__ = [
    "STATUS_EXCEPTION_HANDLERS",
    "KubernetesAuthenticationMiddleware",
    "KubernetesForbidden",
    "KubernetesNotAuthorized",
    "requires_groups",
    "status_exception_handler",
]


class KubernetesNotAuthorized(NotAuthorizedException):
    """The chain rejected the request (401); the reason is only logged."""


class KubernetesForbidden(PermissionDeniedException):
    """The user lacks a group a guard requires (403)."""


class KubernetesAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    """Litestar's authentication middleware running the k8sauthn chain."""

    def __init__(
        self,
        app: ASGIApp,
        exclude: str | list[str] | None = None,
        exclude_from_auth_key: str = "exclude_from_auth",
        exclude_http_methods: Sequence[Method] | None = None,
        scopes: Scopes | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, exclude, exclude_from_auth_key, exclude_http_methods, scopes)
        self.auth = ScopeAuthenticator(**kwargs)
        www = self.auth.policy.www_authenticate
        self._challenge = {"WWW-Authenticate": www} if www else None

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> Any:
        # Work on the raw scope: the credentials must be gone before any handler parses them.
        scope: dict[str, Any] = connection.scope  # type: ignore[assignment]
        if self.auth.skips(scope):
            return AuthenticationResult(user=None, auth=None)  # skip_paths, or an empty chain
        ctx = self.auth.context()
        try:
            done = await self.auth.authenticate(scope, ctx)
        except AuthenticationError as exc:
            log_failure(exc)
            headers = self._failure_headers(ctx.warnings)
            raise KubernetesNotAuthorized("Unauthorized", headers=headers) from None
        # Litestar caches parsed headers in the scope state, and its CORS middleware (which runs
        # before user middleware) fills that cache: drop it so handlers re-read the stripped list.
        ScopeState.from_scope(connection.scope).headers = Empty
        if done.warnings:
            scope[_WARNINGS_KEY] = done.warnings
        return AuthenticationResult(user=done.response.user, auth=done.response)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await super().__call__(scope, receive, send)
            return
        raw: dict[str, Any] = scope  # type: ignore[assignment]

        async def send_with_warnings(message: Any) -> None:
            # kube-apiserver sends authenticator warnings with the response (spec §7.1).
            warnings = raw.get(_WARNINGS_KEY)
            if warnings and message["type"] == "http.response.start":
                extra = [(b"warning", warning_header(w).encode("latin-1")) for w in warnings]
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await super().__call__(scope, receive, send_with_warnings)

    def _failure_headers(self, warnings: Sequence[str]) -> dict[str, str] | None:
        headers = dict(self._challenge or {})
        if warnings:
            # One value per name in Litestar's exception headers: the list form HTTP allows.
            headers["Warning"] = ", ".join(map(warning_header, warnings))
        return headers or None


def requires_groups(*groups: str) -> Callable[[ASGIConnection[Any, Any, Any, Any], Any], None]:
    """A route guard: the user must be in *every* group given, else 403."""
    wanted = tuple(groups)

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        user = connection.scope.get("user")
        if not isinstance(user, UserInfo):
            raise KubernetesNotAuthorized("Unauthorized")
        if not all(g in user.groups for g in wanted):
            raise KubernetesForbidden(f'User "{user.name}" is not in the required groups')

    return guard


def status_exception_handler(
    request: Request[Any, Any, Any], exc: Exception
) -> HTTPResponse[bytes]:
    """Render this module's 401/403 as Kubernetes Status bodies."""
    assert isinstance(exc, KubernetesNotAuthorized | KubernetesForbidden)
    if isinstance(exc, KubernetesNotAuthorized):
        body = status_body(401, "Unauthorized", "Unauthorized")
    else:
        body = status_body(403, "Forbidden", str(exc.detail))
    return HTTPResponse(
        body, status_code=exc.status_code, headers=exc.headers, media_type="application/json"
    )


#: ``Litestar(exception_handlers=...)`` entries for Kubernetes Status bodies.
STATUS_EXCEPTION_HANDLERS: Final[ExceptionHandlersMap] = {
    KubernetesNotAuthorized: status_exception_handler,
    KubernetesForbidden: status_exception_handler,
}
