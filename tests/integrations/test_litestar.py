"""Litestar: the authentication middleware subclass, its exclude options, guards, Status bodies."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, Request, get
from litestar.middleware import DefineMiddleware
from litestar.testing import TestClient

from k8sauthn.config.build import Chain
from k8sauthn.integrations.litestar import KubernetesAuthenticationMiddleware, requires_groups
from k8sauthn.middleware import UNAUTHORIZED_BODY

from .conftest import load_example

example = load_example("litestar_app")
ALICE = {"Authorization": "Bearer alice-token"}


@pytest.fixture
def client(chain: Chain) -> Any:
    with TestClient(example.create_app(chain)) as c:
        yield c


def test_user_and_auth(client: Any) -> None:
    """request.user is the UserInfo of the token."""
    r = client.get("/me", headers=ALICE)
    assert r.json() == {
        "name": "alice",
        "uid": "1001",
        "groups": ["dev", "ops", "system:authenticated"],
    }


def test_rejection_is_401_status(client: Any) -> None:
    """A bad token is 401 with the Status body and the challenge."""
    r = client.get("/me", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert r.content == UNAUTHORIZED_BODY
    assert r.headers["www-authenticate"] == "Bearer"
    assert client.get("/me").status_code == 401


def test_guard_403_vs_401(client: Any) -> None:
    """A user outside the group gets 403; root passes."""
    r = client.get("/admin", headers=ALICE)
    assert r.status_code == 403
    assert r.json()["message"] == 'User "alice" is not in the required groups'
    assert client.get("/admin", headers={"Authorization": "Bearer root-token"}).json() == {
        "admin": "root"
    }


def test_exclude_options_are_kept(client: Any) -> None:
    """exclude_from_auth on a route and the exclude regex both bypass authentication."""
    assert client.get("/healthz").json() == {"ok": True}
    assert client.get("/schema/openapi.json").status_code == 200


def test_credentials_are_stripped(chain: Chain) -> None:
    """The handler never sees the Authorization header."""

    @get("/headers")
    async def headers(request: Request[Any, Any, Any]) -> list[str]:
        return sorted(request.headers.keys())

    mw = DefineMiddleware(KubernetesAuthenticationMiddleware, chain=chain)
    with TestClient(Litestar([headers], middleware=[mw])) as c:
        r = c.get("/headers", headers={**ALICE, "X-Remote-User": "mallory"})
    assert r.status_code == 200
    assert "authorization" not in r.json()
    assert "x-remote-user" not in r.json()


def test_default_handler_without_status_handlers(chain: Chain) -> None:
    """Without STATUS_EXCEPTION_HANDLERS Litestar's own 401 body is used."""

    @get("/me")
    async def me() -> str:
        return "x"

    mw = DefineMiddleware(KubernetesAuthenticationMiddleware, chain=chain, www_authenticate=None)
    with TestClient(Litestar([me], middleware=[mw])) as c:
        r = c.get("/me")
    assert r.status_code == 401
    assert r.json()["detail"] == "Unauthorized"


def test_skip_paths_and_guard_without_user(chain: Chain) -> None:
    """skip_paths pass with no user; a group guard there answers 401, not 403."""

    @get("/open", guards=[requires_groups("admins")])
    async def open_() -> str:
        return "x"

    @get("/free")
    async def free(request: Request[Any, Any, Any]) -> str:
        return repr(request.user)

    mw = DefineMiddleware(
        KubernetesAuthenticationMiddleware, chain=chain, skip_paths=["/o*", "/free"]
    )
    with TestClient(Litestar([open_, free], middleware=[mw])) as c:
        assert c.get("/open").status_code == 401
        assert c.get("/free").text == "None"


def test_handlers_never_see_the_token_even_with_cors(chain: Chain) -> None:
    """Litestar's CORS middleware caches parsed headers first; the handler still sees none."""
    from litestar.config.cors import CORSConfig

    @get("/h")
    async def h(request: Request[Any, Any, Any]) -> dict[str, Any]:
        return {"sees": "authorization" in request.headers, "user": request.user.name}

    mw = DefineMiddleware(KubernetesAuthenticationMiddleware, chain=chain)
    app = Litestar([h], middleware=[mw], cors_config=CORSConfig(allow_origins=["*"]))
    with TestClient(app) as c:
        r = c.get("/h", headers={**ALICE, "Origin": "http://example.test"})
    assert r.json() == {"sees": False, "user": "alice"}


def test_warnings_ride_on_the_401_and_the_success(client: Any, anonymous_chain: Chain) -> None:
    """The bearer extra-space warning is sent with the rejection and with an accepted request."""
    r = client.get("/me", headers={"Authorization": "Bearer  alice-token"})
    assert r.status_code == 401
    assert r.headers["warning"].startswith('299 - "the provided Authorization header')
    with TestClient(example.create_app(anonymous_chain)) as anon:
        r = anon.get("/me", headers={"Authorization": "Bearer  alice-token"})
        assert r.json()["name"] == "system:anonymous"
        assert r.headers["warning"].startswith('299 - "the provided Authorization header')
        assert "warning" not in anon.get("/me", headers=ALICE).headers
