"""Every validation rule of spec §13.3 and §6: message, path, and that all are reported at once."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from k8sauthn.config._gourl import go_quote, parse_url, redacted
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
)
from k8sauthn.config.authentication_validation import (
    validate_authentication_config,
    validate_jwt_authenticator,
)
from k8sauthn.request.anonymous import AnonymousConfig
from tests._pki import Cert

BASE = JWTAuthenticatorConfig(
    issuer=Issuer(url="https://issuer.example.com", audiences=("a",)),
    claim_mappings=ClaimMappings(username=PrefixedClaimOrExpression(claim="sub", prefix="")),
)

EMAIL_RULE = (
    'claimMappings.username.expression: Invalid value: "claims.email": claims.email_verified '
    "must be used in claimMappings.username.expression or claimMappings.extra[*].valueExpression"
    " or claimValidationRules[*].expression when claims.email is used in "
    "claimMappings.username.expression"
)


def issuer(**kw: Any) -> JWTAuthenticatorConfig:
    return attrs.evolve(BASE, issuer=attrs.evolve(BASE.issuer, **kw))


def mappings(**kw: Any) -> JWTAuthenticatorConfig:
    return attrs.evolve(BASE, claim_mappings=attrs.evolve(BASE.claim_mappings, **kw))


def username_expr(expr: str, **kw: Any) -> JWTAuthenticatorConfig:
    return mappings(username=PrefixedClaimOrExpression(expression=expr), **kw)


def rules(*r: ClaimValidationRule) -> JWTAuthenticatorConfig:
    return attrs.evolve(BASE, claim_validation_rules=r)


def user_rules(*r: UserValidationRule) -> JWTAuthenticatorConfig:
    return attrs.evolve(BASE, user_validation_rules=r)


def texts(cfg: JWTAuthenticatorConfig, **kw: object) -> list[str]:
    return [str(e) for e in validate_jwt_authenticator(cfg, **kw)]  # type: ignore[arg-type]


def test_base_is_valid() -> None:
    """The fixture every case starts from has no error."""
    assert texts(BASE) == []


CASES: list[tuple[str, JWTAuthenticatorConfig, list[str]]] = [
    # Issuer URL
    ("url required", issuer(url=""), ["issuer.url: Required value"]),
    (
        "url scheme",
        issuer(url="http://issuer.example.com"),
        ['issuer.url: Invalid value: "http://issuer.example.com": URL scheme must be https'],
    ),
    (
        "url scheme is case-insensitive",
        issuer(url="HTTPS://issuer.example.com"),
        [],
    ),
    (
        "url userinfo",
        issuer(url="https://user@issuer.example.com"),
        [
            'issuer.url: Invalid value: "https://user@issuer.example.com": URL must not contain a'
            " username or password"
        ],
    ),
    (
        "url query",
        issuer(url="https://issuer.example.com?x"),
        ['issuer.url: Invalid value: "https://issuer.example.com?x": URL must not contain a query'],
    ),
    ("url lone question mark", issuer(url="https://issuer.example.com?"), []),
    (
        "url fragment",
        issuer(url="https://issuer.example.com#f"),
        [
            'issuer.url: Invalid value: "https://issuer.example.com#f": URL must not contain a '
            "fragment"
        ],
    ),
    ("url empty fragment", issuer(url="https://issuer.example.com#"), []),
    ("url path and trailing slash", issuer(url="https://issuer.example.com/tenant/"), []),
    (
        "url several problems together",
        issuer(url="http://u:p@x?q#f"),
        [
            'issuer.url: Invalid value: "http://u:xxxxx@x?q#f": URL scheme must be https',
            'issuer.url: Invalid value: "http://u:xxxxx@x?q#f": URL must not contain a username '
            "or password",
            'issuer.url: Invalid value: "http://u:xxxxx@x?q#f": URL must not contain a query',
            'issuer.url: Invalid value: "http://u:xxxxx@x?q#f": URL must not contain a fragment',
        ],
    ),
    (
        "url bad port",
        issuer(url="https://x:bad"),
        [
            'issuer.url: Invalid value: "https://x:bad": parse "https://x:bad": invalid port ":bad"'
            " after host"
        ],
    ),
    (
        "url no scheme",
        issuer(url="issuer.example.com"),
        ['issuer.url: Invalid value: "issuer.example.com": URL scheme must be https'],
    ),
    # Discovery URL
    (
        "discovery equals url modulo slashes",
        issuer(discovery_url="https://issuer.example.com///"),
        [
            'issuer.discoveryURL: Invalid value: "https://issuer.example.com///": discoveryURL '
            "must be different from URL"
        ],
    ),
    (
        "discovery url checks",
        issuer(discovery_url="http://internal/x?y"),
        [
            'issuer.discoveryURL: Invalid value: "http://internal/x?y": URL scheme must be https',
            'issuer.discoveryURL: Invalid value: "http://internal/x?y": URL must not contain a '
            "query",
        ],
    ),
    ("discovery url fine", issuer(discovery_url="https://internal/.well-known/x"), []),
    # Audiences
    (
        "audiences required",
        issuer(audiences=()),
        ["issuer.audiences: Required value: at least one issuer.audiences is required"],
    ),
    (
        "audience entries",
        issuer(audiences=("a", "", "a"), audience_match_policy="MatchAny"),
        ["issuer.audiences[1]: Required value", 'issuer.audiences[2]: Duplicate value: "a"'],
    ),
    (
        "several audiences need MatchAny",
        issuer(audiences=("a", "b")),
        [
            'issuer.audienceMatchPolicy: Invalid value: "": audienceMatchPolicy must be MatchAny '
            "for multiple audiences"
        ],
    ),
    (
        "one audience and a policy",
        issuer(audience_match_policy="MatchAll"),
        [
            'issuer.audienceMatchPolicy: Invalid value: "MatchAll": audienceMatchPolicy must be '
            "empty or MatchAny for single audience"
        ],
    ),
    ("one audience MatchAny", issuer(audience_match_policy="MatchAny"), []),
    # CA and egress
    (
        "ca without certificates",
        issuer(certificate_authority="not a pem"),
        [
            'issuer.certificateAuthority: Invalid value: "<omitted>": data does not contain any '
            "valid RSA or ECDSA certificates"
        ],
    ),
    (
        "egress selector",
        issuer(egress_selector_type="x"),
        [
            'issuer.egressSelectorType: Invalid value: "x": egress selector must be either '
            "controlplane or cluster"
        ],
    ),
    ("egress cluster", issuer(egress_selector_type="cluster"), []),
    # Claim validation rules
    (
        "rule claim and expression",
        rules(ClaimValidationRule(claim="c", expression="true")),
        ['claimValidationRules[0]: Invalid value: "c": claim and expression can\'t both be set'],
    ),
    (
        "rule neither",
        rules(ClaimValidationRule()),
        ["claimValidationRules[0]: Required value: claim or expression is required"],
    ),
    (
        "rule claim with message",
        rules(ClaimValidationRule(claim="c", message="m")),
        [
            'claimValidationRules[0].message: Invalid value: "m": may not be specified when '
            "claim is set"
        ],
    ),
    (
        "rule duplicate claim",
        rules(ClaimValidationRule(claim="c"), ClaimValidationRule(claim="c", required_value="x")),
        ['claimValidationRules[1].claim: Duplicate value: "c"'],
    ),
    (
        "rule expression with requiredValue",
        rules(ClaimValidationRule(expression="true", required_value="v")),
        [
            'claimValidationRules[0].requiredValue: Invalid value: "v": may not be specified when'
            " expression is set"
        ],
    ),
    (
        "rule duplicate expression",
        rules(ClaimValidationRule(expression="true"), ClaimValidationRule(expression="true")),
        ['claimValidationRules[1].expression: Duplicate value: "true"'],
    ),
    (
        "rule not bool",
        rules(ClaimValidationRule(expression="claims.foo")),
        ['claimValidationRules[0].expression: Invalid value: "claims.foo": must evaluate to bool'],
    ),
    (
        "rule optional orValue is dyn",
        rules(ClaimValidationRule(expression="claims.?x.orValue(true)")),
        [
            'claimValidationRules[0].expression: Invalid value: "claims.?x.orValue(true)": must '
            "evaluate to bool"
        ],
    ),
    (
        "rule compile error",
        rules(ClaimValidationRule(expression="claims.x ==")),
        [
            'claimValidationRules[0].expression: Invalid value: "claims.x ==": compilation '
            "failed: ERROR: <input>:1:12: Syntax error: mismatched input '<EOF>' expecting "
            "{'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, "
            "NUM_UINT, STRING, BYTES, IDENTIFIER}\n | claims.x ==\n | ...........^"
        ],
    ),
    ("rule empty required value ok", rules(ClaimValidationRule(claim="c")), []),
    # Claim mappings
    (
        "username both",
        mappings(username=PrefixedClaimOrExpression(claim="sub", expression="claims.sub")),
        ['claimMappings.username: Invalid value: "": claim and expression can\'t both be set'],
    ),
    (
        "username neither",
        mappings(username=PrefixedClaimOrExpression()),
        ["claimMappings.username: Required value: claim or expression is required"],
    ),
    (
        "username expression with empty prefix",
        mappings(username=PrefixedClaimOrExpression(expression="claims.sub", prefix="")),
        [
            'claimMappings.username.prefix: Invalid value: "": may not be specified when '
            "expression is set"
        ],
    ),
    (
        "username claim without prefix",
        mappings(username=PrefixedClaimOrExpression(claim="sub")),
        [
            "claimMappings.username.prefix: Required value: prefix is required when claim is "
            "set. It can be set to an empty string to disable prefixing"
        ],
    ),
    ("groups neither is fine", mappings(groups=PrefixedClaimOrExpression()), []),
    (
        "groups claim without prefix",
        mappings(groups=PrefixedClaimOrExpression(claim="g")),
        [
            "claimMappings.groups.prefix: Required value: prefix is required when claim is "
            "set. It can be set to an empty string to disable prefixing"
        ],
    ),
    (
        "groups expression compile error",
        mappings(groups=PrefixedClaimOrExpression(expression="user.groups")),
        [
            'claimMappings.groups.expression: Invalid value: "user.groups": compilation failed: '
            "ERROR: <input>:1:1: undeclared reference to 'user' (in container '')\n"
            " | user.groups\n | ^"
        ],
    ),
    (
        "uid both",
        mappings(uid=ClaimOrExpression(claim="sid", expression="claims.sid")),
        ['claimMappings.uid: Invalid value: "": claim and expression can\'t both be set'],
    ),
    (
        "uid expression compile error",
        mappings(uid=ClaimOrExpression(expression="(")),
        ['claimMappings.uid.expression: Invalid value: "(": compilation failed: ERROR: '],
    ),
    ("uid claim", mappings(uid=ClaimOrExpression(claim="sid")), []),
    # Extra
    (
        "extra key required",
        mappings(extra=(ExtraMapping("", "claims.x"),)),
        ["claimMappings.extra[0].key: Required value"],
    ),
    (
        "extra key not domain prefixed",
        mappings(extra=(ExtraMapping("foo", "claims.x"),)),
        [
            'claimMappings.extra[0].key: Invalid value: "foo": must be a domain-prefixed path '
            '(such as "acme.io/foo")'
        ],
    ),
    (
        "extra key empty parts",
        mappings(extra=(ExtraMapping("/foo", "claims.x"), ExtraMapping("a.io/", "claims.x"))),
        [
            'claimMappings.extra[0].key: Invalid value: "/foo": must be a domain-prefixed path '
            '(such as "acme.io/foo")',
            'claimMappings.extra[1].key: Invalid value: "a.io/": must be a domain-prefixed path '
            '(such as "acme.io/foo")',
        ],
    ),
    (
        "extra key uppercase",
        mappings(extra=(ExtraMapping("example.org/Foo", "claims.x"),)),
        ['claimMappings.extra[0].key: Invalid value: "example.org/Foo": must be lowercase'],
    ),
    (
        "extra key bad domain",
        mappings(extra=(ExtraMapping("ex_ample.org/foo", "claims.x"),)),
        [
            'claimMappings.extra[0].key: Invalid value: "ex_ample.org": a lowercase RFC 1123 '
            "subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
            "start and end with an alphanumeric character (e.g. 'example.com', regex used for "
            "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        ],
    ),
    (
        "extra key bad path",
        mappings(extra=(ExtraMapping("example.org/a b", "claims.x"),)),
        [
            'claimMappings.extra[0].key: Invalid value: "a b": Invalid path (regex used for '
            "validation is '[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')"
        ],
    ),
    (
        "extra key domain too long",
        mappings(extra=(ExtraMapping("a" * 254 + "/x", "claims.x"),)),
        [
            f'claimMappings.extra[0].key: Invalid value: "{"a" * 254}": must be no more than 253'
            " characters"
        ],
    ),
    (
        "extra key reserved",
        mappings(
            extra=(
                ExtraMapping("kubernetes.io/x", "claims.x"),
                ExtraMapping("k8s.io/x", "claims.x"),
                ExtraMapping("sub.k8s.io/x", "claims.x"),
                ExtraMapping("a.kubernetes.io/x", "claims.x"),
            )
        ),
        [
            f'claimMappings.extra[{i}].key: Invalid value: "{k}": k8s.io, kubernetes.io and their'
            " subdomains are reserved for Kubernetes use"
            for i, k in enumerate(
                ["kubernetes.io/x", "k8s.io/x", "sub.k8s.io/x", "a.kubernetes.io/x"]
            )
        ],
    ),
    (
        "extra lookalike domains are fine",
        mappings(
            extra=(ExtraMapping("ak8s.io/x", "claims.x"), ExtraMapping("bkubernetes.io/x", "1"))
        ),
        [],
    ),
    (
        "extra duplicate key not compiled",
        mappings(extra=(ExtraMapping("a.io/x", "claims.x"), ExtraMapping("a.io/x", "(("))),
        ['claimMappings.extra[1].key: Duplicate value: "a.io/x"'],
    ),
    (
        "extra value required",
        mappings(extra=(ExtraMapping("a.io/x", ""),)),
        ["claimMappings.extra[0].valueExpression: Required value"],
    ),
    (
        "extra value compile error",
        mappings(extra=(ExtraMapping("a.io/x", "foo"),)),
        [
            'claimMappings.extra[0].valueExpression: Invalid value: "foo": compilation failed: '
            "ERROR: <input>:1:1: undeclared reference to 'foo' (in container '')\n | foo\n | ^"
        ],
    ),
    # The email rule
    ("email without verified", username_expr("claims.email"), [EMAIL_RULE]),
    (
        "email optional without verified",
        username_expr("claims.?email.orValue('')"),
        [EMAIL_RULE.replace('"claims.email"', "\"claims.?email.orValue('')\"")],
    ),
    (
        "email verified in username",
        username_expr("claims.email_verified ? claims.email : claims.sub"),
        [],
    ),
    (
        "email verified in extra",
        username_expr(
            "claims.email", extra=(ExtraMapping("a.io/v", "string(claims.email_verified)"),)
        ),
        [],
    ),
    (
        "email verified in a claim rule",
        attrs.evolve(
            username_expr("claims.email"),
            claim_validation_rules=(ClaimValidationRule(expression="claims.email_verified"),),
        ),
        # the rule is dyn, so it fails to compile and does not count
        [
            'claimValidationRules[0].expression: Invalid value: "claims.email_verified": must '
            "evaluate to bool",
            EMAIL_RULE,
        ],
    ),
    (
        "email verified in a compiled claim rule",
        attrs.evolve(
            username_expr("claims.email"),
            claim_validation_rules=(
                ClaimValidationRule(expression="claims.email_verified == true"),
            ),
        ),
        [],
    ),
    (
        "email verified only in a user rule does not count",
        attrs.evolve(
            username_expr("claims.email"),
            user_validation_rules=(UserValidationRule("user.username != 'claims.email_verified'"),),
        ),
        [EMAIL_RULE],
    ),
    (
        "email rule not checked when the username mapping has an error",
        mappings(username=PrefixedClaimOrExpression(expression="claims.email", prefix="")),
        [
            'claimMappings.username.prefix: Invalid value: "": may not be specified when '
            "expression is set"
        ],
    ),
    ("email index form is not detected", username_expr("claims['email']"), []),
    ("email lookalike claim", username_expr("claims.email_"), []),
    ("email under another claim", username_expr("claims.other.claims.email"), []),
    (
        "email in username claim form has no rule",
        mappings(username=PrefixedClaimOrExpression(claim="email", prefix="")),
        [],
    ),
    # User validation rules
    (
        "user rule required",
        user_rules(UserValidationRule("")),
        ["userValidationRules[0].expression: Required value"],
    ),
    (
        "user rule duplicate",
        user_rules(UserValidationRule("true"), UserValidationRule("true", "m")),
        ['userValidationRules[1].expression: Duplicate value: "true"'],
    ),
    (
        "user rule uses claims",
        user_rules(UserValidationRule("claims.sub == 'x'")),
        [
            "userValidationRules[0].expression: Invalid value: \"claims.sub == 'x'\": "
            "compilation failed: ERROR: <input>:1:1: undeclared reference to 'claims' (in "
            "container '')\n | claims.sub == 'x'\n | ^"
        ],
    ),
    (
        "user rule not bool",
        user_rules(UserValidationRule("user.username")),
        [
            'userValidationRules[0].expression: Invalid value: "user.username": must evaluate '
            "to bool"
        ],
    ),
    (
        "user rule fine",
        user_rules(UserValidationRule("!user.username.startsWith('system:')")),
        [],
    ),
]


@pytest.mark.parametrize(("cfg", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule(cfg: JWTAuthenticatorConfig, expected: list[str]) -> None:
    """Each rule yields exactly Kubernetes' message at the unrooted path."""
    got = texts(cfg)
    if len(expected) == 1 and expected[0].endswith("compilation failed: ERROR: "):
        assert len(got) == 1
        assert got[0].startswith(expected[0])
    else:
        assert got == expected


def test_valid_ca() -> None:
    """A PEM bundle with a certificate passes."""
    pem = Cert.new_ca("validation-ca").pem.decode()
    assert texts(issuer(certificate_authority=pem)) == []


def test_disallowed_issuers() -> None:
    """A service-account issuer cannot be a JWT issuer; the list is sorted, space-separated."""
    got = texts(BASE, disallowed_issuers=["https://z.example", "https://issuer.example.com"])
    assert got == [
        'issuer.url: Invalid value: "https://issuer.example.com": URL must not overlap with '
        "disallowed issuers: [https://issuer.example.com https://z.example]"
    ]


def test_disallowed_issuers_do_not_apply_to_discovery() -> None:
    """The discovery URL is not an issuer URL."""
    cfg = issuer(discovery_url="https://sa.example.com")
    assert texts(cfg, disallowed_issuers=["https://sa.example.com"]) == []


def test_rooted_paths_and_all_errors_at_once() -> None:
    """A file's errors are rooted at jwt[i] and every one is reported."""
    cfg = AuthenticationConfiguration(
        jwt=(
            issuer(url=""),
            attrs.evolve(BASE, claim_mappings=ClaimMappings()),
            BASE,
            BASE,
        )
    )
    assert [str(e) for e in validate_authentication_config(cfg)] == [
        "jwt[0].issuer.url: Required value",
        "jwt[1].claimMappings.username: Required value: claim or expression is required",
        'jwt[2].issuer.url: Duplicate value: "https://issuer.example.com"',
        'jwt[3].issuer.url: Duplicate value: "https://issuer.example.com"',
    ]


def test_audiences_required_detail_uses_full_path() -> None:
    """Kubernetes formats the rooted path into the detail text (source wins over spec)."""
    cfg = AuthenticationConfiguration(jwt=(issuer(audiences=()),))
    assert [str(e) for e in validate_authentication_config(cfg)] == [
        "jwt[0].issuer.audiences: Required value: at least one jwt[0].issuer.audiences is required"
    ]


def test_duplicate_discovery_urls() -> None:
    """Non-empty discovery URLs must be unique across authenticators."""
    one = issuer(discovery_url="https://d.example/x")
    two = attrs.evolve(one, issuer=attrs.evolve(one.issuer, url="https://other.example.com"))
    cfg = AuthenticationConfiguration(jwt=(one, two))
    assert [str(e) for e in validate_authentication_config(cfg)] == [
        'jwt[1].issuer.discoveryURL: Duplicate value: "https://d.example/x"'
    ]


def test_too_many_stops_other_checks() -> None:
    """More than 64 authenticators is the only error reported."""
    many = tuple(issuer(url="") for _ in range(65))
    assert [
        str(e) for e in validate_authentication_config(AuthenticationConfiguration(jwt=many))
    ] == ["jwt: Too many: 65: must have at most 64 items"]


def test_sixty_four_is_fine() -> None:
    """Exactly 64 distinct authenticators validate."""
    jwts = tuple(issuer(url=f"https://i{n}.example.com") for n in range(64))
    assert validate_authentication_config(AuthenticationConfiguration(jwt=jwts)) == []


def test_anonymous_disabled_with_conditions() -> None:
    """Conditions need enabled: true (spec §6)."""
    cfg = AuthenticationConfiguration(anonymous=AnonymousConfig(enabled=False, conditions=("/x",)))
    assert [str(e) for e in validate_authentication_config(cfg)] == [
        'anonymous.conditions: Invalid value: [{"Path":"/x"}]: enabled should be set to true when '
        "conditions are defined"
    ]


class TestGoURL:
    @pytest.mark.parametrize(
        ("raw", "error"),
        [
            ("https://x:bad", 'parse "https://x:bad": invalid port ":bad" after host'),
            ("://x", 'parse "://x": missing protocol scheme'),
            ("https://[::1", "parse \"https://[::1\": missing ']' in host"),
            ("https://[::1]:x", 'parse "https://[::1]:x": invalid port ":x" after host'),
            (
                "https://x/\x7f",
                'parse "https://x/\\x7f": net/url: invalid control character in URL',
            ),
            ("a:b/c", None),
            ("1a:b", 'parse "1a:b": first path segment in URL cannot contain colon'),
            ("https://x/%zz", 'parse "https://x/%zz": invalid URL escape "%zz"'),
            ("https://x/%", 'parse "https://x/%": invalid URL escape "%"'),
            ("https://a b/", 'parse "https://a b/": invalid character " " in host name'),
            ("https://a^b@x/", 'parse "https://a^b@x/": net/url: invalid userinfo'),
            ("https://x#%zz", 'parse "https://x#%zz": invalid URL escape "%zz"'),
            ("https://x:443/p", None),
            ("https:opaque", None),
        ],
    )
    def test_parse_errors(self, raw: str, error: str | None) -> None:
        """Go's url.Parse errors, quoted with Go's %q."""
        if error is None:
            parse_url(raw)
        else:
            with pytest.raises(ValueError) as info:
                parse_url(raw)
            assert str(info.value) == error

    def test_parts(self) -> None:
        """Scheme (lowercased), userinfo, query and fragment are told apart."""
        u = parse_url("HTTPS://u@h:1/p?q=1#frag")
        assert (u.scheme, u.has_user, u.host, u.raw_query, u.fragment) == (
            "https",
            True,
            "h:1",
            "q=1",
            "frag",
        )

    @pytest.mark.parametrize(
        ("text", "quoted"),
        [
            ("a", '"a"'),
            ('a"b\\', '"a\\"b\\\\"'),
            ("\n\t", '"\\n\\t"'),
            ("\x01", '"\\x01"'),
            ("é", '"é"'),
            ("\u200b", '"\\u200b"'),
            ("\U000e0001", '"\\U000e0001"'),
        ],
    )
    def test_go_quote(self, text: str, quoted: str) -> None:
        """strconv.Quote escapes."""
        assert go_quote(text) == quoted


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("https://u:secret@x/p", "https://u:xxxxx@x/p"),
        ("https://u@x", "https://u@x"),
        ("https://x/a:b@c", "https://x/a:b@c"),
        ("no-scheme:pw@x", "no-scheme:pw@x"),
        ("https://u:p:q@x?y#z", "https://u:xxxxx@x?y#z"),
    ],
)
def test_redacted(raw: str, shown: str) -> None:
    """Passwords in URLs are replaced like Go's URL.Redacted."""
    assert redacted(raw) == shown


def test_password_never_in_messages() -> None:
    """A rejected issuer URL is shown with its password redacted."""
    got = texts(issuer(url="https://user:hunter2@issuer.example.com"))
    assert got == [
        'issuer.url: Invalid value: "https://user:xxxxx@issuer.example.com": URL must not '
        "contain a username or password"
    ]
    assert "hunter2" not in " ".join(got)


def test_password_never_in_duplicate_or_discovery_messages() -> None:
    """Duplicate issuer/discovery URLs and the same-as-URL error are redacted too."""
    url = "https://user:hunter2@issuer.example.com"
    one = issuer(url=url, discovery_url=url + "/")
    got = [
        str(e) for e in validate_authentication_config(AuthenticationConfiguration(jwt=(one, one)))
    ]
    assert "hunter2" not in " ".join(got)
    assert (
        'jwt[0].issuer.discoveryURL: Invalid value: "https://user:xxxxx@issuer.example.com/": '
        "discoveryURL must be different from URL"
    ) in got
    assert 'jwt[1].issuer.url: Duplicate value: "https://user:xxxxx@issuer.example.com"' in got
    assert (
        'jwt[1].issuer.discoveryURL: Duplicate value: "https://user:xxxxx@issuer.example.com/"'
    ) in got


def test_issuer_repr_redacts_passwords() -> None:
    """A configuration value that is logged never shows a URL password."""
    shown = repr(Issuer(url="https://u:hunter2@a.example", discovery_url="https://v:pw2@b.example"))
    assert "hunter2" not in shown
    assert "pw2" not in shown
    assert "'https://u:xxxxx@a.example'" in shown
