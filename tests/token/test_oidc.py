"""JWTAuthenticator: the pre-check, verification (spec §13.5, §13.6) and adversarial tokens."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st

from k8sauthn import (
    AuthenticationError,
    BackendUnavailable,
    ConfigError,
    Context,
    Fetch,
    Fetched,
    run_pure,
)
from k8sauthn.config.authentication import Issuer, JWTAuthenticatorConfig
from k8sauthn.token._verifier import read_unverified
from k8sauthn.token.jws import ALGORITHMS
from k8sauthn.token.oidc import InvalidJWT, JWTAuthenticator

from ._drive import drive
from ._jwt import (
    AUDIENCE,
    DROP,
    ISSUER,
    NOW,
    b64,
    claims,
    config,
    default_keys,
    ec_key,
    jwk,
    jwks,
    rsa_key,
    token,
)

CTX = Context(now=NOW)


def authn(**kwargs: Any) -> JWTAuthenticator:
    algs = kwargs.pop("signing_algs", ALGORITHMS)
    keys = kwargs.pop("keys", default_keys())
    return JWTAuthenticator.from_config(config(**kwargs), signing_algs=algs, keys=keys)


AUTHN = authn()


def run(tok: str, a: JWTAuthenticator = AUTHN, ctx: Context = CTX) -> Any:
    return run_pure(a.token_flow(tok, ctx))


def rejected(tok: str, a: JWTAuthenticator = AUTHN, ctx: Context = CTX) -> str:
    with pytest.raises(InvalidJWT) as info:
        run(tok, a, ctx)
    return str(info.value)


def raw(header: dict[str, Any] | bytes, payload: bytes, sig: bytes = b"sig") -> str:
    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    return f"{b64(head)}.{b64(payload)}.{b64(sig)}"


class TestPreCheck:
    def test_valid_token_is_accepted(self) -> None:
        """A well-signed token of the issuer yields the user and expires_at = exp."""
        resp = run(token())
        assert resp.user.name == "jane"
        assert float(int(NOW) + 3600) == resp.expires_at
        assert resp.audiences == ()

    @pytest.mark.parametrize(
        "tok",
        [
            token(claims(iss="https://other.example.com")),
            token(claims(iss=ISSUER + "/")),
            token(claims(iss=DROP)),
            token(claims(iss=5)),
            token(claims(iss=None)),
            token(b"[1]"),
            token(b"not json"),
            token(b'{"iss": NaN}'),
            "not-a-jwt",
            "a.b",
            "a.b.c.d",
            '{"protected":"e30","payload":"e30","signature":""}',
            "  {" + token()[1:],
            "e30." + b64(json.dumps(claims()).encode()) + "=.sig",
            "e30." + b64(json.dumps(claims()).encode()).replace("-", "+") + "+.sig",
            "e30.\n" + b64(json.dumps(claims()).encode()) + ".sig",
            "e30." + "A" * (64 * 1024) + ".sig",
        ],
    )
    def test_tokens_of_other_issuers_or_shapes_are_no_opinion(self, tok: str) -> None:
        """Other issuers, missing/non-string iss, JSON serialisation, bad base64: None, no error."""
        assert None is run(tok)

    def test_jwe_and_nested_tokens_are_no_opinion(self) -> None:
        """A five-part JWE, even with our claims inside, and a JWS wrapping a JWT are skipped."""
        ours = b64(json.dumps(claims()).encode())
        head = b64(json.dumps({"alg": "RSA-OAEP", "enc": "A256GCM"}).encode())
        assert None is run(f"{head}.{ours}.iv.{ours}.tag")
        nested = token(token().encode(), cty="JWT")
        assert None is run(nested)

    def test_google_short_issuer_is_accepted_for_google(self) -> None:
        """``accounts.google.com`` matches the configured ``https://accounts.google.com``."""
        g = authn(issuer="https://accounts.google.com")
        assert run(token(claims(iss="accounts.google.com")), g).user.name == "jane"
        assert run(token(claims(iss="https://accounts.google.com")), g).user.name == "jane"
        assert None is run(token(claims(iss="accounts.google.com")))

    def test_issuer_key_matches_case_insensitively_like_go(self) -> None:
        """Go's struct decoding reads ``"ISS"`` as ``iss``: such a token is ours and verifies."""
        payload = claims(iss=DROP)
        payload["ISS"] = ISSUER
        assert run(token(payload)).user.name == "jane"

    def test_trailing_slash_is_significant(self) -> None:
        """An issuer configured with a trailing slash only matches tokens that carry it."""
        slash = authn(issuer=ISSUER + "/")
        assert None is run(token(), slash)
        assert run(token(claims(iss=ISSUER + "/")), slash).user.name == "jane"


class TestAlgorithms:
    def test_algorithm_outside_the_configured_list_is_rejected(self) -> None:
        """RS256-only authenticators refuse PS256 with go-oidc's text."""
        a = authn(signing_algs=("RS256",))
        assert (
            rejected(token(alg="PS256"), a)
            == "oidc: verify token: oidc: id token signed with unsupported algorithm, "
            'expected ["RS256"] got "PS256"'
        )

    @pytest.mark.parametrize("alg", ["none", "None", "NONE", "HS256", "HS384", "HS512", ""])
    def test_none_and_hmac_are_never_accepted(self, alg: str) -> None:
        """``none`` (any case) and HMAC are unsupported even with all nine allowed."""
        tok = raw({"alg": alg, "kid": "k1"}, json.dumps(claims()).encode(), b"")
        assert tok.endswith(".")  # an empty signature segment, as alg=none tokens have
        assert "unsupported algorithm" in rejected(tok)

    def test_hs256_signed_with_the_rsa_public_key_is_rejected(self) -> None:
        """The classic alg-confusion attack (HMAC keyed with the public PEM) fails."""
        pem = (
            rsa_key()
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        assert "unsupported algorithm" in rejected(token(alg="HS256", key=pem))

    def test_unsupported_signing_alg_in_config_is_a_config_error(self) -> None:
        """Building with an alg outside the nine fails with Kubernetes' text."""
        with pytest.raises(ConfigError, match='oidc: unsupported signing alg: "HS256"'):
            authn(signing_algs=("RS256", "HS256"))

    def test_no_signing_algs_defaults_to_rs256(self) -> None:
        """An empty alg list means RS256 only."""
        a = authn(signing_algs=())
        assert a.algorithms == ("RS256",)
        assert "unsupported algorithm" in rejected(token(alg="ES256", kid="e1"), a)


class TestSignature:
    def test_wrong_key_fails_with_go_oidc_text(self) -> None:
        """A token signed by a key we do not hold is rejected (static keys never refresh)."""
        other = ec_key("attacker", crv="P-256")
        assert (
            rejected(token(alg="ES256", kid="e1", key=other))
            == "oidc: verify token: failed to verify signature: failed to verify id token signature"
        )

    def test_unknown_kid_fails(self) -> None:
        """With a kid, only keys with exactly that kid are tried."""
        assert "failed to verify id token signature" in rejected(token(kid="nope"))
        assert "failed to verify id token signature" in rejected(token(alg="ES256", kid="k1"))

    def test_token_without_kid_tries_every_key(self) -> None:
        """Without a kid, every key is tried and the first that verifies wins."""
        assert run(token(alg="ES384", kid=None)).user.name == "jane"

    def test_duplicate_kids_are_all_tried(self) -> None:
        """Two keys sharing a kid: the one that verifies is found."""
        keys = jwks(jwk(ec_key("x", crv="P-256"), "dup"), jwk(rsa_key(), "dup"))
        assert run(token(kid="dup"), authn(keys=keys)).user.name == "jane"

    @pytest.mark.parametrize("header", ["jku", "x5u", "jwk", "x5c"])
    def test_key_bearing_headers_are_ignored(self, header: str) -> None:
        """A token carrying its own key (jwk/x5c) or a key URL (jku/x5u) is not trusted for it."""
        attacker = ec_key("attacker", crv="P-256")
        value: Any = {
            "jku": "https://evil.example/jwks",
            "x5u": "https://evil.example/cert",
            "jwk": jwk(attacker, None),
            "x5c": ["MIIB"],
        }[header]
        forged = token(alg="ES256", kid="e1", key=attacker, **{header: value})
        assert "failed to verify id token signature" in rejected(forged)
        genuine = token(**{header: value})
        assert run(genuine).user.name == "jane"  # run_pure: no Fetch was asked for

    def test_crit_header_never_verifies(self) -> None:
        """A ``crit`` header never verifies: go-jose fails it for every key."""
        assert (
            rejected(token(crit=["b64"], b64=False))
            == "oidc: verify token: failed to verify signature: failed to verify id token signature"
        )
        wrong_alg = token(crit=["b64"], b64=False, alg="PS256")
        assert "unsupported algorithm" in rejected(wrong_alg, authn(signing_algs=("RS256",)))

    def test_bad_header_is_a_malformed_jwt(self) -> None:
        """A token of our issuer whose header is not JSON is ``oidc: malformed jwt``."""
        tok = "bm9wZQ." + token().split(".", 1)[1]
        assert rejected(tok).startswith("oidc: verify token: oidc: malformed jwt: ")

    def test_truncated_or_extended_signature_fails(self) -> None:
        """Any change to the signature segment fails verification or parsing."""
        tok = token()
        assert "failed to verify" in rejected(tok[:-4])
        assert rejected(tok + "A").startswith("oidc: verify token: ")
        assert "malformed jwt" in rejected(tok + "=")

    def test_signature_is_checked_before_claims(self) -> None:
        """An expired, wrongly signed token reports the signature (go-oidc v2.5.0 order)."""
        tok = token(claims(exp=1), kid="nope")
        assert "failed to verify signature" in rejected(tok)

    def test_duplicate_payload_keys_are_rejected_after_the_signature(self) -> None:
        """Duplicate keys in a well-signed payload are malformed claims, not silently merged."""
        payload = json.dumps(claims())[:-1] + ', "sub": "root"}'
        assert (
            rejected(token(payload))
            == 'oidc: verify token: oidc: failed to unmarshal claims: duplicate JSON key "sub"'
        )
        forged = token(payload, key=ec_key("attacker", crv="P-256"), alg="ES256", kid="e1")
        assert "failed to verify signature" in rejected(forged)


class TestStandardClaims:
    def test_issuer_in_payload_must_match_exactly(self) -> None:
        """The pre-check and go-oidc's issuer check agree: foreign issuers never verify."""
        assert None is run(token(claims(iss=ISSUER.upper())))

    def test_audience_mismatch_single(self) -> None:
        """One configured audience: go-oidc's client-id text."""
        assert (
            rejected(token(claims(aud="not-my-client")))
            == 'oidc: verify token: oidc: expected audience "my-client" got ["not-my-client"]'
        )
        assert rejected(token(claims(aud=DROP))).endswith('expected audience "my-client" got []')

    def test_audience_list_containing_ours_is_accepted(self) -> None:
        """``aud`` may be a list; containing the client id is enough (``azp`` ignored)."""
        assert run(token(claims(aud=["x", AUDIENCE], azp="x"))).user.name == "jane"

    def test_audience_match_any_with_several(self) -> None:
        """Several audiences: any one matches; the error lists them sorted."""
        a = authn(audiences=("b", "a"))
        assert run(token(claims(aud=["c", "a"])), a).user.name == "jane"
        assert 'oidc: expected audience in ["a" "b"] got ["c"]' in rejected(
            token(claims(aud="c")), a
        )

    def test_expiry_wins_over_audience_only_with_several_audiences(self) -> None:
        """One audience: go-oidc checks it before expiry; several: Kubernetes checks after."""
        expired_elsewhere = token(claims(aud="c", exp=int(NOW) - 10))
        assert "expected audience" in rejected(expired_elsewhere)
        assert "token is expired" in rejected(expired_elsewhere, authn(audiences=("b", "a")))
        early_elsewhere = token(claims(aud="c", nbf=int(NOW) + 3600))
        assert "before the nbf" in rejected(early_elsewhere, authn(audiences=("b", "a")))

    @pytest.mark.parametrize("aud", [5, {"a": 1}, [AUDIENCE, 5], True])
    def test_non_string_audience_is_a_claims_error(self, aud: Any) -> None:
        """``aud`` must be a string or a list of strings."""
        assert "oidc: failed to unmarshal claims: json: cannot unmarshal" in rejected(
            token(claims(aud=aud))
        )

    def test_exp_equal_to_now_is_valid_and_one_second_before_is_not(self) -> None:
        """No leeway on exp: exp == now passes, exp < now fails with the Go-formatted time."""
        assert run(token(claims(exp=int(NOW))))
        assert (
            rejected(token(claims(exp=int(NOW) - 1)))
            == "oidc: verify token: oidc: token is expired "
            "(Token Expiry: 2027-01-15 07:59:59 +0000 UTC)"
        )

    def test_missing_exp_is_expired_at_the_zero_time(self) -> None:
        """A token without exp is expired (Go's zero time)."""
        assert rejected(token(claims(exp=DROP))).endswith(
            "(Token Expiry: 0001-01-01 00:00:00 +0000 UTC)"
        )

    def test_fractional_exp_is_truncated(self) -> None:
        """exp 1.9 s after a whole second counts as that whole second."""
        ctx = Context(now=NOW + 0.5)
        assert "token is expired" in rejected(token(claims(exp=NOW + 0.9)), ctx=ctx)
        assert run(token(claims(exp=NOW + 1.2)), ctx=ctx).expires_at == NOW + 1

    def test_numeric_string_exp_is_accepted(self) -> None:
        """A JSON string holding a number is a valid time, as in go-oidc."""
        assert run(token(claims(exp=str(int(NOW) + 10)))).expires_at == NOW + 10
        assert run(token(claims(exp="1.80000001e9"))).expires_at == NOW + 10

    @pytest.mark.parametrize(
        ("exp", "text"),
        [
            ("soon", 'json: invalid number literal, trying to unmarshal "\\"soon\\"" into Number'),
            ("NaN", "invalid number literal"),
            (" 1", "invalid number literal"),
            (None, 'strconv.ParseFloat: parsing ""'),
            (True, "cannot unmarshal bool"),
            ([1], "cannot unmarshal array"),
            (1e300, "exp out of range"),
            (-(2**63) - 1, "exp out of range"),
            ("1e999", "exp out of range"),
        ],
    )
    def test_bad_exp_is_a_claims_error(self, exp: Any, text: str) -> None:
        """exp as text, NaN, null, bool, array or beyond int64 is a claims error."""
        message = rejected(token(claims(exp=exp)))
        assert message.startswith("oidc: verify token: oidc: failed to unmarshal claims: ")
        assert text in message

    def test_huge_integer_exp_within_int64_is_accepted(self) -> None:
        """The largest int64 exp is valid (Go accepts it) and expires_at reflects it."""
        assert float(2**63 - 1) == run(token(claims(exp=2**63 - 1))).expires_at

    def test_nbf_has_sixty_seconds_of_leeway(self) -> None:
        """nbf up to now+60 passes; later fails with both times printed."""
        assert run(token(claims(nbf=int(NOW) + 60)))
        assert (
            rejected(token(claims(nbf=int(NOW) + 61)), ctx=Context(now=NOW + 0.25))
            == "oidc: verify token: oidc: current time 2027-01-15 08:00:00.25 +0000 UTC before "
            "the nbf (not before) time: 2027-01-15 08:01:01 +0000 UTC"
        )

    def test_iat_is_type_checked_but_never_compared(self) -> None:
        """A future iat is fine; a non-numeric iat is a claims error."""
        assert run(token(claims(iat=int(NOW) + 10**6)))
        assert "invalid number literal" in rejected(token(claims(iat="yesterday")))

    @pytest.mark.parametrize(("field", "value"), [("sub", 5), ("nonce", []), ("at_hash", {})])
    def test_string_claims_must_be_strings(self, field: str, value: Any) -> None:
        """sub/nonce/at_hash of the wrong JSON type fail like Go's struct decoding."""
        assert f"into Go struct field idToken.{field} of type string" in rejected(
            token(claims(**{field: value}))
        )

    def test_claim_names_must_reference_existing_sources(self) -> None:
        """Every ``_claim_names`` entry needs a non-empty, existing source (all names)."""
        assert "oidc: failed to obtain source from claim name" in rejected(
            token(claims(_claim_names={"x": ""}))
        )
        assert "oidc: source does not exist" in rejected(
            token(claims(_claim_names={"x": "src"}, _claim_sources={}))
        )
        assert "of type map[string]string" in rejected(token(claims(_claim_names=["x"])))
        assert "of type string" in rejected(token(claims(_claim_names={"x": 1})))
        bad_sources = token(claims(_claim_sources={"s": "x"}))
        assert "oidc.claimSource" in rejected(bad_sources)


class TestReadiness:
    def test_failed_discovery_is_not_initialized_and_retried_after_ten_seconds(self) -> None:
        """Until discovery succeeds the error is ``oidc: authenticator not initialized``."""
        a = JWTAuthenticator.from_config(config(), discovery_retry=10.0)
        assert not a.ready
        assert (
            a.health_error()
        ) == 'oidc: authenticator for issuer "https://issuer.example.com" is not initialized'
        with pytest.raises(BackendUnavailable, match=r"^oidc: authenticator not initialized$"):
            drive(a.token_flow(token(), CTX), [Fetched(500, {}, b"boom")])
        assert (
            a.health_error()
            == 'oidc: authenticator for issuer "https://issuer.example.com" is not healthy: '
            "500 Internal Server Error: boom"
        )
        # Within ten seconds no new attempt is made: the error is immediate.
        with pytest.raises(BackendUnavailable):
            drive(a.token_flow(token(), Context(now=NOW + 9)), [])
        # Other issuers' tokens are still no opinion, without any discovery.
        assert None is drive(a.token_flow(token(claims(iss="https://x")), CTX), [])[0]

    def test_static_keys_are_ready_at_once(self) -> None:
        """A static key set needs no discovery and primes trivially."""
        assert AUTHN.health_error() is None
        assert AUTHN.ready
        assert True is run_pure(AUTHN.prime_flow(NOW))


class TestConfig:
    def test_http_issuer_is_refused(self) -> None:
        """from_config validates again: a non-https issuer fails with a bare field path."""
        with pytest.raises(ConfigError, match=r"^issuer.url: Invalid value: .*must be https"):
            authn(issuer="http://issuer.example.com")

    def test_no_audience_is_refused(self) -> None:
        """At least one audience is required."""
        cfg = JWTAuthenticatorConfig(issuer=Issuer(url=ISSUER))
        with pytest.raises(ConfigError, match=r"issuer\.audiences: Required value"):
            JWTAuthenticator.from_config(cfg)

    def test_unparsable_ca_is_refused(self) -> None:
        """A certificateAuthority that holds no certificate is a field error."""
        with pytest.raises(ConfigError, match=r"issuer\.certificateAuthority: Invalid value"):
            authn(issuer_kwargs={"certificate_authority": "not a pem"}, keys=None)

    def test_repr_never_contains_keys_or_tokens(self) -> None:
        """The authenticator's repr names the issuer only."""
        text = repr(AUTHN)
        assert ISSUER in text
        assert "RSAPublicKey" not in text


class TestMetrics:
    def test_latency_is_recorded_per_result_and_not_for_other_issuers(self) -> None:
        """success/failure latencies are observed with the issuer hash; no-opinion is silent."""
        seen: list[tuple[str, str, float]] = []

        class Recorder:
            def observe_latency(self, issuer_hash: str, result: str, seconds: float) -> None:
                seen.append((issuer_hash, result, seconds))

            def observe_jwks_fetch(self, *args: object) -> None:  # pragma: no cover
                raise AssertionError

        ticks = iter([1.0, 1.25, 2.0, 2.5])
        a = JWTAuthenticator.from_config(
            config(), keys=default_keys(), metrics=Recorder(), clock=lambda: next(ticks)
        )
        assert run(token(), a)
        with pytest.raises(InvalidJWT):
            run(token(claims(exp=1)), a)
        assert None is run(token(claims(iss="https://other")), a)
        import hashlib

        h = "sha256:" + hashlib.sha256(ISSUER.encode()).hexdigest()
        assert [(h, "success", 0.25), (h, "failure", 0.5)] == seen


def test_fetch_effects_carry_the_configured_ca_and_timeout() -> None:
    """Discovery is a GET of the well-known URL with the issuer CA and the timeout."""
    from tests._pki import Cert

    ca = Cert.new_ca("idp-ca").pem.decode()
    a = JWTAuthenticator.from_config(
        config(issuer_kwargs={"certificate_authority": ca}), timeout=3.0
    )
    with pytest.raises(BackendUnavailable):
        drive(a.token_flow(token(), CTX), [Fetched(500, {}, b"")])
    effects = drive(a.prime_flow(NOW + 60), [Fetched(500, {}, b"")])[1]
    fetch = next(e for e in effects if isinstance(e, Fetch))
    assert fetch.url == ISSUER + "/.well-known/openid-configuration"
    assert fetch.tls is not None
    assert ca.encode() == fetch.tls.ca_pem
    assert fetch.timeout == 3.0


@given(
    st.text(max_size=200)
    | st.builds(
        lambda a, b, c: f"{a}.{b64(b)}.{c}",
        st.text(alphabet="eyJhbGciOi-_", max_size=40),
        st.binary(max_size=120).map(lambda b: b'{"iss":"' + ISSUER.encode() + b'",' + b),
        st.text(alphabet="abc-_=", max_size=40),
    )
)
def test_fuzzed_tokens_are_no_opinion_or_rejected(tok: str) -> None:
    """Arbitrary input is None or an AuthenticationError, never another exception."""
    with contextlib.suppress(AuthenticationError):
        assert run(tok) is None


class TestUnverifiedRead:
    """Kubernetes' untrustedIssuer, which routes tokens (and distributed-claim JWTs)."""

    @pytest.mark.parametrize(
        ("tok", "error"),
        [
            (' {"iss": 1}', "token is not compact JWT"),
            ("a.b", "malformed token"),
            ("a.b=.c", "error decoding token: illegal base64 data"),
            (
                "e30." + b64(b"[1]") + ".e30",
                "while unmarshaling token: JSON value is not an object",
            ),
            (
                "e30." + b64(b'{"iss": 5}') + ".e30",
                "while unmarshaling token: json: cannot unmarshal number into Go struct field "
                ".iss of type string",
            ),
            ("e30." + "A" * 70_000 + ".e30", "token larger than 65536 bytes"),
        ],
    )
    def test_unreadable_tokens_say_why_and_have_no_issuer(self, tok: str, error: str) -> None:
        """Each way of not being a JWT has Kubernetes' reason, and never routes to an issuer."""
        pre = read_unverified(tok)
        assert (pre.iss, pre.error) == ("", error)

    def test_google_short_issuer_is_widened_and_null_is_empty(self) -> None:
        """``accounts.google.com`` routes as the https issuer; a null iss reads as ""."""
        assert read_unverified(token(claims(iss="accounts.google.com"))).iss == (
            "https://accounts.google.com"
        )
        assert read_unverified(token(claims(iss=None))).iss == ""

    def test_repr_never_contains_the_token(self) -> None:
        """The unverified view of a token shows the issuer only."""
        tok = token()
        assert tok.split(".")[2] not in repr(read_unverified(tok))


def test_unknown_kids_do_not_grow_the_verification_plans() -> None:
    """Plans are cached per known kid and algorithm only, so junk kids cannot fill memory."""
    a = authn()
    for i in range(50):
        with contextlib.suppress(InvalidJWT):
            run(token(kid=f"junk-{i}"), a)
    run(token(), a)
    plans = a.keys.jwks._plans
    assert plans
    assert all(kid in (None, "k1", "e1", "e384", "e521") for kid, _ in plans)


_EXACT_VS_FAST = [
    {},
    {"nbf": int(NOW) + 60},
    {"nbf": int(NOW) + 61},
    {"nbf": float(NOW)},
    {"exp": int(NOW)},
    {"exp": int(NOW) - 1},
    {"exp": float(NOW) + 10},
    {"exp": True},
    {"exp": 1 << 63},
    {"aud": ["x", AUDIENCE]},
    {"aud": "other"},
    {"iss": "https://other.example"},
    {"sub": None},
    {"sub": 5},
    {"iat": "5"},
    {"iat": 1 << 63},
    {"nonce": 5},
    {"nonce": "n"},
    {"at_hash": None},
    {"_claim_names": {}},
]


@pytest.mark.parametrize("over", _EXACT_VS_FAST)
def test_fast_claims_path_agrees_with_the_exact_decoding(over: dict[str, Any]) -> None:
    """The common-token shortcut returns what go-oidc's exact decoding returns, or defers."""
    pre = read_unverified(token(claims(**over)))
    verifier = AUTHN._verifier

    def outcome(check: Any) -> Any:
        try:
            return check(pre, NOW)
        except InvalidJWT as exc:
            return str(exc)

    assert outcome(verifier.claims) == outcome(verifier._claims_exactly)
