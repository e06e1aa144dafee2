"""Every example app over real HTTP: ASGI ones under uvicorn, WSGI ones under werkzeug with TLS.

The WSGI run also proves the client-certificate path: werkzeug's TLS server exposes the peer
certificate as ``SSL_CLIENT_CERT``, which the WSGI adapter hands to the real X.509 authenticator.
The last test serves the Starlette example behind k8sauthn's own TLS layer (``k8sauthn.server``),
whose ASGI TLS extension carries the whole presented chain.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.test import override_settings
from werkzeug.serving import make_server

from k8sauthn.config.build import Chain, build
from k8sauthn.config.options import AuthenticationOptions
from k8sauthn.middleware import UNAUTHORIZED_BODY
from k8sauthn.middleware.wsgi import EnvironAuthenticator
from k8sauthn.server import tls

from .._pki import Cert, name
from ..middleware._support import serve_asgi
from .conftest import load_example

pytestmark = pytest.mark.integration
ALICE = {"Authorization": "Bearer alice-token"}


@pytest.mark.parametrize("name", ["starlette_app", "fastapi_app", "litestar_app"])
def test_asgi_example_under_uvicorn(name: str, chain: Chain) -> None:
    """The example answers the token's user over real HTTP, and 401 + Status to a bad token."""
    app = load_example(name).create_app(chain)
    for base in serve_asgi(app):
        ok = httpx.get(base + "/me", headers=ALICE, timeout=10)
        assert ok.status_code == 200
        assert ok.json()["name"] == "alice"
        bad = httpx.get(base + "/me", headers={"Authorization": "Bearer wrong"}, timeout=10)
        assert bad.status_code == 401
        assert bad.content == UNAUTHORIZED_BODY


@pytest.fixture(scope="module")
def pki(root_ca: Cert, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A CA file, a server certificate and a client certificate for CN=carol, O=dev."""
    d = tmp_path_factory.mktemp("pki")
    ca_path = d / "ca.crt"
    ca_path.write_bytes(root_ca.pem)
    server = root_ca.server()
    client = root_ca.issue(name("carol", orgs=["dev"]))
    return {
        "ca": ca_path,
        "server": server.write(d, "server"),
        "client": client.write(d, "client"),
    }


@pytest.fixture(scope="module")
def cert_chain(pki: dict[str, Any], token_file: str) -> Chain:
    """Token file and client CA, anonymous off: kube-apiserver's chain with both."""
    return build(
        AuthenticationOptions(
            token_auth_file=token_file, client_ca_file=str(pki["ca"]), anonymous_auth=False
        )
    )


def serve_wsgi_tls(app: Any, pki: dict[str, Any]) -> Iterator[str]:
    """Run ``app`` under werkzeug's threaded TLS server, requesting a client certificate."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # Python 3.13's strict mode rejects client certificates without an Authority Key Identifier,
    # which Kubernetes client certificates often lack (docs/peercert.md).
    ctx.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
    ctx.load_cert_chain(*pki["server"])
    ctx.load_verify_locations(pki["ca"])
    ctx.verify_mode = ssl.CERT_OPTIONAL
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=ctx)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join(10)


def _check_wsgi(base: str, pki: dict[str, Any]) -> None:
    ca = ssl.create_default_context(cafile=str(pki["ca"]))
    with_cert = ssl.create_default_context(cafile=str(pki["ca"]))
    with_cert.load_cert_chain(*pki["client"])
    r = httpx.get(base + "/me", verify=with_cert, timeout=10)
    assert r.status_code == 200
    assert r.json()["name"] == "carol"
    assert r.json()["groups"] == ["dev", "system:authenticated"]
    r = httpx.get(base + "/me", headers=ALICE, verify=ca, timeout=10)
    assert r.json()["name"] == "alice"
    r = httpx.get(base + "/me", verify=ca, timeout=10)
    assert r.status_code == 401
    assert r.content == UNAUTHORIZED_BODY


def test_flask_example_under_werkzeug_tls(cert_chain: Chain, pki: dict[str, Any]) -> None:
    """Flask authenticates a TLS client certificate and a token over real HTTPS."""
    app = load_example("flask_app").create_app(cert_chain)
    for base in serve_wsgi_tls(app, pki):
        _check_wsgi(base, pki)


def test_django_example_under_werkzeug_tls(cert_chain: Chain, pki: dict[str, Any]) -> None:
    """Django authenticates a TLS client certificate and a token over real HTTPS."""
    load_example("django_app")
    from django.core.handlers.wsgi import WSGIHandler

    auth = EnvironAuthenticator(chain=cert_chain)
    with override_settings(K8SAUTHN_AUTHENTICATOR=auth):
        for base in serve_wsgi_tls(WSGIHandler(), pki):
            _check_wsgi(base, pki)


def serve_k8sauthn_tls(app: Any, server: Cert, client_ca: Cert) -> Iterator[str]:
    """Run ``app`` behind k8sauthn's own TLS layer, kube-apiserver style.

    The client certificate is requested but not verified in the handshake, and handed over in
    the ASGI TLS extension (``k8sauthn.server.tls``).
    """
    certs = tls.ServerCertificates.from_pem(server.chain_pem(), server.key_pem, [client_ca.pem])
    sock = tls.bind("127.0.0.1", 0)
    uv = tls.make_server(app, certs, lifespan="off")
    thread = threading.Thread(target=lambda: asyncio.run(uv.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        if time.monotonic() > deadline:  # pragma: no cover - a broken environment
            raise RuntimeError("the TLS server did not start")
        time.sleep(0.01)
    try:
        yield f"https://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        uv.should_exit = True
        thread.join(10)
        sock.close()


def test_starlette_example_behind_k8sauthn_tls(
    root_ca: Cert, token_file: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Behind k8sauthn's TLS layer a leaf+intermediate authenticates and a stranger gets 401.

    The unknown certificate gets HTTP 401, not a failed handshake, as with kube-apiserver.
    """
    d = tmp_path_factory.mktemp("tls")
    (d / "ca.crt").write_bytes(root_ca.pem)
    chain = build(
        AuthenticationOptions(
            token_auth_file=token_file, client_ca_file=str(d / "ca.crt"), anonymous_auth=False
        )
    )
    inter = root_ca.intermediate("users-ca")
    frank = inter.issue(name("frank", orgs=["ops"]))
    stranger = Cert.new_ca("elsewhere").issue(name("mallory"))
    app = load_example("starlette_app").create_app(chain)

    def client_ctx(cert: Cert | None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cadata=root_ca.pem.decode())
        if cert is not None:
            stem = cert.cert.serial_number
            cert_path, key_path = cert.write(d, f"client-{stem}", with_chain=True)
            ctx.load_cert_chain(cert_path, key_path)
        return ctx

    for base in serve_k8sauthn_tls(app, root_ca.server(), root_ca):
        r = httpx.get(base + "/me", verify=client_ctx(frank), timeout=10)
        assert r.status_code == 200
        assert r.json()["name"] == "frank"
        assert r.json()["groups"] == ["ops", "system:authenticated"]
        r = httpx.get(base + "/me", verify=client_ctx(stranger), timeout=10)
        assert r.status_code == 401
        assert r.content == UNAUTHORIZED_BODY
        r = httpx.get(base + "/me", headers=ALICE, verify=client_ctx(None), timeout=10)
        assert r.json()["name"] == "alice"
