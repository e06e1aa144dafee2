"""Decoding an AuthenticationConfiguration file strictly, as kube-apiserver does (spec §13.2)."""

from __future__ import annotations

import json
import textwrap

import pytest

from k8sauthn.config.authentication import (
    AuthenticationConfiguration,
    ClaimMappings,
    ClaimOrExpression,
    ClaimValidationRule,
    ExtraMapping,
    Issuer,
    JWTAuthenticatorConfig,
    PrefixedClaimOrExpression,
    UserValidationRule,
    load_authentication_config,
)
from k8sauthn.exceptions import ConfigError
from k8sauthn.request.anonymous import AnonymousConfig

FULL = textwrap.dedent(
    """\
    apiVersion: apiserver.config.k8s.io/v1
    kind: AuthenticationConfiguration
    jwt:
    - issuer:
        url: https://issuer.example.com
        discoveryURL: https://internal.example.com/.well-known/openid-configuration
        audiences: [a, b]
        audienceMatchPolicy: MatchAny
        egressSelectorType: controlplane
      claimValidationRules:
      - claim: hd
        requiredValue: example.com
      - expression: 'claims.exp - claims.nbf <= 86400.0'
        message: token lifetime too long
      claimMappings:
        username:
          claim: sub
          prefix: ""
        groups:
          claim: groups
          prefix: "oidc:"
        uid:
          claim: sid
        extra:
        - key: example.org/tenant
          valueExpression: claims.tenant
      userValidationRules:
      - expression: "!user.username.startsWith('system:')"
        message: username cannot use reserved system prefix
    - issuer:
        url: https://second.example.com
        audiences: [c]
      claimMappings:
        username:
          expression: "claims.?preferred_username.orValue(claims.sub)"
    anonymous:
      enabled: true
      conditions:
      - path: /livez
      - path: /readyz
    """
)

EXPECTED = AuthenticationConfiguration(
    jwt=(
        JWTAuthenticatorConfig(
            issuer=Issuer(
                url="https://issuer.example.com",
                discovery_url="https://internal.example.com/.well-known/openid-configuration",
                audiences=("a", "b"),
                audience_match_policy="MatchAny",
                egress_selector_type="controlplane",
            ),
            claim_validation_rules=(
                ClaimValidationRule(claim="hd", required_value="example.com"),
                ClaimValidationRule(
                    expression="claims.exp - claims.nbf <= 86400.0",
                    message="token lifetime too long",
                ),
            ),
            claim_mappings=ClaimMappings(
                username=PrefixedClaimOrExpression(claim="sub", prefix=""),
                groups=PrefixedClaimOrExpression(claim="groups", prefix="oidc:"),
                uid=ClaimOrExpression(claim="sid"),
                extra=(ExtraMapping("example.org/tenant", "claims.tenant"),),
            ),
            user_validation_rules=(
                UserValidationRule(
                    "!user.username.startsWith('system:')",
                    "username cannot use reserved system prefix",
                ),
            ),
        ),
        JWTAuthenticatorConfig(
            issuer=Issuer(url="https://second.example.com", audiences=("c",)),
            claim_mappings=ClaimMappings(
                username=PrefixedClaimOrExpression(
                    expression="claims.?preferred_username.orValue(claims.sub)"
                ),
            ),
        ),
    ),
    anonymous=AnonymousConfig(enabled=True, conditions=("/livez", "/readyz")),
)


def doc(**overrides: object) -> dict[str, object]:
    """A minimal valid document as a dict, with top-level overrides."""
    base: dict[str, object] = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AuthenticationConfiguration",
        "jwt": [
            {
                "issuer": {"url": "https://issuer.example.com", "audiences": ["a"]},
                "claimMappings": {"username": {"claim": "sub", "prefix": ""}},
            }
        ],
    }
    base.update(overrides)
    return base


def load_json(value: object) -> AuthenticationConfiguration:
    return load_authentication_config(json.dumps(value).encode())


def error_text(data: bytes) -> str:
    with pytest.raises(ConfigError) as info:
        load_authentication_config(data)
    return str(info.value)


class TestDecode:
    def test_full_yaml_example(self) -> None:
        """Every field of the schema lands in the model."""
        assert load_authentication_config(FULL.encode()) == EXPECTED

    def test_same_document_as_json(self) -> None:
        """JSON is accepted and decodes to the same model."""
        import yaml

        as_json = json.dumps(yaml.safe_load(FULL)).encode()
        assert load_authentication_config(as_json) == EXPECTED

    @pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha1"])
    def test_all_registered_versions(self, version: str) -> None:
        """The three versions share the fields."""
        cfg = load_json(doc(apiVersion=f"apiserver.config.k8s.io/{version}"))
        assert cfg.jwt[0].issuer.url == "https://issuer.example.com"

    def test_empty_jwt_list_and_no_anonymous(self) -> None:
        """A file may configure no JWT authenticator; anonymous absent is None."""
        cfg = load_json(doc(jwt=[]))
        assert cfg == AuthenticationConfiguration(jwt=(), anonymous=None)

    def test_null_prefix_is_absent(self) -> None:
        """``prefix: null`` is the absent prefix, which the claim form rejects."""
        d = doc()
        d["jwt"][0]["claimMappings"]["username"]["prefix"] = None  # type: ignore[index]
        with pytest.raises(ConfigError) as info:
            load_json(d)
        assert str(info.value).startswith("jwt[0].claimMappings.username.prefix: Required value")

    def test_nulls_are_zero_values(self) -> None:
        """``null`` for strings, lists and objects leaves the zero value."""
        d = doc(anonymous=None)
        d["jwt"][0]["claimValidationRules"] = None  # type: ignore[index]
        d["jwt"][0]["issuer"]["discoveryURL"] = None  # type: ignore[index]
        d["jwt"][0]["claimMappings"]["groups"] = None  # type: ignore[index]
        cfg = load_json(d)
        assert cfg.anonymous is None
        assert cfg.jwt[0].claim_validation_rules == ()
        assert cfg.jwt[0].issuer.discovery_url == ""

    def test_yaml_timestamps_stay_strings(self) -> None:
        """A date-looking YAML scalar is a string, as Go's YAML->JSON keeps it."""
        data = FULL.replace("requiredValue: example.com", "requiredValue: 2024-01-02").encode()
        cfg = load_authentication_config(data)
        assert cfg.jwt[0].claim_validation_rules[0].required_value == "2024-01-02"


class TestStrict:
    def test_empty(self) -> None:
        """Empty data has kube-apiserver's text."""
        assert error_text(b"") == "empty config data"

    def test_unknown_fields_all_reported_with_paths(self) -> None:
        """Every unknown field is named with its path."""
        d = doc(extra=1)
        d["jwt"][0]["issuer"]["foo"] = "x"  # type: ignore[index]
        d["jwt"][0]["claimMappings"]["username"]["Claim"] = "x"  # type: ignore[index]
        assert error_text(json.dumps(d).encode()) == (
            'strict decoding error: unknown field "extra", unknown field "jwt[0].issuer.foo", '
            'unknown field "jwt[0].claimMappings.username.Claim"'
        )

    def test_field_names_are_case_sensitive(self) -> None:
        """``URL`` is not ``url``."""
        d = doc()
        d["jwt"][0]["issuer"]["URL"] = "https://x"  # type: ignore[index]
        assert 'unknown field "jwt[0].issuer.URL"' in error_text(json.dumps(d).encode())

    def test_metadata_is_unknown(self) -> None:
        """The kind has no ObjectMeta: ``metadata`` is an unknown field."""
        assert 'unknown field "metadata"' in error_text(
            json.dumps(doc(metadata={"name": "x"})).encode()
        )

    def test_unknown_anonymous_condition_field(self) -> None:
        """Unknown fields are found inside the anonymous section too."""
        d = doc(anonymous={"enabled": True, "conditions": [{"path": "/x", "verb": "get"}]})
        assert error_text(json.dumps(d).encode()) == (
            'strict decoding error: unknown field "anonymous.conditions[0].verb"'
        )

    def test_duplicate_yaml_key(self) -> None:
        """PyYAML would keep the last duplicate; we reject it with go-yaml's text."""
        data = FULL.replace(
            "    url: https://issuer.example.com\n",
            "    url: https://issuer.example.com\n    url: https://evil.example.com\n",
        ).encode()
        assert error_text(data) == (
            "error converting YAML to JSON: yaml: unmarshal errors:\n"
            '  line 6: key "url" already set in map'
        )

    def test_duplicate_json_key(self) -> None:
        """Duplicated JSON object keys are a strict decoding error."""
        data = json.dumps(doc()).replace(
            '"kind": "AuthenticationConfiguration"',
            '"kind": "AuthenticationConfiguration", "kind": "AuthenticationConfiguration"',
        )
        assert error_text(data.encode()) == 'strict decoding error: duplicate field "kind"'

    def test_missing_kind(self) -> None:
        """``kind`` is mandatory."""
        d = doc()
        del d["kind"]
        assert error_text(json.dumps(d).encode()).startswith("Object 'Kind' is missing in '{")

    def test_missing_api_version(self) -> None:
        """``apiVersion`` is mandatory."""
        d = doc()
        del d["apiVersion"]
        assert error_text(json.dumps(d).encode()).startswith("Object 'apiVersion' is missing")

    @pytest.mark.parametrize(
        ("api_version", "kind"),
        [
            ("apiserver.config.k8s.io/v2", "AuthenticationConfiguration"),
            ("v1", "AuthenticationConfiguration"),
            ("apiserver.config.k8s.io/v1", "AuthorizationConfiguration"),
            ("apiserver.config.k8s.io/v1", "authenticationconfiguration"),
        ],
    )
    def test_unregistered_kind_or_version(self, api_version: str, kind: str) -> None:
        """Only the registered group/versions and the exact kind decode."""
        text = error_text(json.dumps(doc(apiVersion=api_version, kind=kind)).encode())
        assert text == (
            f'no kind "{kind}" is registered for version "{api_version}" in scheme "k8sauthn"'
        )

    def test_wrong_types(self) -> None:
        """Wrong JSON types are reported like Go's json package."""
        d = doc()
        d["jwt"][0]["issuer"]["audiences"] = "a"  # type: ignore[index]
        d["jwt"][0]["issuer"]["url"] = 5  # type: ignore[index]
        d["anonymous"] = {"enabled": "yes"}
        text = error_text(json.dumps(d).encode())
        assert text == (
            "[json: cannot unmarshal number into Go struct field Issuer.jwt.issuer.url of type "
            "string, json: cannot unmarshal string into Go struct field Issuer.jwt.issuer.audiences"
            " of type []string, json: cannot unmarshal string into Go struct field "
            "AnonymousAuthConfig.anonymous.enabled of type bool]"
        )

    @pytest.mark.parametrize(
        ("mutate", "fragment"),
        [
            (lambda d: d.update(jwt={"a": 1}), "field AuthenticationConfiguration.jwt of type"),
            (lambda d: d["jwt"].append("x"), "cannot unmarshal string"),
            (lambda d: d["jwt"][0]["issuer"].update(audiences=[1]), "of type string"),
            (lambda d: d["jwt"][0]["claimMappings"]["username"].update(prefix=1), "prefix"),
        ],
    )
    def test_more_wrong_types(self, mutate: object, fragment: str) -> None:
        """Lists, objects and optional strings are type-checked too."""
        d = doc()
        mutate(d)  # type: ignore[operator]
        assert fragment in error_text(json.dumps(d).encode())

    def test_null_audience_entry_is_empty(self) -> None:
        """A null list element becomes the empty string (then fails validation)."""
        d = doc()
        d["jwt"][0]["issuer"]["audiences"] = [None]  # type: ignore[index]
        assert error_text(json.dumps(d).encode()) == "jwt[0].issuer.audiences[0]: Required value"

    @pytest.mark.parametrize("data", [b"- a\n- b\n", b"just a string", b"null"])
    def test_not_an_object(self, data: bytes) -> None:
        """A document that is not a mapping cannot carry a kind."""
        assert error_text(data).startswith("couldn't get version/kind")

    def test_bad_yaml(self) -> None:
        """A YAML syntax error names the problem."""
        assert error_text(b"a: [b\n").startswith("error converting YAML to JSON: yaml: ")

    def test_bad_json(self) -> None:
        """A JSON syntax error names the problem."""
        assert error_text(b'{"a": ').startswith("couldn't decode JSON: ")

    def test_not_utf8(self) -> None:
        """Bytes that are not UTF-8 are rejected with their offset."""
        assert error_text(b"kind: \xff") == "config data is not valid UTF-8 (byte 6)"

    def test_yaml_non_string_keys(self) -> None:
        """Non-string YAML keys become their JSON text and are unknown fields."""
        data = b"1: x\n" + FULL.encode()
        assert error_text(data) == 'strict decoding error: unknown field "1"'


def test_yaml_alias_bomb_refused() -> None:
    """Excessive alias use is refused before the decoder walks it."""
    lines = ["a: &a [x]"] + [f"b{i}: *a" for i in range(1001)]
    data = ("kind: AuthenticationConfiguration\n" + "\n".join(lines)).encode()
    assert error_text(data) == (
        "error converting YAML to JSON: yaml: document contains excessive aliasing"
    )


def test_some_yaml_aliases_are_fine() -> None:
    """Ordinary anchors and aliases decode."""
    data = FULL.replace("audiences: [a, b]", "audiences: &auds [a, b]").replace(
        "audiences: [c]", "audiences: *auds\n    audienceMatchPolicy: MatchAny"
    )
    cfg = load_authentication_config(data.encode())
    assert cfg.jwt[1].issuer.audiences == ("a", "b")


@pytest.mark.parametrize(
    ("data", "prefix"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "error converting YAML to JSON: "),
        (b"{" + b'"a":[' * 100_000 + b"]" * 100_000 + b"}", "couldn't decode JSON: "),
        (b"a: " + b"[" * 100_000 + b"]" * 100_000, "error converting YAML to JSON: "),
        (b'{"kind": ' + b"9" * 5000 + b"}", "couldn't decode JSON: "),
        (b"kind: " + b"9" * 5000, "error converting YAML to JSON: "),
    ],
    ids=["yaml-flow-list", "json-deep", "yaml-deep", "json-huge-int", "yaml-huge-int"],
)
def test_hostile_documents_are_config_errors(data: bytes, prefix: str) -> None:
    """Deep nesting and giant integers end in a ConfigError, not a stray interpreter error."""
    assert error_text(data).startswith(prefix)
