"""``AuthenticationConfiguration`` (``apiserver.config.k8s.io/v1``) as frozen attrs values.

The field names are the Go/YAML names in snake_case (``discoveryURL`` -> ``discovery_url``,
``valueExpression`` -> ``value_expression``). A value of these types is only *shaped* like the file;
:func:`k8sauthn.config.authentication.load_authentication_config` decodes and validates one, and
:func:`k8sauthn.config.authentication_validation.validate_jwt_authenticator` re-checks one built in
code. Spec §13.2.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import attrs

from ..request.anonymous import AnonymousConfig
from ._gourl import go_quote as _go_quote
from ._gourl import redacted
from .options import OIDCOptions

__all__ = [
    "ALL_SIGNING_ALGORITHMS",
    "OIDC_FLAGS_TOGETHER",
    "AuthenticationConfiguration",
    "ClaimMappings",
    "ClaimOrExpression",
    "ClaimValidationRule",
    "ExtraMapping",
    "Issuer",
    "JWTAuthenticatorConfig",
    "PrefixedClaimOrExpression",
    "UserValidationRule",
    "jwt_config_from_oidc_options",
    "legacy_signing_algs",
    "load_authentication_config",
]

#: The JOSE algorithms a JWT authenticator may accept (spec §13.4); a config file allows all nine.
ALL_SIGNING_ALGORITHMS: Final[tuple[str, ...]] = (
    "RS256",
    "RS384",
    "RS512",
    "ES256",
    "ES384",
    "ES512",
    "PS256",
    "PS384",
    "PS512",
)


def _strs(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(items)


def _rules(items: Iterable[ClaimValidationRule]) -> tuple[ClaimValidationRule, ...]:
    return tuple(items)


def _extras(items: Iterable[ExtraMapping]) -> tuple[ExtraMapping, ...]:
    return tuple(items)


def _user_rules(items: Iterable[UserValidationRule]) -> tuple[UserValidationRule, ...]:
    return tuple(items)


def _jwts(items: Iterable[JWTAuthenticatorConfig]) -> tuple[JWTAuthenticatorConfig, ...]:
    return tuple(items)


def _url_repr(url: str) -> str:
    # A URL with a password is rejected by validation, but the value may be logged first.
    return repr(redacted(url))


@attrs.frozen
class Issuer:
    """Where tokens come from and whom they must be for (``jwt[].issuer``)."""

    url: str = attrs.field(repr=_url_repr)
    discovery_url: str = attrs.field(default="", repr=_url_repr)
    #: PEM text; empty means the system roots.
    certificate_authority: str = attrs.field(default="", repr=False)
    audiences: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    audience_match_policy: str = ""
    egress_selector_type: str = ""


@attrs.frozen
class ClaimValidationRule:
    """A required claim (``claim`` + ``required_value``) or a CEL rule (``expression``)."""

    claim: str = ""
    required_value: str = ""
    expression: str = ""
    message: str = ""


@attrs.frozen
class PrefixedClaimOrExpression:
    """``username`` / ``groups``: a claim plus an explicit prefix, or a CEL expression.

    ``prefix is None`` is the absent (or ``null``) prefix, which the username claim form rejects;
    ``""`` is an explicit "no prefix".
    """

    claim: str = ""
    prefix: str | None = None
    expression: str = ""


@attrs.frozen
class ClaimOrExpression:
    """``uid``: a claim or a CEL expression (or neither)."""

    claim: str = ""
    expression: str = ""


@attrs.frozen
class ExtraMapping:
    """One ``extra`` entry: a domain-prefixed key and a CEL expression for its values."""

    key: str
    value_expression: str


@attrs.frozen
class ClaimMappings:
    """How the claims of a verified token become a user."""

    username: PrefixedClaimOrExpression = PrefixedClaimOrExpression()
    groups: PrefixedClaimOrExpression = PrefixedClaimOrExpression()
    uid: ClaimOrExpression = ClaimOrExpression()
    extra: tuple[ExtraMapping, ...] = attrs.field(default=(), converter=_extras)


@attrs.frozen
class UserValidationRule:
    """A CEL rule over the mapped ``user``; ``message`` is reported when it is false."""

    expression: str
    message: str = ""


@attrs.frozen
class JWTAuthenticatorConfig:
    """One ``jwt[]`` entry: an issuer, its claim rules and its claim mappings."""

    issuer: Issuer
    claim_validation_rules: tuple[ClaimValidationRule, ...] = attrs.field(
        default=(), converter=_rules
    )
    claim_mappings: ClaimMappings = ClaimMappings()
    user_validation_rules: tuple[UserValidationRule, ...] = attrs.field(
        default=(), converter=_user_rules
    )


@attrs.frozen
class AuthenticationConfiguration:
    """A whole ``--authentication-config`` file: JWT authenticators and the anonymous section.

    ``anonymous is None`` when the file has no ``anonymous`` section (the ``--anonymous-auth``
    flag then decides).
    """

    jwt: tuple[JWTAuthenticatorConfig, ...] = attrs.field(default=(), converter=_jwts)
    anonymous: AnonymousConfig | None = None


def load_authentication_config(
    data: bytes, *, disallowed_issuers: Iterable[str] = ()
) -> AuthenticationConfiguration:
    """Decode and validate an ``--authentication-config`` file (YAML or JSON), spec §13.2-13.3.

    Decoding is strict, as kube-apiserver's: unknown or duplicated fields, a missing or
    unregistered ``apiVersion``/``kind`` are errors. Then every validation rule runs and every
    problem is raised at once: :class:`~k8sauthn.exceptions.ConfigError` whose ``errors`` are
    :class:`~k8sauthn.exceptions.FieldError` values (``jwt[0].issuer.url: Required value``).
    ``disallowed_issuers`` are the service-account issuers a JWT issuer must not reuse.
    """
    from ..exceptions import ConfigError
    from ._authentication_decode import decode_authentication_config
    from .authentication_validation import validate_authentication_config

    config = decode_authentication_config(data)
    errors = validate_authentication_config(config, disallowed_issuers=disallowed_issuers)
    if errors:
        raise ConfigError(errors)
    return config


#: kube-apiserver's text when some ``--oidc-*`` flag is set without the two that enable OIDC.
OIDC_FLAGS_TOGETHER: Final = (
    "oidc-issuer-url and oidc-client-id must be specified together when any oidc-* flags are set"
)


def legacy_signing_algs(opts: OIDCOptions) -> tuple[str, ...]:
    """``--oidc-signing-algs`` checked against the nine allowed values (spec §13.4)."""
    from ..exceptions import ConfigError

    algs = opts.signing_algs or ("RS256",)
    for alg in algs:
        if alg not in ALL_SIGNING_ALGORITHMS:
            raise ConfigError(f"oidc: unsupported signing alg: {_go_quote(alg)}")
    return tuple(algs)


def jwt_config_from_oidc_options(
    opts: OIDCOptions, ca_pem: str = "", *, disallowed_issuers: Iterable[str] = ()
) -> JWTAuthenticatorConfig:
    """The one JWT authenticator the legacy ``--oidc-*`` flags describe (spec §13.1 B).

    ``ca_pem`` is the content of ``--oidc-ca-file`` (read by the caller). The result goes through
    the same validation as a config file entry, so errors read ``jwt[0].issuer.url: ...``.
    Raises :class:`~k8sauthn.exceptions.ConfigError`; use :func:`legacy_signing_algs` for the
    algorithms to build it with.
    """
    from ..exceptions import ConfigError
    from .authentication_validation import validate_jwt_authenticator

    if not (opts.issuer_url and opts.client_id):
        raise ConfigError(OIDC_FLAGS_TOGETHER)

    prefix = opts.username_prefix
    if prefix == "" and opts.username_claim != "email":
        # Legacy behaviour (kubernetes#31380): claims other than email are prefixed by the issuer.
        prefix = opts.issuer_url + "#"
    if prefix == "-":
        prefix = ""
    groups = PrefixedClaimOrExpression()
    if opts.groups_claim:
        groups = PrefixedClaimOrExpression(claim=opts.groups_claim, prefix=opts.groups_prefix)
    # --oidc-required-claim fills a Go map: a repeated key keeps its last value.
    required = dict(opts.required_claims)
    config = JWTAuthenticatorConfig(
        issuer=Issuer(
            url=opts.issuer_url, certificate_authority=ca_pem, audiences=(opts.client_id,)
        ),
        claim_validation_rules=tuple(
            ClaimValidationRule(claim=k, required_value=v) for k, v in required.items()
        ),
        claim_mappings=ClaimMappings(
            username=PrefixedClaimOrExpression(claim=opts.username_claim, prefix=prefix),
            groups=groups,
        ),
    )
    errors = validate_jwt_authenticator(
        config, path="jwt[0]", disallowed_issuers=disallowed_issuers
    )
    if errors:
        raise ConfigError(errors)
    # kube-apiserver validates the generated configuration first (ToAuthenticationConfig) and
    # checks the algorithms only when it builds the authenticator (oidc.New).
    legacy_signing_algs(opts)
    return config
