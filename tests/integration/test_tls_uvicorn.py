"""Real TLS on 127.0.0.1: uvicorn with the peercert protocol, httpx presenting certificates."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import uvicorn

from k8sauthn import AuthenticationError, Headers, RequestView
from k8sauthn.chain.union import RequestUnion
from k8sauthn.io import AsyncAuthenticator
from k8sauthn.peercert import tls_extension_chain
from k8sauthn.peercert.uvicorn import TLSExtensionH11Protocol
from k8sauthn.request._trust import CABundle
from k8sauthn.request.requestheader import RequestHeaderAuthenticator
from k8sauthn.request.x509 import ClientCertAuthenticator
from tests._pki import Cert, name

pytestmark = pytest.mark.integration


def whoami_app(authn: AsyncAuthenticator) -> Any:
    """An ASGI app answering 200 with the user (and what it saw) or 401."""

    async def app(scope: dict, receive: Any, send: Any) -> None:
        chain = tls_extension_chain(scope)
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            view = RequestView(Headers.from_raw(scope["headers"]), chain, scope["path"])
            resp = await authn.authenticate_request(view)
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": resp.user.name if resp else ""})
            await send({"type": "websocket.close"})
            return
        view = RequestView(Headers.from_raw(scope["headers"]), chain, scope["path"])
        try:
            resp = await authn.authenticate_request(view)
        except AuthenticationError as exc:
            resp, error = None, str(exc)
        else:
            error = ""
        body: dict[str, Any] = {"certs": len(chain), "error": error}
        if resp is not None:
            body["user"] = resp.user.to_dict()
        await send(
            {
                "type": "http.response.start",
                "status": 200 if resp is not None else 401,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    return app


@attrs.define
class TLSServer:
    """uvicorn serving an app over TLS on 127.0.0.1 with a port from the OS."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    @classmethod
    def start(cls, app: Any, cert: Path, key: Path, client_cas: Path) -> TLSServer:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(
            app,
            http=TLSExtensionH11Protocol,
            lifespan="off",
            log_level="warning",
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
            ssl_ca_certs=str(client_cas),
            ssl_cert_reqs=ssl.CERT_OPTIONAL,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return cls(f"https://localhost:{sock.getsockname()[1]}", server, thread)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@attrs.define
class Deployment:
    """The PKI and the running server of one test module."""

    dir: Path
    root: Cert
    client_ca: Cert
    proxy_ca: Cert
    server: TLSServer

    def client(self, cert: Cert | None = None, *, with_chain: bool = False) -> httpx.Client:
        kwargs: dict[str, Any] = {
            "verify": ssl.create_default_context(cafile=self.dir / "root.pem")
        }
        if cert is not None:
            crt, key = cert.write(self.dir, f"client-{id(cert)}", with_chain=with_chain)
            kwargs["verify"].load_cert_chain(crt, key)
        return httpx.Client(base_url=self.server.url, timeout=10, trust_env=False, **kwargs)


def start_deployment(tmp: Path) -> Deployment:
    root = Cert.new_ca("tls-test-server-root")
    (tmp / "root.pem").write_bytes(root.pem)
    client_ca = Cert.new_ca("tls-test-client-ca")
    proxy_ca = Cert.new_ca("tls-test-front-proxy-ca")
    crt, key = root.server().write(tmp, "server")
    (tmp / "client-cas.pem").write_bytes(client_ca.pem + proxy_ca.pem)
    chain = RequestUnion(
        [
            RequestHeaderAuthenticator.behind_proxy(
                proxy_ca=CABundle((proxy_ca.cert,)), allowed_names=["front-proxy-client"]
            ),
            ClientCertAuthenticator.from_pem(client_ca.pem),
        ]
    )
    app = whoami_app(AsyncAuthenticator(chain))
    return Deployment(
        tmp, root, client_ca, proxy_ca, TLSServer.start(app, crt, key, tmp / "client-cas.pem")
    )


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = start_deployment(tmp_path_factory.mktemp("tls-uvicorn"))
    yield d
    d.server.stop()


def test_client_certificate_authenticates(deployment):
    """The leaf presented in the handshake reaches the X.509 authenticator through the scope."""
    with deployment.client(deployment.client_ca.issue(name("alice", orgs=["dev"]))) as c:
        body = c.get("/").json()
    assert body["user"]["username"] == "alice"
    assert body["user"]["groups"] == ["dev"]
    assert body["certs"] == 1


def test_no_certificate_is_unauthenticated(deployment):
    """Without a certificate nobody is authenticated (CERT_OPTIONAL lets the client in)."""
    with deployment.client() as c:
        r = c.get("/")
    assert (r.status_code, r.json()["certs"]) == (401, 0)


def test_spoofed_remote_user_without_proxy_certificate_is_ignored(deployment):
    """X-Remote-User from a client without the proxy certificate names nobody."""
    with deployment.client() as c:
        r = c.get(
            "/", headers={"X-Remote-User": "system:admin", "X-Remote-Group": "system:masters"}
        )
    assert r.status_code == 401


def test_spoofed_remote_user_with_a_user_certificate_is_the_certificate_user(deployment):
    """A user certificate plus forged headers authenticates as the certificate's CN only."""
    with deployment.client(deployment.client_ca.issue("bob")) as c:
        body = c.get("/", headers={"X-Remote-User": "system:admin"}).json()
    assert body["user"]["username"] == "bob"


def test_proxy_certificate_headers_authenticate(deployment):
    """The front-proxy certificate makes the X-Remote-* headers believed."""
    with deployment.client(deployment.proxy_ca.issue("front-proxy-client")) as c:
        body = c.get("/", headers={"X-Remote-User": "carol", "X-Remote-Group": "ops"}).json()
    assert (body["user"]["username"], body["user"]["groups"]) == ("carol", ["ops"])


def test_proxy_certificate_with_wrong_name_is_rejected(deployment):
    """A proxy-CA certificate whose CN is not allowed gets 401 with the allowed-list error."""
    with deployment.client(deployment.proxy_ca.issue("intruder")) as c:
        r = c.get("/", headers={"X-Remote-User": "carol"})
    assert r.status_code == 401
    assert "cn=intruder is not in the allowed list" in r.json()["error"]


def test_untrusted_certificate_aborts_the_handshake(deployment):
    """The stdlib server refuses a certificate from an unknown CA during the handshake."""
    with (
        deployment.client(Cert.new_ca("stranger").issue("mallory")) as c,
        pytest.raises(httpx.HTTPError),
    ):
        c.get("/")


def test_websocket_scope_gets_the_certificate(deployment):
    """The TLS extension also reaches WebSocket scopes (kubectl exec/attach use WebSockets)."""
    connect = pytest.importorskip("websockets.sync.client").connect
    cert = deployment.client_ca.issue("wendy")
    crt, key = cert.write(deployment.dir, "ws-client")
    ctx = ssl.create_default_context(cafile=deployment.dir / "root.pem")
    ctx.load_cert_chain(crt, key)
    url = deployment.server.url.replace("https://", "wss://") + "/ws"
    with connect(url, ssl=ctx, open_timeout=10) as ws:
        assert ws.recv(timeout=10) == "wendy"
