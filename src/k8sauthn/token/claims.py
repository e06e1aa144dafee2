"""From a verified JWT payload to a user: claim mappings and validation rules (spec §13.7-§13.8).

:class:`ClaimMapper` and the rule classes read the exact-key claim map (``c[name]`` in
Kubernetes' ``claims`` type) and the CEL ``claims`` value to build and check the
:class:`~k8sauthn.UserInfo`. The registered claims go-oidc checks are decoded separately, in
:mod:`._goclaims` (re-exported here). Every failure is an :class:`InvalidJWT` whose text is
Kubernetes' error text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from .._types import CREDENTIAL_ID_KEY, UserInfo
from ._goclaims import (
    InvalidJWT,
    StandardClaims,
    cannot_unmarshal,
    go_quote,
    go_type_name,
    needs_folding,
    standard_claims,
)
from .cel import CELEvaluationError, CompiledExpression, string_or_list, user_variable

__all__ = [
    "ClaimMapper",
    "ClaimRules",
    "InvalidJWT",
    "StandardClaims",
    "UserRules",
    "go_type_name",
    "needs_folding",
    "standard_claims",
    "string_claim",
]

_ABSENT: Final[Any] = object()


def string_claim(claims: Mapping[str, Any], name: str) -> tuple[bool, str, str]:
    """``(present, value, error)`` for a claim that must be a JSON string (null reads "")."""
    if name not in claims:
        return False, "", ""
    value = claims[name]
    if value is None:
        return True, "", ""
    if not isinstance(value, str):
        return True, "", cannot_unmarshal(value, "string")
    return True, value, ""


def _string_or_list(value: Any) -> tuple[str, ...] | None:
    """Spec §13.8.3; ``None`` means "not a string or a list of strings"."""
    try:
        return string_or_list(value)
    except CELEvaluationError:
        return None


def credential_id(claims: Mapping[str, Any]) -> dict[str, tuple[str, ...]] | None:
    """``{credential-id: ("JTI=<jti>",)}`` for a non-empty string ``jti`` (spec §13.7.4)."""
    jti = claims.get("jti")
    if type(jti) is str and jti:
        return {CREDENTIAL_ID_KEY: ("JTI=" + jti,)}
    return None  # absent, empty, null or not a string: silently no credential id


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
        """Map verified claims; ``cel_vars`` is ``{"claims": cel_value(claims)}`` or None.

        Username, groups, uid, extra: in Kubernetes' order, the first failure wins.
        """
        # The plain claim forms inline (they are what most issuers use); the rest in methods.
        claim = self.username_claim
        name = _ABSENT if self.username_expr or claim == "email" else claims.get(claim, _ABSENT)
        if type(name) is str:
            name = self.username_prefix + name
        else:
            name = self._username(claims, cel_vars)
        claim = self.groups_claim
        value = claims.get(claim, _ABSENT) if claim else _ABSENT
        if value is not _ABSENT:
            groups = self._groups_from_claim(claim, value)
        else:
            groups = self._groups(claims, cel_vars) if self.groups_expr else ()
        uid = self._uid(claims, cel_vars) if self.uid_claim or self.uid_expr else ""
        extra: dict[str, tuple[str, ...]] | None
        if self.extra:
            extra = self._extra(claims, cel_vars)
        else:
            jti = claims.get("jti")  # credential_id(), inline
            extra = {CREDENTIAL_ID_KEY: ("JTI=" + jti,)} if type(jti) is str and jti else None
        return UserInfo(name, uid, groups, extra)

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
            what = f"oidc: parse username claims {go_quote(claim)}: "
            if value is _ABSENT:
                raise InvalidJWT(what + "claim not present")
            if value is not None:
                raise InvalidJWT(what + cannot_unmarshal(value, "string"))
            value = ""  # JSON null decodes to "" in Go
        if claim == "email" and "email_verified" in claims:
            # Only a JSON boolean true verifies: the string "true" is a type error, and null
            # decodes to false (spec §13.7.1).
            verified = claims["email_verified"]
            if verified is not None and type(verified) is not bool:
                raise InvalidJWT(
                    "oidc: parse 'email_verified' claim: " + cannot_unmarshal(verified, "bool")
                )
            if verified is not True:
                raise InvalidJWT("oidc: email not verified")
        prefix = self.username_prefix
        return prefix + value if prefix else value

    def _groups(
        self, claims: Mapping[str, Any], cel_vars: Mapping[str, Any] | None
    ) -> tuple[str, ...]:
        claim = self.groups_claim
        if claim:
            value = claims.get(claim, _ABSENT)
            if value is not _ABSENT:
                return self._groups_from_claim(claim, value)
        if self.groups_expr is None:
            return ()  # an absent groups claim is no groups, not an error
        what = "oidc: error evaluating group claim expression: "
        groups = _string_or_list(_evaluate(self.groups_expr, cel_vars, what))
        if groups is None:
            raise InvalidJWT(what + "expression must return a string or a list of strings")
        return groups

    def _groups_from_claim(self, claim: str, value: Any) -> tuple[str, ...]:
        # Kubernetes' stringOrArray: a list of strings (null elements read ""), a single
        # string, or null (no groups); elements kept verbatim, duplicates and "" included.
        values: Sequence[str]
        if type(value) is list:
            try:
                "".join(value)  # C-speed check that every element is a str
                values = value
            except TypeError:
                if not all(v is None or type(v) is str for v in value):
                    raise InvalidJWT(
                        f"oidc: parse groups claim {go_quote(claim)}: "
                        + cannot_unmarshal(value, "string")
                    ) from None
                values = [v or "" for v in value]
        elif type(value) is str:
            values = (value,)
        elif value is None:
            return ()
        else:
            raise InvalidJWT(
                f"oidc: parse groups claim {go_quote(claim)}: " + cannot_unmarshal(value, "string")
            )
        prefix = self.groups_prefix
        return tuple([prefix + v for v in values]) if prefix else tuple(values)

    def _uid(self, claims: Mapping[str, Any], cel_vars: Mapping[str, Any] | None) -> str:
        if self.uid_claim:
            present, value, error = string_claim(claims, self.uid_claim)
            what = f"oidc: parse uid claim {go_quote(self.uid_claim)}: "
            if not present:
                raise InvalidJWT(what + "claim not present")
            if error:
                raise InvalidJWT(what + error)
            return value
        if self.uid_expr is None:
            return ""
        what = "oidc: error evaluating uid claim expression: "
        result = _evaluate(self.uid_expr, cel_vars, what)
        if not isinstance(result, str):
            raise InvalidJWT(what + "uid claim expression must return a string")
        return result

    def _extra(
        self, claims: Mapping[str, Any], cel_vars: Mapping[str, Any] | None
    ) -> dict[str, tuple[str, ...]]:
        extra = credential_id(claims) or {}
        # Kubernetes evaluates every extra expression first (an evaluation error, reported
        # without an "oidc:" prefix, wins over any conversion error), then converts in order.
        results = [_evaluate(expr, cel_vars, "") for _, expr in self.extra]
        for (key, expr), result in zip(self.extra, results, strict=True):
            values = _string_or_list(result)
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
