"""KeySet: discovery, JWKS fetches, rotation, outages, rate limit (spec §13.4, §13.10)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from k8sauthn import BackendUnavailable, Context, Fetch, Fetched
from k8sauthn.token.jwks import JWKS, KeySet, KeysUnavailable, sha256_label
from k8sauthn.token.jws import parse_compact
from k8sauthn.token.oidc import InvalidJWT, JWTAuthenticator

from ._drive import drive
from ._jwt import ISSUER, NOW, config, ec_key, jwk, jwks, rsa_key, token

DISCOVERY = ISSUER + "/.well-known/openid-configuration"
JWKS_URI = ISSUER + "/keys"


def doc(**over: Any) -> Fetched:
    body = {"issuer": ISSUER, "jwks_uri": JWKS_URI, **over}
    return Fetched(200, {}, json.dumps({k: v for k, v in body.items() if v is not None}).encode())


def keys_body(*keys: dict[str, Any]) -> Fetched:
    return Fetched(200, {}, json.dumps(jwks(*keys)).encode())


K1 = jwk(rsa_key(), "k1")
K2 = jwk(ec_key("second", crv="P-256"), "k2")


def tok2() -> str:
    return token(alg="ES256", kid="k2", key=ec_key("second", crv="P-256"))


class Recorder:
    def __init__(self) -> None:
        self.fetches: list[tuple[str, str, float, str]] = []

    def observe_latency(self, issuer_hash: str, result: str, seconds: float) -> None:
        pass

    def observe_jwks_fetch(
        self, issuer_hash: str, result: str, timestamp: float, key_set_hash: str
    ) -> None:
        self.fetches.append((issuer_hash, result, timestamp, key_set_hash))


def ready_keyset(**kwargs: Any) -> KeySet:
    ks = KeySet(ISSUER, **kwargs)
    drive(ks.ensure_ready_flow(NOW), [doc()])
    assert ks.ready
    return ks


def verify(ks: KeySet, tok: str, now: float, answers: list[Any]) -> list[Any]:
    return drive(ks.verify_flow(parse_compact(tok), now), answers)[1]


class TestDiscovery:
    def test_discovery_sets_the_jwks_uri(self) -> None:
        """A 200 document with the exact issuer and a jwks_uri makes the set ready."""
        ks = KeySet(ISSUER)
        _, effects = drive(ks.ensure_ready_flow(NOW), [doc()])
        assert [e.url for e in effects if isinstance(e, Fetch)] == [DISCOVERY]
        assert ks.ready
        assert ks.health_error() is None

    @pytest.mark.parametrize(
        ("answer", "text"),
        [
            (Fetched(404, {}, b"nope"), "404 Not Found: nope"),
            (Fetched(200, {}, b"<html>"), "oidc: failed to decode provider discovery object"),
            (
                doc(issuer=ISSUER + "/"),
                "oidc: issuer did not match the issuer returned by provider, expected "
                '"https://issuer.example.com" got "https://issuer.example.com/"',
            ),
            (doc(jwks_uri=None), "provider did not return JWKS URL"),
            (doc(jwks_uri=""), "provider did not return JWKS URL"),
            (doc(jwks_uri=5), "oidc: failed to decode provider discovery object"),
            (doc(jwks_uri="http://issuer.example.com/keys"), "jwks_uri must use https"),
            (BackendUnavailable("GET x: ConnectError"), "GET x: ConnectError"),
        ],
    )
    def test_discovery_failures_leave_it_unready(self, answer: Any, text: str) -> None:
        """Each failure is reported by the health check and raises KeysUnavailable."""
        ks = KeySet(ISSUER)
        with pytest.raises(KeysUnavailable):
            drive(ks.ensure_ready_flow(NOW), [answer])
        assert text in (ks.health_error() or "")
        assert not ks.ready

    def test_discovery_url_rewrite(self) -> None:
        """discoveryURL replaces only the well-known GET; the issuer must still match."""
        ks = KeySet(
            ISSUER, discovery_url="https://internal.svc/oidc/.well-known/openid-configuration"
        )
        _, effects = drive(ks.ensure_ready_flow(NOW), [doc()])
        assert effects[1].url == "https://internal.svc/oidc/.well-known/openid-configuration"

    def test_issuer_with_trailing_slash_discovers_without_double_slash(self) -> None:
        """The well-known path is appended after trimming one trailing slash."""
        ks = KeySet(ISSUER + "/")
        effects = drive(ks.prime_flow(NOW), [doc(issuer=ISSUER + "/"), keys_body(K1)])[1]
        assert effects[1].url == DISCOVERY

    def test_retry_is_rate_limited(self) -> None:
        """After a failure, no new discovery happens for discovery_retry seconds."""
        ks = KeySet(ISSUER, discovery_retry=10.0)
        with pytest.raises(KeysUnavailable):
            drive(ks.ensure_ready_flow(NOW), [Fetched(500, {}, b"")])
        with pytest.raises(KeysUnavailable):
            drive(ks.ensure_ready_flow(NOW + 9.9), [])
        drive(ks.ensure_ready_flow(NOW + 10), [doc()])
        assert ks.ready

    def test_prime_reports_failures(self) -> None:
        """prime_flow is False when discovery or the first key fetch fails."""
        assert False is drive(KeySet(ISSUER).prime_flow(NOW), [Fetched(500, {}, b"")])[0]
        ks = KeySet(ISSUER)
        assert False is drive(ks.prime_flow(NOW), [doc(), Fetched(500, {}, b"")])[0]
        assert True is drive(ks.prime_flow(NOW), [keys_body(K1)])[0]


class TestKeys:
    def test_first_token_fetches_keys_then_uses_them(self) -> None:
        """Keys are fetched on the first miss and held for later tokens."""
        ks = ready_keyset()
        assert [
            e.url for e in verify(ks, token(), NOW, [keys_body(K1)]) if isinstance(e, Fetch)
        ] == [JWKS_URI]
        assert verify(ks, token(), NOW + 1, []) == []

    def test_rotation_unknown_kid_refetches(self) -> None:
        """A token for a new kid triggers a refresh; the old key is gone afterwards."""
        ks = ready_keyset()
        verify(ks, token(), NOW, [keys_body(K1)])
        verify(ks, tok2(), NOW + 20, [keys_body(K2)])
        with pytest.raises(ValueError, match="failed to verify id token signature"):
            verify(ks, token(), NOW + 21, [])  # within the cooldown: no refetch, fails closed

    def test_refresh_is_rate_limited(self) -> None:
        """Unknown kids within the cooldown fail fast without a fetch."""
        ks = ready_keyset(refresh_cooldown=10.0)
        verify(ks, token(), NOW, [keys_body(K1)])
        for dt in (1, 5, 9.9):
            with pytest.raises(ValueError, match="failed to verify id token signature"):
                verify(ks, token(kid="unknown"), NOW + dt, [])
        with pytest.raises(ValueError):
            verify(ks, token(kid="unknown"), NOW + 10, [keys_body(K1)])

    def test_outage_keeps_held_keys_and_unknown_kids_fail_closed(self) -> None:
        """When the JWKS endpoint fails, known keys keep verifying; unknown kids fail."""
        ks = ready_keyset()
        verify(ks, token(), NOW, [keys_body(K1)])
        with pytest.raises(BackendUnavailable, match=r"fetching keys oidc: get keys failed GET x"):
            verify(ks, tok2(), NOW + 30, [BackendUnavailable("GET x: ConnectError")])
        assert verify(ks, token(), NOW + 31, []) == []
        with pytest.raises(
            BackendUnavailable, match="get keys failed: 503 Service Unavailable down"
        ):
            verify(ks, tok2(), NOW + 60, [Fetched(503, {}, b"down")])
        with pytest.raises(BackendUnavailable, match="oidc: failed to decode keys"):
            verify(ks, tok2(), NOW + 90, [Fetched(200, {}, b"{")])
        assert verify(ks, token(), NOW + 91, []) == []

    def test_unusable_keys_are_skipped_not_fatal(self) -> None:
        """oct/OKP keys next to a good key do not break the set."""
        ks = ready_keyset()
        body = keys_body({"kty": "oct", "k": "c2VjcmV0", "kid": "k1"}, {"kty": "OKP"}, "junk", K1)  # type: ignore[arg-type]
        verify(ks, token(), NOW, [body])
        assert len(ks.jwks.keys) == 1

    def test_keys_must_be_a_list(self) -> None:
        """A JWKS without a keys list is a decode error."""
        with pytest.raises(ValueError, match="keys"):
            JWKS.from_json(b'{"keys": {}}')

    def test_jwks_fetch_metrics(self) -> None:
        """Every JWKS response reports success/failure, time, and the body hash on success."""
        rec = Recorder()
        ks = ready_keyset(metrics=rec)
        body = keys_body(K1)
        verify(ks, token(), NOW, [Fetched(200, {}, body.body, time=NOW + 0.5)])
        with pytest.raises(BackendUnavailable):
            verify(ks, tok2(), NOW + 30, [Fetched(500, {}, b"", time=NOW + 30.5)])
        h = sha256_label(ISSUER)
        assert [
            (
                h,
                "success",
                NOW + 0.5,
                "sha256:" + __import__("hashlib").sha256(body.body).hexdigest(),
            ),
            (h, "failure", NOW + 30.5, ""),
        ] == rec.fetches
        assert sha256_label("") == ""

    def test_static_set_never_fetches(self) -> None:
        """A static set fails closed for unknown keys without effects."""
        ks = KeySet.static(ISSUER, JWKS.from_public_keys({"k1": rsa_key().public_key()}))
        assert verify(ks, token(), NOW, []) == []
        with pytest.raises(ValueError):
            verify(ks, tok2(), NOW, [])
        anon = JWKS.from_public_keys([rsa_key().public_key()])
        assert verify(KeySet.static(ISSUER, anon), token(kid=None), NOW, []) == []


def test_authenticator_discovers_fetches_and_verifies_in_one_flow() -> None:
    """The first token runs discovery and the JWKS fetch, then is accepted."""
    a = JWTAuthenticator.from_config(config())
    resp, effects = drive(a.token_flow(token(), Context(now=NOW)), [doc(), keys_body(K1)])
    assert resp.user.name == "jane"
    assert [e.url for e in effects if isinstance(e, Fetch)] == [DISCOVERY, JWKS_URI]
    with pytest.raises(InvalidJWT, match="failed to verify id token signature"):
        drive(a.token_flow(token(kid="zz"), Context(now=NOW + 1)), [])
