"""The anonymous authenticator and its configuration (spec §6)."""

from __future__ import annotations

import pytest

from k8sauthn import (
    ALL_UNAUTHENTICATED,
    ANONYMOUS_USER,
    ConfigError,
    Context,
    RequestView,
    run_pure,
)
from k8sauthn.request import AnonymousAuthenticator, AnonymousConfig


def answer(auth: AnonymousAuthenticator, path: str = "/", audiences: tuple[str, ...] | None = None):  # type: ignore[no-untyped-def]
    return run_pure(auth.request_flow(RequestView(path=path), Context(now=1, audiences=audiences)))


class TestAnonymous:
    def test_default_accepts_everything(self) -> None:
        """Enabled without conditions: system:anonymous in system:unauthenticated, no uid/extra."""
        resp = answer(AnonymousAuthenticator())
        assert resp is not None
        assert (
            resp.user.name,
            resp.user.uid,
            resp.user.groups,
            dict(resp.user.extra),
        ) == (ANONYMOUS_USER, "", (ALL_UNAUTHENTICATED,), {})
        assert resp.audiences == ()

    def test_audiences_are_the_targets(self) -> None:
        """The response audiences are whatever the context carries."""
        resp = answer(AnonymousAuthenticator(), audiences=("a", "b"))
        assert resp is not None
        assert resp.audiences == ("a", "b")

    def test_conditions_are_exact_paths(self) -> None:
        """Only exactly listed paths are anonymous; no prefixes, no normalisation."""
        auth = AnonymousAuthenticator(AnonymousConfig(conditions=["/healthz", "/livez"]))
        assert answer(auth, "/healthz") is not None
        assert answer(auth, "/livez") is not None
        for path in ("/healthz/", "/healthz/x", "/HEALTHZ", "//healthz", "/readyz", "/"):
            assert answer(auth, path) is None, path

    def test_disabled_accepts_nothing(self) -> None:
        """A disabled configuration never answers."""
        assert answer(AnonymousAuthenticator(AnonymousConfig(enabled=False))) is None

    def test_disabled_with_conditions_is_invalid(self) -> None:
        """enabled=false with conditions: Kubernetes' field error."""
        config = AnonymousConfig(enabled=False, conditions=("/x", "/<y>"))
        assert [str(e) for e in config.errors()] == [
            'anonymous.conditions: Invalid value: [{"Path":"/x"},{"Path":"/\\u003cy\\u003e"}]: '
            "enabled should be set to true when conditions are defined"
        ]
        with pytest.raises(ConfigError, match="enabled should be set to true"):
            AnonymousAuthenticator(config)

    def test_single_string_condition(self) -> None:
        """A single path given as a string is one condition, not characters."""
        assert AnonymousConfig(conditions="/x").conditions == ("/x",)
        assert config_is_valid(AnonymousConfig())
        assert "AnonymousConfig" in repr(AnonymousAuthenticator())


def config_is_valid(config: AnonymousConfig) -> bool:
    return config.validate() is config
