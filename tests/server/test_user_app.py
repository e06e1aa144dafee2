"""A user's own ASGI app behind k8sauthn's middleware, served by k8sauthn's TLS layer."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from k8sauthn.config.build import build
from k8sauthn.config.options import AuthenticationOptions
from k8sauthn.middleware.asgi import USER_KEY, AuthenticationMiddleware
from k8sauthn.server import tls

from .._pki import Cert, name
from ._server import RunningServer

pytestmark = pytest.mark.integration

TOKEN = "user-app-token-5f1c2e"


async def whoami(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The user's app: reports who the middleware says the caller is."""
    user = scope[USER_KEY].user
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": user.name})
        await send({"type": "websocket.close"})
        return
    body = json.dumps({"name": user.name, "groups": list(user.groups)}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


class Setup:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.client_ca = Cert.new_ca("user-app-client-ca")
        self.server_ca = Cert.new_ca("user-app-server-ca")
        cert, key = self.server_ca.server().write(tmp, "server")
        ca_file = tmp / "client-ca.crt"
        ca_file.write_bytes(self.client_ca.pem)
        tokens = tmp / "tokens.csv"
        tokens.write_text(f'{TOKEN},tina,,"readers"\n')
        options = AuthenticationOptions(
            client_ca_file=str(ca_file), token_auth_file=str(tokens), anonymous_auth=False
        )
        app = AuthenticationMiddleware(whoami, chain=build(options))
        self.certs = tls.ServerCertificates(cert, key, [ca_file])
        self.server = RunningServer(app, self.certs)

    def ssl_context(self, cert: Cert | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cadata=self.server_ca.pem.decode())
        if cert is not None:
            c, k = cert.write(self.tmp, f"client-{id(cert)}")
            ctx.load_cert_chain(c, k)
        return ctx


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    s = Setup(tmp_path_factory.mktemp("user-app"))
    with s.server:
        yield s


def test_client_certificate_reaches_the_middleware(setup):
    """The middleware reads the chain from the TLS extension and names the user."""
    ctx = setup.ssl_context(setup.client_ca.issue(name("uma", orgs=["eng"])))
    with httpx.Client(verify=ctx, timeout=10) as client:
        got = client.get(setup.server.url + "/").json()
    assert got == {"name": "uma", "groups": ["eng", "system:authenticated"]}


def test_token_and_rejection(setup):
    """A token authenticates; a bad certificate is the middleware's 401, not a TLS error."""
    with httpx.Client(verify=setup.ssl_context(), timeout=10) as client:
        assert (
            client.get(setup.server.url + "/", headers={"Authorization": f"Bearer {TOKEN}"}).json()[
                "name"
            ]
            == "tina"
        )
    stranger = Cert.new_ca("stranger").issue("mallory")
    with httpx.Client(verify=setup.ssl_context(stranger), timeout=10) as client:
        r = client.get(setup.server.url + "/")
    assert r.status_code == 401
    assert r.json()["reason"] == "Unauthorized"


def test_websocket_with_a_client_certificate(setup):
    """A WebSocket handshake is authenticated by the certificate of its TLS connection."""
    ws_client = pytest.importorskip("websockets.sync.client")
    ctx = setup.ssl_context(setup.client_ca.issue("wanda"))
    url = setup.server.url.replace("https://", "wss://") + "/ws"
    with ws_client.connect(url, ssl=ctx, open_timeout=10) as ws:
        assert ws.recv(timeout=10) == "wanda"
