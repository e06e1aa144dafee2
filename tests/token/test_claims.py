"""Standard-claim decoding as go-oidc's Go struct does it, and the claim helpers."""

from __future__ import annotations

from typing import Any

import pytest

from k8sauthn.token.claims import InvalidJWT, go_type_name, standard_claims, string_claim


class TestStandardClaims:
    def test_registered_claims_are_decoded(self) -> None:
        """iss/sub/aud/exp/iat/nbf and the distributed-claim maps are read."""
        std = standard_claims(
            {
                "iss": "i",
                "sub": "s",
                "aud": ["a", "b"],
                "exp": 10,
                "iat": "5",
                "nbf": 4.9,
                "_claim_names": {"groups": "src"},
                "_claim_sources": {"src": {"endpoint": "https://e", "access_token": "t"}},
            }
        )
        assert (
            std.iss,
            std.sub,
            std.aud,
            std.exp,
            std.iat,
            std.nbf,
        ) == ("i", "s", ("a", "b"), 10, 5, 4)
        assert dict(std.claim_names) == {"groups": "src"}
        assert dict(std.claim_sources) == {"src": ("https://e", "t")}

    @pytest.mark.parametrize("key", ["EXP", "Exp", "eXp"])
    def test_keys_match_case_insensitively(self, key: str) -> None:
        """Go's decoder matches struct fields case-insensitively."""
        assert standard_claims({key: 7}).exp == 7

    def test_unicode_folding_matches_like_go(self) -> None:
        """U+017F (long s) folds to s and U+212A (Kelvin) to k, as in Go's EqualFold."""
        assert standard_claims({"i\u017fs": "x"}).iss == "x"
        assert standard_claims({"\u0130ss": "x"}).iss == ""  # dotted capital I does not fold

    def test_last_folded_key_wins(self) -> None:
        """Two keys that fold to one field: the later one in the document wins."""
        assert standard_claims({"iss": "first", "ISS": "second"}).iss == "second"

    def test_null_values_read_as_empty(self) -> None:
        """null strings read as "", a null aud as [""], null maps as empty."""
        std = standard_claims({"sub": None, "aud": None, "_claim_names": None})
        assert (std.sub, std.aud, dict(std.claim_names)) == ("", ("",), {})

    def test_absent_times_are_none(self) -> None:
        """Missing exp/iat/nbf stay None (a missing exp is treated as expired by the caller)."""
        std = standard_claims({})
        assert (std.exp, std.iat, std.nbf) == (None, None, None)

    @pytest.mark.parametrize(
        ("payload", "text"),
        [
            ({"iss": 1}, "idToken.iss of type string"),
            ({"aud": 1}, "cannot unmarshal number into Go value of type []string"),
            ({"aud": ["a", {}]}, "cannot unmarshal object into Go value of type string"),
            ({"exp": "1.5.1"}, "invalid number literal"),
            ({"exp": float("inf")}, "exp out of range"),
            ({"nbf": {}}, "cannot unmarshal object into Go struct field idToken.nbf"),
            ({"_claim_sources": {"s": {"endpoint": 1}}}, "_claim_sources.endpoint"),
            ({"_claim_sources": {"s": None}}, None),
        ],
    )
    def test_type_errors(self, payload: dict[str, Any], text: str | None) -> None:
        """Wrong JSON types are claims errors with Go-like texts (null sources are empty)."""
        if text is None:
            assert dict(standard_claims(payload).claim_sources) == {"s": ("", "")}
            return
        with pytest.raises(InvalidJWT) as info:
            standard_claims(payload)
        assert str(info.value).startswith("oidc: failed to unmarshal claims: ")
        assert text in str(info.value)

    def test_numeric_string_with_exponent_is_a_time(self) -> None:
        """A string such as "1e3" parses as a float time and is truncated."""
        assert standard_claims({"exp": "1e3"}).exp == 1000
        assert standard_claims({"exp": -1.5}).exp == -1


class TestHelpers:
    def test_string_claim(self) -> None:
        """Absent, null, string and non-string claims are told apart."""
        assert string_claim({}, "x") == (False, "", "")
        assert string_claim({"x": None}, "x") == (True, "", "")
        assert string_claim({"x": "v"}, "x") == (True, "v", "")
        assert string_claim({"x": 1}, "x")[2].startswith("json: cannot unmarshal number")

    @pytest.mark.parametrize(
        ("value", "kind"),
        [
            (True, "bool"),
            (1, "number"),
            (1.5, "number"),
            ("", "string"),
            ([], "array"),
            ({}, "object"),
            (None, "null"),
        ],
    )
    def test_go_type_names(self, value: Any, kind: str) -> None:
        """JSON kinds are named as Go's decoder names them."""
        assert kind == go_type_name(value)
