"""go-oidc's view of a JWT payload: the registered claims as its Go struct decodes them.

:func:`standard_claims` reads ``iss``, ``sub``, ``aud``, ``exp``, ``iat``, ``nbf``, ``nonce``,
``at_hash``, ``_claim_names`` and ``_claim_sources`` the way go-oidc's ``idToken`` struct does
(spec §13.6 step 5): a key matches a field case-insensitively when no exact key exists (the last
match in document order wins), types are checked, and the time fields may be JSON numbers or
numeric strings (fractions truncated). Also here: the few Go formatting helpers every
Kubernetes error text needs (``%q``, ``time.Time``, JSON type names).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from ..exceptions import AuthenticationError

__all__ = [
    "InvalidJWT",
    "StandardClaims",
    "cannot_unmarshal",
    "go_list",
    "go_quote",
    "go_time",
    "go_type_name",
    "needs_folding",
    "standard_claims",
]

_INT64: Final = 1 << 63


class InvalidJWT(AuthenticationError):
    """A JWT for this issuer was examined and rejected; ``str()`` is Kubernetes' error text."""


# -- Go formatting -----------------------------------------------------------------------------
def go_quote(value: str) -> str:
    """Go's ``%q`` for the printable strings we quote (JSON escaping agrees for them)."""
    return json.dumps(value, ensure_ascii=False)


def go_list(values: Sequence[str]) -> str:
    """Go's ``%q`` of a string slice: ``["a" "b"]``."""
    return "[" + " ".join(go_quote(v) for v in values) + "]"


def go_time(seconds: float) -> str:
    """Go's ``time.Time.String()`` in UTC: ``2009-11-10 23:00:00.5 +0000 UTC``."""
    whole = int(seconds // 1)
    try:
        text = dt.datetime.fromtimestamp(whole, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        text = f"@{whole}"
    nanos = round((seconds - whole) * 1e9)
    frac = f".{nanos:09d}".rstrip("0") if nanos else ""
    return f"{text}{frac} +0000 UTC"


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


def cannot_unmarshal(value: object, target: str) -> str:
    """Go's ``json: cannot unmarshal <kind> into Go value of type <target>``."""
    return f"json: cannot unmarshal {go_type_name(value)} into Go value of type {target}"


# -- go-oidc's idToken struct -------------------------------------------------------------------
class StandardClaims:
    """The registered claims go-oidc decodes (``exp`` is None when absent: expired).

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
_FIELD_SET: Final = frozenset(_FIELDS)
_FIELD_LENGTHS: Final = frozenset(len(f) for f in _FIELDS)
_STRING_FIELDS: Final = frozenset(("iss", "sub", "nonce", "at_hash"))
_TIME_FIELDS: Final = frozenset(("exp", "iat", "nbf"))
_NO_NAMES: Final[Mapping[str, str]] = {}
_NO_SOURCES: Final[Mapping[str, tuple[str, str]]] = {}
_ABSENT: Final[Any] = object()
_HAS_LETTER: Final = re.compile("[A-Za-z]")
_JSON_NUMBER: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")


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


def needs_folding(keys: Iterable[str]) -> bool:
    """False when every key is lower-case ASCII: then only exact keys can match a Go field."""
    joined = "".join(keys)
    # islower() is False with no cased character at all: then nothing can fold either.
    return not (joined.isascii() and (joined.islower() or not _HAS_LETTER.search(joined)))


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


def _is_int64(value: object) -> bool:
    return type(value) is int and -_INT64 <= value < _INT64


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
            and (exp is _ABSENT or (type(exp) is int and -_INT64 <= exp < _INT64))
            and (iat is _ABSENT or (type(iat) is int and -_INT64 <= iat < _INT64))
            and (nbf is _ABSENT or (type(nbf) is int and -_INT64 <= nbf < _INT64))
            and "_claim_names" not in payload
            and "_claim_sources" not in payload
            and "nonce" not in payload
            and "at_hash" not in payload
        ):
            return StandardClaims(
                iss,
                sub,
                (aud,) if type(aud) is str else tuple(aud),
                None if exp is _ABSENT else exp,
                None if iat is _ABSENT else iat,
                None if nbf is _ABSENT else nbf,
            )
    return _standard_claims_slow(payload)


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
            out[field] = value if _is_int64(value) else _json_time(field, value)
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


def _audience(value: object) -> tuple[str, ...]:
    # go-oidc's audience: a string (null reads as ""), or an array of strings.
    if value is None or isinstance(value, str):
        return (value or "",)
    if isinstance(value, list):
        for v in value:
            if not isinstance(v, str):
                raise InvalidJWT(
                    "oidc: failed to unmarshal claims: " + cannot_unmarshal(v, "string")
                )
        return tuple(value)
    raise InvalidJWT("oidc: failed to unmarshal claims: " + cannot_unmarshal(value, "[]string"))


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
        endpoint, token = _struct_field(src, "endpoint"), _struct_field(src, "access_token")
        for v, f in ((endpoint, "endpoint"), (token, "access_token")):
            if v is not None and not isinstance(v, str):
                raise _struct_error(f"_claim_sources.{f}", v, "string")
        out[name] = (endpoint or "", token or "")
    return out


def _struct_field(obj: Mapping[str, Any], name: str) -> Any:
    """A Go struct field's value: the last key equal to ``name`` case-insensitively."""
    found = None
    for key, value in obj.items():  # document order: the last match wins, as in Go
        if key == name or (len(key) == len(name) and _fold(key) == name):
            found = value
    return found
