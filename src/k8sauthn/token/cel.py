"""CEL expressions for JWT authenticators: ``claims`` rules and mappings, ``user`` rules (§13.8).

Built on ``common-expression-language`` (``import cel``), the ``k8sauthn[cel]`` extra, imported
lazily: a configuration that uses an expression without the extra fails to load with a
:class:`CELCompileError` naming the extra, never silently.

What we add to the engine, so expressions written for kube-apiserver work unchanged:

* the optional syntax ``claims.?x``, ``claims[?"k"]`` (rewritten; ``.orValue``, ``.hasValue``,
  ``.value``, ``.or`` and ``optional.of/none`` are native);
* Kubernetes identifier unescaping: ``claims.kubernetes__dot__io`` reads claim ``kubernetes.io``;
* compile-time errors for undeclared variables (``user`` in a claims rule) and for validation
  rules whose type is evidently not bool (``claims.foo``), as cel-go's checker reports them;
* the value conversion of §13.8.2: every JSON number is a double (:func:`cel_value`).

Type checks of results happen at evaluation time (:func:`string_or_list` and the callers), since
the engine has no type checker.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, Final

import attrs

from . import _cel_rewrite as rw
from . import _cel_static as st

__all__ = [
    "UNSUPPORTED_FUNCTIONS",
    "CELCompileError",
    "CELEvaluationError",
    "CELUnavailableError",
    "CompiledExpression",
    "cel_available",
    "cel_value",
    "compile_claims_expression",
    "compile_user_expression",
    "string_or_list",
    "user_variable",
]

#: What a user must install to use expressions.
EXTRA_HINT: Final = "CEL expressions need the 'cel' extra: pip install 'k8sauthn[cel]'"


class _QuietCallbacks(logging.Filter):
    """Drop the engine's log line for a failing Python callback (helpers, string functions).

    The failure still reaches the caller as a :class:`CELEvaluationError`; the log line would
    only repeat it, once per token, at ERROR level.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Python function '")


logging.getLogger("cel").addFilter(_QuietCallbacks())


class CELCompileError(ValueError):
    """The expression does not compile; ``str()`` is cel-go's ``ERROR: <input>:L:C: ...`` text."""


class CELUnavailableError(CELCompileError):
    """The CEL engine is not installed (the ``k8sauthn[cel]`` extra)."""


class CELEvaluationError(Exception):
    """The expression failed at run time (``no such key: email``, a type mismatch ...)."""


@functools.cache
def _engine() -> ModuleType:
    try:
        import cel
    except ImportError:
        raise CELUnavailableError(EXTRA_HINT) from None
    return cel


def cel_available() -> bool:
    """Whether the CEL engine (the ``k8sauthn[cel]`` extra) is installed."""
    try:
        _engine()
    except CELCompileError:
        return False
    return True


def _optional_index(receiver: Any, key: Any) -> Any:
    """``receiver[?key]`` and ``optional.?key``: an optional of the element, or none."""
    cel = _engine()
    if isinstance(receiver, cel.OptionalValue):
        if not receiver.has_value():
            return receiver
        receiver = receiver.value()
    if isinstance(receiver, dict):
        return cel.OptionalValue.of(receiver[key]) if key in receiver else cel.OptionalValue.none()
    if isinstance(receiver, list) and isinstance(key, int | float) and not isinstance(key, bool):
        index = int(key)
        if index == key and 0 <= index < len(receiver):
            return cel.OptionalValue.of(receiver[index])
        return cel.OptionalValue.none()
    raise TypeError("no such overload")


@functools.cache
def _functions() -> dict[str, Callable[..., Any]]:
    from cel import stdlib

    funcs: dict[str, Callable[..., Any]] = dict(stdlib.STDLIB_FUNCTIONS)
    funcs[rw.OPTIONAL_INDEX_FUNCTION] = _optional_index
    return funcs


def _format_error(message: str) -> str:
    # The engine says "Failed to parse expression '<src>': ERROR: <input>:1:7: ...\n| src\n| ..^";
    # cel-go says "ERROR: <input>:1:7: ...\n | src\n | ..^".
    at = message.find("ERROR: ")
    if at >= 0:
        message = message[at:]
    return message.replace("\n| ", "\n | ").replace("\n|\n", "\n |\n")


def _located(source: str, pos: int, text: str) -> str:
    line = source.count("\n", 0, pos) + 1
    line_start = source.rfind("\n", 0, pos) + 1
    line_end = source.find("\n", pos)
    col = pos - line_start + 1
    snippet = source[line_start : line_end if line_end >= 0 else len(source)]
    return f"ERROR: <input>:{line}:{col}: {text}\n | {snippet}\n | {'.' * (col - 1)}^"


_NAMESPACES: Final = frozenset({"optional", "sets", "math", "base64", "lists", "strings"})
#: Functions of Kubernetes' CEL libraries that the engine lacks: refused at load time, where
#: kube-apiserver would accept them, rather than failing every token at run time.
UNSUPPORTED_FUNCTIONS: Final = frozenset(
    {
        *("find", "findAll", "isSorted", "format"),  # regex, lists, strings.format
        *("url", "isURL", "getScheme", "getHost", "getHostname", "getPort", "getEscapedPath"),
        *("getQuery", "ip", "isIP", "cidr", "isCIDR", "containsIP", "containsCIDR"),
        *("isLoopback", "isGlobalUnicast", "isUnspecified", "family", "masked", "prefixLength"),
        *("quantity", "isQuantity", "asInteger", "asApproximateFloat", "isInteger"),
        *("semver", "isSemver", "isGreaterThan", "isLessThan", "compareTo"),
        *("major", "minor", "patch", "authorizer"),
        *("transformList", "transformMap", "transformMapEntry"),
    }
)
#: Type names are values in CEL (``type(claims.x) == string``), not undeclared references.
_TYPE_NAMES: Final = frozenset(
    {"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type", "dyn"}
)


@attrs.frozen(eq=False)
class CompiledExpression:
    """A compiled CEL expression over one variable (``claims`` or ``user``).

    Build one with :func:`compile_claims_expression` / :func:`compile_user_expression`; both
    cache, so validating and then building an authenticator compiles each expression once.
    """

    source: str
    variable: str
    #: True when the result is evidently not a bool (validation rules reject it, spec §13.3).
    not_bool: bool
    _program: Any = attrs.field(repr=False)
    _functions: Mapping[str, Callable[..., Any]] = attrs.field(repr=False)

    def evaluate(self, variables: Mapping[str, Any]) -> Any:
        """Evaluate with ``variables`` (``{"claims": ...}`` or ``{"user": ...}``).

        Values are converted with :func:`cel_value` unless they already were. The result is a
        plain Python value (str, float, int, bool, list, dict, None; an optional value, bytes or
        timestamps pass through and fail the callers' type checks). Raises
        :class:`CELEvaluationError` on run-time errors.
        """
        prepared = {k: v if type(v) is _Prepared else cel_value(v) for k, v in variables.items()}
        cel = _engine()
        try:
            if self._functions:
                return self._program.execute(
                    cel.Context(variables=prepared, functions=dict(self._functions))
                )
            return self._program.execute(prepared)
        except KeyError as exc:
            raise CELEvaluationError(f"no such key: {exc.args[0] if exc.args else ''}") from None
        except Exception as exc:
            raise CELEvaluationError(_runtime_message(exc)) from None

    def references(self, field: str) -> bool:
        """Whether the source selects ``<variable>.<field>`` (or ``.?<field>``), spec §13.3."""
        return st.selects(self.source, self.variable, field)


def _runtime_message(exc: Exception) -> str:
    text = str(exc)
    for marker in (". Check ", " in CEL expression", ". CEL does not coerce"):
        cut = text.find(marker)
        if cut >= 0:
            text = text[:cut]
    if text.startswith("Function '") and "Python function call failed: " in text:
        text = text.split("Python function call failed: ", 1)[1]
    return text


class _Prepared(dict[str, Any]):
    """A top-level map already converted by :func:`cel_value` (skips re-conversion)."""


def cel_value(value: Any) -> Any:
    """Convert decoded JSON into CEL values: numbers become doubles (``1`` -> ``1.0``), §13.8.2.

    Call it once per token and pass the result to every expression: it is not converted again.
    """
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, Mapping):
        return _Prepared({str(k): cel_value(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return [cel_value(v) for v in value]
    return value


def user_variable(
    username: str, uid: str, groups: tuple[str, ...], extra: Mapping[str, tuple[str, ...]]
) -> dict[str, Any]:
    """The ``user`` variable of user validation rules (``kubernetes.UserInfo``, §13.8.1)."""
    return _Prepared(
        username=username,
        uid=uid,
        groups=list(groups),
        extra={k: list(v) for k, v in extra.items()},
    )


def string_or_list(value: Any) -> tuple[str, ...]:
    """The string-or-list conversion of groups and extra results (spec §13.8.3).

    ``""``, null, an empty list or a list of empty strings -> ``()``; a string -> one element;
    a list of strings -> its non-empty elements. Anything else raises
    :class:`CELEvaluationError` ``expression must return a string or a list of strings``.
    """
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(v for v in value if v)
    raise CELEvaluationError("expression must return a string or a list of strings")


def _compile(source: str, variable: str) -> CompiledExpression:
    cel = _engine()
    try:
        rewritten = rw.rewrite(source)
    except rw.RewriteError as exc:
        raise CELCompileError(_located(source, exc.pos, f"Syntax error: {exc}")) from None
    try:
        program = cel.compile(source if rewritten is None else rewritten)
    except Exception as exc:
        message = _format_error(str(exc))
        if rewritten is not None:
            # Report against the text the user wrote, not our rewrite: blanking the '?' of the
            # optional syntax keeps every column, and the snippet shows the original line.
            blanked = rw.position_preserving(source)
            try:
                cel.compile(blanked)
            except Exception as original:
                message = _format_error(str(original))
                for old, new in zip(blanked.split("\n"), source.split("\n"), strict=True):
                    message = message.replace(f" | {old}\n", f" | {new}\n")
        raise CELCompileError(message) from None
    tokens = rw.tokenize(source)
    two = st.two_variable_macro(tokens)
    if two is not None:
        text = f"two-variable comprehensions ({two.text}) are not supported by the CEL engine"
        raise CELCompileError(_located(source, two.pos, text))
    bound = st.bound_variables(tokens)
    for tok in st.root_identifiers(source):
        if tok.text == variable or tok.text in bound or tok.text in _TYPE_NAMES:
            continue
        if tok.text in _NAMESPACES and _followed_by_call(source, tok):
            continue
        raise CELCompileError(
            _located(source, tok.pos, f"undeclared reference to '{tok.text}' (in container '')")
        )
    missing = sorted(UNSUPPORTED_FUNCTIONS.intersection(program.functions()))
    if missing:
        where = next((t.pos for t in tokens if t.kind == "ident" and t.text == missing[0]), 0)
        text = f"function '{missing[0]}' (a Kubernetes CEL library) is not supported by the engine"
        raise CELCompileError(_located(source, where, text))
    funcs = _functions()
    needed = {name: f for name, f in funcs.items() if name in (rewritten or source)}
    return CompiledExpression(
        source=source,
        variable=variable,
        not_bool=st.certainly_not_bool(source),
        program=program,
        functions=needed,
    )


def _followed_by_call(source: str, tok: rw.Token) -> bool:
    rest = source[tok.pos + len(tok.text) :].lstrip()
    return rest.startswith(".")


@functools.lru_cache(maxsize=4096)
def compile_claims_expression(expr: str) -> CompiledExpression:
    """Compile an expression over ``claims`` (``map(string, dyn)``); raises CELCompileError."""
    return _compile(expr, "claims")


@functools.lru_cache(maxsize=4096)
def compile_user_expression(expr: str) -> CompiledExpression:
    """Compile an expression over ``user`` (username, uid, groups, extra)."""
    return _compile(expr, "user")
