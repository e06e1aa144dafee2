"""The error tree and the aggregate texts (spec §4, apimachinery NewAggregate)."""

from __future__ import annotations

import pytest

from k8sauthn import (
    AuthenticationError,
    BackendUnavailable,
    ChainError,
    ConfigError,
    FieldError,
    InvalidBearerToken,
    K8sAuthnError,
)
from k8sauthn.exceptions import aggregate


class TestAggregate:
    def test_none_for_no_errors(self) -> None:
        """An empty list is no error."""
        assert aggregate([]) is None

    def test_single_error_is_itself(self) -> None:
        """One error is returned as it is."""
        e = AuthenticationError("x")
        assert aggregate([e]) is e

    def test_several_join_in_brackets(self) -> None:
        """Several texts: '[a, b]'."""
        err = aggregate([AuthenticationError("a"), AuthenticationError("b")])
        assert isinstance(err, ChainError)
        assert str(err) == "[a, b]"

    def test_duplicates_removed_first_kept(self) -> None:
        """Duplicate texts collapse, keeping first-seen order."""
        errs = [AuthenticationError(t) for t in ("b", "a", "b", "c", "a")]
        assert str(ChainError(errs)) == "[b, a, c]"

    def test_one_distinct_text_is_bare(self) -> None:
        """If all texts are equal the bare text is the message."""
        assert str(ChainError([AuthenticationError("same")] * 3)) == "same"

    def test_nested_aggregates_flatten(self) -> None:
        """A ChainError inside a ChainError is flattened for the text."""
        inner = ChainError([AuthenticationError("a"), AuthenticationError("b")])
        outer = ChainError([inner, AuthenticationError("c"), AuthenticationError("a")])
        assert str(outer) == "[a, b, c]"
        assert (inner,) == outer.errors[:1]


class TestTree:
    def test_hierarchy(self) -> None:
        """Every error derives from K8sAuthnError; ConfigError is also a ValueError."""
        assert issubclass(InvalidBearerToken, AuthenticationError)
        assert issubclass(BackendUnavailable, AuthenticationError)
        assert issubclass(ChainError, AuthenticationError)
        assert issubclass(AuthenticationError, K8sAuthnError)
        assert issubclass(ConfigError, ValueError)
        assert issubclass(ConfigError, K8sAuthnError)

    def test_invalid_bearer_token_text(self) -> None:
        """The text Kubernetes puts in TokenReview status.error."""
        assert str(InvalidBearerToken()) == "invalid bearer token"

    def test_backend_unavailable_carries_url(self) -> None:
        """The backend error keeps the configured URL as data."""
        e = BackendUnavailable("down", url="https://x")
        assert (str(e), e.url) == ("down", "https://x")


class TestConfigError:
    def test_single_string(self) -> None:
        """A single message is one path-less FieldError."""
        e = ConfigError("bad")
        assert str(e) == "bad"
        assert (FieldError("", "bad"),) == e.errors

    def test_several_field_errors(self) -> None:
        """Several problems list with their paths, Kubernetes-style."""
        e = ConfigError([FieldError("jwt[0].issuer.url", "Required value"), "other"])
        assert str(e) == "[jwt[0].issuer.url: Required value, other]"
        assert len(e.errors) == 2

    def test_raises_as_value_error(self) -> None:
        """Callers catching ValueError also catch configuration errors."""
        with pytest.raises(ValueError, match="x"):
            raise ConfigError("x")


class TestRedactUrl:
    def test_userinfo_and_query_never_survive(self) -> None:
        """redact_url drops user-info and hides the query, keeping scheme, host and path."""
        from k8sauthn.exceptions import redact_url

        assert redact_url("https://u:pw@h:8443/p?token=abc") == "https://h:8443/p?..."
        assert redact_url("https://h/p") == "https://h/p"

    def test_backend_unavailable_stores_redacted_url(self) -> None:
        """BackendUnavailable.url and Fetch's repr never show a password or a query."""
        from k8sauthn import Fetch
        from k8sauthn.exceptions import BackendUnavailable

        exc = BackendUnavailable("down", url="https://user:secret@h/x?sig=s3cr3t")
        assert "secret" not in exc.url
        assert "s3cr3t" not in exc.url
        assert "s3cr3t" not in repr(Fetch("GET", "https://h/x?sig=s3cr3t"))
