"""JWT authentication against a REAL OpenID provider (npm ``oidc-provider``) on 127.0.0.1.

ID tokens are obtained headlessly: the provider's development login and consent pages are driven
over HTTPS with a cookie jar, then the authorization code is exchanged (PKCE, client secret).
They are verified through discovery + JWKS over HTTPS with the provider's CA only.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import re
import secrets
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from k8sauthn import BackendUnavailable
from k8sauthn.config.authentication import (
    jwt_config_from_oidc_options,
    legacy_signing_algs,
    load_authentication_config,
)
from k8sauthn.config.options import OIDCOptions
from k8sauthn.io import AsyncAuthenticator, Authenticator
from k8sauthn.token.jws import ALGORITHMS
from k8sauthn.token.oidc import InvalidJWT, JWTAuthenticator

from .._pki import Cert
from ..conftest import IN_CI, require_tool

pytestmark = pytest.mark.integration

IDP_DIR = Path(__file__).parent / "idp"
CLIENT_ID = "kubernetes"
CLIENT_SECRET = "a-client-secret-for-tests"
REDIRECT_URI = "https://127.0.0.1/callback"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def private_jwk(key: PrivateKey, kid: str) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        out = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key))
    else:
        out = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key))
    out.update(kid=kid, use="sig")
    return dict(out)


class IdP:
    """``node provider.mjs`` with a test CA certificate and the given private signing keys."""

    def __init__(self, node: str, tmp: Path, ca: Cert) -> None:
        self.node, self.tmp, self.ca = node, tmp, ca
        self.cert, self.key = ca.server().write(tmp, "idp", with_chain=True)
        self.ca_path = tmp / "idp-ca.pem"
        self.ca_path.write_bytes(ca.pem)
        self.proc: subprocess.Popen[str] | None = None
        self.issuer = ""
        self.port = 0

    def start(self, *keys: tuple[PrivateKey, str]) -> None:
        jwks = self.tmp / "idp-jwks.json"
        jwks.write_text(json.dumps({"keys": [private_jwk(k, kid) for k, kid in keys]}))
        env = {
            **os.environ,
            "IDP_PORT": str(self.port),
            "IDP_TLS_CERT": str(self.cert),
            "IDP_TLS_KEY": str(self.key),
            "IDP_JWKS": str(jwks),
            "IDP_CLIENT_ID": CLIENT_ID,
            "IDP_CLIENT_SECRET": CLIENT_SECRET,
            "IDP_REDIRECT_URI": REDIRECT_URI,
        }
        self.proc = subprocess.Popen(
            [self.node, "provider.mjs"],
            cwd=IDP_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()))  # type: ignore[union-attr]
        reader.start()
        reader.join(30)
        if not line or not line[0]:
            self.stop()
            pytest.fail("the OpenID provider did not start")
        self.issuer = json.loads(line[0])["issuer"]
        self.port = int(self.issuer.rsplit(":", 1)[1])  # a restart keeps the issuer URL

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def id_token(self, login: str = "jane") -> str:
        """Log in as ``login`` through the dev interactions and return the ID token."""
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        ctx = ssl.create_default_context(cafile=str(self.ca_path))
        with httpx.Client(verify=ctx, timeout=10) as client:
            resp = client.get(
                self.issuer + "/auth",
                params={
                    "client_id": CLIENT_ID,
                    "response_type": "code",
                    "scope": "openid email groups",
                    "redirect_uri": REDIRECT_URI,
                    "state": "st",
                    "nonce": "nc",
                    "code_challenge": challenge.rstrip(b"=").decode(),
                    "code_challenge_method": "S256",
                },
            )
            for _ in range(12):
                if resp.status_code in (302, 303):
                    location = resp.headers["location"]
                    if location.startswith(REDIRECT_URI):
                        break
                    resp = client.get(httpx.URL(self.issuer).join(location))
                    continue
                assert resp.status_code == 200, resp.text
                action = re.search(r'action="([^"]+)"', resp.text)
                assert action is not None
                form = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', resp.text))
                if form.get("prompt") == "login":
                    form.update(login=login, password="any")
                resp = client.post(httpx.URL(self.issuer).join(action.group(1)), data=form)
            else:  # pragma: no cover - the provider changed its pages
                pytest.fail("login did not finish")
            code = httpx.URL(location).params["code"]
            tokens = client.post(
                self.issuer + "/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": REDIRECT_URI,
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "code_verifier": verifier,
                },
            )
            assert tokens.status_code == 200, tokens.text
            return str(tokens.json()["id_token"])


NPM_CI_TIMEOUT = 300.0


def _installed() -> bool:
    return (IDP_DIR / "node_modules" / "oidc-provider" / "package.json").is_file()


@pytest.fixture(scope="session")
def idp_node() -> str:
    """``node``, with the provider's npm packages installed (``npm ci`` once, if missing).

    Skips locally and fails in CI when node/npm are missing or the install fails. A file lock
    keeps concurrent test runs on this machine from installing into the same directory at once.
    """
    node = require_tool("node")
    if _installed():
        return node
    npm = require_tool("npm")
    lock_path = Path(tempfile.gettempdir()) / (
        "k8sauthn-idp-npm-" + hashlib.sha256(str(IDP_DIR).encode()).hexdigest()[:16] + ".lock"
    )
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed():  # another run installed them while we waited
            return node
        try:
            done = subprocess.run(
                [npm, "ci", "--prefix", str(IDP_DIR), "--no-audit", "--no-fund"],
                capture_output=True,
                text=True,
                timeout=NPM_CI_TIMEOUT,
                check=False,
            )
            problem = "" if done.returncode == 0 else (done.stderr or done.stdout)[-2000:]
        except subprocess.TimeoutExpired:
            problem = f"timed out after {NPM_CI_TIMEOUT:.0f} s"
    if problem or not _installed():
        message = f"npm ci --prefix tests/integration/idp failed: {problem}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return node


@pytest.fixture
def idp(tmp_path: Path, root_ca: Cert, idp_node: str) -> Iterator[IdP]:
    provider = IdP(idp_node, tmp_path, root_ca)
    provider.start((rsa.generate_private_key(public_exponent=65537, key_size=2048), "k1"))
    yield provider
    provider.stop()


def legacy(idp: IdP, **flags: Any) -> JWTAuthenticator:
    """The authenticator kube-apiserver builds from ``--oidc-*`` flags."""
    opts = OIDCOptions(issuer_url=idp.issuer, client_id=CLIENT_ID, **flags)
    cfg = jwt_config_from_oidc_options(opts, idp.ca.pem.decode())
    return JWTAuthenticator.from_config(
        cfg, signing_algs=legacy_signing_algs(opts), refresh_cooldown=0.0, timeout=5.0
    )


def test_legacy_flags_verify_a_real_id_token(idp: IdP) -> None:
    """--oidc-username-claim=email, --oidc-groups-claim=groups: the provider's token maps."""
    a = legacy(idp, username_claim="email", groups_claim="groups", groups_prefix="oidc:")
    with Authenticator(a) as runner:
        resp = runner.authenticate_token(idp.id_token("jane"))
    assert resp is not None
    assert resp.user.name == "jane@example.com"
    assert resp.user.groups == ("oidc:developers", "oidc:team-jane")
    assert resp.expires_at is not None


def test_default_username_prefix_is_the_issuer(idp: IdP) -> None:
    """Primed at start-up (ready, healthy); default sub claim names read ``<issuer>#<sub>``."""
    a = legacy(idp)
    assert "is not initialized" in (a.health_error() or "")
    with Authenticator(a) as runner:
        assert runner.run(a.prime_flow(time.time())) is True
        assert a.ready
        assert a.health_error() is None
        resp = runner.authenticate_token(idp.id_token("bob"))
    assert resp is not None
    assert f"{idp.issuer}#bob" == resp.user.name


def test_unverified_email_and_wrong_client_are_rejected(idp: IdP) -> None:
    """email_verified=false fails; a token for another client id fails on the audience."""
    with (
        Authenticator(legacy(idp, username_claim="email")) as runner,
        pytest.raises(InvalidJWT, match=r"^oidc: email not verified$"),
    ):
        runner.authenticate_token(idp.id_token("unverified-ann"))
    other = OIDCOptions(issuer_url=idp.issuer, client_id="someone-else")
    cfg = jwt_config_from_oidc_options(other, idp.ca.pem.decode())
    with (
        Authenticator(JWTAuthenticator.from_config(cfg)) as runner,
        pytest.raises(InvalidJWT, match=r'expected audience "someone-else" got \["kubernetes"\]'),
    ):
        runner.authenticate_token(idp.id_token())


async def test_structured_config_with_cel_from_asyncio(idp: IdP) -> None:
    """An AuthenticationConfiguration with CEL mappings and rules, run by the async runner."""
    ca = "\n".join("        " + line for line in idp.ca.pem.decode().splitlines())
    text = f"""
apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
- issuer:
    url: {idp.issuer}
    audiences: [{CLIENT_ID}]
    certificateAuthority: |
{ca}
  claimValidationRules:
  - expression: 'claims.email_verified == true'
    message: email must be verified
  claimMappings:
    username:
      expression: '"oidc:" + claims.email'
    groups:
      expression: 'claims.groups.map(g, "idp:" + g)'
    uid:
      claim: sub
    extra:
    - key: example.org/nonce
      valueExpression: claims.?nonce.orValue("")
  userValidationRules:
  - expression: "!user.username.startsWith('system:')"
    message: no system users
"""
    cfg = load_authentication_config(text.encode()).jwt[0]
    a = JWTAuthenticator.from_config(cfg, signing_algs=ALGORITHMS)
    async with AsyncAuthenticator(a) as runner:
        resp = await runner.authenticate_token(idp.id_token("carol"))
    assert resp is not None
    assert (resp.user.name, resp.user.uid) == ("oidc:carol@example.com", "carol")
    assert resp.user.groups == ("idp:developers", "idp:team-carol")
    assert resp.user.extra["example.org/nonce"] == ("nc",)


def test_rotation_then_outage(idp: IdP) -> None:
    """Rotated keys are fetched on the new kid; when the provider stops, held keys keep
    working and a token signed by a key we never saw fails closed."""
    a = legacy(idp)
    old_token = idp.id_token()
    with Authenticator(a) as runner:
        assert runner.authenticate_token(old_token) is not None
    old = json.loads(Path(idp.tmp / "idp-jwks.json").read_text())["keys"][0]
    old_key = jwt.algorithms.RSAAlgorithm.from_jwk(old)
    assert isinstance(old_key, rsa.RSAPrivateKey)
    # Rotate: a new key signs (listed first), the old one is still published.
    idp.stop()
    idp.start(
        (rsa.generate_private_key(public_exponent=65537, key_size=2048), "k2"), (old_key, "k1")
    )
    new_token = idp.id_token()
    assert jwt.get_unverified_header(new_token)["kid"] == "k2"
    with Authenticator(a) as runner:
        assert runner.authenticate_token(old_token) is not None
        assert runner.authenticate_token(new_token) is not None
    # A third key the authenticator never fetched, then the provider goes away.
    idp.stop()
    idp.start((rsa.generate_private_key(public_exponent=65537, key_size=2048), "k3"))
    unseen_token = idp.id_token()
    idp.stop()
    with Authenticator(a) as runner:
        assert runner.authenticate_token(old_token) is not None
        assert runner.authenticate_token(new_token) is not None
        with pytest.raises(BackendUnavailable, match="fetching keys oidc: get keys failed"):
            runner.authenticate_token(unseen_token)
