"""Static questions about CEL source, answered without a type checker (spec §13.3, §13.8.1).

Which variables an expression references, whether it selects ``claims.email``, which names
comprehension macros bind, and whether its result is certainly not a bool. All work on tokens
(``_cel_rewrite``), never on raw text.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final

from ._cel_rewrite import RewriteError, Token, code_tokens, group

__all__ = [
    "bound_variables",
    "certainly_not_bool",
    "root_identifiers",
    "selects",
    "two_variable_macro",
]


def selects(source: str, variable: str, field: str) -> bool:
    """Whether ``variable.field`` or ``variable.?field`` appears, ``variable`` a root identifier.

    This is how Kubernetes decides whether ``claims.email`` / ``claims.email_verified`` is used
    (spec §13.3): only a field selection counts (``claims["email"]`` does not), only on the root
    identifier (``claims.other.claims.email`` does not), and only the exact field name.
    """
    try:
        toks = code_tokens(source)
    except RewriteError:
        return False
    for i, tok in enumerate(toks):
        if tok.kind != "ident" or tok.text != variable:
            continue
        if i > 0 and toks[i - 1].kind == "punct" and toks[i - 1].text == ".":
            continue
        j = i + 1
        if j < len(toks) and toks[j].text == "." and toks[j].kind == "punct":
            j += 1
            if j < len(toks) and toks[j].kind == "punct" and toks[j].text == "?":
                j += 1
            if j < len(toks) and toks[j].kind == "ident" and toks[j].text == field:
                return True
    return False


_MACROS: Final = frozenset({"all", "exists", "exists_one", "map", "filter"})


def bound_variables(tokens: Sequence[Token]) -> set[str]:
    """Names bound by comprehension macros: the ``x`` of ``list.map(x, ...)``."""
    toks = [t for t in tokens if t.kind != "space"]
    bound: set[str] = set()
    for i in range(1, len(toks) - 3):
        if (
            toks[i].kind == "ident"
            and toks[i].text in _MACROS
            and toks[i - 1].text == "."
            and toks[i + 1].text == "("
            and toks[i + 2].kind == "ident"
            and toks[i + 3].text == ","
        ):
            bound.add(toks[i + 2].text)
    return bound


_TWO_VARIABLE_MACROS: Final = frozenset(
    {
        "all",
        "exists",
        "existsOne",
        "exists_one",
        "transformList",
        "transformMap",
        "transformMapEntry",
    }
)


def two_variable_macro(tokens: Sequence[Token]) -> Token | None:
    """The first ``x.all(k, v, ...)``-style call: cel-go has them, our engine does not."""
    toks = [t for t in tokens if t.kind != "space"]
    for i in range(1, len(toks) - 5):
        if (
            toks[i].kind == "ident"
            and toks[i].text in _TWO_VARIABLE_MACROS
            and toks[i - 1].text == "."
            and toks[i + 1].text == "("
            and toks[i + 2].kind == "ident"
            and toks[i + 3].text == ","
            and toks[i + 4].kind == "ident"
            and toks[i + 5].text == ","
        ):
            return toks[i]
    return None


def root_identifiers(source: str) -> Iterator[Token]:
    """Identifiers that are not a field name, a function name, a keyword or a map key."""
    toks = code_tokens(source)
    for i, tok in enumerate(toks):
        if tok.kind != "ident" or tok.text in ("true", "false", "null", "in"):
            continue
        prev = toks[i - 1] if i > 0 else None
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        # a field (x.f, x.?f) -- but `a ? b : c` puts an identifier after '?'
        if (
            prev is not None
            and prev.kind == "punct"
            and (prev.text == "." or (prev.text == "?" and i >= 2 and toks[i - 2].text == "."))
        ):
            continue
        if nxt is not None and nxt.kind == "punct" and nxt.text == "(":
            continue  # a function call
        if nxt is not None and nxt.kind == "punct" and nxt.text == "." and tok.text == "optional":
            continue
        yield tok


_COMPARISONS: Final = frozenset({"==", "!=", "<", "<=", ">", ">=", "&&", "||", "in"})
_BOOL_CALLS: Final = frozenset(
    {
        "has",
        "startsWith",
        "endsWith",
        "contains",
        "matches",
        "exists",
        "all",
        "exists_one",
        "hasValue",
        "isSorted",
        "equivalent",
        "intersects",
        "bool",
    }
)


def certainly_not_bool(source: str) -> bool:
    """True when the expression's static type is certainly not ``bool`` (e.g. ``claims.foo``).

    cel-go rejects a validation rule whose checked type is not bool, ``dyn`` included (spec
    §13.8.1). We have no checker, so we reject the shapes whose type is evident from the top-level
    syntax: a bare field selection or index, a literal other than true/false, arithmetic, and calls
    that return non-bool values (``orValue``, ``value``, ``size``, ``string`` ...). Everything else
    is left to the run-time check.
    """
    try:
        items = group(code_tokens(source))
    except RewriteError:
        return False
    while len(items) == 1 and items[0].kind == "paren":
        items = items[0].inner
    if not items:
        return False
    for i, it in enumerate(items):
        after_dot = i > 0 and items[i - 1].kind == "punct" and items[i - 1].text == "."
        if it.kind == "punct" and it.text in ("?", ":") and not after_dot:
            return False  # a conditional: its branches decide
        if it.kind in ("punct", "ident") and it.text in _COMPARISONS:
            return False
    first = items[0]
    if first.kind == "punct" and first.text == "!":
        return False
    if any(it.kind == "punct" and it.text in ("+", "-", "*", "/", "%") for it in items):
        return True  # arithmetic (or string/list concatenation)
    last = items[-1]
    if len(items) == 1 and last.kind == "ident":
        return last.text not in ("true", "false")
    if last.kind in ("num", "str", "brace"):
        return True
    if last.kind == "bracket":
        return True  # an index (or a list literal)
    if last.kind == "ident":
        return True  # a field selection: dyn
    if last.kind == "paren" and len(items) >= 2 and items[-2].kind == "ident":
        return items[-2].text not in _BOOL_CALLS
    return False
