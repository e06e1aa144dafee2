"""The WSGI middleware: the HTTP filter of spec §15 around any WSGI application."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest
from werkzeug.test import Client

from k8sauthn.io import Authenticator
from k8sauthn.middleware import UNAUTHORIZED_BODY
from k8sauthn.middleware.wsgi import (
    USER_KEY,
    AuthenticationMiddleware,
    EnvironAuthenticator,
    environ_headers,
    environ_path,
)

from .._pki import Cert
from ._support import (
    EffectfulRequestAuthenticator,
    FakeChain,
    FakeRequestAuthenticator,
    ws_protocol,
)


class Echo:
    """A WSGI app that records the environ and answers with the user and header keys."""

    def __init__(self) -> None:
        self.environs: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.environs.append(environ)
        resp = environ.get(USER_KEY)
        body = {
            "user": resp.user.name if resp else None,
            "remote_user": environ.get("REMOTE_USER"),
            "keys": sorted(k for k in environ if k.startswith("HTTP_")),
        }
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]


def test_accepted_token_reaches_the_app() -> None:
    """A known token puts the Response in the environ and calls the app."""
    app = Echo()
    r = Client(AuthenticationMiddleware(app, chain=FakeChain())).get(
        "/", headers={"Authorization": "Bearer alice-token"}
    )
    assert r.status_code == 200
    assert r.json["user"] == "alice"
    assert r.json["remote_user"] is None
    assert app.environs[0][USER_KEY].user.uid == "1001"


def test_remote_user_is_set_when_asked() -> None:
    """remote_user=True also sets REMOTE_USER to the user name."""
    mw = AuthenticationMiddleware(Echo(), chain=FakeChain(), remote_user=True)
    r = Client(mw).get("/", headers={"Authorization": "Bearer alice-token"})
    assert r.json["remote_user"] == "alice"


def test_credentials_are_stripped_after_success() -> None:
    """Authorization, X-Remote-* and configured names never reach the app (spec §10.4)."""
    mw = AuthenticationMiddleware(Echo(), chain=FakeChain(strip_prefixes=("x-mine-",)))
    r = Client(mw).get(
        "/",
        headers={
            "Authorization": "Bearer alice-token",
            "X-Remote-User": "mallory",
            "X-Remote-Extra-Scopes": "all",
            "X-Mine-Thing": "secret",
            "X-Remote-Group-1": "kept",
        },
    )
    assert r.json["keys"] == ["HTTP_HOST", "HTTP_X_REMOTE_GROUP_1"]


def test_rejection_is_401_with_status_body() -> None:
    """An unknown token gets 401, the Status body and WWW-Authenticate; the app never runs."""
    app = Echo()
    r = Client(AuthenticationMiddleware(app, chain=FakeChain())).get(
        "/", headers={"Authorization": "Bearer nope"}
    )
    assert r.status_code == 401
    assert r.data == UNAUTHORIZED_BODY
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert r.headers["Content-Length"] == str(len(UNAUTHORIZED_BODY))
    assert app.environs == []


def test_no_credentials_without_anonymous_is_401() -> None:
    """No opinion is a rejection."""
    assert Client(AuthenticationMiddleware(Echo(), chain=FakeChain())).get("/").status_code == 401


def test_anonymous_reaches_the_app() -> None:
    """With anonymous on, a bare request runs as system:anonymous."""
    chain = FakeChain(request=FakeRequestAuthenticator(anonymous=True))
    r = Client(AuthenticationMiddleware(Echo(), chain=chain)).get("/")
    assert r.json["user"] == "system:anonymous"


def test_skip_paths_bypass() -> None:
    """Skipped paths run the app without authenticating or stripping."""
    mw = AuthenticationMiddleware(Echo(), chain=FakeChain(), skip_paths=["/healthz"])
    r = Client(mw).get("/healthz", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 200
    assert "HTTP_AUTHORIZATION" in r.json["keys"]


def test_warnings_become_headers() -> None:
    """Authenticator warnings are sent as Warning headers on the app's response."""
    chain = FakeChain(request=FakeRequestAuthenticator(warning="careful"))
    r = Client(AuthenticationMiddleware(Echo(), chain=chain)).get(
        "/", headers={"Authorization": "Bearer alice-token"}
    )
    assert r.headers["Warning"] == '299 - "careful"'


def test_websocket_token_entry_is_removed() -> None:
    """The subprotocol token entry is deleted, other protocols kept (spec §7.2)."""
    app = Echo()
    mw = AuthenticationMiddleware(app, chain=FakeChain())
    r = Client(mw).get(
        "/",
        headers={
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Protocol": f"{ws_protocol('alice-token')},channel.k8s.io",
        },
    )
    assert r.json["user"] == "alice"
    assert app.environs[0]["HTTP_SEC_WEBSOCKET_PROTOCOL"] == "channel.k8s.io"


def test_websocket_header_with_only_a_token_is_dropped() -> None:
    """When only the token entry was offered, the header disappears."""
    auth = EnvironAuthenticator(chain=FakeChain())
    environ = {"HTTP_SEC_WEBSOCKET_PROTOCOL": ws_protocol("x")}
    auth._strip(environ)
    assert environ == {}


def test_empty_chain_is_a_no_op() -> None:
    """No request authenticator: every request passes with no user (spec §15.1)."""
    r = Client(AuthenticationMiddleware(Echo(), chain=FakeChain(request=None))).get("/")
    assert r.json["user"] is None


def test_ready_runner_and_audience_check() -> None:
    """authenticator= takes a sync runner; its audiences are checked against the response."""
    runner = Authenticator(FakeRequestAuthenticator(audiences=("x",)), audiences=["api"])
    mw = AuthenticationMiddleware(Echo(), authenticator=runner)
    r = Client(mw).get("/", headers={"Authorization": "Bearer alice-token"})
    assert r.status_code == 401
    mw.close()


def test_a_chain_that_needs_effects_is_run_to_its_answer() -> None:
    """A chain that must perform I/O first (cache miss, webhook) still accepts and rejects."""
    chain = FakeChain(request=EffectfulRequestAuthenticator())
    client = Client(AuthenticationMiddleware(Echo(), chain=chain))
    ok = client.get("/", headers={"Authorization": "Bearer alice-token"})
    assert (ok.status_code, ok.json["user"]) == (200, "alice")
    assert "HTTP_AUTHORIZATION" not in ok.json["keys"]
    assert client.get("/", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_exactly_one_source_is_required() -> None:
    """Neither or both of authenticator= and chain= is a TypeError."""
    with pytest.raises(TypeError):
        EnvironAuthenticator()


class TestEnviron:
    def test_headers_are_read_from_http_keys(self) -> None:
        """HTTP_X_Y becomes x-y; content headers are included."""
        headers = environ_headers(
            {"HTTP_X_REMOTE_USER": "a", "CONTENT_TYPE": "text/plain", "wsgi.input": object()}
        )
        assert headers.first("X-Remote-User") == "a"
        assert headers.first("content-type") == "text/plain"

    def test_path_joins_script_name(self) -> None:
        """The path is SCRIPT_NAME + PATH_INFO decoded from PEP 3333 latin-1."""
        environ = {"SCRIPT_NAME": "/app", "PATH_INFO": "/caf\xc3\xa9"}
        assert environ_path(environ) == "/app/café"
        assert environ_path({}) == "/"

    def test_peer_chain_from_ssl_client_cert(self, root_ca: Cert) -> None:
        """By default SSL_CLIENT_CERT then SSL_CLIENT_CERT_CHAIN_n give the view's chain."""
        inter = root_ca.intermediate("inter")
        leaf = inter.issue("alice")
        environ = {
            "SSL_CLIENT_CERT": leaf.pem.decode(),
            "SSL_CLIENT_CERT_CHAIN_0": inter.pem.decode(),
        }
        auth = EnvironAuthenticator(chain=FakeChain())
        assert auth.view(environ).peer_chain == (leaf.der, inter.der)
        assert auth.view({"SSL_CLIENT_CERT": ""}).peer_chain == ()

    def test_malformed_certificate_is_401(self) -> None:
        """A broken SSL_CLIENT_CERT fails closed."""
        chain = FakeChain(request=FakeRequestAuthenticator(anonymous=True))
        r = Client(AuthenticationMiddleware(Echo(), chain=chain)).get(
            "/", environ_base={"SSL_CLIENT_CERT": "-----BEGIN CERTIFICATE-----\n!!"}
        )
        assert r.status_code == 401


def test_warnings_ride_on_the_401() -> None:
    """Warnings recorded before a rejection are sent with the 401, as kube-apiserver does."""
    chain = FakeChain(request=FakeRequestAuthenticator(warning="careful"))
    r = Client(AuthenticationMiddleware(Echo(), chain=chain)).get("/")
    assert r.status_code == 401
    assert r.headers["Warning"] == '299 - "careful"'
