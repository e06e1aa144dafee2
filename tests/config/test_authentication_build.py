"""--authentication-config and --oidc-* in the assembled chain (spec §13.1, §6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from k8sauthn import Context, run_pure
from k8sauthn.config.authentication import OIDC_FLAGS_TOGETHER
from k8sauthn.config.authentication_reload import AuthenticationConfigFile
from k8sauthn.config.build import _authentication_config, build
from k8sauthn.config.options import AuthenticationOptions, OIDCOptions
from k8sauthn.exceptions import ConfigError
from k8sauthn.request.anonymous import AnonymousConfig
from k8sauthn.token.oidc import JWTAuthenticator
from tests._pki import Cert

CTX = Context(now=1_800_000_000.0)
OIDC = OIDCOptions(issuer_url="https://auth.example.com", client_id="kube")


def write_config(tmp_path: Path, anonymous: dict[str, object] | None = None) -> str:
    doc: dict[str, object] = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AuthenticationConfiguration",
        "jwt": [
            {
                "issuer": {"url": "https://issuer.example.com", "audiences": ["k"]},
                "claimMappings": {"username": {"claim": "sub", "prefix": ""}},
            }
        ],
    }
    if anonymous is not None:
        doc["anonymous"] = anonymous
    path = tmp_path / "authn.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_nothing_configured() -> None:
    """No file and no flags: no JWT authenticator, no anonymous section."""
    assert _authentication_config(AuthenticationOptions()) == (None, None)


def test_file_gives_live_union_and_anonymous(tmp_path: Path) -> None:
    """The file becomes a reloading authenticator plus its anonymous section."""
    options = AuthenticationOptions(
        authentication_config=write_config(
            tmp_path, {"enabled": True, "conditions": [{"path": "/livez"}]}
        )
    )
    jwt, anonymous = _authentication_config(options)
    assert isinstance(jwt, AuthenticationConfigFile)
    assert anonymous == AnonymousConfig(enabled=True, conditions=("/livez",))
    chain = build(options)
    assert chain.anonymous == anonymous


def test_file_and_oidc_flags_are_exclusive(tmp_path: Path) -> None:
    """Any --oidc-* flag next to the file is an error."""
    options = AuthenticationOptions(
        authentication_config=write_config(tmp_path), oidc=OIDCOptions(groups_claim="g")
    )
    with pytest.raises(ConfigError) as info:
        _authentication_config(options)
    assert str(info.value) == "authentication-config file and oidc-* flags are mutually exclusive"


def test_file_anonymous_and_flag_conflict(tmp_path: Path) -> None:
    """--anonymous-auth with an anonymous section is kube-apiserver's Forbidden error."""
    options = AuthenticationOptions(
        authentication_config=write_config(tmp_path, {"enabled": True}), anonymous_auth=True
    )
    with pytest.raises(ConfigError, match=r"^anonymous: Forbidden: --anonymous-auth flag"):
        build(options)


def test_bad_file_fails_at_startup(tmp_path: Path) -> None:
    """A file that does not validate stops the build."""
    path = tmp_path / "bad.yaml"
    path.write_text(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\n"
        "jwt:\n- issuer: {url: 'http://x', audiences: [k]}\n"
        "  claimMappings: {username: {claim: sub, prefix: ''}}\n"
    )
    with pytest.raises(ConfigError, match="URL scheme must be https"):
        build(AuthenticationOptions(authentication_config=str(path)))


def test_legacy_flags_build_one_authenticator() -> None:
    """Issuer and client id make one JWT authenticator with the flag's algorithms."""
    jwt, anonymous = _authentication_config(
        AuthenticationOptions(
            oidc=OIDCOptions(
                issuer_url="https://auth.example.com", client_id="kube", signing_algs=("ES256",)
            )
        )
    )
    assert isinstance(jwt, JWTAuthenticator)
    assert jwt.algorithms == ("ES256",)
    assert jwt.issuer_url == "https://auth.example.com"
    assert anonymous is None
    assert run_pure(jwt.token_flow("not-a-jwt", CTX)) is None


def test_legacy_flags_read_the_ca_file(tmp_path: Path) -> None:
    """--oidc-ca-file content is the issuer's CA."""
    ca = Cert.new_ca("build-oidc-ca")
    path = tmp_path / "ca.pem"
    path.write_bytes(ca.pem)
    jwt, _ = _authentication_config(
        AuthenticationOptions(
            oidc=OIDCOptions(
                issuer_url="https://auth.example.com", client_id="kube", ca_file=str(path)
            )
        )
    )
    assert isinstance(jwt, JWTAuthenticator)
    assert jwt.tls is not None
    assert jwt.tls.ca_pem == ca.pem


def test_legacy_flags_missing_ca_file(tmp_path: Path) -> None:
    """An unreadable CA file is a configuration error."""
    with pytest.raises(ConfigError, match="oidc-ca-file"):
        _authentication_config(
            AuthenticationOptions(
                oidc=OIDCOptions(
                    issuer_url="https://auth.example.com",
                    client_id="kube",
                    ca_file=str(tmp_path / "missing.pem"),
                )
            )
        )


@pytest.mark.parametrize(
    "oidc",
    [OIDCOptions(issuer_url="https://auth.example.com"), OIDCOptions(username_prefix="x:")],
)
def test_legacy_flags_incomplete(oidc: OIDCOptions) -> None:
    """Some --oidc-* flag without issuer and client id is an error."""
    with pytest.raises(ConfigError) as info:
        _authentication_config(AuthenticationOptions(oidc=oidc))
    assert str(info.value) == OIDC_FLAGS_TOGETHER


def test_legacy_flags_bad_alg() -> None:
    """An unsupported --oidc-signing-algs value fails the build."""
    with pytest.raises(ConfigError, match='unsupported signing alg: "HS256"'):
        _authentication_config(
            AuthenticationOptions(
                oidc=OIDCOptions(
                    issuer_url=OIDC.issuer_url, client_id="kube", signing_algs=("HS256",)
                )
            )
        )
