"""Flask: an extension that authenticates every request, and decorators for views.

::

    auth = KubernetesAuth(app, chain=build(options))

    @app.get("/me")
    def me():
        user = current_user()            # the k8sauthn.UserInfo

    @app.get("/admin")
    @auth.require_groups("admins")
    def admin(): ...

    @app.get("/healthz")
    @auth.exempt
    def healthz(): ...

A rejected request gets 401 with kube-apiserver's Status body before any view runs; the credential
headers are deleted from the WSGI environ first, so views never see them. The keyword arguments
are those of :class:`~k8sauthn.middleware.wsgi.EnvironAuthenticator`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, Final, ParamSpec, TypeVar

from flask import Flask, current_app, request
from flask import Response as HTTPResponse

from .._types import Response, UserInfo
from ..exceptions import AuthenticationError
from ..middleware._common import UNAUTHORIZED_BODY, log_failure, status_body, warning_header
from ..middleware.wsgi import USER_KEY, WARNINGS_KEY, EnvironAuthenticator

__all__ = ["KubernetesAuth", "current_response", "current_user"]

P = ParamSpec("P")
R = TypeVar("R")
_EXEMPT: Final = "_k8sauthn_exempt"
_EXTENSION: Final = "k8sauthn"


def current_response() -> Response | None:
    """The accepted :class:`~k8sauthn.Response` of the current request, if any."""
    resp = request.environ.get(USER_KEY)
    return resp if isinstance(resp, Response) else None


def current_user() -> UserInfo | None:
    """The user of the current request (``None`` on an exempt view or a skipped path)."""
    resp = current_response()
    return resp.user if resp is not None else None


class KubernetesAuth:
    """The Flask extension: ``KubernetesAuth(app, chain=...)`` or ``init_app`` later."""

    def __init__(self, app: Flask | None = None, **kwargs: Any) -> None:
        self.auth = EnvironAuthenticator(**kwargs)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Authenticate every request of ``app`` before its views run."""
        app.extensions[_EXTENSION] = self
        app.before_request(self._before_request)
        app.after_request(self._after_request)

    @staticmethod
    def exempt(view: Callable[P, R]) -> Callable[P, R]:
        """Mark a view as needing no authentication (health checks, login pages)."""
        setattr(view, _EXEMPT, True)
        return view

    def require_groups(self, *groups: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """A view decorator: the user must be in *every* group given, else 403 (401 if none)."""
        wanted = tuple(groups)

        def decorator(view: Callable[P, R]) -> Callable[P, R]:
            @functools.wraps(view)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
                user = current_user()
                if user is None:
                    return self._unauthorized()  # type: ignore[return-value]
                if not all(g in user.groups for g in wanted):
                    message = f'User "{user.name}" is not in the required groups'
                    return _status(403, "Forbidden", message)  # type: ignore[return-value]
                return view(*args, **kwargs)

            return wrapper

        return decorator

    def _before_request(self) -> HTTPResponse | None:
        view = current_app.view_functions.get(request.endpoint or "")
        if view is not None and getattr(view, _EXEMPT, False):
            return None
        environ = request.environ
        if self.auth.skips(environ):
            return None
        ctx = self.auth.context()
        try:
            self.auth.authenticate(environ, ctx)
        except AuthenticationError as exc:
            log_failure(exc)
            # kube-apiserver's warning recorder wraps the filter: a 401 carries warnings too.
            return self._unauthorized(ctx.warnings)
        # werkzeug parses Authorization once per request (a cached property): forget a copy
        # that an earlier hook made, so views see the credential nowhere.
        request.__dict__.pop("authorization", None)  # the proxy forwards __dict__
        return None

    def _after_request(self, response: HTTPResponse) -> HTTPResponse:
        for text in request.environ.get(WARNINGS_KEY, ()):
            response.headers.add("Warning", warning_header(text))
        return response

    def _unauthorized(self, warnings: Iterable[str] = ()) -> HTTPResponse:
        headers = self.auth.failure_headers(warnings=warnings)
        return HTTPResponse(UNAUTHORIZED_BODY, 401, headers=headers)


def _status(code: int, reason: str, message: str) -> HTTPResponse:
    return HTTPResponse(status_body(code, reason, message), code, mimetype="application/json")
