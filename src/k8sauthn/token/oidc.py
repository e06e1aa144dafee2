"""The JWT (OpenID Connect) token authenticator for one issuer (spec §13.4-§13.9, §13.12).

``JWTAuthenticator.token_flow`` runs kube-apiserver's per-token pipeline in its exact order:

1. an unverified issuer pre-check: tokens of other issuers are *no opinion*, silently;
2. not ready (discovery has not succeeded) -> ``oidc: authenticator not initialized``;
3. signature, then the registered claims (``iss``, ``aud``, ``exp`` without leeway, ``nbf``
   with 60 s) against ``ctx.now`` (no wall clock is ever read);
4. distributed ``groups`` claims; username, groups, uid, extra; required claims; CEL claim rules;
   CEL user rules; then the user, with ``Response.expires_at = exp`` so that no cache serves it
   past the token's expiry.

The pieces live beside this module: :mod:`._verifier` (pre-check and go-oidc's verification),
:mod:`.jwks` (keys), :mod:`.distributed`, :mod:`.claims` (mappings and rules) and
:mod:`._goclaims` (the registered claims). Several issuers are combined by the configuration
(a fail-on-error union), not here.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import attrs
from cryptography import x509

from .._flow import Flow, TLSConfig, pure
from .._protocols import TokenAuthenticator
from .._types import Context, Response
from ..chain.union import token_union
from ..config.authentication import JWTAuthenticatorConfig
from ..config.authentication_validation import validate_jwt_authenticator
from ..exceptions import AuthenticationError, BackendUnavailable, ConfigError
from ._goclaims import InvalidJWT
from ._verifier import IDTokenVerifier, Unverified, read_unverified, refresh_and_verify
from .cel import cel_value, compile_claims_expression, compile_user_expression
from .claims import ClaimMapper, ClaimRules, UserRules
from .distributed import DistributedClaims
from .jwks import JWKS, JWTMetrics, KeySet, KeysUnavailable, sha256_label
from .jws import ALGORITHMS

__all__ = [
    "JWKS",
    "InvalidJWT",
    "JWTAuthenticator",
    "JWTIssuerIndex",
    "JWTMetrics",
    "KeySet",
    "jwt_union",
]


@attrs.define(eq=False)
class JWTAuthenticator:
    """Authenticates JWTs of one issuer. Build it with :meth:`from_config`.

    Returns ``None`` for tokens that are not JWTs of this issuer; raises :class:`InvalidJWT`
    for a token of this issuer that fails, and ``BackendUnavailable`` when the issuer's
    discovery or keys cannot be fetched (never cached).
    """

    issuer_url: str
    audiences: tuple[str, ...]
    algorithms: tuple[str, ...]
    keys: KeySet = attrs.field(repr=False)
    mapper: ClaimMapper = attrs.field(repr=False)
    claim_rules: ClaimRules = attrs.field(repr=False)
    user_rules: UserRules = attrs.field(repr=False)
    tls: TLSConfig | None = attrs.field(default=None, repr=False)
    timeout: float = 30.0
    metrics: JWTMetrics | None = attrs.field(default=None, repr=False)
    clock: Callable[[], float] = attrs.field(default=time.perf_counter, repr=False)
    # Derived once here, so that nothing per token re-derives them.
    _issuer_hash: str = attrs.field(init=False, repr=False)
    _verifier: IDTokenVerifier = attrs.field(init=False, repr=False)
    _distributed: DistributedClaims | None = attrs.field(init=False, repr=False)
    _needs_cel: bool = attrs.field(init=False, repr=False)
    _has_rules: bool = attrs.field(init=False, repr=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._issuer_hash = sha256_label(self.issuer_url)
        self._verifier = IDTokenVerifier(self.issuer_url, self.audiences, self.algorithms)
        groups_claim = self.mapper.groups_claim
        self._distributed = (
            DistributedClaims(
                groups_claim, self.audiences, self.algorithms, tls=self.tls, timeout=self.timeout
            )
            if groups_claim
            else None
        )
        self._needs_cel = self.mapper.uses_cel or bool(self.claim_rules.expressions)
        self._has_rules = bool(
            self.claim_rules.required or self.claim_rules.expressions or self.user_rules.expressions
        )

    @classmethod
    def from_config(
        cls,
        cfg: JWTAuthenticatorConfig,
        *,
        signing_algs: Sequence[str] = ("RS256",),
        keys: JWKS | Mapping[str, Any] | bytes | str | None = None,
        metrics: JWTMetrics | None = None,
        timeout: float = 30.0,
        refresh_cooldown: float = 10.0,
        discovery_retry: float = 10.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> JWTAuthenticator:
        """Build from one ``jwt[]`` entry (or the legacy ``--oidc-*`` flags turned into one).

        ``signing_algs`` is ``("RS256",)`` for the flags (``--oidc-signing-algs``) and
        :data:`~k8sauthn.token.jws.ALGORITHMS` (all nine) for config-file authenticators.
        ``keys`` pins a static key set (no discovery, ready at once). ``timeout`` bounds each
        discovery/JWKS/claims request; ``clock`` is only used to measure latency for ``metrics``.
        """
        algs = tuple(signing_algs) or ("RS256",)
        for alg in algs:
            if alg not in ALGORITHMS:
                raise ConfigError(f"oidc: unsupported signing alg: {json.dumps(alg)}")
        # Kubernetes validates again when it builds an authenticator (spec §13.3), with paths
        # rooted at the bare field ("issuer.url: ...").
        errors = validate_jwt_authenticator(cfg)
        if errors:
            raise ConfigError(errors)
        issuer = cfg.issuer
        tls = None
        if issuer.certificate_authority:
            try:
                x509.load_pem_x509_certificates(issuer.certificate_authority.encode())
            except ValueError as exc:  # pragma: no cover - validation reports it first
                raise ConfigError(f"Failed to read the CA contents: {exc}") from None
            tls = TLSConfig(ca_pem=issuer.certificate_authority.encode())
        if keys is None:
            key_set = KeySet(
                issuer.url,
                discovery_url=issuer.discovery_url,
                tls=tls,
                timeout=timeout,
                refresh_cooldown=refresh_cooldown,
                discovery_retry=discovery_retry,
                metrics=metrics,
            )
        else:
            key_set = KeySet.static(issuer.url, _as_jwks(keys))
        return cls(
            issuer_url=issuer.url,
            audiences=tuple(issuer.audiences),
            algorithms=algs,
            keys=key_set,
            mapper=_mapper(cfg),
            claim_rules=ClaimRules(
                required=tuple(
                    (r.claim, r.required_value) for r in cfg.claim_validation_rules if r.claim
                ),
                expressions=tuple(
                    (compile_claims_expression(r.expression), r.message)
                    for r in cfg.claim_validation_rules
                    if r.expression
                ),
            ),
            user_rules=UserRules(
                tuple(
                    (compile_user_expression(r.expression), r.message)
                    for r in cfg.user_validation_rules
                )
            ),
            tls=tls,
            timeout=timeout,
            metrics=metrics,
            clock=clock,
        )

    # -- readiness ----------------------------------------------------------------------------
    def prime_flow(self, now: float) -> Flow[bool]:
        """Discover the issuer and fetch its keys now; True when ready (server start-up)."""
        return self.keys.prime_flow(now)

    @property
    def ready(self) -> bool:
        """True once discovery succeeded (always with static keys)."""
        return self.keys.ready

    def health_error(self) -> str | None:
        """``None`` once discovery succeeded, else Kubernetes' health-check text."""
        return self.keys.health_error()

    # -- the per-token pipeline ---------------------------------------------------------------
    def token_flow(self, token: str, ctx: Context, /) -> Flow[Response | None]:
        """Spec §13.5, in order. ``None`` for tokens of other issuers.

        One generator, and no nested flow on the common path: each level costs on every token.
        """
        pre = read_unverified(token)
        if pre.iss != self.issuer_url:  # "" when unreadable; a configured issuer never is ""
            return pure(None)
        return self.verify_flow(pre, ctx)

    def verify_flow(self, pre: Unverified, ctx: Context, /) -> Flow[Response | None]:
        """Steps 2-4 for a token already read and found to be of this issuer (``pre.iss``)."""
        metrics = self.metrics
        start, result = (self.clock() if metrics is not None else 0.0), "failure"
        keys, now = self.keys, ctx.now
        try:
            if not keys.ready:
                try:
                    yield from keys.ensure_ready_flow(now)
                except KeysUnavailable:
                    raise BackendUnavailable(
                        "oidc: authenticator not initialized", url=self.issuer_url
                    ) from None
            verifier = self._verifier
            try:
                unverified = verifier.check_signature(pre, keys.jwks)
                if unverified is not None:
                    yield from refresh_and_verify(keys, pre, unverified, now)
                exp = verifier.claims(pre, now)
            except InvalidJWT as exc:
                raise InvalidJWT(f"oidc: verify token: {exc}") from None
            except BackendUnavailable as exc:
                raise BackendUnavailable(f"oidc: verify token: {exc}", url=exc.url) from None
            claims = pre.claims
            assert claims is not None  # verifier.claims raises when the payload was not strict
            distributed = self._distributed
            if distributed is not None and distributed.needed(claims):
                try:
                    claims = yield from distributed.expand_flow(claims, ctx)
                except AuthenticationError as exc:
                    raise InvalidJWT(f"oidc: could not expand distributed claims: {exc}") from None
            cel_vars = {"claims": cel_value(claims)} if self._needs_cel else None
            user = self.mapper.user(claims, cel_vars)
            if self._has_rules:
                self.claim_rules.check(claims, cel_vars)
                self.user_rules.check(user)
            result = "success"
            return Response(user, (), float(exp))
        finally:
            if metrics is not None:
                metrics.observe_latency(self._issuer_hash, result, self.clock() - start)


class JWTIssuerIndex:
    """JWT authenticators of distinct issuers, dispatched on the token's unverified issuer.

    The same answers, errors and order as ``token_union(*members, fail_on_error=True)`` (how
    kube-apiserver combines them): there every member but the one of the token's issuer
    answers no opinion silently, and issuer URLs are unique (spec §13.3 validation). The
    payload is read once instead of once per member, so the cost does not grow with the number
    of issuers (P2: 64 issuers cost 22x one verify through the union).
    """

    __slots__ = ("_by_issuer", "members")

    def __init__(self, members: Sequence[JWTAuthenticator]) -> None:
        self.members = tuple(members)
        self._by_issuer = {m.issuer_url: m for m in self.members}
        if len(self._by_issuer) != len(self.members):
            raise ValueError("JWT authenticators must have distinct issuer URLs")

    def __repr__(self) -> str:
        return f"JWTIssuerIndex({list(self._by_issuer)!r})"

    def token_flow(self, token: str, ctx: Context, /) -> Flow[Response | None]:
        pre = read_unverified(token)
        member = self._by_issuer.get(pre.iss)  # "" when unreadable: never a configured issuer
        if member is None:
            return pure(None)
        return member.verify_flow(pre, ctx)


def jwt_union(members: Sequence[TokenAuthenticator]) -> TokenAuthenticator:
    """The authenticators of an AuthenticationConfiguration's ``jwt`` list, combined.

    An issuer index when they are all :class:`JWTAuthenticator` of distinct issuers, else
    kube-apiserver's fail-on-error union (e.g. a custom builder's authenticators).
    """
    if len(members) > 1 and all(type(m) is JWTAuthenticator for m in members):
        jwts = cast("list[JWTAuthenticator]", list(members))
        if len({m.issuer_url for m in jwts}) == len(jwts):
            return JWTIssuerIndex(jwts)
    return token_union(*members, fail_on_error=True)


def _as_jwks(keys: JWKS | Mapping[str, Any] | bytes | str) -> JWKS:
    if isinstance(keys, JWKS):
        return keys
    if isinstance(keys, Mapping):
        keys = json.dumps(keys)
    if isinstance(keys, str):
        keys = keys.encode()
    return JWKS.from_json(keys)


def _mapper(cfg: JWTAuthenticatorConfig) -> ClaimMapper:
    m = cfg.claim_mappings

    def expr(source: str) -> Any:
        return compile_claims_expression(source) if source else None

    return ClaimMapper(
        username_claim=m.username.claim,
        username_prefix=m.username.prefix or "",
        username_expr=expr(m.username.expression),
        groups_claim=m.groups.claim,
        groups_prefix=m.groups.prefix or "",
        groups_expr=expr(m.groups.expression),
        uid_claim=m.uid.claim,
        uid_expr=expr(m.uid.expression),
        extra=tuple((e.key, compile_claims_expression(e.value_expression)) for e in m.extra),
    )
