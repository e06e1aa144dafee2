"""CEL for JWT authenticators: compilation, evaluation, conversions (spec §13.8)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from k8sauthn.token.cel import (
    CELCompileError,
    CELEvaluationError,
    CELUnavailableError,
    cel_available,
    cel_value,
    compile_claims_expression,
    compile_user_expression,
    string_or_list,
    user_variable,
)

CLAIMS: dict[str, Any] = {
    "sub": "u1",
    "email": "jane@example.com",
    "email_verified": True,
    "n": 1,
    "x": 1.5,
    "iat": 1700081020,
    "kubernetes.io": {"namespace": "ns1"},
    "groups": ["a", "b"],
    "nested": {"a": {"b": "c"}},
    "empty": "",
    "nothing": None,
}


def claims_eval(expr: str, claims: dict[str, Any] | None = None) -> Any:
    return compile_claims_expression(expr).evaluate(
        {"claims": CLAIMS if claims is None else claims}
    )


class TestCompile:
    def test_engine_is_available(self) -> None:
        """The test environment has the k8sauthn[cel] extra."""
        assert cel_available()

    def test_syntax_error_uses_cel_go_format(self) -> None:
        """A parse error reads like cel-go: position, message, the line and a caret."""
        with pytest.raises(CELCompileError) as info:
            compile_claims_expression("1 +")
        text = str(info.value)
        assert text.startswith("ERROR: <input>:1:4: Syntax error: ")
        assert text.endswith("\n | 1 +\n | ...^")

    def test_syntax_error_after_optional_syntax_points_at_original(self) -> None:
        """Errors in an expression we rewrite are reported against the text as written."""
        with pytest.raises(CELCompileError) as info:
            compile_claims_expression("claims.?x +")
        text = str(info.value)
        assert text.startswith("ERROR: <input>:1:12: ")
        assert "\n | claims.?x +\n" in text

    def test_undeclared_variable_in_claims_expression(self) -> None:
        """``user`` is not declared in the claims environment."""
        with pytest.raises(CELCompileError) as info:
            compile_claims_expression("user.username == 'x'")
        assert str(info.value) == (
            "ERROR: <input>:1:1: undeclared reference to 'user' (in container '')\n"
            " | user.username == 'x'\n | ^"
        )

    def test_undeclared_variable_in_user_expression(self) -> None:
        """``claims`` is not declared in the user environment (spec §13.3)."""
        with pytest.raises(CELCompileError, match="undeclared reference to 'claims'"):
            compile_user_expression("claims.sub == 'x'")

    def test_undeclared_reference_position_on_second_line(self) -> None:
        """Positions count lines and columns from 1."""
        with pytest.raises(CELCompileError, match=r"<input>:2:3: undeclared reference to 'foo'"):
            compile_claims_expression("claims.a ||\n  foo")

    @pytest.mark.parametrize(
        "expr",
        [
            "claims.groups.map(g, 'p:' + g)",
            "claims.groups.exists(g, g == 'a')",
            "claims.groups.all(g, g != '')",
            "claims.groups.filter(g, g == 'a')",
            "sets.contains(claims.groups, ['a'])",
            "optional.of(1).orValue(2) == 1",
            "has(claims.sub) ? claims.sub : ''",
        ],
    )
    def test_bound_names_and_namespaces_are_not_undeclared(self, expr: str) -> None:
        """Macro variables, library namespaces and ternaries compile."""
        assert compile_claims_expression(expr).source == expr

    @pytest.mark.parametrize("expr", ["[?claims.x]", "{?'a': claims.x}", ".?x"])
    def test_unsupported_optional_forms_are_compile_errors(self, expr: str) -> None:
        """Optional list/map entries are rejected at compile time, never mis-evaluated."""
        with pytest.raises(CELCompileError, match="ERROR: <input>:1:"):
            compile_claims_expression(expr)

    def test_compilation_is_cached(self) -> None:
        """Validation and the runtime share one compiled program per expression."""
        assert compile_claims_expression("claims.sub") is compile_claims_expression("claims.sub")

    def test_unbalanced_brackets(self) -> None:
        """An unclosed bracket in a rewritten expression is a compile error."""
        with pytest.raises(CELCompileError):
            compile_claims_expression("claims.?x.orValue((1)")

    @pytest.mark.parametrize(
        ("expr", "not_bool"),
        [
            ("claims.foo", True),
            ("claims.?x.orValue(true)", True),
            ("claims['x']", True),
            ("'str'", True),
            ("1", True),
            ("claims.n + 1.0", True),
            ("size(claims.groups)", True),
            ("claims.foo == true", False),
            ("!claims.foo", False),
            ("has(claims.x)", False),
            ("claims.sub.startsWith('a')", False),
            ("claims.groups.exists(g, g == 'a')", False),
            ("true", False),
            ("x ? true : false".replace("x", "claims.b"), False),
            ("(claims.a == 1.0)", False),
            ("'a' in claims.groups", False),
        ],
    )
    def test_static_bool_shape(self, expr: str, not_bool: bool) -> None:
        """Expressions whose type is evidently not bool are flagged (cel-go's checker would)."""
        assert compile_claims_expression(expr).not_bool is not_bool


class TestEvaluate:
    @pytest.mark.parametrize(
        ("expr", "expected"),
        [
            ("string(claims.n)", "1"),
            ("string(claims.x)", "1.5"),
            ("string(int(claims.iat))", "1700081020"),
            ("claims.n == 1.0", True),
            ("claims.n", 1.0),
            ("claims.groups", ["a", "b"]),
            ("claims.nested.a.b", "c"),
            ("claims.nothing", None),
            ("claims.sub + ':' + claims.email", "u1:jane@example.com"),
            ("'a,b'.split(',')", ["a", "b"]),
            ("claims.email.lowerAscii()", "jane@example.com"),
            ("claims.groups.map(g, 'oidc:' + g)", ["oidc:a", "oidc:b"]),
        ],
    )
    def test_values(self, expr: str, expected: Any) -> None:
        """Results come back as plain Python values; JSON numbers are doubles."""
        result = claims_eval(expr)
        assert result == expected
        assert type(result) is type(expected)

    def test_missing_key_error_text(self) -> None:
        """A missing claim is ``no such key: <key>`` (spec §13.8.2)."""
        with pytest.raises(CELEvaluationError, match=r"^no such key: missing$"):
            claims_eval("claims.missing")

    def test_int_plus_double_is_an_error(self) -> None:
        """Numbers are doubles, so mixing them with int literals fails as in cel-go."""
        with pytest.raises(CELEvaluationError):
            claims_eval("claims.n + 1")

    def test_division_by_zero(self) -> None:
        """Runtime errors carry the engine's message without its hints."""
        with pytest.raises(CELEvaluationError, match=r"^division by zero$"):
            claims_eval("1 / 0")

    def test_index_out_of_range(self) -> None:
        """List indexing out of bounds is an evaluation error."""
        with pytest.raises(CELEvaluationError, match="index out of bounds"):
            claims_eval("claims.groups[5]")

    def test_user_variable(self) -> None:
        """User rules see username, uid, groups and extra."""
        user = user_variable("jane", "42", ("g1",), {"example.org/foo": ("v",)})
        expr = compile_user_expression(
            "user.username == 'jane' && user.uid == '42' && 'g1' in user.groups"
            " && user.extra['example.org/foo'] == ['v']"
        )
        assert expr.evaluate({"user": user}) is True

    def test_user_extra_escaped_field(self) -> None:
        """``user.extra.example__dot__org__slash__foo`` reads key ``example.org/foo``."""
        user = user_variable("jane", "", (), {"example.org/foo": ("v",)})
        expr = compile_user_expression("user.extra.example__dot__org__slash__foo == ['v']")
        assert expr.evaluate({"user": user}) is True

    def test_plain_dict_user_is_converted(self) -> None:
        """A plain mapping works as a variable too."""
        expr = compile_user_expression("user.username.startsWith('system:')")
        assert expr.evaluate({"user": {"username": "system:x"}}) is True


class TestOptionalSyntax:
    @pytest.mark.parametrize(
        ("expr", "expected"),
        [
            ("claims.?email.orValue('')", "jane@example.com"),
            ("claims.?missing.orValue('d')", "d"),
            ("claims.?missing.hasValue()", False),
            ("claims.?sub.hasValue()", True),
            ("claims.?sub.value()", "u1"),
            ("claims[?'email'].orValue('')", "jane@example.com"),
            ('claims[?"missing"].orValue("x")', "x"),
            ("claims.?nested.?a.?b.orValue('z')", "c"),
            ("claims.?nested.?zz.?b.orValue('z')", "z"),
            ("claims.?missing.?b.orValue('z')", "z"),
            ("claims.groups[?1].orValue('')", "b"),
            ("claims.groups[?7].orValue('none')", "none"),
            ("claims.?missing.or(claims.?sub).value()", "u1"),
            ("claims.?missing.or(optional.none()).?x.hasValue()", False),
            ("claims.?nested.value().?a.hasValue()", True),
            ("(claims.?groups.orValue([])).size()", 2),
            ("claims.?groups.orValue([]).map(g, 'p:' + g)", ["p:a", "p:b"]),
            ("claims.?kubernetes__dot__io.?namespace.orValue('')", "ns1"),
            ("claims.?email.orValue('') == 'x' ? 1.0 : 2.0", 2.0),
            ("'?' + claims.?sub.orValue('')", "?u1"),
        ],
    )
    def test_rewritten_forms(self, expr: str, expected: Any) -> None:
        """The optional syntax of the Kubernetes docs evaluates like cel-go."""
        assert claims_eval(expr) == expected

    def test_optional_select_on_non_map_is_error(self) -> None:
        """``.?`` on a string fails at run time (no such overload), like cel-go."""
        with pytest.raises(CELEvaluationError):
            claims_eval("claims.sub.?x.hasValue()")

    def test_optional_index_on_scalar_is_error(self) -> None:
        """``[?k]`` on a non-container fails at run time."""
        with pytest.raises(CELEvaluationError, match="no such overload"):
            claims_eval("claims.?sub.?x.hasValue()")

    def test_optional_result_is_not_a_string(self) -> None:
        """An optional left unwrapped is not a string: mapping callers reject it."""
        assert not isinstance(claims_eval("claims.?sub"), str)


class TestEscaping:
    @pytest.mark.parametrize(
        ("expr", "expected"),
        [
            ("claims.kubernetes__dot__io.namespace", "ns1"),
            ("claims['kubernetes.io'].namespace", "ns1"),
            ("claims['kubernetes__dot__io'].namespace", "ns1"),
            ("has(claims.kubernetes__dot__io)", True),
            ("has(claims.kubernetes__dot__io.namespace)", True),
            ("has(claims.a__dash__b)", False),
            ("claims.a__dash__b", "dash"),
            ("claims.a__slash__b", "slash"),
            ("claims.a__underscores__b", "underscores"),
            ("claims.__if__", "keyword"),
            ("claims.__foo__", "malformed kept"),
        ],
    )
    def test_unescaping(self, expr: str, expected: Any) -> None:
        """Field names are unescaped as Kubernetes does before the map lookup (spec §13.8.2)."""
        claims = dict(
            CLAIMS,
            **{
                "a-b": "dash",
                "a/b": "slash",
                "a__b": "underscores",
                "if": "keyword",
                "__foo__": "malformed kept",
            },
        )
        if expr == "has(claims.a__dash__b)":
            claims.pop("a-b")
        assert claims_eval(expr, claims) == expected


class TestReferences:
    @pytest.mark.parametrize(
        ("expr", "field", "expected"),
        [
            ("claims.email", "email", True),
            ("claims.?email.orValue('')", "email", True),
            ("has(claims.email) ? claims.email : ''", "email", True),
            ("claims.email.lowerAscii()", "email", True),
            ("[claims.sub, claims.email][1]", "email", True),
            ("claims.groups.map(g, g + claims.email)", "email", True),
            ("claims.email_", "email", False),
            ("claims.other.claims.email", "email", False),
            ("claims['email']", "email", False),
            ("'claims.email'", "email", False),
            ("claims.emails", "email", False),
            ("claims.email_verified", "email_verified", True),
            ("claims.?email_verified.orValue(false)", "email_verified", True),
            ("claims.email_verified", "email", False),
        ],
    )
    def test_select_detection(self, expr: str, field: str, expected: bool) -> None:
        """Only a field selection on the root ``claims`` counts (spec §13.3)."""
        assert compile_claims_expression(expr).references(field) is expected


class TestConversions:
    def test_cel_value_numbers_become_doubles(self) -> None:
        """Ints anywhere in the claims become floats; bools stay bools."""
        value = cel_value({"a": 1, "b": [1, True, {"c": 2}], "d": None, "e": "s"})
        assert value == {"a": 1.0, "b": [1.0, True, {"c": 2.0}], "d": None, "e": "s"}
        assert type(value["a"]) is float
        assert value["b"][1] is True

    def test_prepared_values_are_not_converted_again(self) -> None:
        """A value from cel_value is passed through unchanged (identity)."""
        prepared = cel_value({"n": 1})
        assert cel_value(prepared) == prepared

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("", ()),
            ("a", ("a",)),
            (None, ()),
            ([], ()),
            (["", ""], ()),
            (["a", "", "b"], ("a", "b")),
        ],
    )
    def test_string_or_list(self, value: Any, expected: tuple[str, ...]) -> None:
        """Strings and lists of strings convert; empties are dropped (spec §13.8.3)."""
        assert string_or_list(value) == expected

    @pytest.mark.parametrize("value", [1.0, True, ["a", 1.0], {"a": "b"}])
    def test_string_or_list_rejects(self, value: Any) -> None:
        """Anything else is the spec's error."""
        with pytest.raises(
            CELEvaluationError, match=r"^expression must return a string or a list of strings$"
        ):
            string_or_list(value)


class TestWithoutExtra:
    @pytest.fixture
    def no_engine(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        import sys

        from k8sauthn.token import cel as cel_module

        def clear() -> None:
            cel_module._engine.cache_clear()
            compile_claims_expression.cache_clear()
            compile_user_expression.cache_clear()

        monkeypatch.setitem(sys.modules, "cel", None)
        clear()
        yield
        monkeypatch.undo()
        clear()

    @pytest.mark.usefixtures("no_engine")
    def test_compile_names_the_extra(self) -> None:
        """Without the extra, compiling fails with a message naming it."""
        assert not cel_available()
        with pytest.raises(CELUnavailableError, match=r"pip install 'k8sauthn\[cel\]'"):
            compile_claims_expression("claims.sub")

    @pytest.mark.usefixtures("no_engine")
    def test_config_with_expressions_fails_at_load(self) -> None:
        """A config that uses an expression fails validation at the expression's path."""
        from k8sauthn.config.authentication import (
            ClaimMappings,
            Issuer,
            JWTAuthenticatorConfig,
            PrefixedClaimOrExpression,
        )
        from k8sauthn.config.authentication_validation import validate_jwt_authenticator

        cfg = JWTAuthenticatorConfig(
            issuer=Issuer(url="https://x.example.com", audiences=("a",)),
            claim_mappings=ClaimMappings(
                username=PrefixedClaimOrExpression(expression="claims.sub")
            ),
        )
        assert [str(e) for e in validate_jwt_authenticator(cfg)] == [
            'claimMappings.username.expression: Invalid value: "claims.sub": CEL expressions '
            "need the 'cel' extra: pip install 'k8sauthn[cel]'"
        ]

    @pytest.mark.usefixtures("no_engine")
    def test_config_without_expressions_loads(self) -> None:
        """Claim-only configurations do not need the extra."""
        from k8sauthn.config.authentication import (
            ClaimMappings,
            Issuer,
            JWTAuthenticatorConfig,
            PrefixedClaimOrExpression,
        )
        from k8sauthn.config.authentication_validation import validate_jwt_authenticator

        cfg = JWTAuthenticatorConfig(
            issuer=Issuer(url="https://x.example.com", audiences=("a",)),
            claim_mappings=ClaimMappings(
                username=PrefixedClaimOrExpression(claim="sub", prefix="")
            ),
        )
        assert validate_jwt_authenticator(cfg) == []


def test_failing_helper_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A helper failure surfaces as an evaluation error, not also as an ERROR log line."""
    with pytest.raises(CELEvaluationError):
        claims_eval("claims.?sub.?x.hasValue()")
    assert not [r for r in caplog.records if r.name == "cel"]


def test_two_variable_comprehension_is_a_clear_compile_error() -> None:
    """cel-go's ``all(k, v, ...)`` is not in the engine: say so at load time."""
    with pytest.raises(CELCompileError) as info:
        compile_claims_expression("claims.nested.all(k, v, k != '')")
    assert str(info.value).startswith(
        "ERROR: <input>:1:15: two-variable comprehensions (all) are not supported"
    )


@pytest.mark.parametrize(
    "expr",
    ["type(claims.sub) == string", "type(claims.n) == double", "type(claims.groups) == list"],
)
def test_type_names_are_values(expr: str) -> None:
    """Type identifiers compile and compare like cel-go's."""
    assert claims_eval(expr) is True


@pytest.mark.parametrize(
    ("expr", "col"),
    [
        ("claims.sub.find('[a-z]+') == 'x'", 12),
        ("isURL(claims.iss)", 1),
        ("claims.groups.isSorted()", 15),
        ("'%s'.format([claims.sub])", 6),
    ],
)
def test_kubernetes_library_functions_fail_at_load(expr: str, col: int) -> None:
    """Functions the engine lacks are compile errors, not a failure on every token."""
    with pytest.raises(CELCompileError) as info:
        compile_claims_expression(expr)
    assert str(info.value).startswith(f"ERROR: <input>:1:{col}: function '")
    assert "is not supported by the engine" in str(info.value)
