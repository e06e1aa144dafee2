"""From a verified JWT payload to a user: standard claims, mappings and rules (spec §13.5-8).

Two views of one payload, as in Kubernetes:

* :func:`standard_claims` reads the registered claims the way go-oidc's Go struct does: a key
  matches a field case-insensitively, types are checked, ``exp``/``iat``/``nbf`` may be JSON
  numbers or numeric strings (fractions truncated);
* :class:`ClaimMapper` and the rule classes read the exact-key claim map (and the CEL ``claims``
  value) to build and check the :class:`~k8sauthn.UserInfo`.

Every failure is a :class:`InvalidJWT` whose text is Kubernetes' error text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from .._types import CREDENTIAL_ID_KEY, UserInfo
from ..exceptions import AuthenticationError
from .cel import CELEvaluationError, CompiledExpression, string_or_list, user_variable

__all__ = [
    "ClaimMapper",
    "ClaimRules",
    "InvalidJWT",
    "StandardClaims",
    "UserRules",
    "go_type_name",
    "standard_claims",
    "string_claim",
]

_INT64: Final = 1 << 63


class InvalidJWT(AuthenticationError):
    """A JWT for this issuer was examined and rejected; ``str()`` is Kubernetes' error text."""


def go_type_name(value: object) -> str:
    """The JSON kind Go's decoder names in ``cannot unmarshal <kind> into ...``."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _cannot(value: object, target: str) -> str:
    return f"json: cannot unmarshal {go_type_name(value)} into Go value of type {target}"


def string_claim(claims: Mapping[str, Any], name: str) -> tuple[bool, str, str]:
    """``(present, value, error)`` for a claim that must be a JSON string (null reads "")."""
    if name not in claims:
        return False, "", ""
    value = claims[name]
    if value is None:
        return True, "", ""
    if not isinstance(value, str):
        return True, "", _cannot(value, "string")
    return True, value, ""


# -- go-oidc's idToken struct -------------------------------------------------------------------
class StandardClaims:
    """The registered claims go-oidc decodes (``exp`` is 0001-01-01 when absent: expired).

    A plain slotted class rather than attrs: one is built per token on the hot path.
    """

    __slots__ = ("aud", "claim_names", "claim_sources", "exp", "iat", "iss", "nbf", "sub")

    def __init__(
        self,
        iss: str = "",
        sub: str = "",
        aud: tuple[str, ...] = (),
        exp: int | None = None,
        iat: int | None = None,
        nbf: int | None = None,
        claim_names: Mapping[str, str] | None = None,
        claim_sources: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        self.iss, self.sub, self.aud = iss, sub, aud
        self.exp, self.iat, self.nbf = exp, iat, nbf
        self.claim_names: Mapping[str, str] = claim_names or _NO_NAMES
        self.claim_sources: Mapping[str, tuple[str, str]] = claim_sources or _NO_SOURCES

    def __repr__(self) -> str:
        return f"StandardClaims(iss={self.iss!r}, sub={self.sub!r}, aud={self.aud!r})"


_FIELDS: Final = (
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "nonce",
    "at_hash",
    "_claim_names",
    "_claim_sources",
)


def _fold(text: str) -> str:
    # Go's bytes.EqualFold uses simple Unicode folding (U+017F long s matches "s", U+212A "k");
    # per character casefold agrees with it for the ASCII field names we look up.
    return "".join(f if len(f := c.casefold()) == 1 else c for c in text)


_BY_FOLD: Final[Mapping[str, str]] = {_fold(f): f for f in _FIELDS}


def _field_for(key: str) -> str | None:
    if key in _FIELD_SET:
        return key
    if len(key) not in _FIELD_LENGTHS:
        return None
    if key.isascii():  # for ASCII, Unicode simple folding is plain lower-casing
        lowered = key.lower()
        return lowered if lowered in _FIELD_SET else None
    return _BY_FOLD.get(_fold(key))


_FIELD_SET: Final = frozenset(_FIELDS)
_FIELD_LENGTHS: Final = frozenset(len(f) for f in _FIELDS)


def _struct_error(field: str, value: object, go_type: str) -> InvalidJWT:
    return InvalidJWT(
        "oidc: failed to unmarshal claims: json: cannot unmarshal "
        f"{go_type_name(value)} into Go struct field idToken.{field} of type {go_type}"
    )


def _json_time(field: str, value: object) -> int:
    """go-oidc ``jsonTime``: a JSON number, or a string holding one; fractions truncated."""
    number: int | float
    if isinstance(value, str):
        if not _JSON_NUMBER.match(value):
            raise InvalidJWT(
                "oidc: failed to unmarshal claims: json: invalid number literal, "
                f"trying to unmarshal {json.dumps(json.dumps(value))} into Number"
            )
        number = int(value) if value.lstrip("-").isdigit() else float(value)
    elif value is None:
        raise InvalidJWT(
            'oidc: failed to unmarshal claims: strconv.ParseFloat: parsing "": invalid syntax'
        )
    elif isinstance(value, (bool, list, dict)) or not isinstance(value, (int, float)):
        raise _struct_error(field, value, "json.Number")
    else:
        number = value
    if isinstance(number, float):
        if not math.isfinite(number):
            raise InvalidJWT(f"oidc: failed to unmarshal claims: {field} out of range")
        number = math.trunc(number)
    if not -_INT64 <= number < _INT64:
        # Go's int64(f) is undefined past int64; refusing beats guessing.
        raise InvalidJWT(f"oidc: failed to unmarshal claims: {field} out of range")
    return number


_JSON_NUMBER: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")


def needs_folding(keys: Iterable[str]) -> bool:
    """False when every key is lower-case ASCII: then only exact keys can match a Go field."""
    joined = "".join(keys)
    # islower() is False with no cased character at all: then nothing can fold either.
    return not (joined.isascii() and (joined.islower() or not _HAS_LETTER.search(joined)))


_HAS_LETTER: Final = re.compile("[A-Za-z]")


def standard_claims(payload: Mapping[str, Any], *, fold: bool | None = None) -> StandardClaims:
    """Decode the registered claims as go-oidc does; raises :class:`InvalidJWT`.

    ``fold`` is :func:`needs_folding` of the payload's keys when the caller knows it already.
    """
    if not (needs_folding(payload) if fold is None else fold):
        # The common case, without a per-key loop: exact keys, well-typed values.
        get = payload.get
        iss, sub, aud = get("iss", ""), get("sub", ""), get("aud", ())
        exp, iat, nbf = get("exp", _ABSENT), get("iat", _ABSENT), get("nbf", _ABSENT)
        if (
            type(iss) is str
            and type(sub) is str
            and (
                type(aud) is str
                or (type(aud) in (list, tuple) and all(type(a) is str for a in aud))
            )
            and (exp is _ABSENT or _is_int64(exp))
            and (iat is _ABSENT or _is_int64(iat))
            and (nbf is _ABSENT or _is_int64(nbf))
            and _STRUCT_ONLY.isdisjoint(payload)
        ):
            return StandardClaims(
                iss=iss,
                sub=sub,
                aud=(aud,) if type(aud) is str else tuple(aud),
                exp=None if exp is _ABSENT else exp,
                iat=None if iat is _ABSENT else iat,
                nbf=None if nbf is _ABSENT else nbf,
            )
    return _standard_claims_slow(payload)


_ABSENT: Final[Any] = object()


def _is_int64(value: object) -> bool:
    return type(value) is int and -_INT64 <= value < _INT64


# Fields the fast path does not handle (it then defers to the exact, ordered decoding).
_STRUCT_ONLY: Final = frozenset(("nonce", "at_hash", "_claim_names", "_claim_sources"))


def _standard_claims_slow(payload: Mapping[str, Any]) -> StandardClaims:
    out: dict[str, Any] = {}
    for key, value in payload.items():  # document order: the last folded match wins, as in Go
        field = _field_for(key)
        if field is None:
            continue
        if field in _STRING_FIELDS:
            if value is not None and not isinstance(value, str):
                raise _struct_error(field, value, "string")
            out[field] = value or ""
        elif field in _TIME_FIELDS:
            out[field] = (
                value
                if type(value) is int and -_INT64 <= value < _INT64
                else (_json_time(field, value))
            )
        elif field == "aud":
            out[field] = (value,) if type(value) is str else _audience(value)
        elif field == "_claim_names":
            out[field] = _claim_names(value)
        else:
            out[field] = _claim_sources(value)
    return StandardClaims(
        iss=out.get("iss", ""),
        sub=out.get("sub", ""),
        aud=out.get("aud", ()),
        exp=out.get("exp"),
        iat=out.get("iat"),
        nbf=out.get("nbf"),
        claim_names=out.get("_claim_names", _NO_NAMES),
        claim_sources=out.get("_claim_sources", _NO_SOURCES),
    )


_STRING_FIELDS: Final = frozenset(("iss", "sub", "nonce", "at_hash"))
_TIME_FIELDS: Final = frozenset(("exp", "iat", "nbf"))
_NO_NAMES: Final[Mapping[str, str]] = {}
_NO_SOURCES: Final[Mapping[str, tuple[str, str]]] = {}


def _audience(value: object) -> tuple[str, ...]:
    # go-oidc's audience: a string (null reads as ""), or an array of strings.
    if value is None or isinstance(value, str):
        return (value or "",)
    if isinstance(value, list):
        for v in value:
            if not isinstance(v, str):
                raise InvalidJWT("oidc: failed to unmarshal claims: " + _cannot(v, "string"))
        return tuple(value)
    raise InvalidJWT("oidc: failed to unmarshal claims: " + _cannot(value, "[]string"))


def _claim_names(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _struct_error("_claim_names", value, "map[string]string")
    for v in value.values():
        if not isinstance(v, str):
            raise _struct_error("_claim_names", v, "string")
    return dict(value)


def _claim_sources(value: object) -> dict[str, tuple[str, str]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _struct_error("_claim_sources", value, "map[string]oidc.claimSource")
    out: dict[str, tuple[str, str]] = {}
    for name, src in value.items():
        if src is None:
            src = {}
        if not isinstance(src, dict):
            raise _struct_error("_claim_sources", src, "oidc.claimSource")
        endpoint, token = src.get("endpoint"), src.get("access_token")
        for v, f in ((endpoint, "endpoint"), (token, "access_token")):
            if v is not None and not isinstance(v, str):
                raise _struct_error(f"_claim_sources.{f}", v, "string")
        out[name] = (endpoint or "", token or "")
    return out


# -- CEL ---------------------------------------------------------------------------------------
def _string_or_list(value: Any) -> tuple[str, ...] | None:
    """Spec §13.8.3; ``None`` means "not a string or a list of strings"."""
    try:
        return string_or_list(value)
    except CELEvaluationError:
        return None


def _prefixed(prefix: str | None, values: Sequence[str]) -> tuple[str, ...]:
    return tuple(prefix + v for v in values) if prefix else tuple(values)


@attrs.frozen
class ClaimMapper:
    """Claims -> :class:`UserInfo` (spec §13.7), built once per authenticator.

    Each of username/groups/uid is either a claim (with a prefix for username and groups) or a
    compiled CEL expression; ``extra`` is a sequence of (key, expression).
    """

    username_claim: str = ""
    username_prefix: str = ""
    username_expr: CompiledExpression | None = None
    groups_claim: str = ""
    groups_prefix: str = ""
    groups_expr: CompiledExpression | None = None
    uid_claim: str = ""
    uid_expr: CompiledExpression | None = None
    extra: tuple[tuple[str, CompiledExpression], ...] = ()

    @property
    def uses_cel(self) -> bool:
        return bool(self.username_expr or self.groups_expr or self.uid_expr or self.extra)

    def user(self, claims: Mapping[str, Any], cel_vars: Mapping[str, Any] | None) -> UserInfo:
        """Map verified claims; ``cel_vars`` is ``{"claims": cel_value(claims)}`` or None."""
        return UserInfo(
            name=self._username(claims, cel_vars),
            uid=self._uid(claims, cel_vars) if self.uid_claim or self.uid_expr else "",
            groups=self._groups(claims, cel_vars),
            extra=self._extra(claims, cel_vars) if self.extra or "jti" in claims else None,
        )

    def _username(self, claims: Mapping[str, Any], cel_vars: Mapping[str, Any] | None) -> str:
        if self.username_expr is not None:
            what = "oidc: error evaluating username claim expression: "
            result = _evaluate(self.username_expr, cel_vars, what)
            if not isinstance(result, str):
                raise InvalidJWT(what + "username claim expression must return a string")
            if not result:
                raise InvalidJWT("oidc: empty username via CEL expression is not allowed")
            return result
        claim = self.username_claim
        value = claims.get(claim, _ABSENT)
        if type(value) is not str:
            if value is _ABSENT:
                raise InvalidJWT(f'oidc: parse username claims "{claim}": claim not present')
            if value is not None:
                raise InvalidJWT(
                    f'oidc: parse username claims "{claim}": ' + _cannot(value, "string")
                )
            value = ""  # JSON null decodes to "" in Go
        if claim == "email" and "email_verified" in claims:
            # Only a JSON boolean true verifies: the string "true" is a type error (spec §13.7.1).
            verified = claims["email_verified"]
            if verified is not None and not isinstance(verified, bool):
                raise InvalidJWT("oidc: parse 'email_verified' claim: " + _cannot(verified, "bool"))
            if verified is not True:
                raise InvalidJWT("oidc: email not verified")
        return self.username_prefix + value if self.username_prefix else value

    def _groups(
        self, claims: Mapping[str, Any], cel_vars: Mapping[str, Any] | None
    ) -> tuple[str, ...]:
        if self.groups_expr is not None:
            what = "oidc: error evaluating group claim expression: "
            groups = _string_or_list(_evaluate(self.groups_expr, cel_vars, what))
            if groups is None:
                raise InvalidJWT(what + "expression must return a string or a list of strings")
            return groups
        claim = self.groups_claim
        if not claim or claim not in claims:
            return ()
        value = claims[claim]
        if value is None:
            return ()
        if isinstance(value, str):
            return _prefixed(self.groups_prefix, (value,))
        if isinstance(value, list) and all(v is None or isinstance(v, str) for v in value):
            return _prefixed(self.groups_prefix, [v or "" for v in value])
        raise InvalidJWT(f'oidc: parse groups claim "{claim}": ' + _cannot(value, "string"))

    def _uid(self, claims: Mapping[str, Any], cel_vars: Mapping[str, Any] | None) -> str:
        if self.uid_expr is not None:
            what = "oidc: error evaluating uid claim expression: "
            result = _evaluate(self.uid_expr, cel_vars, what)
            if not isinstance(result, str):
                raise InvalidJWT(what + "uid claim expression must return a string")
            return result
        if not self.uid_claim:
            return ""
        present, value, error = string_claim(claims, self.uid_claim)
        if not present:
            raise InvalidJWT(f'oidc: parse uid claim "{self.uid_claim}": claim not present')
        if error:
            raise InvalidJWT(f'oidc: parse uid claim "{self.uid_claim}": {error}')
        return value

    def _extra(
        self, claims: Mapping[str, Any], cel_vars: Mapping[str, Any] | None
    ) -> dict[str, tuple[str, ...]]:
        extra: dict[str, tuple[str, ...]] = {}
        jti = claims.get("jti")
        if isinstance(jti, str) and jti:
            extra[CREDENTIAL_ID_KEY] = ("JTI=" + jti,)
        for key, expr in self.extra:
            values = _string_or_list(_evaluate(expr, cel_vars, ""))  # no "oidc:" prefix here
            if values is None:
                raise InvalidJWT(
                    f"oidc: error evaluating extra claim expression: {expr.source}: "
                    "expression must return a string or a list of strings"
                )
            if values:
                extra[key] = values
        return extra


def _evaluate(expr: CompiledExpression, variables: Mapping[str, Any] | None, what: str) -> Any:
    try:
        return expr.evaluate(variables or {})
    except CELEvaluationError as exc:
        raise InvalidJWT(f"{what}expression '{expr.source}' resulted in error: {exc}") from None


def _check_rules(
    rules: Sequence[tuple[CompiledExpression, str]], variables: Mapping[str, Any], what: str
) -> None:
    # Spec §13.8.4: evaluate every rule first (an error wins), then inspect results in order.
    results = [_evaluate(expr, variables, what) for expr, _ in rules]
    for (expr, message), result in zip(rules, results, strict=True):
        if not isinstance(result, bool):
            raise InvalidJWT(what + "validation expression must return a boolean")
        if not result:
            raise InvalidJWT(f"{what}validation expression '{expr.source}' failed: {message}")


@attrs.frozen
class ClaimRules:
    """``claimValidationRules``: required claims (spec §13.5 step 11), then CEL rules (step 12)."""

    required: tuple[tuple[str, str], ...] = ()
    expressions: tuple[tuple[CompiledExpression, str], ...] = ()

    def check(self, claims: Mapping[str, Any], cel_vars: Mapping[str, Any] | None) -> None:
        for name, want in self.required:
            present, got, error = string_claim(claims, name)
            if not present:
                raise InvalidJWT(f"oidc: required claim {name} not present in ID token")
            if error:
                raise InvalidJWT(f"oidc: parse claim {name}: {error}")
            if got != want:
                raise InvalidJWT(
                    f"oidc: required claim {name} value does not match. Got = {got}, want = {want}"
                )
        if self.expressions:
            what = "oidc: error evaluating claim validation expression: "
            _check_rules(self.expressions, cel_vars or {}, what)


@attrs.frozen
class UserRules:
    """``userValidationRules`` over the mapped user (spec §13.5 step 13)."""

    expressions: tuple[tuple[CompiledExpression, str], ...] = ()

    def check(self, user: UserInfo) -> None:
        if not self.expressions:
            return
        variables = {"user": user_variable(user.name, user.uid, user.groups, user.extra)}
        _check_rules(
            self.expressions, variables, "oidc: error evaluating user info validation rule: "
        )
