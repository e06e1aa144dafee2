"""FastAPI: dependencies for the current Kubernetes user and group requirements.

::

    auth = KubernetesAuth(chain=build(options))
    auth.install(app)                       # Status bodies for 401/403 (optional)

    @app.get("/me")
    async def me(user: Annotated[KubernetesUser, Depends(auth.current_user)]): ...

    @app.get("/admin", dependencies=[Depends(auth.require_groups("admins"))])
    async def admin(): ...

The dependencies declare an HTTP bearer security scheme (``KubernetesBearer``), so they show in
the OpenAPI document and in ``/docs``. They reuse the user the ASGI middleware put in the scope
when it runs in front; otherwise they authenticate the request themselves and strip the
credentials from the scope's header list in place, so the route's ``Request`` no longer shows
them. Other middleware still runs before a dependency: put the ASGI middleware in front when no
code at all may see a credential.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Final

from fastapi import FastAPI, HTTPException, Security
from fastapi.requests import HTTPConnection, Request
from fastapi.responses import Response as HTTPResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .._types import Response
from ..exceptions import AuthenticationError
from ..middleware._common import NotAuthenticated, log_failure, status_body, warning_header
from ..middleware.asgi import USER_KEY, ScopeAuthenticator
from .starlette import KubernetesUser

__all__ = [
    "BEARER_SCHEME",
    "KubernetesAuth",
    "KubernetesStatusError",
    "KubernetesUser",
    "status_error_handler",
]

#: The OpenAPI security scheme every dependency here declares.
BEARER_SCHEME: Final = HTTPBearer(
    scheme_name="KubernetesBearer",
    description="A Kubernetes bearer token (static, bootstrap, OIDC or webhook-checked).",
    auto_error=False,
)
_Bearer = Annotated[HTTPAuthorizationCredentials | None, Security(BEARER_SCHEME)]


class KubernetesStatusError(HTTPException):
    """A 401/403 that :func:`status_error_handler` renders as a Kubernetes Status body."""

    def __init__(
        self, status_code: int, reason: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.reason = reason
        self.message = message


async def status_error_handler(request: Request, exc: Exception) -> HTTPResponse:
    """Render a :class:`KubernetesStatusError` as kube-apiserver would."""
    assert isinstance(exc, KubernetesStatusError)
    body = status_body(exc.status_code, exc.reason, exc.message)
    return HTTPResponse(body, exc.status_code, headers=exc.headers, media_type="application/json")


class KubernetesAuth:
    """FastAPI dependencies over a k8sauthn chain; takes the arguments of ``ScopeAuthenticator``."""

    def __init__(self, **kwargs: Any) -> None:
        self.auth = ScopeAuthenticator(**kwargs)
        www = self.auth.policy.www_authenticate
        self._challenge = {"WWW-Authenticate": www} if www else None

    def install(self, app: FastAPI) -> None:
        """Render this module's 401/403 errors as Status bodies in ``app``."""
        app.add_exception_handler(KubernetesStatusError, status_error_handler)

    def unauthorized(self, warnings: Sequence[str] = ()) -> KubernetesStatusError:
        """The 401 for a rejected request, with the warnings recorded before the rejection."""
        headers = dict(self._challenge or {})
        if warnings:
            # One value per name in HTTPException headers: the list form HTTP allows.
            headers["Warning"] = ", ".join(map(warning_header, warnings))
        return KubernetesStatusError(401, "Unauthorized", "Unauthorized", headers or None)

    async def _response(self, conn: HTTPConnection) -> Response:
        resp = conn.scope.get(USER_KEY)
        if isinstance(resp, Response):
            return resp  # the middleware in front already accepted and stripped the request
        ctx = self.auth.context()
        try:
            done = await self.auth.authenticate(conn.scope, ctx)
        except AuthenticationError as exc:
            log_failure(exc)
            raise self.unauthorized(ctx.warnings) from None
        return done.response

    async def current_user(self, conn: HTTPConnection, _bearer: _Bearer) -> KubernetesUser:
        """The accepted user (anonymous included, when the chain allows it); else 401."""
        return KubernetesUser(await self._response(conn))

    async def optional_user(self, conn: HTTPConnection, _bearer: _Bearer) -> KubernetesUser | None:
        """Like :meth:`current_user`, but ``None`` when no credential was presented at all.

        A presented credential that fails is still a 401: a bad token never degrades to "no user".
        """
        resp = conn.scope.get(USER_KEY)
        if isinstance(resp, Response):
            return KubernetesUser(resp)
        ctx = self.auth.context()
        try:
            done = await self.auth.authenticate(conn.scope, ctx)
        except NotAuthenticated:
            return None
        except AuthenticationError as exc:
            log_failure(exc)
            raise self.unauthorized(ctx.warnings) from None
        return KubernetesUser(done.response)

    def require_groups(
        self, *groups: str
    ) -> Callable[[HTTPConnection, HTTPAuthorizationCredentials | None], Awaitable[KubernetesUser]]:
        """A dependency that returns the user if they are in *every* group given, else 403."""
        wanted: Sequence[str] = groups

        async def dependency(conn: HTTPConnection, _bearer: _Bearer) -> KubernetesUser:
            user = KubernetesUser(await self._response(conn))
            if not all(g in user.groups for g in wanted):
                message = f'User "{user.name}" is not in the required groups'
                raise KubernetesStatusError(403, "Forbidden", message)
            return user

        return dependency
