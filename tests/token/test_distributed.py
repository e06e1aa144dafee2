"""Kubernetes' decoding of _claim_names/_claim_sources for distributed claims (spec §13.9)."""

from __future__ import annotations

from typing import Any

import pytest

from k8sauthn.token.distributed import (
    DistributedClaims,
    _claim_names,
    _claim_sources,
    _status_line,
)
from k8sauthn.token.oidc import InvalidJWT


class TestDecoding:
    def test_names_map_with_null_values_reads_empty_sources(self) -> None:
        """A null names map is empty; a null value decodes to "" as in Go."""
        assert _claim_names(None) == {}
        assert _claim_names({"groups": None, "x": "s"}) == {"groups": "", "x": "s"}

    @pytest.mark.parametrize(
        ("value", "text"),
        [
            ([], "json: cannot unmarshal array into Go value of type map[string]string"),
            ({"g": True}, "json: cannot unmarshal bool into Go value of type string"),
        ],
    )
    def test_bad_names(self, value: Any, text: str) -> None:
        """Names must be an object of strings."""
        with pytest.raises(InvalidJWT) as info:
            _claim_names(value)
        assert str(info.value) == "oidc: error parsing distributed claim names: " + text

    def test_sources_fold_field_names_and_the_last_match_wins(self) -> None:
        """Go struct fields match case-insensitively; unknown fields and null are ignored."""
        sources = _claim_sources(
            {
                "a": {"endpoint": "https://1", "ENDPOINT": "https://2", "x": 1},
                "b": None,
                "c": {"access_token": None, "JWT": "e30"},
            }
        )
        assert sources == {"a": ("https://2", ""), "b": ("", ""), "c": ("", "")}

    @pytest.mark.parametrize(
        ("value", "text"),
        [
            (5, "json: cannot unmarshal number into Go value of type map[string]oidc.endpoint"),
            ({"s": "x"}, "json: cannot unmarshal string into Go value of type oidc.endpoint"),
            (
                {"s": {"access_token": 1}},
                "json: cannot unmarshal number into Go struct field endpoint.access_token "
                "of type string",
            ),
        ],
    )
    def test_bad_sources(self, value: Any, text: str) -> None:
        """Sources must be an object of endpoint objects with string fields."""
        with pytest.raises(InvalidJWT) as info:
            _claim_sources(value)
        assert str(info.value) == "oidc: could not parse claim sources: " + text


def test_status_line_is_gos() -> None:
    """Known statuses carry their phrase, unknown ones only the number."""
    assert (_status_line(404), _status_line(599)) == ("404 Not Found", "599")


def test_verifiers_per_issuer_are_bounded() -> None:
    """At most MAX_CLAIM_ISSUERS verifiers are kept; the oldest goes first."""
    from k8sauthn.token.distributed import MAX_CLAIM_ISSUERS

    resolver = DistributedClaims("groups", ("aud",), ("RS256",))
    for i in range(MAX_CLAIM_ISSUERS + 3):
        resolver._verifier_for(f"https://issuer-{i}.example")
    issuers = list(resolver._issuers)
    assert len(issuers) == MAX_CLAIM_ISSUERS
    assert issuers[0] == "https://issuer-3.example"
    assert resolver._verifier_for(issuers[-1]) is resolver._issuers[issuers[-1]]
    assert "groups" in repr(resolver)
