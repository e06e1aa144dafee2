"""FastAPI: current-user and group dependencies, Status errors, OpenAPI security schemes."""

import base64
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse

from k8sauthn.config.build import Chain
from k8sauthn.integrations.fastapi import KubernetesAuth, KubernetesUser
from k8sauthn.middleware import UNAUTHORIZED_BODY
from k8sauthn.middleware.asgi import AuthenticationMiddleware

from .conftest import load_example

example = load_example("fastapi_app")
ALICE = {"Authorization": "Bearer alice-token"}


@pytest.fixture
def client(chain: Chain) -> TestClient:
    return TestClient(example.create_app(chain))


def test_current_user(client: TestClient) -> None:
    """current_user resolves the token to the Kubernetes user."""
    r = client.get("/me", headers=ALICE)
    assert r.json() == {
        "name": "alice",
        "uid": "1001",
        "groups": ["dev", "ops", "system:authenticated"],
    }


def test_bad_token_is_401_with_status_body(client: TestClient) -> None:
    """A rejected token is 401 with the Status body once install() ran."""
    r = client.get("/me", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert r.content == UNAUTHORIZED_BODY
    assert r.headers["www-authenticate"] == "Bearer"


def test_group_requirement_403_vs_401(client: TestClient) -> None:
    """Missing group is 403 Forbidden; no credential is 401; the right group passes."""
    r = client.get("/admin", headers=ALICE)
    assert r.status_code == 403
    assert r.json()["reason"] == "Forbidden"
    assert r.json()["message"] == 'User "alice" is not in the required groups'
    assert client.get("/admin").status_code == 401
    assert client.get("/admin", headers={"Authorization": "Bearer root-token"}).json() == {
        "admin": "root"
    }


def test_optional_user(client: TestClient) -> None:
    """optional_user is None without a credential, the user with one, 401 with a bad one."""
    assert client.get("/hello").json() == {"hello": "stranger"}
    assert client.get("/hello", headers=ALICE).json() == {"hello": "alice"}
    assert client.get("/hello", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_openapi_declares_the_bearer_scheme(client: TestClient) -> None:
    """The dependencies appear as an HTTP bearer security scheme on each route."""
    doc = client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["KubernetesBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A Kubernetes bearer token (static, bootstrap, OIDC or webhook-checked).",
    }
    assert doc["paths"]["/me"]["get"]["security"] == [{"KubernetesBearer": []}]
    assert doc["paths"]["/admin"]["get"]["security"] == [{"KubernetesBearer": []}]


def test_without_install_errors_are_plain_http_exceptions(chain: Chain) -> None:
    """Without install() FastAPI's own handler answers, still 401 with the challenge."""
    app = FastAPI()
    auth = KubernetesAuth(chain=chain, www_authenticate=None)

    @app.get("/me")
    async def me(user: Annotated[KubernetesUser, Depends(auth.current_user)]) -> str:
        return user.name

    r = TestClient(app).get("/me")
    assert r.status_code == 401
    assert r.json() == {"detail": "Unauthorized"}
    assert "www-authenticate" not in r.headers


def test_dependency_reuses_the_middleware_user(chain: Chain) -> None:
    """Behind the ASGI middleware the dependency takes its user; the app never sees the token."""
    app = FastAPI()
    auth = KubernetesAuth(chain=chain)
    seen: list[str | None] = []

    @app.get("/me")
    async def me(user: Annotated[KubernetesUser, Depends(auth.current_user)]) -> str:
        return user.name

    @app.get("/raw")
    async def raw(user: Annotated[KubernetesUser | None, Depends(auth.optional_user)]) -> str:
        seen.append(user.name if user else None)
        return "ok"

    wrapped = AuthenticationMiddleware(app, chain=chain)
    client = TestClient(wrapped)
    assert client.get("/me", headers=ALICE).json() == "alice"
    assert client.get("/raw", headers=ALICE).status_code == 200
    assert seen == ["alice"]


def test_websocket_dependency_with_subprotocol_token(chain: Chain) -> None:
    """current_user works on WebSocket routes: subprotocol token accepted, a bad one gets 401."""
    app = FastAPI()
    auth = KubernetesAuth(chain=chain)

    @app.websocket("/ws")
    async def ws(
        websocket: WebSocket, user: Annotated[KubernetesUser, Depends(auth.current_user)]
    ) -> None:
        await websocket.accept(subprotocol="channel.k8s.io")
        await websocket.send_text(user.name)
        await websocket.close()

    def carrier(token: str) -> list[str]:
        encoded = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
        return [f"base64url.bearer.authorization.k8s.io.{encoded}", "channel.k8s.io"]

    client = TestClient(app)
    # Starlette's test client omits the Upgrade header real clients send (spec §7.2).
    with client.websocket_connect(
        "/ws", subprotocols=carrier("alice-token"), headers={"upgrade": "websocket"}
    ) as conn:
        assert conn.receive_text() == "alice"
    with (
        pytest.raises(WebSocketDenialResponse) as info,
        client.websocket_connect(
            "/ws", subprotocols=carrier("wrong"), headers={"upgrade": "websocket"}
        ),
    ):
        pass  # pragma: no cover - the handshake is refused
    assert info.value.status_code == 401


def test_route_request_loses_the_token_without_middleware(chain: Chain) -> None:
    """Authenticating in a dependency strips the header the route's Request already parsed."""
    app = FastAPI()
    auth = KubernetesAuth(chain=chain)

    @app.get("/peek")
    async def peek(
        request: Request, user: Annotated[KubernetesUser, Depends(auth.current_user)]
    ) -> dict[str, object]:
        return {"user": user.name, "sees": "authorization" in request.headers}

    assert TestClient(app).get("/peek", headers=ALICE).json() == {"user": "alice", "sees": False}


def test_warning_rides_on_the_401(client: TestClient) -> None:
    """The bearer extra-space warning is sent with the rejection, as kube-apiserver does."""
    r = client.get("/me", headers={"Authorization": "Bearer  alice-token"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.headers["warning"].startswith('299 - "the provided Authorization header')
