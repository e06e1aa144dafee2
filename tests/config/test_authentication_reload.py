"""Reloading --authentication-config: good -> bad keeps the old set; anonymous is fixed (§13.11)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from k8sauthn import Context, Response, UserInfo, run_pure
from k8sauthn._flow import Flow, pure
from k8sauthn._protocols import TokenAuthenticator
from k8sauthn.config.authentication import JWTAuthenticatorConfig
from k8sauthn.config.authentication_reload import (
    AuthenticationConfigFile,
    build_jwt_authenticator,
    config_hash,
)
from k8sauthn.exceptions import AuthenticationError, ConfigError
from k8sauthn.request.anonymous import AnonymousConfig

CTX = Context(now=1_800_000_000.0)


class ByIssuer:
    """Accepts exactly the token equal to its issuer URL (stands in for a JWT authenticator)."""

    def __init__(self, cfg: JWTAuthenticatorConfig) -> None:
        self.url = cfg.issuer.url

    def token_flow(self, token: str, ctx: Context, /) -> Flow[Response | None]:
        return pure(Response(UserInfo(self.url)) if token == self.url else None)


class Failing:
    """Rejects every token (the union must be fail-on-error)."""

    def __init__(self, cfg: JWTAuthenticatorConfig) -> None:
        pass

    def token_flow(self, token: str, ctx: Context, /) -> Flow[Response | None]:
        raise AuthenticationError("nope")


def document(*issuers: str, anonymous: dict[str, object] | None = None) -> bytes:
    doc: dict[str, object] = {
        "apiVersion": "apiserver.config.k8s.io/v1beta1",
        "kind": "AuthenticationConfiguration",
        "jwt": [
            {
                "issuer": {"url": url, "audiences": ["k"]},
                "claimMappings": {"username": {"claim": "sub", "prefix": ""}},
            }
            for url in issuers
        ],
    }
    if anonymous is not None:
        doc["anonymous"] = anonymous
    return json.dumps(doc).encode()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def rewrite(path: Path, data: bytes) -> None:
    before = path.stat().st_mtime_ns
    path.write_bytes(data)
    os.utime(path, ns=(before + 10**9, before + 10**9))  # a visible change even on coarse clocks


def name(auth: TokenAuthenticator, token: str) -> str | None:
    resp = run_pure(auth.token_flow(token, CTX))
    return None if resp is None else resp.user.name


@pytest.fixture
def path(tmp_path: Path) -> Path:
    p = tmp_path / "authn.yaml"
    p.write_bytes(document("https://one.example.com"))
    return p


def test_first_load_builds_union(path: Path) -> None:
    """The file's authenticators answer tokens; others get no opinion."""
    live = AuthenticationConfigFile(path, build=ByIssuer)
    assert name(live, "https://one.example.com") == "https://one.example.com"
    assert name(live, "other") is None
    assert live.anonymous is None
    assert live.hash == config_hash(path.read_bytes())
    assert repr(live) == f"AuthenticationConfigFile({str(path)!r})"


def test_first_load_error_raises(tmp_path: Path) -> None:
    """A bad file at start-up is a ConfigError."""
    p = tmp_path / "bad.yaml"
    p.write_bytes(document("http://insecure.example.com"))
    with pytest.raises(ConfigError, match="URL scheme must be https"):
        AuthenticationConfigFile(p, build=ByIssuer)


def test_good_reload_swaps(path: Path) -> None:
    """A valid new file replaces the authenticators after the poll interval."""
    clock = Clock()
    live = AuthenticationConfigFile(path, build=ByIssuer, interval=60, clock=clock)
    rewrite(path, document("https://two.example.com", "https://three.example.com"))
    assert name(live, "https://two.example.com") is None  # not yet: interval not passed
    clock.now = 61
    assert name(live, "https://two.example.com") == "https://two.example.com"
    assert name(live, "https://one.example.com") is None
    assert live.successes == 1
    assert live.last_error is None
    assert len(live.config.jwt) == 2


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"kind: Nope",
        document("http://insecure.example.com"),
        b"{not json",
        document("https://one.example.com").replace(b'"jwt"', b'"jwts"'),
    ],
)
def test_bad_reload_keeps_previous(path: Path, bad: bytes) -> None:
    """Undecodable or invalid content keeps the old set and records the error."""
    errors: list[Exception] = []
    live = AuthenticationConfigFile(path, build=ByIssuer, on_error=errors.append)
    rewrite(path, bad)
    assert live.check() is False
    assert name(live, "https://one.example.com") == "https://one.example.com"
    assert isinstance(live.last_error, ConfigError)
    assert errors == [live.last_error]
    assert live.failures == 1


def test_unreadable_file_keeps_previous(path: Path) -> None:
    """A deleted file keeps the old set."""
    live = AuthenticationConfigFile(path, build=ByIssuer)
    path.unlink()
    assert live.check() is False
    assert name(live, "https://one.example.com") == "https://one.example.com"
    assert isinstance(live.last_error, ConfigError)


def test_recovers_after_bad_file(path: Path) -> None:
    """A later good file is installed and clears the error."""
    live = AuthenticationConfigFile(path, build=ByIssuer)
    rewrite(path, b"kind: Nope")
    live.check()
    rewrite(path, document("https://two.example.com"))
    assert live.check() is True
    assert live.last_error is None
    assert name(live, "https://two.example.com") == "https://two.example.com"


def test_identical_content_is_not_rebuilt(path: Path) -> None:
    """Touching the file without changing it keeps the built authenticators."""
    built: list[str] = []

    def build(cfg: JWTAuthenticatorConfig) -> TokenAuthenticator:
        built.append(cfg.issuer.url)
        return ByIssuer(cfg)

    live = AuthenticationConfigFile(path, build=build)
    rewrite(path, path.read_bytes())
    live.check()
    assert built == ["https://one.example.com"]
    assert live.successes == 0


def test_anonymous_cannot_change(tmp_path: Path) -> None:
    """A changed anonymous section is rejected with Kubernetes' text; JWT stays as it was."""
    p = tmp_path / "a.yaml"
    anon = {"enabled": True, "conditions": [{"path": "/livez"}]}
    p.write_bytes(document("https://one.example.com", anonymous=anon))
    live = AuthenticationConfigFile(p, build=ByIssuer)
    assert live.anonymous == AnonymousConfig(enabled=True, conditions=("/livez",))
    rewrite(
        p,
        document(
            "https://two.example.com",
            anonymous={"enabled": True, "conditions": [{"path": "/readyz"}]},
        ),
    )
    assert live.check() is False
    assert str(live.last_error) == "anonymous: Forbidden: changed from initial configuration file"
    assert name(live, "https://one.example.com") == "https://one.example.com"


def test_anonymous_cannot_be_added(path: Path) -> None:
    """Adding an anonymous section where there was none is a change too."""
    live = AuthenticationConfigFile(path, build=ByIssuer)
    rewrite(path, document("https://one.example.com", anonymous={"enabled": True}))
    assert live.check() is False
    assert "changed from initial configuration file" in str(live.last_error)


def test_anonymous_change_reported_with_validation_errors(path: Path) -> None:
    """The anonymous error joins the validation errors in one aggregate."""
    live = AuthenticationConfigFile(path, build=ByIssuer)
    rewrite(path, document("http://x", anonymous={"enabled": True}))
    live.check()
    assert str(live.last_error) == (
        '[jwt[0].issuer.url: Invalid value: "http://x": URL scheme must be https, '
        "anonymous: Forbidden: changed from initial configuration file]"
    )


def test_same_anonymous_section_reloads(tmp_path: Path) -> None:
    """An unchanged anonymous section does not block a JWT change."""
    p = tmp_path / "a.yaml"
    p.write_bytes(document("https://one.example.com", anonymous={"enabled": False}))
    live = AuthenticationConfigFile(p, build=ByIssuer)
    rewrite(p, document("https://two.example.com", anonymous={"enabled": False}))
    assert live.check() is True


def test_build_failure_keeps_previous(path: Path) -> None:
    """An authenticator that cannot be built fails the reload."""
    calls = 0

    def build(cfg: JWTAuthenticatorConfig) -> TokenAuthenticator:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise ConfigError("cannot build")
        return ByIssuer(cfg)

    live = AuthenticationConfigFile(path, build=build)
    rewrite(path, document("https://two.example.com"))
    assert live.check() is False
    assert str(live.last_error) == "cannot build"
    assert name(live, "https://one.example.com") == "https://one.example.com"


def test_union_is_fail_on_error(path: Path) -> None:
    """An error from one JWT authenticator is not masked by the next (fail-on-error union)."""
    path.write_bytes(document("https://one.example.com", "https://two.example.com"))
    live = AuthenticationConfigFile(path, build=Failing)
    with pytest.raises(AuthenticationError, match=r"^nope$"):
        run_pure(live.token_flow("x", CTX))


def test_empty_jwt_list_never_matches(path: Path) -> None:
    """A file without JWT authenticators has no opinion on any token."""
    path.write_bytes(document())
    live = AuthenticationConfigFile(path, build=ByIssuer)
    assert name(live, "anything") is None


def test_default_builder_makes_jwt_authenticators(path: Path) -> None:
    """Without a builder the runtime JWT authenticator is used, with all nine algorithms."""
    from k8sauthn.token.oidc import JWTAuthenticator

    live = AuthenticationConfigFile(path)
    auth = build_jwt_authenticator(live.config.jwt[0])
    assert isinstance(auth, JWTAuthenticator)
    assert len(auth.algorithms) == 9
    # A token for another issuer is no opinion without any network access.
    assert run_pure(live.token_flow("not-a-jwt", CTX)) is None


def test_config_hash() -> None:
    """The metric label is sha256:<hex>, empty for empty input."""
    assert config_hash(b"") == ""
    assert config_hash(b"a") == (
        "sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
    )


def test_on_reload_reports_each_attempt(path: Path) -> None:
    """The metrics hook sees success and failure of every changed file."""
    seen: list[str] = []
    live = AuthenticationConfigFile(path, build=ByIssuer, on_reload=seen.append)
    rewrite(path, document("https://two.example.com"))
    live.check()
    rewrite(path, b"kind: Nope")
    live.check()
    assert seen == ["success", "failure"]


def test_rejected_content_is_not_tried_again(path: Path) -> None:
    """Invalid content counts one failure; polling the unchanged bad file adds none."""
    clock = Clock()
    errors: list[Exception] = []
    live = AuthenticationConfigFile(
        path, build=ByIssuer, interval=60, clock=clock, on_error=errors.append
    )
    rewrite(path, document("http://insecure.example.com"))
    for step in (61, 122, 183):
        clock.now = step
        assert name(live, "https://one.example.com") == "https://one.example.com"
    assert live.failures == 1
    assert len(errors) == 1
    assert live.last_error is errors[0]
    assert "URL scheme must be https" in str(live.last_error)
    rewrite(path, document("https://two.example.com"))
    assert live.check() is True
    assert live.last_error is None


def test_unreadable_file_is_retried(path: Path) -> None:
    """A read error is not remembered: every poll tries again (kube-apiserver keeps retrying)."""
    live = AuthenticationConfigFile(path, build=ByIssuer)
    path.unlink()
    live.check()
    live.check()
    assert live.failures == 2
