"""Django and DRF: the middleware, the DRF authentication class and group permission."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings

from k8sauthn import Response, UserInfo
from k8sauthn.config.build import Chain
from k8sauthn.integrations import django as integration
from k8sauthn.middleware import UNAUTHORIZED_BODY
from k8sauthn.middleware.wsgi import EnvironAuthenticator

from .conftest import load_example

# Importing the example configures Django's settings (once per process) and its URLs.
example = load_example("django_app")
ALICE = {"HTTP_AUTHORIZATION": "Bearer alice-token"}
ROOT = {"HTTP_AUTHORIZATION": "Bearer root-token"}


@pytest.fixture
def client(chain: Chain) -> Iterator[Client]:
    auth = EnvironAuthenticator(chain=chain, skip_paths=["/healthz"])
    with override_settings(K8SAUTHN_AUTHENTICATOR=auth):
        yield Client()


def test_middleware_sets_user_and_strips(client: Client) -> None:
    """request.user is the Kubernetes user and the view never sees the token."""
    r = client.get("/me", **ALICE)
    assert r.json() == {
        "name": "alice",
        "groups": ["dev", "ops", "system:authenticated"],
        "sees_token": False,
    }


def test_middleware_rejects_with_status(client: Client) -> None:
    """A bad token is 401 with the Status body and the challenge."""
    r = client.get("/me", HTTP_AUTHORIZATION="Bearer wrong")
    assert r.status_code == 401
    assert r.content == UNAUTHORIZED_BODY
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/me").status_code == 401


def test_skip_path(client: Client) -> None:
    """A skipped path needs no credential."""
    assert client.get("/healthz").json() == {"ok": True}


def test_drf_view_behind_middleware(client: Client) -> None:
    """The DRF class reuses the middleware's user."""
    assert client.get("/api/me", **ALICE).json() == {"name": "alice", "uid": "1001"}


def test_drf_group_permission_403(client: Client) -> None:
    """in_groups gives 403 to a user outside the group, passes a member."""
    assert client.get("/api/admin", **ALICE).status_code == 403
    assert client.get("/api/admin", **ROOT).json() == {"admin": "root"}


def test_drf_alone_401_with_challenge(chain: Chain) -> None:
    """Without the middleware DRF authenticates itself: 401 + WWW-Authenticate, not 403."""
    auth = EnvironAuthenticator(chain=chain)
    with override_settings(K8SAUTHN_AUTHENTICATOR=auth, MIDDLEWARE=[]):
        c = Client()
        r = c.get("/api/me")
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"] == "Bearer"
        assert c.get("/api/me", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
        assert c.get("/api/me", **ALICE).json() == {"name": "alice", "uid": "1001"}


def test_settings_as_dotted_path(chain: Chain) -> None:
    """K8SAUTHN_AUTHENTICATOR may be a dotted path to a factory, built once."""
    example.TEST_AUTH = EnvironAuthenticator(chain=chain)
    path = f"{example.__name__}.TEST_AUTH_FACTORY"
    example.TEST_AUTH_FACTORY = lambda: example.TEST_AUTH
    with override_settings(K8SAUTHN_AUTHENTICATOR=path):
        assert integration.get_authenticator() is example.TEST_AUTH
    with override_settings(K8SAUTHN_AUTHENTICATOR=None), pytest.raises(ImproperlyConfigured):
        integration.get_authenticator()
    with (
        override_settings(K8SAUTHN_AUTHENTICATOR=lambda: "nope"),
        pytest.raises(ImproperlyConfigured),
    ):
        integration.get_authenticator()


def test_user_protocol() -> None:
    """KubernetesUser answers Django's user protocol without granting permissions."""
    user = integration.KubernetesUser(Response(UserInfo("bob", uid="7", groups=("g",))))
    assert (user.is_authenticated, user.is_anonymous, user.get_username()) == (True, False, "bob")
    assert not user.has_perm("x")
    assert not user.has_perms(["x"])
    assert not user.has_module_perms("m")
    assert str(user) == "bob"
    assert "bob" in repr(user)
    anon = integration.KubernetesUser(
        Response(UserInfo("system:anonymous", groups=("system:unauthenticated",)))
    )
    assert anon.is_anonymous
    assert not anon.is_authenticated
    assert integration.in_groups("g")().has_permission(_Req(user), None)
    assert not integration.in_groups("h")().has_permission(_Req(user), None)


class _Req:
    def __init__(self, user: Any) -> None:
        self.user = user


def test_warning_rides_on_the_401(client: Client) -> None:
    """The bearer extra-space warning is sent with the rejection, as kube-apiserver does."""
    r = client.get("/me", HTTP_AUTHORIZATION="Bearer  alice-token")
    assert r.status_code == 401
    assert r.headers["Warning"].startswith('299 - "the provided Authorization header')


def test_warnings_join_an_existing_warning_header() -> None:
    """A Warning the view already set is kept; ours are appended to the list value."""
    from django.http import HttpResponse

    response = HttpResponse()
    response.headers["Warning"] = '299 - "app"'
    integration._add_warnings(response, ["a", "b"])
    assert response.headers["Warning"] == '299 - "app", 299 - "a", 299 - "b"'


def test_user_survives_djangos_own_authentication_middleware(chain: Chain) -> None:
    """With contrib.auth's middleware after ours, request.user is still the Kubernetes user."""
    auth = EnvironAuthenticator(chain=chain)
    middleware = [
        "k8sauthn.integrations.django.KubernetesAuthenticationMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ]
    with override_settings(
        K8SAUTHN_AUTHENTICATOR=auth,
        MIDDLEWARE=middleware,
        SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
    ):
        r = Client().get("/me", **ALICE)
    assert r.json()["name"] == "alice"
