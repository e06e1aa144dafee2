"""The legacy --oidc-* flags turned into one JWT authenticator (spec §13.1 B)."""

from __future__ import annotations

import pytest

from k8sauthn.config.authentication import (
    ALL_SIGNING_ALGORITHMS,
    OIDC_FLAGS_TOGETHER,
    ClaimMappings,
    ClaimValidationRule,
    Issuer,
    JWTAuthenticatorConfig,
    PrefixedClaimOrExpression,
    jwt_config_from_oidc_options,
    legacy_signing_algs,
)
from k8sauthn.config.options import OIDCOptions
from k8sauthn.exceptions import ConfigError
from tests._pki import Cert

URL = "https://auth.example.com"


def opts(**kw: object) -> OIDCOptions:
    return OIDCOptions(issuer_url=URL, client_id="kube", **kw)  # type: ignore[arg-type]


def username(o: OIDCOptions) -> PrefixedClaimOrExpression:
    return jwt_config_from_oidc_options(o).claim_mappings.username


def test_defaults() -> None:
    """Only issuer and client id: sub claim, issuer-URL prefix, one audience, no groups."""
    assert jwt_config_from_oidc_options(opts()) == JWTAuthenticatorConfig(
        issuer=Issuer(url=URL, audiences=("kube",)),
        claim_mappings=ClaimMappings(
            username=PrefixedClaimOrExpression(claim="sub", prefix=URL + "#")
        ),
    )


@pytest.mark.parametrize(
    ("claim", "flag", "prefix"),
    [
        ("sub", "", URL + "#"),
        ("preferred_username", "", URL + "#"),
        ("email", "", ""),
        ("sub", "-", ""),
        ("email", "-", ""),
        ("sub", "oidc:", "oidc:"),
        ("email", "oidc:", "oidc:"),
    ],
)
def test_username_prefix_rule(claim: str, flag: str, prefix: str) -> None:
    """Empty prefix means issuer#, except for email; '-' means none; else verbatim."""
    assert username(opts(username_claim=claim, username_prefix=flag)) == (
        PrefixedClaimOrExpression(claim=claim, prefix=prefix)
    )


def test_groups_claim_and_prefix() -> None:
    """A groups claim maps with its prefix, possibly empty."""
    cfg = jwt_config_from_oidc_options(opts(groups_claim="groups"))
    assert cfg.claim_mappings.groups == PrefixedClaimOrExpression(claim="groups", prefix="")
    cfg = jwt_config_from_oidc_options(opts(groups_claim="groups", groups_prefix="oidc:"))
    assert cfg.claim_mappings.groups == PrefixedClaimOrExpression(claim="groups", prefix="oidc:")


def test_groups_prefix_without_claim_is_ignored() -> None:
    """--oidc-groups-prefix alone maps no groups."""
    cfg = jwt_config_from_oidc_options(opts(groups_prefix="oidc:"))
    assert cfg.claim_mappings.groups == PrefixedClaimOrExpression()


def test_required_claims() -> None:
    """Each key=value becomes a claim rule; a repeated key keeps its last value (a Go map)."""
    cfg = jwt_config_from_oidc_options(
        opts(required_claims=(("hd", "example.com"), ("x", "a=b"), ("hd", "other.com")))
    )
    assert cfg.claim_validation_rules == (
        ClaimValidationRule(claim="hd", required_value="other.com"),
        ClaimValidationRule(claim="x", required_value="a=b"),
    )


def test_ca_content() -> None:
    """The CA file's content becomes certificateAuthority."""
    pem = Cert.new_ca("oidc-flags-ca").pem.decode()
    assert jwt_config_from_oidc_options(opts(), pem).issuer.certificate_authority == pem


@pytest.mark.parametrize(
    "o",
    [
        OIDCOptions(issuer_url=URL),
        OIDCOptions(client_id="kube"),
        OIDCOptions(groups_claim="groups"),
    ],
)
def test_must_be_specified_together(o: OIDCOptions) -> None:
    """Issuer URL and client id go together."""
    with pytest.raises(ConfigError) as info:
        jwt_config_from_oidc_options(o)
    assert str(info.value) == OIDC_FLAGS_TOGETHER


def test_validated_like_a_file_entry() -> None:
    """An http issuer fails with the rooted path of a config file entry."""
    with pytest.raises(ConfigError) as info:
        jwt_config_from_oidc_options(OIDCOptions(issuer_url="http://x", client_id="kube"))
    assert (
        str(info.value) == 'jwt[0].issuer.url: Invalid value: "http://x": URL scheme must be https'
    )


def test_bad_ca_file_content() -> None:
    """A CA file without certificates is the CA validation error."""
    with pytest.raises(ConfigError, match=r"^jwt\[0\]\.issuer\.certificateAuthority: "):
        jwt_config_from_oidc_options(opts(), "garbage")


def test_empty_username_claim() -> None:
    """An explicitly empty username claim is rejected by validation."""
    with pytest.raises(ConfigError, match="claim or expression is required"):
        jwt_config_from_oidc_options(opts(username_claim=""))


class TestSigningAlgs:
    def test_default_rs256(self) -> None:
        """RS256 by default."""
        assert legacy_signing_algs(OIDCOptions()) == ("RS256",)

    def test_empty_list_means_default(self) -> None:
        """An empty list falls back to RS256."""
        assert legacy_signing_algs(OIDCOptions(signing_algs=())) == ("RS256",)

    def test_all_nine(self) -> None:
        """Every allowed algorithm passes."""
        assert legacy_signing_algs(OIDCOptions(signing_algs=ALL_SIGNING_ALGORITHMS)) == (
            ALL_SIGNING_ALGORITHMS
        )

    @pytest.mark.parametrize("alg", ["HS256", "none", "rs256", "EdDSA"])
    def test_rejected(self, alg: str) -> None:
        """Anything else is kube-apiserver's error."""
        with pytest.raises(ConfigError, match=f'^oidc: unsupported signing alg: "{alg}"$'):
            legacy_signing_algs(OIDCOptions(signing_algs=("RS256", alg)))

    def test_checked_when_building_the_config(self) -> None:
        """jwt_config_from_oidc_options rejects a bad algorithm too."""
        with pytest.raises(ConfigError, match="unsupported signing alg"):
            jwt_config_from_oidc_options(opts(signing_algs=("HS256",)))

    def test_configuration_errors_come_before_the_algorithm_check(self) -> None:
        """As kube-apiserver, an invalid issuer URL is reported before an unsupported alg."""
        bad = OIDCOptions(issuer_url="http://x", client_id="kube", signing_algs=("HS256",))
        with pytest.raises(ConfigError, match="URL scheme must be https") as info:
            jwt_config_from_oidc_options(bad)
        assert "signing alg" not in str(info.value)
