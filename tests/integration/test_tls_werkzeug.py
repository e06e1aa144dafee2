"""Real TLS under WSGI: werkzeug's server, the environ adapter, the sync runner."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from werkzeug.serving import make_server

from k8sauthn import AuthenticationError, RequestView
from k8sauthn.io import Authenticator
from k8sauthn.peercert import wsgi_peer_chain
from k8sauthn.request.x509 import ClientCertAuthenticator
from tests._pki import Cert, name

pytestmark = pytest.mark.integration


def wsgi_app(authn: Authenticator) -> Any:
    def app(environ: dict, start_response: Any) -> list[bytes]:
        try:
            resp = authn.authenticate_request(RequestView(peer_chain=wsgi_peer_chain(environ)))
        except AuthenticationError:
            resp = None
        status = "200 OK" if resp is not None else "401 Unauthorized"
        start_response(status, [("Content-Type", "application/json")])
        return [json.dumps(resp.user.to_dict() if resp else {}).encode()]

    return app


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Cert]]:
    tmp = tmp_path_factory.mktemp("werkzeug")
    root, client_ca = Cert.new_ca("wz-server-root"), Cert.new_ca("wz-client-ca")
    (tmp / "root.pem").write_bytes(root.pem)
    (tmp / "client-ca.pem").write_bytes(client_ca.pem)
    crt, key = root.server().write(tmp, "server")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    ctx.load_verify_locations(tmp / "client-ca.pem")
    ctx.verify_mode = ssl.CERT_OPTIONAL
    authn = Authenticator(ClientCertAuthenticator.from_pem(client_ca.pem))
    srv = make_server("127.0.0.1", 0, wsgi_app(authn), threaded=True, ssl_context=ctx)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{srv.server_port}", tmp, client_ca
    finally:
        srv.shutdown()
        thread.join(10)


def test_werkzeug_client_certificate_authenticates(server):
    """werkzeug puts the leaf in SSL_CLIENT_CERT; the adapter and authenticator accept it."""
    url, tmp, client_ca = server
    crt, key = client_ca.issue(name("erin", orgs=["qa"])).write(tmp, "erin")
    verify = ssl.create_default_context(cafile=tmp / "root.pem")
    verify.load_cert_chain(crt, key)
    with httpx.Client(verify=verify, trust_env=False, timeout=10) as c:
        r = c.get(url + "/")
    user = r.json()
    assert (r.status_code, user["username"], user["groups"]) == (200, "erin", ["qa"])


def test_werkzeug_without_certificate_is_unauthenticated(server):
    """No client certificate, no user."""
    url, tmp, _ = server
    verify = ssl.create_default_context(cafile=tmp / "root.pem")
    with httpx.Client(verify=verify, trust_env=False, timeout=10) as c:
        assert c.get(url + "/").status_code == 401
