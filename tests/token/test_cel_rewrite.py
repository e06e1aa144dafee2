"""The source-level CEL helpers: lexer, optional-syntax rewrite, unescaping, static checks."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis.strategies import text as st_text

from k8sauthn.token import _cel_rewrite as rw
from k8sauthn.token import _cel_static as st
from k8sauthn.token.cel import compile_claims_expression


class TestTokenize:
    def test_kinds(self) -> None:
        """Identifiers, numbers, strings and punctuation are told apart."""
        toks = [t for t in rw.tokenize("a.b == 1.5e3 && 'x' != 0x1Fu") if t.kind != "space"]
        assert [(t.kind, t.text) for t in toks] == [
            ("ident", "a"),
            ("punct", "."),
            ("ident", "b"),
            ("punct", "=="),
            ("num", "1.5e3"),
            ("punct", "&&"),
            ("str", "'x'"),
            ("punct", "!="),
            ("num", "0x1Fu"),
        ]

    @pytest.mark.parametrize(
        "literal",
        ['"a.?b"', "'a[?b'", 'r"a\\"', "'''x\ny'''", '"""a"b"""', 'b"x"', 'R"x"', '"a\\"b"'],
    )
    def test_string_literals_are_single_tokens(self, literal: str) -> None:
        """Every CEL string literal form is one token, so the rewrite never edits inside it."""
        assert [t.text for t in rw.tokenize(literal)] == [literal]

    def test_comments_are_space(self) -> None:
        """``//`` comments are skipped like whitespace."""
        toks = rw.tokenize("a // claims.?x\n")
        assert [t.kind for t in toks] == ["ident", "space", "space", "space"]

    def test_unknown_character(self) -> None:
        """A character CEL does not know is a positioned error."""
        with pytest.raises(rw.RewriteError) as info:
            rw.tokenize("a # b")
        assert info.value.pos == 2


class TestRewrite:
    @pytest.mark.parametrize("expr", ["claims.sub", "claims.a.b == 'x.?y'", "has(claims.x)"])
    def test_nothing_to_rewrite(self, expr: str) -> None:
        """Expressions the engine parses are compiled exactly as written."""
        assert rw.rewrite(expr) is None

    def test_optional_select_uses_pure_cel(self) -> None:
        """``claims.?x`` on a map becomes a presence test and optional.of/none."""
        out = rw.rewrite("claims.?x")
        assert out == '("x" in claims ? optional.of(claims["x"]) : optional.none())'

    def test_chained_optional_uses_helper(self) -> None:
        """A ``.?`` on an optional receiver goes through the helper function."""
        out = rw.rewrite("claims.?a.?b")
        assert out is not None
        assert out.startswith(rw.OPTIONAL_INDEX_FUNCTION + "(")

    def test_string_contents_untouched(self) -> None:
        """A ``.?`` inside a string literal survives the rewrite."""
        out = rw.rewrite("claims.?a.orValue('.?')")
        assert out is not None
        assert "'.?'" in out

    def test_has_with_escaped_field(self) -> None:
        """``has(x.a__dot__b)`` becomes an ``in`` test on the unescaped key."""
        assert rw.rewrite("has(claims.a__dot__b)") == '("a.b" in claims)'

    def test_missing_field_after_optional(self) -> None:
        """``claims.?`` without a field name is an error."""
        with pytest.raises(rw.RewriteError, match="field name"):
            rw.rewrite("claims.?1")

    def test_position_preserving(self) -> None:
        """Blanking the optional markers keeps every column of the source."""
        assert rw.position_preserving("claims.?x + c[?'k']") == "claims. x + c[ 'k']"

    def test_ternary_is_not_blanked(self) -> None:
        """A conditional's ``?`` is kept by position_preserving."""
        assert rw.position_preserving("a ? b : c") == "a ? b : c"


class TestUnescape:
    @pytest.mark.parametrize(
        ("name", "key"),
        [
            ("plain", "plain"),
            ("kubernetes__dot__io", "kubernetes.io"),
            ("a__dash__b__slash__c", "a-b/c"),
            ("a__underscores__b", "a__b"),
            ("__true__", "true"),
            ("__namespace__", "namespace"),
            ("x__true__", "x__true__"),
            ("__foo__", "__foo__"),
            ("a__dot__b__bad__c", "a__dot__b__bad__c"),
            ("a__b", "a__b"),
        ],
    )
    def test_rules(self, name: str, key: str) -> None:
        """Kubernetes' escapes map back; malformed escapes leave the name as written."""
        assert rw.unescape_field(name) == key


class TestStatic:
    def test_root_identifiers_skip_fields_and_calls(self) -> None:
        """Fields, function names and literals are not variable references."""
        names = [t.text for t in st.root_identifiers("size(claims.a) > 0 && x.y.z(w) ? v : true")]
        assert names == ["claims", "x", "w", "v"]

    def test_optional_index_expression_is_a_root(self) -> None:
        """The key expression inside ``[?k]`` is itself evaluated."""
        assert [t.text for t in st.root_identifiers("claims[?k]")] == ["claims", "k"]

    def test_bound_variables(self) -> None:
        """Comprehension variables are collected from every macro."""
        toks = rw.tokenize("a.map(x, x).filter(y, y).exists_one(z, z)")
        assert st.bound_variables(toks) == {"x", "y", "z"}

    def test_selects_tolerates_garbage(self) -> None:
        """A source the lexer rejects selects nothing."""
        assert st.selects("claims.email #", "claims", "email") is False

    def test_certainly_not_bool_tolerates_garbage(self) -> None:
        """A source the lexer rejects is left to the compiler."""
        assert st.certainly_not_bool("#") is False

    def test_empty_parens(self) -> None:
        """``()`` is not evidently non-bool."""
        assert st.certainly_not_bool("()") is False

    def test_compile_roundtrip_on_rewritten_escapes(self) -> None:
        """A rewritten index with an escaped key compiles and evaluates."""
        expr = compile_claims_expression("claims['a__dot__b']")
        assert expr.evaluate({"claims": {"a.b": "v"}}) == "v"


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("[1.0, 2.0][?1].orValue(0.0)", 2.0),
        ("{'a': 'x'}.?a.orValue('')", "x"),
        ("{'a': 'x'}[?'b'].orValue('none')", "none"),
        ("(claims).?sub.orValue('')", "u"),
        ("!claims.?missing.hasValue()", True),
        ("claims.?sub.orValue(claims.?other.orValue('z'))", "u"),
        ("claims.m.?x.hasValue()", True),
    ],
)
def test_receivers(expr: str, expected: object) -> None:
    """Literals, parentheses and unary operators delimit the receiver of ``.?`` correctly."""
    result = compile_claims_expression(expr).evaluate({"claims": {"sub": "u", "m": {"x": None}}})
    assert result == expected


@pytest.mark.parametrize("expr", ["a)", "(a", "a]", "{a"])
def test_unbalanced(expr: str) -> None:
    """Unbalanced brackets are positioned rewrite errors."""
    with pytest.raises(rw.RewriteError, match="unbalanced"):
        rw.group(rw.code_tokens(expr))


def test_string_receiver_is_literal() -> None:
    """A string literal receiver of ``.?`` fails at run time like cel-go."""
    from k8sauthn.token.cel import CELEvaluationError

    with pytest.raises(CELEvaluationError):
        compile_claims_expression("'abc'.?x.hasValue()").evaluate({"claims": {}})


_ALPHABET = "claims.?[]()'\"{}:,_ab1 !=<>&|+-*/%\\\nrb"


@settings(max_examples=300, deadline=None)
@given(st_text(alphabet=_ALPHABET, max_size=40))
def test_compile_never_crashes(source: str) -> None:
    """Any text compiles or raises CELCompileError, then evaluates or raises CELEvaluationError."""
    from k8sauthn.token.cel import CELCompileError, CELEvaluationError

    try:
        expr = compile_claims_expression(source)
    except CELCompileError:
        return
    with contextlib.suppress(CELEvaluationError):
        expr.evaluate({"claims": {"a": {"b": 1}, "b": [1, "x"]}})
