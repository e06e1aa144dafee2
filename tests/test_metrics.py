"""Prometheus adapters: token cache, client certificate expiry and JWT metrics (spec §18)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from k8sauthn import AuthenticationError, BackendUnavailable, Context, Fetched, Headers, RequestView
from k8sauthn.chain import CachedTokenAuthenticator
from k8sauthn.config.build import build
from k8sauthn.config.flags import parse_serve_args
from k8sauthn.config.options import AuthenticationOptions, OIDCOptions
from k8sauthn.io import Authenticator
from k8sauthn.metrics import (
    CLIENT_CERTIFICATE_EXPIRATION_BUCKETS,
    AuthenticatorMetrics,
    ClientCertificateExpiry,
    PrometheusJWTMetrics,
    TokenCacheCollector,
)
from k8sauthn.request.x509 import ClientCertAuthenticator
from k8sauthn.token.jwks import KeySet, sha256_label
from k8sauthn.token.oidc import InvalidJWT, JWTAuthenticator

from ._fakes import FakeToken, user
from ._pki import NOW, Cert
from .token._drive import drive
from .token._jwt import ISSUER, claims, config, default_keys, ec_key, jwk, rsa_key, token
from .token.test_jwks import doc, keys_body, tok2, verify

ISSUER_HASH = sha256_label(ISSUER)
LATENCY = "apiserver_authentication_jwt_authenticator_latency_seconds"
FETCH_TS = "apiserver_authentication_jwt_authenticator_jwks_fetch_last_timestamp_seconds"
KEY_SET = "apiserver_authentication_jwt_authenticator_jwks_fetch_last_key_set_info"
EXPIRY = "apiserver_client_certificate_expiration_seconds"


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry(auto_describe=True)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def run(authn: Any, tok: str, now: float = 100.0) -> Any:
    with Authenticator(authn, clock=lambda: now) as runner:
        return runner.run(authn.token_flow(tok, Context(now=now)))


def cache(answers: dict[str, Any]) -> CachedTokenAuthenticator:
    return CachedTokenAuthenticator(FakeToken(answers), success_ttl=10.0)


class TestTokenCacheCollector:
    def test_hits_misses_and_fetch_outcomes_move(self, registry: CollectorRegistry) -> None:
        """Each lookup moves the hit/miss counter; each inner call moves the ok/error counter."""
        c = cache({"ok": user(), "bad": AuthenticationError("x")})
        collector = TokenCacheCollector()
        registry.register(collector)
        collector.track(c.stats)
        run(c, "ok")
        assert value(registry, "authentication_token_cache_request_total", status="miss") == 1
        assert value(registry, "authentication_token_cache_request_total", status="hit") == 0
        run(c, "ok")
        run(c, "none")
        with pytest.raises(AuthenticationError):
            run(c, "bad")
        assert value(registry, "authentication_token_cache_request_total", status="hit") == 1
        assert value(registry, "authentication_token_cache_request_total", status="miss") == 3
        assert value(registry, "authentication_token_cache_fetch_total", status="ok") == 2
        assert value(registry, "authentication_token_cache_fetch_total", status="error") == 1
        gauge = "authentication_token_cache_active_fetch_count"
        assert value(registry, gauge, status="in_flight") == 0

    def test_caches_are_summed_and_tracked_once(self, registry: CollectorRegistry) -> None:
        """Like kube-apiserver's unlabelled series, every cache counts into the same samples."""
        a, b = cache({"ok": user()}), cache({"ok": user()})
        collector = TokenCacheCollector()
        registry.register(collector)
        collector.track(a.stats)
        collector.track(a.stats)
        collector.track(b.stats)
        run(a, "ok")
        run(b, "ok")
        run(b, "ok")
        assert value(registry, "authentication_token_cache_request_total", status="miss") == 2
        assert value(registry, "authentication_token_cache_request_total", status="hit") == 1

    def test_in_flight_is_read_at_scrape_time(self, registry: CollectorRegistry) -> None:
        """The gauge shows the stats' current in_flight value; "blocked" is not exposed."""
        c = cache({})
        collector = TokenCacheCollector()
        registry.register(collector)
        assert value(registry, "authentication_token_cache_request_total", status="hit") == 0
        collector.track(c.stats)
        c.stats.in_flight = 2
        gauge = "authentication_token_cache_active_fetch_count"
        assert value(registry, gauge, status="in_flight") == 2
        assert value(registry, gauge, status="blocked") is None


class TestClientCertificateExpiry:
    def test_spec_buckets(self) -> None:
        """The histogram uses spec §18's buckets, 0 s to 360 days."""
        assert CLIENT_CERTIFICATE_EXPIRATION_BUCKETS[0] == 0
        assert CLIENT_CERTIFICATE_EXPIRATION_BUCKETS[-1] == 360 * 86400
        assert len(CLIENT_CERTIFICATE_EXPIRATION_BUCKETS) == 14

    def test_x509_observation_lands_in_its_bucket(
        self, registry: CollectorRegistry, tmp_path: Path
    ) -> None:
        """A leaf with 2 hours left is observed between the 1 h and 2 h buckets."""
        ca = Cert.new_ca("metrics-ca")
        (tmp_path / "ca.crt").write_bytes(ca.pem)
        observe = ClientCertificateExpiry(registry)
        authn = ClientCertAuthenticator.from_ca_file(tmp_path / "ca.crt", observe_expiry=observe)
        leaf = ca.issue("bob", not_after=NOW + dt.timedelta(hours=2))
        resp = authn.authenticate((leaf.der,), NOW.timestamp())
        assert resp is not None
        assert resp.user.name == "bob"
        assert value(registry, EXPIRY + "_bucket", le="3600.0") == 0
        assert value(registry, EXPIRY + "_bucket", le="7200.0") == 1
        assert value(registry, EXPIRY + "_count") == 1

    def test_expired_certificate_is_a_negative_observation(
        self, registry: CollectorRegistry
    ) -> None:
        """An expired leaf's negative lifetime falls into the first (0 s) bucket."""
        observe = ClientCertificateExpiry(registry)
        observe(-5.0)
        assert value(registry, EXPIRY + "_bucket", le="0.0") == 1
        assert value(registry, EXPIRY + "_sum") == -5.0


class TestJWTMetrics:
    def test_latency_recorded_per_result_and_issuer_hash(self, registry: CollectorRegistry) -> None:
        """Successes and failures land in the latency histogram under the issuer's sha256 hash."""
        metrics = PrometheusJWTMetrics(registry)
        ticks = iter([1.0, 1.25, 2.0, 2.5])
        a = JWTAuthenticator.from_config(
            config(), keys=default_keys(), metrics=metrics, clock=lambda: next(ticks)
        )
        assert run(a, token(), now=claims()["iat"] + 1) is not None
        with pytest.raises(InvalidJWT):
            run(a, token(claims(exp=1)), now=claims()["iat"] + 1)
        assert "sha256:" + hashlib.sha256(ISSUER.encode()).hexdigest() == ISSUER_HASH
        labels = {"jwt_issuer_hash": ISSUER_HASH}
        assert value(registry, LATENCY + "_count", result="success", **labels) == 1
        assert value(registry, LATENCY + "_sum", result="success", **labels) == 0.25
        assert value(registry, LATENCY + "_count", result="failure", **labels) == 1
        assert value(registry, LATENCY + "_bucket", result="failure", le="0.5", **labels) == 1
        assert value(registry, LATENCY + "_bucket", result="failure", le="0.25", **labels) == 0

    def test_jwks_fetch_gauges(self, registry: CollectorRegistry) -> None:
        """Each fetch sets its result's timestamp; the key set info follows the current set."""
        metrics = PrometheusJWTMetrics(registry, apiserver_id="kube-apiserver-1")
        server = sha256_label("kube-apiserver-1")
        first = keys_body(jwk(rsa_key(), "k1"))
        second = keys_body(jwk(ec_key("second", crv="P-256"), "k2"))
        first_hash = "sha256:" + hashlib.sha256(first.body).hexdigest()
        second_hash = "sha256:" + hashlib.sha256(second.body).hexdigest()
        common = {"jwt_issuer_hash": ISSUER_HASH, "apiserver_id_hash": server}

        metrics.observe_jwks_fetch(ISSUER_HASH, "success", 10.0, first_hash)
        assert value(registry, FETCH_TS, result="success", **common) == 10.0
        assert value(registry, KEY_SET, hash=first_hash, **common) == 1
        metrics.observe_jwks_fetch(ISSUER_HASH, "success", 20.0, second_hash)
        assert value(registry, KEY_SET, hash=first_hash, **common) is None
        assert value(registry, KEY_SET, hash=second_hash, **common) == 1
        metrics.observe_jwks_fetch(ISSUER_HASH, "success", 25.0, second_hash)
        assert value(registry, KEY_SET, hash=second_hash, **common) == 1
        metrics.observe_jwks_fetch(ISSUER_HASH, "failure", 30.0, "")
        assert value(registry, FETCH_TS, result="failure", **common) == 30.0
        assert value(registry, FETCH_TS, result="success", **common) == 25.0
        assert value(registry, KEY_SET, hash=second_hash, **common) == 1

    def test_keyset_fetch_reaches_the_gauges(self, registry: CollectorRegistry) -> None:
        """A real JWKS response through KeySet sets the timestamp and the body's hash."""
        metrics = PrometheusJWTMetrics(registry)
        ks = KeySet(ISSUER, metrics=metrics)
        body = keys_body(jwk(ec_key("second", crv="P-256"), "k2"))
        now = claims()["iat"] + 1
        drive(ks.ensure_ready_flow(now), [doc()])
        verify(ks, tok2(), now, [Fetched(200, {}, body.body, time=now + 0.5)])
        common = {"jwt_issuer_hash": ISSUER_HASH, "apiserver_id_hash": ""}
        digest = "sha256:" + hashlib.sha256(body.body).hexdigest()
        assert value(registry, FETCH_TS, result="success", **common) == now + 0.5
        assert value(registry, KEY_SET, hash=digest, **common) == 1


UNREACHABLE_ISSUER = "https://127.0.0.1:1"  # connection refused at once: discovery fails
AUTHENTICATION_CONFIG = f"""\
apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
- issuer:
    url: {UNREACHABLE_ISSUER}
    audiences: [k8s]
  claimMappings:
    username:
      claim: sub
      prefix: ""
"""


def jwt_failures(registry: CollectorRegistry) -> float | None:
    labels = {"result": "failure", "jwt_issuer_hash": sha256_label(UNREACHABLE_ISSUER)}
    return value(registry, LATENCY + "_count", **labels)


class TestBuild:
    def test_build_wires_cache_x509_and_oidc_flags(
        self, registry: CollectorRegistry, tmp_path: Path
    ) -> None:
        """build(metrics=...) tracks the outer cache, observes certificates and times JWTs."""
        ca = Cert.new_ca("metrics-build-ca")
        (tmp_path / "ca.crt").write_bytes(ca.pem)
        (tmp_path / "tokens.csv").write_text("secret-token-1,alice,1\n")
        options = AuthenticationOptions(
            token_auth_file=str(tmp_path / "tokens.csv"),
            client_ca_file=str(tmp_path / "ca.crt"),
            oidc=OIDCOptions(issuer_url=UNREACHABLE_ISSUER, client_id="k8s"),
        )
        chain = build(options, metrics=AuthenticatorMetrics(registry))
        assert run(chain.token, "secret-token-1").user.name == "alice"
        assert run(chain.token, "secret-token-1").user.name == "alice"
        assert value(registry, "authentication_token_cache_request_total", status="hit") == 1
        assert value(registry, "authentication_token_cache_request_total", status="miss") == 1

        view = RequestView(Headers(), (ca.issue("bob").der,), "/")
        with Authenticator(chain.request) as runner:
            resp = runner.run(chain.request.request_flow(view, Context(now=NOW.timestamp())))
        assert resp.user.name == "bob"
        assert value(registry, EXPIRY + "_count") == 1

        now = claims()["iat"] + 1
        with pytest.raises(BackendUnavailable):
            run(chain.token, token(claims(iss=UNREACHABLE_ISSUER, aud="k8s")), now=now)
        assert jwt_failures(registry) == 1

    def test_authentication_config_file_authenticators_are_timed(
        self, registry: CollectorRegistry, tmp_path: Path
    ) -> None:
        """JWT authenticators built from --authentication-config report their latency too."""
        path = tmp_path / "authn.yaml"
        path.write_text(AUTHENTICATION_CONFIG)
        options = AuthenticationOptions(authentication_config=str(path))
        chain = build(options, metrics=AuthenticatorMetrics(registry))
        now = claims()["iat"] + 1
        with pytest.raises(BackendUnavailable):
            run(chain.token, token(claims(iss=UNREACHABLE_ISSUER, aud="k8s")), now=now)
        assert jwt_failures(registry) == 1

    def test_webhook_cache_is_tracked(
        self, registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The webhook's own cache counts into the same series as the outer cache."""
        import k8sauthn.config.build as build_module

        hook = cache({"hook-token": user("carol")})
        monkeypatch.setattr(build_module, "_webhook", lambda o: hook)
        options = AuthenticationOptions(token_success_cache_ttl=0)
        chain = build(options, metrics=AuthenticatorMetrics(registry))
        assert run(chain.token, "hook-token").user.name == "carol"
        assert run(chain.token, "hook-token").user.name == "carol"
        assert value(registry, "authentication_token_cache_request_total", status="hit") == 1
        assert value(registry, "authentication_token_cache_fetch_total", status="ok") == 1

    def test_build_without_metrics_is_unchanged(self, tmp_path: Path) -> None:
        """metrics defaults to None: nothing needs prometheus-client."""
        (tmp_path / "tokens.csv").write_text("secret-token-1,alice,1\n")
        chain = build(AuthenticationOptions(token_auth_file=str(tmp_path / "tokens.csv")))
        assert run(chain.token, "secret-token-1").user.name == "alice"


class TestServe:
    async def test_serve_metrics_endpoint_shows_authenticator_metrics(self, tmp_path: Path) -> None:
        """k8sauthn serve's /metrics carries the token cache and certificate expiry series."""
        from k8sauthn.cli import build_app

        from .server.test_app import SSR, call

        ca = Cert.new_ca("metrics-serve-ca")
        (tmp_path / "ca.crt").write_bytes(ca.pem)
        (tmp_path / "tokens.csv").write_text("secret-token-1,alice,1\n")
        flags = parse_serve_args(
            [
                f"--token-auth-file={tmp_path / 'tokens.csv'}",
                f"--client-ca-file={tmp_path / 'ca.crt'}",
            ]
        )
        app = build_app(flags)
        for _ in range(2):
            status, _, _ = await call(app, "POST", SSR, token="secret-token-1")
            assert status == 201
        status, _, _ = await call(app, "POST", SSR, chain=[ca.issue("bob").pem.decode()])
        assert status == 201
        status, _, body = await call(app, "GET", "/metrics", token="secret-token-1")
        text = body.decode()
        assert status == 200
        assert 'authentication_token_cache_request_total{status="hit"} 2.0' in text
        assert 'authentication_token_cache_request_total{status="miss"} 1.0' in text
        assert 'authentication_token_cache_fetch_total{status="ok"} 1.0' in text
        assert f"{EXPIRY}_count 1.0" in text
        assert f"# TYPE {LATENCY} histogram" in text
