"""The strict compact-JWS parser and the prepared verification keys."""

from __future__ import annotations

import contextlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import strategies as st

from k8sauthn.token.jws import (
    ALGORITHMS,
    MAX_TOKEN_BYTES,
    MalformedJWS,
    VerificationKey,
    b64decode_strict,
    loads_object,
    parse_compact,
)

from ._jwt import b64, b64int, ec_key, jwk, rsa_key, token


class TestBase64:
    def test_unpadded_base64url_decodes(self) -> None:
        """Unpadded base64url of every length class decodes."""
        assert tuple(b64decode_strict(s) for s in ("YWJj", "YWI", "YQ")) == (b"abc", b"ab", b"a")

    @pytest.mark.parametrize("segment", ["YQ==", "YW+j", "YW/j", "YW j", "YW\nj", "Y", "é"])
    def test_padding_std_alphabet_whitespace_and_bad_length_are_rejected(
        self, segment: str
    ) -> None:
        """Padding, ``+``/``/``, whitespace, non-ASCII and impossible lengths are refused."""
        with pytest.raises(MalformedJWS):
            b64decode_strict(segment)


class TestJSON:
    def test_object_parses(self) -> None:
        """A JSON object parses into a dict."""
        assert loads_object(b'{"a": [1, "\\u00e9"]}') == {"a": [1, "é"]}

    @pytest.mark.parametrize(
        "text",
        [
            b'{"a": 1, "a": 2}',
            b'{"x": {"b": 1, "b": 1}}',
            b'{"exp": NaN}',
            b'{"exp": Infinity}',
            b"[1, 2]",
            b'"iss"',
            b"{",
            b'{"a": "\\ud800"}',
            b'{"a": "\xff"}',
        ],
    )
    def test_duplicates_constants_non_objects_and_bad_text_are_rejected(self, text: bytes) -> None:
        """Duplicate keys (at any depth), NaN/Infinity, non-objects and invalid text fail."""
        with pytest.raises(MalformedJWS):
            loads_object(text)

    def test_surrogate_pair_escape_is_fine(self) -> None:
        """A valid surrogate pair escape decodes to one character."""
        assert loads_object(b'{"e": "\\ud83d\\ude00"}') == {"e": "\U0001f600"}


class TestParse:
    def test_three_segments_parse(self) -> None:
        """A well-formed token yields header, payload, signing input and signature."""
        tok = token({"iss": "x"})
        jws = parse_compact(tok)
        assert (jws.alg, jws.kid) == ("RS256", "k1")
        assert json.loads(jws.payload) == {"iss": "x"}
        assert tok.rsplit(".", 1)[0].encode() == jws.signing_input

    @pytest.mark.parametrize("parts", [1, 2, 4, 6])
    def test_wrong_segment_counts_are_rejected(self, parts: int) -> None:
        """Anything but three segments is malformed."""
        with pytest.raises(MalformedJWS, match="three parts"):
            parse_compact(".".join(["e30"] * parts))

    def test_jwe_is_rejected(self) -> None:
        """Five segments (a JWE, or a nested JWT inside one) is refused outright."""
        with pytest.raises(MalformedJWS, match="JWE"):
            parse_compact("e30.e30.e30.e30.e30")

    def test_crit_header_is_rejected(self) -> None:
        """A ``crit`` header is never understood, so never accepted."""
        with pytest.raises(MalformedJWS, match="crit"):
            parse_compact(token(crit=["exp"], exp=1))

    @pytest.mark.parametrize("header", [{"typ": "JWT"}, {"alg": 5}, {"alg": None}])
    def test_header_without_string_alg_is_rejected(self, header: dict[str, object]) -> None:
        """The header must carry a string ``alg``."""
        with pytest.raises(MalformedJWS, match="alg"):
            parse_compact(token(header=json.dumps(header).encode()))

    def test_oversized_token_is_not_decoded(self) -> None:
        """A token larger than the bound is refused before any decoding."""
        with pytest.raises(MalformedJWS, match="larger"):
            parse_compact("e30." + "A" * MAX_TOKEN_BYTES + ".e30")

    def test_trailing_garbage_is_rejected(self) -> None:
        """Bytes after the signature (a space, a fourth dot) make the token malformed."""
        tok = token()
        for bad in (tok + " ", tok + "=", tok + "."):
            with pytest.raises(MalformedJWS):
                parse_compact(bad)

    def test_non_string_kid_or_nonce_is_malformed_and_null_is_absent(self) -> None:
        """go-jose decodes ``kid``/``nonce`` into strings: a number is malformed, null absent."""
        for header in (b'{"alg":"RS256","kid":7}', b'{"alg":"RS256","nonce":["n"]}'):
            with pytest.raises(MalformedJWS, match=r"failed to unmarshal (key ID|nonce)"):
                parse_compact(token(kid=None, header=header))
        assert None is parse_compact(token(kid=None, header=b'{"alg":"RS256","kid":null}')).kid

    def test_only_short_header_segments_are_cached(self) -> None:
        """A huge header is parsed every time rather than pinned in the shared cache."""
        from k8sauthn.token import jws as module

        padding = "x" * 2000
        header = json.dumps({"alg": "RS256", "kid": "k1", "pad": padding}).encode()
        tok = token(kid=None, header=header)
        assert parse_compact(tok).kid == "k1"
        assert tok.split(".")[0] not in module._HEADERS
        small = token()
        parse_compact(small)
        assert small.split(".")[0] in module._HEADERS


class TestVerificationKey:
    @pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"])
    def test_rsa_key_verifies_rsa_algorithms(self, alg: str) -> None:
        """An RSA JWK verifies PKCS#1 v1.5 and PSS signatures of every hash size."""
        key = VerificationKey.from_jwk(jwk(rsa_key()))
        assert key is not None
        jws = parse_compact(token(alg=alg))
        assert key.verify(alg, jws.signing_input, jws.signature)
        assert not key.verify(alg, jws.signing_input + b"x", jws.signature)

    @pytest.mark.parametrize(
        ("alg", "crv"), [("ES256", "P-256"), ("ES384", "P-384"), ("ES512", "P-521")]
    )
    def test_ec_key_verifies_its_curve_only(self, alg: str, crv: str) -> None:
        """An EC JWK verifies the ES algorithm of its own curve and no other."""
        key = VerificationKey.from_jwk(jwk(ec_key(crv=crv)))
        assert key is not None
        jws = parse_compact(token(alg=alg))
        assert key.verify(alg, jws.signing_input, jws.signature)
        other = "ES384" if alg != "ES384" else "ES256"
        assert not key.verify(other, jws.signing_input, jws.signature)

    def test_rsa_key_does_not_verify_ec_algorithms_and_vice_versa(self) -> None:
        """A key never verifies an algorithm of another family."""
        rsa_k = VerificationKey.from_jwk(jwk(rsa_key()))
        ec_k = VerificationKey.from_jwk(jwk(ec_key(crv="P-256")))
        assert rsa_k is not None
        assert ec_k is not None
        jws = parse_compact(token(alg="RS256"))
        assert not rsa_k.verify("ES256", jws.signing_input, jws.signature)
        assert not ec_k.verify("RS256", jws.signing_input, jws.signature)
        assert not rsa_k.verify("HS256", jws.signing_input, jws.signature)
        assert not rsa_k.verify("none", jws.signing_input, b"")

    def test_der_encoded_ecdsa_signature_is_rejected(self) -> None:
        """ES signatures must be the fixed r||s form, not DER."""
        key = VerificationKey.from_jwk(jwk(ec_key(crv="P-256")))
        assert key is not None
        jws = parse_compact(token(alg="ES256"))
        assert not key.verify("ES256", jws.signing_input, jws.signature + b"\x00")

    @pytest.mark.parametrize(
        "bad",
        [
            {"kty": "oct", "k": "c2VjcmV0"},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "EC", "crv": "P-256K", "x": "AA", "y": "AA"},
            {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "RSA", "n": "", "e": "AQAB"},
            {"kty": "RSA", "e": "AQAB"},
            {"kty": "RSA", "n": 5, "e": "AQAB"},
            {"kty": "RSA", "n": "AQAB=", "e": "AQAB"},
            {**jwk(rsa_key()), "use": "enc"},
            {**jwk(rsa_key()), "alg": "RSA-OAEP"},
            {**jwk(rsa_key()), "alg": "HS256"},
        ],
    )
    def test_unusable_jwks_are_skipped(self, bad: dict[str, object]) -> None:
        """Symmetric, EdDSA, unknown-curve, off-curve, malformed and encryption keys: None."""
        assert None is VerificationKey.from_jwk(bad)

    def test_signature_use_and_allowed_alg_are_kept(self) -> None:
        """``use: sig`` and an ``alg`` among the nine are fine."""
        assert VerificationKey.from_jwk({**jwk(rsa_key()), "use": "sig", "alg": "PS256"})

    def test_small_rsa_keys_are_skipped(self) -> None:
        """RSA keys under 1024 bits are refused, as Go 1.24+ refuses them."""
        small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        n = small.public_key().public_numbers().n >> 8
        assert None is VerificationKey.from_jwk({"kty": "RSA", "n": b64int(n), "e": "AQAB"})
        assert None is not VerificationKey.from_jwk(jwk(small))

    def test_unknown_hash_size_never_verifies(self) -> None:
        """An algorithm name outside the nine does not verify even with the right key."""
        key = VerificationKey.from_jwk(jwk(rsa_key()))
        assert key is not None
        jws = parse_compact(token(alg="RS256"))
        assert not key.verify("RS1", jws.signing_input, jws.signature)


def test_the_nine_algorithms_are_asymmetric() -> None:
    """The allow-list holds exactly the nine JOSE algorithms of spec §13.4."""
    assert len(ALGORITHMS) == 9
    assert not [a for a in ALGORITHMS if a.startswith(("HS", "none"))]
    assert b64(b"\xff") == "_w"


class TestProperties:
    """Hypothesis: the parser never fails in an unexpected way and agrees with base64."""

    @given(st.binary(max_size=64))
    def test_base64url_round_trip(self, data: bytes) -> None:
        """Every byte string survives an unpadded base64url round trip."""
        assert data == b64decode_strict(b64(data))

    @given(st.text(max_size=80) | st.text(alphabet='eyJ0123456789-_.ABCabc=+/ {}"', max_size=120))
    def test_arbitrary_text_only_raises_malformed(self, text: str) -> None:
        """Any string either parses or raises MalformedJWS, never anything else."""
        with contextlib.suppress(MalformedJWS):
            parse_compact(text)
