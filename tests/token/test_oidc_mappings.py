"""JWTAuthenticator: claim mappings, rules and distributed claims (spec §13.5, §13.7-§13.9)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from k8sauthn import CREDENTIAL_ID_KEY, BackendUnavailable, Context, Fetch, Fetched, run_pure
from k8sauthn.config.authentication import (
    ClaimMappings,
    ClaimOrExpression,
    ClaimValidationRule,
    ExtraMapping,
    PrefixedClaimOrExpression,
    UserValidationRule,
)
from k8sauthn.token.jws import ALGORITHMS
from k8sauthn.token.oidc import InvalidJWT, JWTAuthenticator

from ._drive import drive
from ._jwt import AUDIENCE, ISSUER, NOW, claims, config, default_keys, token

CTX = Context(now=NOW)
P = PrefixedClaimOrExpression


def authn(**kwargs: Any) -> JWTAuthenticator:
    return JWTAuthenticator.from_config(
        config(**kwargs), signing_algs=ALGORITHMS, keys=default_keys()
    )


def mapped(a: JWTAuthenticator, **payload: Any) -> Any:
    resp = run_pure(a.token_flow(token(claims(**payload)), CTX))
    assert resp is not None
    return resp.user


def rejected(a: JWTAuthenticator, **payload: Any) -> str:
    with pytest.raises(InvalidJWT) as info:
        run_pure(a.token_flow(token(claims(**payload)), CTX))
    return str(info.value)


class TestUsernameClaim:
    def test_prefix_is_prepended(self) -> None:
        """A non-empty prefix is prepended verbatim."""
        a = authn(username=P(claim="sub", prefix="oidc:"))
        assert mapped(a).name == "oidc:jane"

    def test_missing_and_non_string_username(self) -> None:
        """The claim must be present and a JSON string."""
        a = authn(username=P(claim="name", prefix=""))
        assert rejected(a) == 'oidc: parse username claims "name": claim not present'
        assert (
            rejected(a, name=5)
            == 'oidc: parse username claims "name": json: cannot unmarshal number into Go value '
            "of type string"
        )

    def test_empty_username_is_the_prefix(self) -> None:
        """An empty string is accepted and yields just the prefix."""
        assert mapped(authn(username=P(claim="sub", prefix="p:")), sub="").name == "p:"

    def test_email_verified_rules(self) -> None:
        """email needs email_verified true (boolean) when present; absent counts as verified."""
        a = authn(username=P(claim="email", prefix=""))
        assert mapped(a, email="j@x.io").name == "j@x.io"
        assert mapped(a, email="j@x.io", email_verified=True).name == "j@x.io"
        assert rejected(a, email="j@x.io", email_verified=False) == "oidc: email not verified"
        assert rejected(a, email="j@x.io", email_verified=None) == "oidc: email not verified"
        assert (
            rejected(a, email="j@x.io", email_verified="true")
            == "oidc: parse 'email_verified' claim: json: cannot unmarshal string into Go value "
            "of type bool"
        )

    def test_email_verified_is_irrelevant_for_other_claims(self) -> None:
        """Only the claim named exactly ``email`` triggers the email_verified rule."""
        assert mapped(authn(), email_verified="nope").name == "jane"


class TestGroupsClaim:
    A = authn(groups=P(claim="groups", prefix="g:"))

    @pytest.mark.parametrize(
        ("value", "groups"),
        [
            (["a", "b", "a", ""], ("g:a", "g:b", "g:a", "g:")),
            ("solo", ("g:solo",)),
            (None, ()),
            ([], ()),
            (["a", None], ("g:a", "g:")),
        ],
    )
    def test_list_string_and_null(self, value: Any, groups: tuple[str, ...]) -> None:
        """Lists keep order, duplicates and empties; a string is one group; null is none."""
        assert groups == mapped(self.A, groups=value).groups

    def test_absent_groups_claim_is_no_groups(self) -> None:
        """An absent groups claim is fine."""
        assert mapped(self.A).groups == ()

    @pytest.mark.parametrize(
        ("value", "kind"), [(5, "number"), ([1, "a"], "array"), ({"a": 1}, "object")]
    )
    def test_wrong_types_fail_with_go_text(self, value: Any, kind: str) -> None:
        """Non-string scalars and mixed arrays fail like Go's fallback decode."""
        assert (
            f'oidc: parse groups claim "groups": json: cannot unmarshal {kind} into Go value '
            "of type string" == rejected(self.A, groups=value)
        )


class TestUIDAndExtra:
    def test_uid_claim(self) -> None:
        """The uid claim must exist and be a string (empty allowed)."""
        a = authn(
            claim_mappings=ClaimMappings(
                username=P(claim="sub", prefix=""), uid=ClaimOrExpression(claim="oid")
            )
        )
        assert mapped(a, oid="u-1").uid == "u-1"
        assert mapped(a, oid="").uid == ""
        assert rejected(a) == 'oidc: parse uid claim "oid": claim not present'
        assert rejected(a, oid=1).startswith('oidc: parse uid claim "oid": json: cannot unmarshal')

    def test_claim_names_are_quoted_like_go(self) -> None:
        """Claim names in errors use Go's %q quoting."""
        a = authn(username=P(claim='we"ird', prefix=""))
        assert rejected(a) == 'oidc: parse username claims "we\\"ird": claim not present'

    def test_jti_becomes_the_credential_id(self) -> None:
        """A non-empty string jti is the credential-id extra; other jti values are ignored."""
        a = authn()
        assert dict(mapped(a, jti="abc").extra) == {CREDENTIAL_ID_KEY: ("JTI=abc",)}
        assert dict(mapped(a, jti="").extra) == {}
        assert dict(mapped(a, jti=7).extra) == {}
        assert dict(mapped(a, jti=None).extra) == {}


def cel_authn(**mappings: Any) -> JWTAuthenticator:
    rules = mappings.pop("claim_validation_rules", ())
    user_rules = mappings.pop("user_validation_rules", ())
    mappings.setdefault("username", P(expression="claims.sub"))
    return authn(
        claim_mappings=ClaimMappings(**mappings),
        claim_validation_rules=rules,
        user_validation_rules=user_rules,
    )


class TestCELMappings:
    def test_nested_claims_via_expressions(self) -> None:
        """Username, groups, uid and extra can come from nested claims."""
        a = cel_authn(
            username=P(expression="'u:' + claims.profile.name"),
            groups=P(expression="claims.realm_access.roles"),
            uid=ClaimOrExpression(expression="string(int(claims.num))"),
            extra=(
                ExtraMapping("example.org/tenant", "claims.tenant"),
                ExtraMapping("example.org/empty", "''"),
                ExtraMapping("example.org/list", "['a', '', 'b']"),
            ),
        )
        user = mapped(
            a,
            profile={"name": "jane"},
            realm_access={"roles": ["admin", ""]},
            num=42,
            tenant="t1",
            jti="j",
        )
        assert (user.name, user.uid, user.groups) == ("u:jane", "42", ("admin",))
        assert dict(user.extra) == {
            CREDENTIAL_ID_KEY: ("JTI=j",),
            "example.org/tenant": ("t1",),
            "example.org/list": ("a", "b"),
        }

    def test_username_expression_errors(self) -> None:
        """Non-string, empty and failing username expressions have distinct texts."""
        assert (
            rejected(cel_authn(username=P(expression="claims.iat")))
            == "oidc: error evaluating username claim expression: username claim expression must "
            "return a string"
        )
        assert (
            rejected(cel_authn(username=P(expression="''")))
            == "oidc: empty username via CEL expression is not allowed"
        )
        text = rejected(cel_authn(username=P(expression="claims.nope")))
        assert text.startswith(
            "oidc: error evaluating username claim expression: expression 'claims.nope' "
            "resulted in error: "
        )
        assert "nope" in text

    def test_optional_syntax_is_supported(self) -> None:
        """``claims.?x.orValue(y)`` works as in the Kubernetes docs."""
        a = cel_authn(username=P(expression="claims.?preferred.orValue(claims.sub)"))
        assert mapped(a).name == "jane"
        assert mapped(a, preferred="pj").name == "pj"

    def test_groups_and_uid_expression_type_errors(self) -> None:
        """Groups must be a string or list of strings; uid must be a string."""
        assert (
            rejected(cel_authn(groups=P(expression="[1, 2]")))
            == "oidc: error evaluating group claim expression: expression must return a string or "
            "a list of strings"
        )
        assert (
            rejected(cel_authn(uid=ClaimOrExpression(expression="1")))
            == "oidc: error evaluating uid claim expression: uid claim expression must return a "
            "string"
        )

    def test_every_extra_expression_is_evaluated_before_any_is_converted(self) -> None:
        """An evaluation error in a later mapping wins over a type error in an earlier one."""
        a = cel_authn(
            extra=(
                ExtraMapping("example.org/a", "{'a': 1}"),
                ExtraMapping("example.org/b", "claims.missing"),
            )
        )
        assert rejected(a).startswith("expression 'claims.missing' resulted in error: ")

    def test_extra_errors_have_no_oidc_prefix_for_evaluation(self) -> None:
        """An extra evaluation error is bare; a type error names the expression."""
        bad_eval = cel_authn(extra=(ExtraMapping("example.org/x", "claims.missing"),))
        assert rejected(bad_eval).startswith("expression 'claims.missing' resulted in error: ")
        bad_type = cel_authn(extra=(ExtraMapping("example.org/x", "{'a': 1}"),))
        assert (
            rejected(bad_type)
            == "oidc: error evaluating extra claim expression: {'a': 1}: expression must return "
            "a string or a list of strings"
        )


class TestRules:
    def test_required_claims(self) -> None:
        """Required claims: absent, non-string and mismatching values have Kubernetes' texts."""
        a = authn(claim_validation_rules=(ClaimValidationRule(claim="hd", required_value="x.io"),))
        assert mapped(a, hd="x.io").name == "jane"
        assert rejected(a) == "oidc: required claim hd not present in ID token"
        assert (
            rejected(a, hd=True)
            == "oidc: parse claim hd: json: cannot unmarshal bool into Go value of type string"
        )
        assert (
            rejected(a, hd="y.io")
            == "oidc: required claim hd value does not match. Got = y.io, want = x.io"
        )

    def test_empty_required_value_needs_an_empty_claim(self) -> None:
        """requiredValue "" means the claim must be present with the value ""."""
        a = authn(claim_validation_rules=(ClaimValidationRule(claim="hd", required_value=""),))
        assert mapped(a, hd="").name == "jane"
        assert "not present" in rejected(a)

    def test_required_claims_run_after_the_mappings(self) -> None:
        """A mapping error wins over a missing required claim (spec §13.5 order)."""
        a = authn(
            username=P(claim="name", prefix=""),
            claim_validation_rules=(ClaimValidationRule(claim="hd", required_value="x"),),
        )
        assert "claim not present" in rejected(a)
        assert "name" in rejected(a)

    def test_cel_claim_rules(self) -> None:
        """CEL claim rules: false gives the message; errors win over falses; order kept."""
        a = cel_authn(
            claim_validation_rules=(
                ClaimValidationRule(
                    expression="claims.exp - claims.iat <= 7200.0", message="too long"
                ),
                ClaimValidationRule(expression="claims.sub != 'root'", message="no root"),
            )
        )
        assert mapped(a).name == "jane"
        assert (
            rejected(a, exp=int(NOW) + 10_000)
            == "oidc: error evaluating claim validation expression: validation expression "
            "'claims.exp - claims.iat <= 7200.0' failed: too long"
        )
        assert rejected(a, sub="root").endswith("failed: no root")
        err = cel_authn(
            claim_validation_rules=(
                ClaimValidationRule(expression="claims.sub == 'x'", message="first"),
                ClaimValidationRule(expression="claims.nope == 'x'", message="second"),
            )
        )
        assert rejected(err).startswith(
            "oidc: error evaluating claim validation expression: expression "
            "'claims.nope == 'x'' resulted in error: "
        )

    def test_user_rules_see_the_final_user(self) -> None:
        """User rules see the prefixed username; the message ends an unset message empty."""
        a = authn(
            username=P(claim="sub", prefix="system:"),
            user_validation_rules=(
                UserValidationRule(
                    expression="!user.username.startsWith('system:')", message="reserved"
                ),
            ),
        )
        assert (
            "oidc: error evaluating user info validation rule: validation expression "
            "\"!user.username.startsWith('system:')\" failed: reserved".replace('"', "'")
            == rejected(a)
        )
        revoked = authn(
            user_validation_rules=(
                UserValidationRule(
                    expression=(
                        "!('JTI=bad' in user.extra[\"authentication.kubernetes.io/credential-id\"])"
                    )
                ),
            ),
        )
        assert mapped(revoked, jti="ok").name == "jane"
        assert rejected(revoked, jti="bad").endswith("failed: ")


class TestDistributedClaims:
    A = authn(groups=P(claim="groups", prefix="g:"))
    SRC = {"src1": {"endpoint": "https://claims.example/groups", "access_token": "AT"}}

    def test_normal_claim_wins_and_no_names_is_nothing(self) -> None:
        """A present groups claim is used as is; without _claim_names nothing is fetched."""
        assert drive(
            self.A.token_flow(
                token(
                    claims(groups=["a"], _claim_names={"groups": "src1"}, _claim_sources=self.SRC)
                ),
                CTX,
            ),
            [],
        )[0].user.groups == ("g:a",)
        assert drive(self.A.token_flow(token(), CTX), [])[0].user.groups == ()

    def test_endpoint_is_fetched_and_its_jwt_verified(self) -> None:
        """The endpoint's JWT (same keys via its issuer) provides the groups."""
        tok = token(claims(_claim_names={"groups": "src1"}, _claim_sources=self.SRC))
        claim_jwt = token(claims(groups=["x", "y"])).encode()
        discovery = json.dumps({"issuer": ISSUER, "jwks_uri": ISSUER + "/jwks"}).encode()
        resp, effects = drive(
            self.A.token_flow(tok, CTX),
            [
                Fetched(200, {}, claim_jwt),
                Fetched(200, {}, discovery),
                Fetched(200, {}, json.dumps(default_keys()).encode()),
            ],
        )
        assert resp.user.groups == ("g:x", "g:y")
        fetches = [e for e in effects if isinstance(e, Fetch)]
        assert fetches[0].headers["authorization"] == "Bearer AT"
        assert [f.url for f in fetches] == [
            "https://claims.example/groups",
            ISSUER + "/.well-known/openid-configuration",
            ISSUER + "/jwks",
        ]

    def test_distributed_failures(self) -> None:
        """Transport errors, bad statuses and tokens lacking the claim have Kubernetes' texts."""
        tok = token(claims(_claim_names={"groups": "src1"}, _claim_sources=self.SRC))
        prefix = (
            'oidc: could not expand distributed claims: while getting distributed claim "groups": '
        )
        with pytest.raises(InvalidJWT) as info:
            drive(self.A.token_flow(tok, CTX), [BackendUnavailable("GET x: ConnectError")])
        assert prefix + "GET x: ConnectError" == str(info.value)
        with pytest.raises(InvalidJWT) as info:
            drive(self.A.token_flow(tok, CTX), [Fetched(404, {}, b"")])
        assert prefix + "error while getting distributed claim JWT: 404 Not Found" == str(
            info.value
        )
        with pytest.raises(InvalidJWT) as info:
            drive(self.A.token_flow(tok, CTX), [Fetched(200, {}, b"garbage")])
        assert str(info.value) == (
            "oidc: could not expand distributed claims: getting untrusted issuer from endpoint "
            'https://claims.example/groups failed for claim "groups": malformed token'
        )
        plain_http = token(claims(iss="http://claims.example")).encode()
        with pytest.raises(InvalidJWT) as info:
            drive(self.A.token_flow(tok, CTX), [Fetched(200, {}, plain_http)])
        assert str(info.value).endswith(
            "verifying untrusted issuer http://claims.example failed: "
            'verifier not initialized for issuer: "http://claims.example"'
        )

    def test_claim_sources_problems(self) -> None:
        """Missing or malformed sources, and aggregated (endpoint-less) claims."""
        names = {"groups": "src1"}
        for payload, text in [
            ({"_claim_names": {"other": "src1"}, "_claim_sources": self.SRC}, None),
            ({"_claim_names": names, "_claim_sources": {"src1": {"JWT": "e30"}}}, None),
        ]:
            assert mapped(self.A, **payload).groups == ()
            assert text is None
        # go-oidc already requires every name to reference an existing source.
        with pytest.raises(InvalidJWT, match="source does not exist"):
            run_pure(self.A.token_flow(token(claims(_claim_names=names)), CTX))

    @pytest.mark.parametrize(
        ("payload", "text"),
        [
            ({"_claim_names": {}}, "oidc: no claim sources"),
            ({"_claim_names": None}, "oidc: no claim sources"),
            (
                {"_claim_names": {}, "_claim_sources": {"s": {"JWT": 5}}},
                "oidc: could not parse claim sources: json: cannot unmarshal number "
                "into Go struct field endpoint.JWT of type string",
            ),
        ],
    )
    def test_claim_map_errors_use_kubernetes_decoding(
        self, payload: dict[str, Any], text: str
    ) -> None:
        """_claim_names/_claim_sources are read by exact key, as Kubernetes' expand reads them."""
        # go-oidc's own check (every name needs a source) passes: only expand() rejects these.
        full = token({**claims(), **payload})
        with pytest.raises(InvalidJWT) as info:
            run_pure(self.A.token_flow(full, CTX))
        assert str(info.value) == "oidc: could not expand distributed claims: " + text

    def test_go_oidc_type_errors_come_first(self) -> None:
        """Malformed maps fail go-oidc's struct decoding before expand() sees them."""
        bad = token({**claims(), "_claim_names": {"groups": 1}, "_claim_sources": {}})
        with pytest.raises(InvalidJWT, match=r"Go struct field idToken\._claim_names of type"):
            run_pure(self.A.token_flow(bad, CTX))

    def test_differently_cased_claim_names_are_not_resolved(self) -> None:
        """Only the exact ``_claim_names`` key triggers a fetch (go-oidc folds, expand does not)."""
        payload = {**claims(), "_Claim_Names": {"groups": "src1"}, "_Claim_Sources": self.SRC}
        resp, effects = drive(self.A.token_flow(token(payload), CTX), [])
        assert (resp.user.groups, effects) == ((), [])

    def test_source_fields_match_case_insensitively_and_token_stays_secret(self) -> None:
        """``Endpoint``/``ACCESS_TOKEN`` fill the Go struct; the bearer token is never shown."""
        sources = {"src1": {"Endpoint": "https://claims.example/g", "ACCESS_TOKEN": "s3cret"}}
        tok = token(claims(_claim_names={"groups": "src1"}, _claim_sources=sources))
        with pytest.raises(InvalidJWT) as info:
            drive(self.A.token_flow(tok, CTX), [Fetched(500, {}, b"s3cret")])
        assert str(info.value).endswith(
            "error while getting distributed claim JWT: 500 Internal Server Error"
        )
        flow = self.A.token_flow(tok, CTX)
        fetch = next(flow)
        assert fetch.url == "https://claims.example/g"
        assert fetch.headers == {"authorization": "Bearer s3cret"}
        assert fetch.max_bytes <= 128 * 1024
        assert "s3cret" not in repr(fetch) + repr(self.A) + str(info.value)
        flow.close()

    def test_audience_of_the_claim_jwt_is_checked(self) -> None:
        """The distributed JWT is verified with the same audiences."""
        tok = token(claims(_claim_names={"groups": "src1"}, _claim_sources=self.SRC))
        bad = token(claims(groups=["x"], aud="someone-else")).encode()
        with pytest.raises(
            InvalidJWT, match="verify distributed claim token: oidc: expected audience"
        ):
            drive(
                self.A.token_flow(tok, CTX),
                [
                    Fetched(200, {}, bad),
                    Fetched(
                        200, {}, json.dumps({"issuer": ISSUER, "jwks_uri": ISSUER + "/k"}).encode()
                    ),
                    Fetched(200, {}, json.dumps(default_keys()).encode()),
                ],
            )
        missing = token(claims()).encode()
        with pytest.raises(InvalidJWT, match="did not contain claim: groups"):
            drive(self.A.token_flow(tok, CTX), [Fetched(200, {}, missing)])


def test_audience_constant_is_the_client_id() -> None:
    """The test config uses the single client-id audience."""
    assert authn().audiences == (AUDIENCE,)
