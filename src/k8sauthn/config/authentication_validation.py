"""Every validation rule of an ``AuthenticationConfiguration`` (spec §13.3, §6).

Errors are :class:`~k8sauthn.exceptions.FieldError` values whose text is Kubernetes' field error
text (``jwt[0].issuer.url: Invalid value: "http://x": URL scheme must be https``), produced in
kube-apiserver's order (``k8s.io/apiserver/pkg/apis/apiserver/validation``). Paths are rooted at
``jwt[i]`` for a file and at the bare field (``issuer.url``) for one authenticator built in code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

import attrs

from ..exceptions import FieldError
from ..token.cel import (
    CELCompileError,
    CELUnavailableError,
    CompiledExpression,
    compile_claims_expression,
    compile_user_expression,
)
from ._gourl import redacted
from ._validation_issuer import (
    child,
    field_duplicate,
    field_invalid,
    field_required,
    index,
    issuer_errors,
)
from .authentication import (
    AuthenticationConfiguration,
    ClaimMappings,
    ClaimValidationRule,
    JWTAuthenticatorConfig,
    PrefixedClaimOrExpression,
    UserValidationRule,
)

__all__ = [
    "MAX_JWT_AUTHENTICATORS",
    "validate_authentication_config",
    "validate_jwt_authenticator",
]

MAX_JWT_AUTHENTICATORS: Final = 64

_EMAIL_RULE: Final = (
    "claims.email_verified must be used in claimMappings.username.expression or "
    "claimMappings.extra[*].valueExpression or claimValidationRules[*].expression when "
    "claims.email is used in claimMappings.username.expression"
)


# --- CEL ------------------------------------------------------------------------------------------


@attrs.define
class _State:
    """What the email rule needs to know across sections (k8s ``validationState``)."""

    uses_email: bool = False
    uses_email_verified: bool = False


def _compile(
    expr: str, path: str, *, user: bool = False, want_bool: bool = False
) -> tuple[CompiledExpression | None, FieldError | None]:
    try:
        compiled = compile_user_expression(expr) if user else compile_claims_expression(expr)
    except CELUnavailableError as exc:
        return None, field_invalid(path, expr, str(exc))
    except CELCompileError as exc:
        return None, field_invalid(path, expr, f"compilation failed: {exc}")
    if want_bool and compiled.not_bool:
        return None, field_invalid(path, expr, "must evaluate to bool")
    return compiled, None


def _claim_rule_errors(
    rules: tuple[ClaimValidationRule, ...], path: str, state: _State
) -> list[FieldError]:
    errs: list[FieldError] = []
    seen_claims: set[str] = set()
    seen_exprs: set[str] = set()
    for i, rule in enumerate(rules):
        r_path = index(path, i)
        if rule.claim and rule.expression:
            errs.append(field_invalid(r_path, rule.claim, "claim and expression can't both be set"))
        elif not rule.claim and not rule.expression:
            errs.append(field_required(r_path, "claim or expression is required"))
        elif rule.claim:
            if rule.message:
                errs.append(
                    field_invalid(
                        child(r_path, "message"),
                        rule.message,
                        "may not be specified when claim is set",
                    )
                )
            if rule.claim in seen_claims:
                errs.append(field_duplicate(child(r_path, "claim"), rule.claim))
            seen_claims.add(rule.claim)
        else:
            if rule.required_value:
                errs.append(
                    field_invalid(
                        child(r_path, "requiredValue"),
                        rule.required_value,
                        "may not be specified when expression is set",
                    )
                )
            e_path = child(r_path, "expression")
            if rule.expression in seen_exprs:
                errs.append(field_duplicate(e_path, rule.expression))
                continue
            seen_exprs.add(rule.expression)
            compiled, err = _compile(rule.expression, e_path, want_bool=True)
            if err is not None:
                errs.append(err)
            elif compiled is not None and compiled.references("email_verified"):
                state.uses_email_verified = True
    return errs


def _prefixed_errors(
    mapping: PrefixedClaimOrExpression, path: str, *, required: bool
) -> tuple[CompiledExpression | None, list[FieldError]]:
    errs: list[FieldError] = []
    compiled: CompiledExpression | None = None
    if mapping.expression and mapping.claim:
        errs.append(field_invalid(path, "", "claim and expression can't both be set"))
    elif not mapping.expression and not mapping.claim:
        if required:
            errs.append(field_required(path, "claim or expression is required"))
    elif mapping.expression:
        if mapping.prefix is not None:
            errs.append(
                field_invalid(
                    child(path, "prefix"),
                    mapping.prefix,
                    "may not be specified when expression is set",
                )
            )
        compiled, err = _compile(mapping.expression, child(path, "expression"))
        if err is not None:
            errs.append(err)
    elif mapping.prefix is None:
        errs.append(
            field_required(
                child(path, "prefix"),
                "prefix is required when claim is set. It can be set to an empty string to "
                "disable prefixing",
            )
        )
    return compiled, errs


_DNS1123_SUBDOMAIN: Final = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)
_DNS1123_MSG: Final = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_HTTP_PATH: Final = re.compile(r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+")
_HTTP_PATH_MSG: Final = (
    "Invalid path (regex used for validation is '[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')"
)


def _domain_prefixed_path_errors(key: str, path: str) -> list[FieldError]:
    # apimachinery IsDomainPrefixedPath.
    if not key:
        return [field_required(path)]
    host, slash, rest = key.partition("/")
    if not slash or not host or not rest:
        return [field_invalid(path, key, 'must be a domain-prefixed path (such as "acme.io/foo")')]
    errs: list[FieldError] = []
    if len(host) > 253:
        errs.append(field_invalid(path, host, "must be no more than 253 characters"))
    if not _DNS1123_SUBDOMAIN.fullmatch(host):
        errs.append(field_invalid(path, host, _DNS1123_MSG))
    if not _HTTP_PATH.fullmatch(rest):
        errs.append(field_invalid(path, rest, _HTTP_PATH_MSG))
    return errs


def _is_kubernetes_domain(key: str) -> bool:
    host, slash, _ = key.partition("/")
    if not slash:
        return False
    return any(host == d or host.endswith("." + d) for d in ("kubernetes.io", "k8s.io"))


def _mapping_errors(m: ClaimMappings, path: str, state: _State) -> list[FieldError]:
    u_path = child(path, "username")
    compiled, errs = _prefixed_errors(m.username, u_path, required=True)
    # Kubernetes looks at the username expression only when its mapping had no error at all
    # (validateClaimMappings: `if err != nil {...} else if compilationResult != nil`): a prefix
    # set beside an expression hides the email rule.
    if compiled is not None and not errs:
        state.uses_email = compiled.references("email")
        state.uses_email_verified |= compiled.references("email_verified")

    errs += _prefixed_errors(m.groups, child(path, "groups"), required=False)[1]

    if m.uid.claim and m.uid.expression:
        errs.append(field_invalid(child(path, "uid"), "", "claim and expression can't both be set"))
    elif m.uid.expression:
        err = _compile(m.uid.expression, child(path, "uid", "expression"))[1]
        if err is not None:
            errs.append(err)

    seen: set[str] = set()
    for i, extra in enumerate(m.extra):
        e_path = index(child(path, "extra"), i)
        k_path = child(e_path, "key")
        errs += _domain_prefixed_path_errors(extra.key, k_path)
        if extra.key != extra.key.lower():
            errs.append(field_invalid(k_path, extra.key, "must be lowercase"))
        if _is_kubernetes_domain(extra.key):
            errs.append(
                field_invalid(
                    k_path,
                    extra.key,
                    "k8s.io, kubernetes.io and their subdomains are reserved for Kubernetes use",
                )
            )
        if extra.key in seen:
            errs.append(field_duplicate(k_path, extra.key))
            continue
        seen.add(extra.key)
        v_path = child(e_path, "valueExpression")
        if not extra.value_expression:
            errs.append(field_required(v_path))
            continue
        compiled_extra, err = _compile(extra.value_expression, v_path)
        if err is not None:
            errs.append(err)
        elif compiled_extra is not None and compiled_extra.references("email_verified"):
            state.uses_email_verified = True

    if state.uses_email and not state.uses_email_verified:
        errs.append(field_invalid(child(u_path, "expression"), m.username.expression, _EMAIL_RULE))
    return errs


def _user_rule_errors(rules: tuple[UserValidationRule, ...], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        e_path = child(index(path, i), "expression")
        if not rule.expression:
            errs.append(field_required(e_path))
            continue
        if rule.expression in seen:
            errs.append(field_duplicate(e_path, rule.expression))
            continue
        seen.add(rule.expression)
        err = _compile(rule.expression, e_path, user=True, want_bool=True)[1]
        if err is not None:
            errs.append(err)
    return errs


# --- entry points ---------------------------------------------------------------------------------


def validate_jwt_authenticator(
    cfg: JWTAuthenticatorConfig, *, path: str = "", disallowed_issuers: Iterable[str] = ()
) -> list[FieldError]:
    """Every problem of one JWT authenticator, paths rooted at ``path`` (``""`` or ``jwt[i]``).

    Compiles every expression (compilations are cached, so building the authenticator afterwards
    does not compile again).
    """
    disallowed = tuple(disallowed_issuers)
    state = _State()
    errs = issuer_errors(cfg.issuer, child(path, "issuer"), disallowed)
    errs += _claim_rule_errors(
        cfg.claim_validation_rules, child(path, "claimValidationRules"), state
    )
    errs += _mapping_errors(cfg.claim_mappings, child(path, "claimMappings"), state)
    errs += _user_rule_errors(cfg.user_validation_rules, child(path, "userValidationRules"))
    return errs


def validate_authentication_config(
    cfg: AuthenticationConfiguration, *, disallowed_issuers: Iterable[str] = ()
) -> list[FieldError]:
    """Every problem of a whole configuration, in kube-apiserver's order."""
    if len(cfg.jwt) > MAX_JWT_AUTHENTICATORS:
        return [
            FieldError(
                "jwt", f"Too many: {len(cfg.jwt)}: must have at most {MAX_JWT_AUTHENTICATORS} items"
            )
        ]
    disallowed = tuple(disallowed_issuers)
    errs: list[FieldError] = []
    seen_issuers: set[str] = set()
    seen_discovery: set[str] = set()
    for i, jwt in enumerate(cfg.jwt):
        path = index("jwt", i)
        errs += validate_jwt_authenticator(jwt, path=path, disallowed_issuers=disallowed)
        if jwt.issuer.url in seen_issuers:
            errs.append(field_duplicate(child(path, "issuer", "url"), redacted(jwt.issuer.url)))
        seen_issuers.add(jwt.issuer.url)
        if jwt.issuer.discovery_url:
            if jwt.issuer.discovery_url in seen_discovery:
                errs.append(
                    field_duplicate(
                        child(path, "issuer", "discoveryURL"), redacted(jwt.issuer.discovery_url)
                    )
                )
            seen_discovery.add(jwt.issuer.discovery_url)
    if cfg.anonymous is not None:
        errs += cfg.anonymous.errors("anonymous")
    return errs
