"""Django and Django REST framework: a middleware and a DRF authentication class.

Settings::

    MIDDLEWARE = ["k8sauthn.integrations.django.KubernetesAuthenticationMiddleware", ...]
    K8SAUTHN_AUTHENTICATOR = "myproject.auth.kubernetes"   # returns an EnvironAuthenticator
    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": ["k8sauthn.integrations.django.KubernetesAuthentication"],
    }

``K8SAUTHN_AUTHENTICATOR`` is a dotted path to (or the object of) a zero-argument callable
returning an :class:`~k8sauthn.middleware.wsgi.EnvironAuthenticator`, or the authenticator
itself. The middleware rejects a failed request with 401 and the Status body and sets
``request.user`` to a :class:`KubernetesUser` (not a database model); put it first, so no other
middleware parses the credential headers before they are removed. The DRF class reuses the
middleware's result, or authenticates by itself when the middleware is not installed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request as DRFRequest

from .._types import Response
from ..exceptions import AuthenticationError
from ..middleware._common import (
    UNAUTHORIZED_BODY,
    NotAuthenticated,
    is_anonymous,
    log_failure,
    warning_header,
)
from ..middleware.wsgi import USER_KEY, WARNINGS_KEY, EnvironAuthenticator

__all__ = [
    "KubernetesAuthentication",
    "KubernetesAuthenticationMiddleware",
    "KubernetesUser",
    "get_authenticator",
    "in_groups",
]


def get_authenticator() -> EnvironAuthenticator:
    """The authenticator ``settings.K8SAUTHN_AUTHENTICATOR`` names (built once per setting)."""
    value = getattr(settings, "K8SAUTHN_AUTHENTICATOR", None)
    if isinstance(value, EnvironAuthenticator):
        return value
    if not value:
        raise ImproperlyConfigured("settings.K8SAUTHN_AUTHENTICATOR is not set")
    return _build(value)


@functools.lru_cache(maxsize=8)
def _build(value: str | Callable[[], EnvironAuthenticator]) -> EnvironAuthenticator:
    factory = import_string(value) if isinstance(value, str) else value
    result = factory()
    if not isinstance(result, EnvironAuthenticator):
        raise ImproperlyConfigured("K8SAUTHN_AUTHENTICATOR must produce an EnvironAuthenticator")
    return result


class KubernetesUser:
    """``request.user`` for a Kubernetes identity: Django's user protocol, no database row.

    ``groups`` is the tuple of Kubernetes group names (not a Django related manager), and no
    Django permission is ever granted (``has_perm`` is always false): authorize on groups.
    """

    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, response: Response) -> None:
        self.response = response
        self.username = response.user.name
        self.uid = response.user.uid
        self.groups: tuple[str, ...] = response.user.groups
        self.extra: Mapping[str, tuple[str, ...]] = response.user.extra

    @property
    def is_authenticated(self) -> bool:
        return not is_anonymous(self.response)

    @property
    def is_anonymous(self) -> bool:
        return is_anonymous(self.response)

    def get_username(self) -> str:
        return self.username

    def has_perm(self, perm: str, obj: object = None) -> bool:
        return False

    def has_perms(self, perm_list: object, obj: object = None) -> bool:
        return False

    def has_module_perms(self, module: str) -> bool:
        return False

    def __str__(self) -> str:
        return self.username

    def __repr__(self) -> str:
        return f"KubernetesUser(username={self.username!r}, groups={self.groups!r})"


def _unauthorized(auth: EnvironAuthenticator, warnings: Sequence[str]) -> HttpResponse:
    response = HttpResponse(UNAUTHORIZED_BODY, status=401, content_type="application/json")
    for name, value in auth.policy.failure_headers():
        response.headers[name] = value
    _add_warnings(response, warnings)
    return response


def _add_warnings(response: HttpResponse, warnings: Sequence[str]) -> None:
    # Django keeps one value per header name: join into the list form HTTP allows for Warning.
    if warnings:
        values = [response.headers.get("Warning", ""), *map(warning_header, warnings)]
        response.headers["Warning"] = ", ".join(v for v in values if v)


class KubernetesAuthenticationMiddleware:
    """Django middleware running kube-apiserver's authentication filter (spec §15)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        auth = get_authenticator()
        environ = request.META
        if auth.skips(environ):
            return self.get_response(request)
        ctx = auth.context()
        try:
            resp = auth.authenticate(environ, ctx)
        except AuthenticationError as exc:
            log_failure(exc)
            # kube-apiserver's warning recorder wraps the filter: a 401 carries warnings too.
            return _unauthorized(auth, ctx.warnings)
        # request.headers is a cached view of META: drop a copy made before the strip.
        request.__dict__.pop("headers", None)
        user = KubernetesUser(resp)
        request.user = user
        # django.contrib.auth's AuthenticationMiddleware, placed after this one, replaces
        # request.user by a lazy lookup that returns these cached values first: prime them so
        # it resolves to the Kubernetes user instead of AnonymousUser.
        request.__dict__.update(_cached_user=user, _acached_user=user)
        response = self.get_response(request)
        _add_warnings(response, environ.get(WARNINGS_KEY, ()))
        return response


class KubernetesAuthentication(BaseAuthentication):  # type: ignore[misc]
    """DRF authentication with the k8sauthn chain; answers 401 (with a challenge), not 403.

    No credential at all returns ``None`` so DRF's permissions decide (``IsAuthenticated`` gives
    401); a presented credential that fails is ``AuthenticationFailed`` (401).
    """

    def authenticate(self, request: DRFRequest) -> tuple[KubernetesUser, Response] | None:
        environ = request._request.META
        resp = environ.get(USER_KEY)
        if not isinstance(resp, Response):
            try:
                resp = get_authenticator().authenticate(environ)
            except NotAuthenticated:
                return None
            except AuthenticationError as exc:
                log_failure(exc)
                raise exceptions.AuthenticationFailed("Unauthorized") from None
        return KubernetesUser(resp), resp

    def authenticate_header(self, request: DRFRequest) -> str:
        # DRF answers 403 instead of 401 when this is empty, so a challenge is always given.
        return get_authenticator().policy.www_authenticate or "Bearer"


def in_groups(*groups: str) -> type[BasePermission]:
    """A DRF permission class: the user must be in *every* group given."""
    wanted = tuple(groups)

    class InGroups(BasePermission):  # type: ignore[misc]
        message = "User is not in the required groups"

        def has_permission(self, request: DRFRequest, view: Any) -> bool:
            user = request.user
            return isinstance(user, KubernetesUser) and all(g in user.groups for g in wanted)

    InGroups.__name__ = InGroups.__qualname__ = f"InGroups{wanted!r}"
    return InGroups
