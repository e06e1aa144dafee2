"""Starlette: the backend, its user and scopes, 401 on_error, and the docs example app."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient, WebSocketDenialResponse

from k8sauthn import Response, UserInfo
from k8sauthn.config.build import Chain
from k8sauthn.integrations.starlette import KubernetesUser, authentication_middleware, scopes_for
from k8sauthn.middleware import UNAUTHORIZED_BODY
from k8sauthn.middleware.asgi import USER_KEY, AuthenticationMiddleware

from .conftest import load_example

example = load_example("starlette_app")
UPGRADE = {"upgrade": "websocket"}


def ws_token(token: str) -> str:
    encoded = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
    return "base64url.bearer.authorization.k8s.io." + encoded


@pytest.fixture
def client(chain: Chain) -> TestClient:
    return TestClient(example.create_app(chain))


def test_user_carries_name_uid_and_groups(client: TestClient) -> None:
    """request.user is a KubernetesUser with the token file's identity plus the adder's group."""
    r = client.get("/me", headers={"Authorization": "Bearer alice-token"})
    assert r.status_code == 200
    assert r.json() == {
        "name": "alice",
        "uid": "1001",
        "groups": ["dev", "ops", "system:authenticated"],
    }


def test_bad_token_gets_401_status_not_400(client: TestClient) -> None:
    """on_error answers 401 with the Status body (Starlette's default would be 400)."""
    r = client.get("/me", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert r.content == UNAUTHORIZED_BODY
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.headers["content-type"] == "application/json"


def test_missing_credentials_get_401(client: TestClient) -> None:
    """No credential and anonymous off: the chain has no opinion, so 401."""
    assert client.get("/me").status_code == 401


def test_group_scope_missing_is_403(client: TestClient) -> None:
    """An authenticated user lacking group:admins gets Starlette's 403 from @requires."""
    assert client.get("/admin", headers={"Authorization": "Bearer alice-token"}).status_code == 403
    r = client.get("/admin", headers={"Authorization": "Bearer root-token"})
    assert r.json() == {"admin": "root"}


def test_skipped_path_has_the_unauthenticated_user(client: TestClient) -> None:
    """/healthz is skipped: no credential needed, Starlette's UnauthenticatedUser in place."""
    r = client.get("/healthz", headers={"Authorization": "Bearer wrong"})
    assert r.json() == {"ok": True, "authenticated": False}


def test_anonymous_lacks_the_authenticated_scope(anonymous_chain: Chain) -> None:
    """With anonymous on, a bare request reaches routes but @requires('authenticated') is 403."""
    client = TestClient(example.create_app(anonymous_chain))
    assert client.get("/me").status_code == 403


def test_websocket_token_via_subprotocol(client: TestClient) -> None:
    """A token in the WebSocket subprotocol carrier authenticates the handshake."""
    protocols = [ws_token("alice-token"), "channel.k8s.io"]
    # Starlette's test client omits the Upgrade header every real client sends (spec §7.2),
    # and it adds its own headers to the dict it is given: pass a fresh one.
    with client.websocket_connect("/ws", subprotocols=protocols, headers=dict(UPGRADE)) as ws:
        assert ws.accepted_subprotocol == "channel.k8s.io"
        assert ws.receive_json() == {"name": "alice"}


def test_websocket_bad_token_is_denied_with_401(client: TestClient) -> None:
    """A bad subprotocol token gets an HTTP 401 denial response, not an accepted socket."""
    protocols = [ws_token("wrong"), "channel.k8s.io"]
    with (
        pytest.raises(WebSocketDenialResponse) as info,
        client.websocket_connect("/ws", subprotocols=protocols, headers=dict(UPGRADE)),
    ):
        pass  # pragma: no cover - the handshake is refused
    assert info.value.status_code == 401
    assert info.value.content == UNAUTHORIZED_BODY


def test_scopes_and_user_properties() -> None:
    """scopes_for and KubernetesUser expose what @requires and templates need."""
    resp = Response(UserInfo("bob", uid="7", groups=("a",), extra={"k": ("v",)}))
    user = KubernetesUser(resp)
    assert scopes_for(resp) == ["authenticated", "group:a"]
    assert (user.is_authenticated, user.display_name, user.identity) == (True, "bob", "7")
    assert user.extra == {"k": ("v",)}
    assert user.info is resp.user
    assert "bob" in repr(user)
    anon = Response(UserInfo("system:anonymous", groups=("system:unauthenticated",)))
    assert scopes_for(anon) == ["group:system:unauthenticated"]
    assert KubernetesUser(anon).is_authenticated is False
    assert KubernetesUser(Response(UserInfo("x"))).identity == "x"


def test_pure_asgi_middleware_in_a_starlette_middleware_list(chain: Chain) -> None:
    """Middleware(AuthenticationMiddleware, chain=...) works; the user is in the scope."""

    async def me(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.scope[USER_KEY].user.name)

    app = Starlette(
        routes=[Route("/me", me)], middleware=[Middleware(AuthenticationMiddleware, chain=chain)]
    )
    client = TestClient(app)
    assert client.get("/me", headers={"Authorization": "Bearer alice-token"}).text == "alice"
    assert client.get("/me").status_code == 401


def test_warning_rides_on_the_401(client: TestClient) -> None:
    """The bearer extra-space warning is sent with the rejection, as kube-apiserver does."""
    r = client.get("/me", headers={"Authorization": "Bearer  alice-token"})
    assert r.status_code == 401
    assert r.content == UNAUTHORIZED_BODY
    assert r.headers["warning"].startswith('299 - "the provided Authorization header')


def test_warning_rides_on_the_success(anonymous_chain: Chain) -> None:
    """With anonymous on, the extra-space request passes as anonymous and keeps the warning."""
    client = TestClient(example.create_app(anonymous_chain))
    r = client.get("/healthz", headers={"Authorization": "Bearer  alice-token"})
    assert r.status_code == 200  # skipped: no authentication, no warning
    assert "warning" not in r.headers
    r = client.get("/me", headers={"Authorization": "Bearer  alice-token"})
    assert r.status_code == 403  # anonymous lacks the "authenticated" scope
    assert r.headers["warning"].startswith('299 - "the provided Authorization header')


def test_backend_under_starlettes_own_middleware(chain: Chain) -> None:
    """KubernetesBackend plugs into the stock AuthenticationMiddleware with its on_error."""
    from starlette.middleware.authentication import AuthenticationMiddleware as Stock

    from k8sauthn.integrations.starlette import KubernetesBackend

    async def me(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"{request.user.display_name}:{request.user.is_authenticated}")

    backend = KubernetesBackend(chain=chain, skip_paths=["/open"])
    app = Starlette(
        routes=[Route("/me", me), Route("/open", me)],
        middleware=[Middleware(Stock, backend=backend, on_error=backend.on_error)],
    )
    with TestClient(app) as client:  # the lifespan scope passes through too
        assert client.get("/me", headers={"Authorization": "Bearer alice-token"}).text == (
            "alice:True"
        )
        r = client.get("/me", headers={"Authorization": "Bearer wrong"})
        assert (r.status_code, r.content) == (401, UNAUTHORIZED_BODY)
        assert r.headers["www-authenticate"] == "Bearer"
        assert client.get("/open").text == ":False"


def test_kubernetes_middleware_passes_the_lifespan(chain: Chain) -> None:
    """The lifespan scope reaches the application's startup code untouched."""
    started: list[bool] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        started.append(True)
        yield

    app = Starlette(middleware=[authentication_middleware(chain=chain)], lifespan=lifespan)
    with TestClient(app):
        pass
    assert started == [True]
