"""Source-level helpers for CEL: a lexer, bracket grouping and the optional-syntax rewrite.

The CEL engine we use (``common-expression-language``) evaluates optional *values*
(``optional.of``, ``.orValue``, ``.hasValue``, ``.value``, ``.or``) but does not parse the optional
*syntax* the Kubernetes docs use (``claims.?x``, ``claims[?"k"]``), nor does it apply Kubernetes'
identifier unescaping (``claims.kubernetes__dot__io`` reads claim ``kubernetes.io``, spec §13.8.2).
This module rewrites the source into forms the engine accepts; ``_cel_static`` answers the static
questions validation needs.

The rewrite works on tokens grouped by brackets, never on raw text, so string literals and
comments are never touched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Final

import attrs

__all__ = [
    "OPTIONAL_INDEX_FUNCTION",
    "RewriteError",
    "Token",
    "code_tokens",
    "group",
    "position_preserving",
    "rewrite",
    "tokenize",
    "unescape_field",
]

#: The helper function the rewrite calls for ``[?k]`` and for ``.?f`` on an optional receiver.
OPTIONAL_INDEX_FUNCTION: Final = "k8sauthn_optional_index"


class RewriteError(ValueError):
    """The source cannot be tokenized or uses syntax we cannot rewrite."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.pos = pos


@attrs.frozen
class Token:
    """One lexical token: ``kind`` is ident, num, str, punct or space; ``pos`` a source offset."""

    kind: str
    text: str
    pos: int


_STRING = (
    r"(?:[rR][bB]?|[bB][rR]?)?"
    r"(?:\"\"\"(?:\\[\s\S]|[^\\])*?\"\"\"|'''(?:\\[\s\S]|[^\\])*?'''"
    r"|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*')"
)
_RAW_STRING = (
    r"(?:[rR][bB]?|[bB][rR])"
    r"(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|\"[^\"\n]*\"|'[^'\n]*')"
)
_LEXER: Final = re.compile(
    rf"(?P<space>\s+|//[^\n]*)"
    rf"|(?P<str>{_RAW_STRING}|{_STRING})"
    r"|(?P<num>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?[uU]?)"
    r"|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<punct>==|!=|<=|>=|&&|\|\||[-+*/%<>!?:.,()\[\]{}])"
)


def tokenize(source: str) -> list[Token]:
    """Split CEL source into tokens, whitespace and comments included (as ``space``)."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(source):
        m = _LEXER.match(source, pos)
        if m is None or m.end() == pos:
            raise RewriteError(f"unexpected character {source[pos]!r}", pos)
        kind = m.lastgroup or "punct"
        tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    return tokens


def _code(tokens: Sequence[Token]) -> list[Token]:
    return [t for t in tokens if t.kind != "space"]


# --- Kubernetes identifier unescaping (k8s.io/apiserver/pkg/cel escaping rules) -------------------

_RESERVED: Final = frozenset(
    {
        *("true", "false", "null", "in", "as", "break", "const", "continue", "else", "for"),
        *("function", "if", "import", "let", "loop", "package", "namespace", "return", "var"),
        *("void", "while"),
    }
)
_ESCAPES: Final = {"dot": ".", "dash": "-", "slash": "/", "underscores": "__"}
_ESCAPE_RE: Final = re.compile(r"__([A-Za-z0-9]+)__")


def unescape_field(name: str) -> str:
    """The claim key a CEL field name reads: ``a__dot__b`` -> ``a.b``; malformed escapes kept."""
    if len(name) > 4 and name.startswith("__") and name.endswith("__") and name[2:-2] in _RESERVED:
        return name[2:-2]
    if "__" not in name:
        return name
    malformed = False

    def repl(m: re.Match[str]) -> str:
        nonlocal malformed
        to = _ESCAPES.get(m.group(1))
        if to is None:
            malformed = True
            return m.group()
        return to

    out = _ESCAPE_RE.sub(repl, name)
    return name if malformed else out


def _cel_string(value: str) -> str:
    # JSON string syntax is a subset of CEL's double-quoted string syntax.
    return json.dumps(value)


def _literal_value(tok: Token) -> str | None:
    """The value of a plain (non-raw, non-bytes, single-line) string literal token, else None."""
    if tok.kind != "str" or tok.text[0] not in "\"'" or tok.text.startswith(('"""', "'''")):
        return None
    body = tok.text[1:-1]
    if "\\" in body:
        return None
    return body


# --- Bracket grouping -----------------------------------------------------------------------------

_OPEN: Final = {"(": ")", "[": "]", "{": "}"}


@attrs.define
class _Item:
    """A token or a whole bracketed group (``kind`` paren/bracket/brace), or rewritten code."""

    kind: str  # ident num str punct paren bracket brace code
    text: str
    pos: int
    inner: list[_Item] = attrs.field(factory=list)
    optional: bool = False  # the item is (certainly) an optional value
    escaped_key: str | None = None  # a bracket item produced from an escaped ``.field``
    question: bool = False  # a bracket group that began with ``?`` (``[?k]``)


def _group(tokens: Sequence[Token]) -> list[_Item]:
    stack: list[tuple[Token, list[_Item]]] = []
    out: list[_Item] = []
    for tok in tokens:
        if tok.kind == "punct" and tok.text in _OPEN:
            stack.append((tok, out))
            out = []
        elif tok.kind == "punct" and tok.text in (")", "]", "}"):
            if not stack or _OPEN[stack[-1][0].text] != tok.text:
                raise RewriteError(f"unbalanced {tok.text!r}", tok.pos)
            open_tok, parent = stack.pop()
            kind = {"(": "paren", "[": "bracket", "{": "brace"}[open_tok.text]
            parent.append(_Item(kind, open_tok.text, open_tok.pos, inner=out))
            out = parent
        else:
            out.append(_Item(tok.kind, tok.text, tok.pos))
    if stack:
        raise RewriteError(f"unbalanced {stack[-1][0].text!r}", stack[-1][0].pos)
    return out


def _render(items: Sequence[_Item]) -> str:
    parts: list[str] = []
    for it in items:
        if it.kind in ("paren", "bracket", "brace"):
            close = _OPEN[it.text]
            parts.append(it.text + _render(it.inner) + close)
        else:
            parts.append(it.text)
    return " ".join(parts)


_OPERAND_END: Final = frozenset({"ident", "num", "str", "paren", "bracket", "brace", "code"})
_OPTIONAL_CALLS: Final = frozenset({"or", "of", "none", "ofNonZeroValue"})


def _receiver_start(out: Sequence[_Item], pos: int) -> int:
    """Index in ``out`` where the postfix expression that ends ``out`` starts."""
    i = len(out) - 1
    while i >= 0:
        it = out[i]
        if it.kind == "ident":
            if i >= 2 and out[i - 1].kind == "punct" and out[i - 1].text == ".":
                i -= 2
                continue
            return i
        if it.kind in ("paren", "brace"):
            if i >= 1 and out[i - 1].kind == "ident":
                i -= 1
                continue
            return i
        if it.kind == "bracket":
            if i >= 1 and out[i - 1].kind in _OPERAND_END:
                i -= 1
                continue
            return i
        if it.kind in ("num", "str", "code"):
            return i
        break
    raise RewriteError("optional selection needs a receiver", pos)


def _is_optional(receiver: Sequence[_Item]) -> bool:
    if len(receiver) == 1 and receiver[0].optional:
        return True
    return (
        len(receiver) >= 2
        and receiver[-1].kind == "paren"
        and receiver[-2].kind == "ident"
        and receiver[-2].text in _OPTIONAL_CALLS
    )


def _optional_access(receiver: Sequence[_Item], key_code: str, *, plain_key: bool) -> _Item:
    recv = _render(receiver)
    if plain_key and not _is_optional(receiver):
        # Pure CEL for the common case: about 7x cheaper than a Python callback.
        text = f"({key_code} in {recv} ? optional.of({recv}[{key_code}]) : optional.none())"
    else:
        text = f"{OPTIONAL_INDEX_FUNCTION}({recv}, {key_code})"
    return _Item("code", text, receiver[0].pos, optional=True)


def _rewrite_items(items: Sequence[_Item]) -> list[_Item]:
    out: list[_Item] = []
    i = 0
    while i < len(items):
        it = items[i]
        if it.kind in ("paren", "bracket", "brace"):
            it = attrs.evolve(it, inner=_rewrite_items(_strip_question(it)))
            it.question = bool(items[i].inner) and _starts_with_question(items[i])
            if it.text == "{" and it.question:
                raise RewriteError("optional map entries are not supported", items[i].pos)
            if it.kind == "bracket" and it.question:
                if not out or out[-1].kind not in _OPERAND_END:
                    raise RewriteError("optional list elements are not supported", it.pos)
                start = _receiver_start(out, it.pos)
                receiver = out[start:]
                del out[start:]
                key = _index_key(it.inner)
                key_code = key if key is not None else _render(it.inner)
                out.append(_optional_access(receiver, key_code, plain_key=key is not None))
                i += 1
                continue
            if it.kind == "bracket" and out and out[-1].kind in _OPERAND_END:
                key = _index_key(it.inner)
                if key is not None:
                    it.inner = [_Item("code", key, it.pos)]
            if it.kind == "paren" and out and out[-1].kind == "ident" and out[-1].text == "has":
                replaced = _rewrite_has(it)
                if replaced is not None:
                    out[-1] = replaced
                    i += 1
                    continue
            out.append(it)
            i += 1
            continue
        if it.kind == "punct" and it.text == ".":
            nxt = items[i + 1] if i + 1 < len(items) else None
            if nxt is not None and nxt.kind == "punct" and nxt.text == "?":
                field = items[i + 2] if i + 2 < len(items) else None
                if field is None or field.kind != "ident":
                    raise RewriteError("expected a field name after '.?'", nxt.pos)
                start = _receiver_start(out, it.pos)
                receiver = out[start:]
                del out[start:]
                key = _cel_string(unescape_field(field.text))
                out.append(_optional_access(receiver, key, plain_key=True))
                i += 3
                continue
            if nxt is not None and nxt.kind == "ident" and out and out[-1].kind in _OPERAND_END:
                key = unescape_field(nxt.text)
                if key != nxt.text:
                    code = _Item("code", _cel_string(key), nxt.pos)
                    out.append(_Item("bracket", "[", it.pos, inner=[code], escaped_key=key))
                    i += 2
                    continue
        out.append(it)
        i += 1
    return out


def _starts_with_question(group: _Item) -> bool:
    first = group.inner[0] if group.inner else None
    return first is not None and first.kind == "punct" and first.text == "?"


def _strip_question(group: _Item) -> list[_Item]:
    return group.inner[1:] if _starts_with_question(group) else group.inner


def _index_key(inner: Sequence[_Item]) -> str | None:
    """A single string-literal index, unescaped as Kubernetes unescapes map keys."""
    if len(inner) == 1 and inner[0].kind == "str":
        value = _literal_value(Token("str", inner[0].text, inner[0].pos))
        if value is not None:
            return _cel_string(unescape_field(value))
    return None


def _rewrite_has(group: _Item) -> _Item | None:
    # has(x.a__dot__b) cannot become has(x["a.b"]) (has() takes a field selection): use `in`.
    inner = group.inner
    if inner and inner[-1].kind == "bracket" and inner[-1].escaped_key is not None:
        key = _cel_string(inner[-1].escaped_key)
        return _Item("code", f"({key} in {_render(inner[:-1])})", group.pos)
    return None


def rewrite(source: str) -> str | None:
    """Source the engine accepts, or None when ``source`` needs no rewriting."""
    tokens = _code(tokenize(source))
    needs = (
        any(t.kind == "punct" and t.text == "?" for t in tokens)
        or any(t.kind == "ident" and "__" in t.text for t in tokens)
        or any(t.kind == "str" and "__" in t.text for t in tokens)
    )
    if not needs:
        return None
    rewritten = _render(_rewrite_items(_group(tokens)))
    return rewritten


def position_preserving(source: str) -> str:
    """``source`` with the ``?`` of ``.?``/``[?`` blanked, so parse errors keep their columns."""
    chars = list(source)
    prev: Token | None = None
    for tok in _code(tokenize(source)):
        if (
            tok.kind == "punct"
            and tok.text == "?"
            and prev is not None
            and prev.kind == "punct"
            and prev.text in (".", "[", "{")
        ):
            chars[tok.pos] = " "
        prev = tok
    return "".join(chars)


def code_tokens(source: str) -> list[Token]:
    """The tokens of ``source`` without whitespace and comments."""
    return _code(tokenize(source))


def group(tokens: Sequence[Token]) -> list[_Item]:
    """Tokens nested by brackets (``(...)``, ``[...]``, ``{...}`` become one item each)."""
    return _group(tokens)
