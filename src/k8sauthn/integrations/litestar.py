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
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware.authentication import (
    AbstractAuthenticationMiddleware,
    AuthenticationResult,
)
from litestar.types import ASGIApp, ExceptionHandlersMap, Method, Scopes

from .._types import UserInfo
from ..exceptions import AuthenticationError
from ..middleware._common import log_failure, status_body
from ..middleware.asgi import ScopeAuthenticator

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
        # Work on the raw scope: Litestar caches parsed headers on the connection, and the
        # credentials must be gone before any handler parses them.
        if self.auth.skips(connection.scope):  # type: ignore[arg-type]
            return AuthenticationResult(user=None, auth=None)  # skip_paths, or an empty chain
        try:
            done = await self.auth.authenticate(connection.scope)  # type: ignore[arg-type]
        except AuthenticationError as exc:
            log_failure(exc)
            raise KubernetesNotAuthorized("Unauthorized", headers=self._challenge) from None
        return AuthenticationResult(user=done.response.user, auth=done.response)


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
