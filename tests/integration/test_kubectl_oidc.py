"""kubectl with an OIDC ID token against ``k8sauthn serve --oidc-*``, keys fetched over HTTPS.

A minimal OpenID provider (discovery document + JWKS, stdlib HTTPS server on 127.0.0.1) signs
RS256 ID tokens; the server discovers it through ``--oidc-issuer-url`` with ``--oidc-ca-file``.
"""

from __future__ import annotations

import json
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from .._pki import Cert
from ..server._server import RunningServer
from .test_kubectl import UNAUTHORIZED, Env, _user_info

pytestmark = pytest.mark.integration

CLIENT_ID = "kubernetes"


class Provider:
    """Discovery and JWKS over HTTPS; mints ID tokens with its RSA key."""

    def __init__(self, ca: Cert) -> None:
        self.ca = ca
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "k8sauthn-e2e"
        server = ca.server()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = server.write(Path(tmp), "idp")
            ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    doc: dict[str, Any] = {
                        "issuer": provider.issuer,
                        "jwks_uri": provider.issuer + "/jwks",
                        "id_token_signing_alg_values_supported": ["RS256"],
                    }
                elif self.path == "/jwks":
                    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(provider.key.public_key()))
                    doc = {"keys": [{**jwk, "kid": provider.kid, "use": "sig", "alg": "RS256"}]}
                else:
                    self.send_error(404)
                    return
                body = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def id_token(self, **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": "jane",
            "iat": now,
            "exp": now + 600,
            "groups": ["dev", "ops"],
            "jti": "e2e-jti-1",
            **claims,
        }
        return jwt.encode(payload, self.key, algorithm="RS256", headers={"kid": self.kid})

    def __enter__(self) -> Provider:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    return Env(tmp_path_factory.mktemp("kubectl-oidc"))


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with Provider(Cert.new_ca("idp-ca")) as p:
        yield p


@pytest.fixture(scope="module")
def server(env: Env, provider: Provider) -> Iterator[RunningServer]:
    idp_ca = env.tmp / "idp-ca.crt"
    idp_ca.write_bytes(provider.ca.pem)
    flags = [
        *env.flags(),
        f"--oidc-issuer-url={provider.issuer}",
        f"--oidc-client-id={CLIENT_ID}",
        f"--oidc-ca-file={idp_ca}",
        "--oidc-username-prefix=oidc:",
        "--oidc-groups-claim=groups",
        "--oidc-groups-prefix=oidc:",
    ]
    with RunningServer.from_flags(flags) as srv:
        yield srv


class TestOIDC:
    def test_id_token(self, env, server, provider):
        """An ID token as the kubeconfig token: prefixed name and groups, the JTI extra."""
        info = _user_info(env.whoami(server.url, {"token": provider.id_token()}, tag="oidc"))
        assert info == {
            "username": "oidc:jane",
            "groups": ["oidc:dev", "oidc:ops", "system:authenticated"],
            "extra": {"authentication.kubernetes.io/credential-id": ["JTI=e2e-jti-1"]},
        }

    def test_auth_provider_oidc(self, env, server, provider):
        """kubectl's auth-provider: oidc sends a still-valid id-token as a bearer token."""
        user = {
            "auth-provider": {
                "name": "oidc",
                "config": {
                    "idp-issuer-url": provider.issuer,
                    "client-id": CLIENT_ID,
                    "id-token": provider.id_token(sub="joe"),
                },
            }
        }
        proc = env.whoami(server.url, user, tag="auth-provider")
        if proc.returncode != 0 and "no Auth Provider found" in proc.stderr:
            pytest.skip("this kubectl has no built-in oidc auth-provider")
        assert _user_info(proc)["username"] == "oidc:joe"

    def test_wrong_audience_is_401(self, env, server, provider):
        """A token for another client is rejected with kubectl's 401 text."""
        proc = env.whoami(
            server.url, {"token": provider.id_token(aud="someone-else")}, tag="oidc-aud"
        )
        assert UNAUTHORIZED in proc.stderr

    def test_expired_token_is_401(self, env, server, provider):
        """An expired ID token is rejected."""
        past = int(time.time()) - 3600
        token = provider.id_token(iat=past - 600, exp=past)
        assert UNAUTHORIZED in env.whoami(server.url, {"token": token}, tag="oidc-exp").stderr
