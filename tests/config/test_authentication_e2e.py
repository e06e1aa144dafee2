"""A configuration file, through validation and CEL, to the users the JWT runtime returns."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from k8sauthn import Context, UserInfo, run_pure
from k8sauthn.config.authentication import ALL_SIGNING_ALGORITHMS, JWTAuthenticatorConfig
from k8sauthn.config.authentication_reload import AuthenticationConfigFile
from k8sauthn.exceptions import AuthenticationError
from k8sauthn.token.oidc import JWTAuthenticator
from tests.token._jwt import AUDIENCE, ISSUER, NOW, claims, default_keys, token

CTX = Context(now=NOW)

CONFIG = textwrap.dedent(
    f"""\
    apiVersion: apiserver.config.k8s.io/v1beta1
    kind: AuthenticationConfiguration
    jwt:
    - issuer:
        url: {ISSUER}
        audiences: [{AUDIENCE}, other]
        audienceMatchPolicy: MatchAny
      claimValidationRules:
      - expression: 'claims.?email_verified.orValue(true) == true'
        message: email not verified
      - expression: "claims.?tier.orValue('') != 'banned'"
        message: banned tier
      claimMappings:
        username:
          expression: "claims.?email.orValue(claims.sub)"
        groups:
          expression: "claims.?groups.orValue([]).map(g, 'oidc:' + g)"
        uid:
          expression: "string(int(claims.iat))"
        extra:
        - key: example.org/namespace
          valueExpression: "claims.?kubernetes__dot__io.?namespace.orValue('')"
        - key: example.org/tier
          valueExpression: "claims[?'tier'].orValue('')"
      userValidationRules:
      - expression: "!user.username.startsWith('system:')"
        message: "username cannot use the reserved system: prefix"
    """
)


def build(cfg: JWTAuthenticatorConfig) -> JWTAuthenticator:
    return JWTAuthenticator.from_config(
        cfg, signing_algs=ALL_SIGNING_ALGORITHMS, keys=default_keys()
    )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> AuthenticationConfigFile:
    path: Path = tmp_path_factory.mktemp("e2e") / "authn.yaml"
    path.write_text(CONFIG)
    return AuthenticationConfigFile(path, build=build)


def user(live: AuthenticationConfigFile, **over: Any) -> UserInfo:
    resp = run_pure(live.token_flow(token(claims(**over)), CTX))
    assert resp is not None
    return resp.user


def rejection(live: AuthenticationConfigFile, **over: Any) -> str:
    with pytest.raises(AuthenticationError) as info:
        run_pure(live.token_flow(token(claims(**over)), CTX))
    return str(info.value)


def test_full_mapping(live: AuthenticationConfigFile) -> None:
    """Optional syntax, escaped claim names and numbers-as-doubles map as kube-apiserver would."""
    got = user(
        live,
        email="jane@example.com",
        groups=["dev", "ops"],
        tier="gold",
        jti="t1",
        **{"kubernetes.io": {"namespace": "team-a"}},
    )
    assert got.name == "jane@example.com"
    assert got.groups == ("oidc:dev", "oidc:ops")
    assert got.uid == str(int(NOW) - 60)
    assert got.extra == {
        "authentication.kubernetes.io/credential-id": ("JTI=t1",),
        "example.org/namespace": ("team-a",),
        "example.org/tier": ("gold",),
    }


def test_fallbacks_when_claims_are_missing(live: AuthenticationConfigFile) -> None:
    """Absent optional claims fall back: sub for the name, no groups, no extra."""
    got = user(live)
    assert got == UserInfo(name="jane", uid=str(int(NOW) - 60))


def test_claim_validation_rule_message(live: AuthenticationConfigFile) -> None:
    """A false claim rule rejects the token with its message."""
    assert rejection(live, tier="banned") == (
        "oidc: error evaluating claim validation expression: validation expression "
        "'claims.?tier.orValue('') != 'banned'' failed: banned tier"
    )


def test_user_validation_rule_message(live: AuthenticationConfigFile) -> None:
    """A false user rule rejects the mapped user with its message."""
    assert rejection(live, sub="system:admin") == (
        "oidc: error evaluating user info validation rule: validation expression "
        "'!user.username.startsWith('system:')' failed: username cannot use the reserved "
        "system: prefix"
    )


def test_other_issuer_is_no_opinion(live: AuthenticationConfigFile) -> None:
    """A token of an issuer not in the file is left to the next authenticator."""
    assert run_pure(live.token_flow(token(claims(iss="https://elsewhere")), CTX)) is None
