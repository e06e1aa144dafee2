"""Discovery and JWKS over real HTTPS on 127.0.0.1: single flight, rotation, outage, timeout."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from k8sauthn import BackendUnavailable, Response
from k8sauthn.io import AsyncAuthenticator, Authenticator
from k8sauthn.token.oidc import InvalidJWT, JWTAuthenticator

from .._pki import Cert
from ._https_server import HTTPSServer, Seen
from ._jwt import claims, config, ec_key, jwk, jwks, rsa_key, token

pytestmark = pytest.mark.integration


class Provider:
    """A tiny OpenID provider: discovery + a JWKS whose keys and delay tests change."""

    def __init__(self, tmp: Path, ca: Cert) -> None:
        self.keys: list[dict[str, Any]] = [jwk(rsa_key(), "k1")]
        self.delay = 0.0
        self.release = threading.Event()
        self.server = HTTPSServer(self.handle, tmp, ca.server())
        self.issuer = self.server.url

    def handle(self, seen: Seen) -> tuple[int, dict[str, str], bytes]:
        if seen.path == "/.well-known/openid-configuration":
            body = {"issuer": self.issuer, "jwks_uri": self.issuer + "/keys"}
            return 200, {}, json.dumps(body).encode()
        if seen.path == "/keys":
            if self.delay:
                self.release.wait(self.delay)
            return 200, {}, json.dumps(jwks(*self.keys)).encode()
        return 404, {}, b"not found"

    def token(self, kid: str = "k1", key: Any = None, alg: str = "RS256") -> str:
        now = int(time.time())
        payload = claims(iss=self.issuer, iat=now, exp=now + 600)
        return token(payload, kid=kid, key=key or rsa_key(), alg=alg)


@pytest.fixture
def provider(tmp_path: Path, root_ca: Cert) -> Iterator[Provider]:
    p = Provider(tmp_path, root_ca)
    yield p
    p.release.set()
    p.server.stop()


def name(resp: Response | None) -> str:
    assert resp is not None
    return resp.user.name


def authenticator(p: Provider, ca: Cert, **kwargs: Any) -> JWTAuthenticator:
    cfg = config(issuer=p.issuer, issuer_kwargs={"certificate_authority": ca.pem.decode()})
    return JWTAuthenticator.from_config(cfg, signing_algs=("RS256", "ES256"), **kwargs)


async def test_a_thousand_concurrent_tokens_cause_one_discovery_and_one_jwks_fetch(
    provider: Provider, root_ca: Cert
) -> None:
    """1000 concurrent async requests for a kid we do not hold: one GET of each document,
    both for the very first keys and after a rotation (past the refresh cooldown)."""
    a = authenticator(provider, root_ca)
    now = [time.time()]
    async with AsyncAuthenticator(a, clock=lambda: now[0]) as runner:
        tok = provider.token()
        results = await asyncio.gather(*(runner.authenticate_token(tok) for _ in range(1000)))
        assert {"jane"} == {r.user.name for r in results if r is not None}
        assert provider.server.calls("/.well-known/openid-configuration") == 1
        assert provider.server.calls("/keys") == 1
        rotated = ec_key("rotated-async", crv="P-256")
        provider.keys = [jwk(rsa_key(), "k1"), jwk(rotated, "k2")]
        now[0] += 11  # past the 10 s refresh cooldown
        tok2 = provider.token("k2", rotated, "ES256")
        results = await asyncio.gather(*(runner.authenticate_token(tok2) for _ in range(1000)))
        assert sum(1 for r in results if r is not None and r.user.name == "jane") == 1000
        assert provider.server.calls("/keys") == 2


def test_threads_share_one_fetch_and_rotation_refetches(provider: Provider, root_ca: Cert) -> None:
    """Sync runner: 32 threads share one fetch; a rotated kid later causes exactly one more."""
    a = authenticator(provider, root_ca, refresh_cooldown=0.0)
    tok = provider.token()
    with Authenticator(a) as runner:
        out: list[Any] = []
        threads = [
            threading.Thread(target=lambda: out.append(runner.authenticate_token(tok)))
            for _ in range(32)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(out) == 32
        assert all(r.user.name == "jane" for r in out)
        assert provider.server.calls("/keys") == 1
        second = ec_key("rotated", crv="P-256")
        provider.keys = [jwk(second, "k2")]
        assert name(runner.authenticate_token(provider.token("k2", second, "ES256"))) == "jane"
        assert provider.server.calls("/keys") == 2
        # The old key left the set: its tokens now fail (after one more refetch attempt).
        with pytest.raises(InvalidJWT, match="failed to verify id token signature"):
            runner.authenticate_token(tok)


def test_outage_keeps_keys_and_unknown_kids_fail_closed(provider: Provider, root_ca: Cert) -> None:
    """Provider stopped: held keys verify; unknown kids fail with the fetch error, not hang."""
    a = authenticator(provider, root_ca, refresh_cooldown=0.0)
    with Authenticator(a) as runner:
        assert runner.authenticate_token(provider.token()) is not None
    provider.server.stop()
    # A new runner: no pooled keep-alive connection survives the provider's shutdown.
    with Authenticator(a) as runner:
        assert name(runner.authenticate_token(provider.token())) == "jane"
        with pytest.raises(BackendUnavailable, match="fetching keys oidc: get keys failed"):
            runner.authenticate_token(provider.token("k9"))


def test_a_hanging_jwks_endpoint_is_bounded_by_the_timeout(
    provider: Provider, root_ca: Cert
) -> None:
    """A JWKS endpoint that does not answer fails the unknown-kid token with a timeout."""
    a = authenticator(provider, root_ca, refresh_cooldown=0.0, timeout=0.5)
    with Authenticator(a) as runner:
        assert runner.authenticate_token(provider.token()) is not None
        provider.delay = 30.0
        with pytest.raises(BackendUnavailable, match="timed out"):
            runner.authenticate_token(provider.token("k9"))
        assert name(runner.authenticate_token(provider.token())) == "jane"


def test_wrong_ca_is_not_initialized(provider: Provider, tmp_path: Path) -> None:
    """A provider whose certificate does not chain to the configured CA is never trusted."""
    other = Cert.new_ca("someone-else")
    a = authenticator(provider, other)
    with Authenticator(a) as runner, pytest.raises(BackendUnavailable, match="not initialized"):
        runner.authenticate_token(provider.token())
    assert "is not healthy" in (a.health_error() or "")
