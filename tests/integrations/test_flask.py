"""Flask: the extension, current_user, exempt views, group decorator, Status bodies."""

from __future__ import annotations

import pytest
from flask import Flask, request
from flask.testing import FlaskClient

from k8sauthn.config.build import Chain
from k8sauthn.integrations.flask import KubernetesAuth, current_response, current_user
from k8sauthn.middleware import UNAUTHORIZED_BODY

from .conftest import load_example

example = load_example("flask_app")
ALICE = {"Authorization": "Bearer alice-token"}


@pytest.fixture
def client(chain: Chain) -> FlaskClient:
    return example.create_app(chain).test_client()


def test_current_user_and_stripping(client: FlaskClient) -> None:
    """The view sees the user and not the Authorization header."""
    r = client.get("/me", headers=ALICE)
    assert r.json == {
        "name": "alice",
        "uid": "1001",
        "groups": ["dev", "ops", "system:authenticated"],
        "sees_token": False,
    }


def test_rejection_is_401_status(client: FlaskClient) -> None:
    """A bad or missing token is 401 with the Status body before the view runs."""
    r = client.get("/me", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert r.data == UNAUTHORIZED_BODY
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert r.headers.getlist("Content-Length") == [str(len(UNAUTHORIZED_BODY))]
    assert client.get("/me").status_code == 401


def test_groups_403_vs_401(client: FlaskClient) -> None:
    """Outside the group is 403 with a Forbidden Status; inside passes."""
    r = client.get("/admin", headers=ALICE)
    assert r.status_code == 403
    assert r.json["reason"] == "Forbidden"
    assert client.get("/admin", headers={"Authorization": "Bearer root-token"}).json == {
        "admin": "root"
    }


def test_exempt_view(client: FlaskClient) -> None:
    """An exempt view runs without credentials."""
    assert client.get("/healthz").json == {"ok": True}


def test_init_app_later_and_skip_paths(chain: Chain) -> None:
    """init_app wires an app created later; skip_paths bypass; decorators 401 without a user."""
    auth = KubernetesAuth(chain=chain, skip_paths=["/open"])
    app = Flask(__name__)
    auth.init_app(app)

    @app.get("/open")
    @auth.require_groups("admins")
    def open_() -> str:
        return "x"

    @app.get("/whoami")
    def whoami() -> str:
        resp = current_response()
        return resp.user.name if resp else "-"

    c = app.test_client()
    assert c.get("/open").status_code == 401
    assert c.get("/whoami", headers=ALICE).text == "alice"
    assert app.extensions["k8sauthn"] is auth
    with app.test_request_context("/"):
        assert current_user() is None


def test_warning_rides_on_the_401(client: FlaskClient) -> None:
    """The bearer extra-space warning is sent with the rejection, as kube-apiserver does."""
    r = client.get("/me", headers={"Authorization": "Bearer  alice-token"})
    assert r.status_code == 401
    assert r.headers["Warning"].startswith('299 - "the provided Authorization header')


def test_authorization_parsed_before_the_hook_is_forgotten(chain: Chain) -> None:
    """A request.authorization cached by an earlier hook does not survive authentication."""
    app = Flask(__name__)
    seen: list[object] = []
    app.before_request(lambda: seen.append(request.authorization) and None)
    KubernetesAuth(app, chain=chain)

    @app.get("/")
    def index() -> str:
        return repr(request.authorization)

    r = app.test_client().get("/", headers=ALICE)
    assert seen[0] is not None  # the earlier hook really parsed the token
    assert r.text == "None"
