"""The JWT (OpenID Connect) token authenticator for one issuer (spec §13.4-§13.9, §13.12).

``JWTAuthenticator.token_flow`` runs kube-apiserver's per-token pipeline in its exact order:

1. an unverified issuer pre-check: tokens of other issuers are *no opinion*, silently;
2. not ready (discovery has not succeeded) -> ``oidc: authenticator not initialized``;
3. signature, then the registered claims (``iss``, ``aud`` MatchAny, ``exp`` without leeway,
   ``nbf`` with 60 s) against ``ctx.now`` (the JWT library's wall clock is never read);
4. distributed ``groups`` claims; username, groups, uid, extra; required claims; CEL claim rules;
   CEL user rules; then the user, with ``Response.expires_at = exp`` so that no cache serves it
   past the token's expiry.

Several issuers are combined by the configuration (a fail-on-error union), not here.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import attrs
from cryptography import x509

from .._flow import Fetch, Flow, TLSConfig
from .._types import Context, Response
from ..config.authentication import JWTAuthenticatorConfig
from ..config.authentication_validation import validate_jwt_authenticator
from ..exceptions import AuthenticationError, BackendUnavailable, ConfigError
from .cel import cel_value, compile_claims_expression, compile_user_expression
from .claims import (
    ClaimMapper,
    ClaimRules,
    InvalidJWT,
    StandardClaims,
    UserRules,
    needs_folding,
)
from .claims import standard_claims as _standard_claims
from .jwks import JWKS, JWTMetrics, KeySet, KeysUnavailable, sha256_label
from .jws import (
    ALGORITHMS,
    MAX_TOKEN_BYTES,
    CompactJWS,
    MalformedJWS,
    b64decode_strict,
    loads_object,
)
from .jws import parse_compact as _parse_compact
from .jws import parse_parts as _parse_parts

__all__ = ["JWKS", "InvalidJWT", "JWTAuthenticator", "JWTMetrics", "KeySet"]

_GOOGLE: Final = "accounts.google.com"
_NBF_LEEWAY: Final = 60.0
_MAX_CLAIM_ISSUERS: Final = 16
_LOOSE_JSON: Final = json.JSONDecoder(parse_constant=lambda c: _raise(MalformedJWS(c)))


def _raise(exc: Exception) -> Any:
    raise exc


def _go_time(seconds: float) -> str:
    """Go's ``time.Time.String()`` in UTC: ``2009-11-10 23:00:00.5 +0000 UTC``."""
    whole = int(seconds // 1)
    try:
        text = dt.datetime.fromtimestamp(whole, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        text = f"@{whole}"
    nanos = round((seconds - whole) * 1e9)
    frac = f".{nanos:09d}".rstrip("0") if nanos else ""
    return f"{text}{frac} +0000 UTC"


def _go_list(values: Sequence[str]) -> str:
    """Go's ``%q`` of a string slice: ``["a" "b"]``."""
    return "[" + " ".join(json.dumps(v, ensure_ascii=False) for v in values) + "]"


class _Unverified:
    """What the pre-check learnt: the issuer, the payload, and the strict claims (or why not)."""

    __slots__ = ("claims", "fold", "iss", "parts", "payload", "strict_error")

    def __init__(
        self,
        iss: str,
        payload: bytes,
        claims: dict[str, Any] | None,
        strict_error: str = "",
        fold: bool = True,
    ) -> None:
        self.iss, self.payload, self.claims = iss, payload, claims
        self.strict_error, self.fold = strict_error, fold
        self.parts: list[str] = []


_NOT_A_JWT: Final = _Unverified("", b"", None)


def _unverified(payload_segment: str) -> _Unverified:
    """Read the unverified payload (spec §13.5 step 1); ``iss`` is "" when unreadable."""
    try:
        payload = b64decode_strict(payload_segment)
    except MalformedJWS:
        return _NOT_A_JWT
    strict_error = ""
    try:
        claims: Any = loads_object(payload)
    except MalformedJWS as exc:
        # Go reads the issuer from any valid JSON (the last duplicate wins); so do we, and
        # reject the token with the strict error later if it turns out to be ours.
        strict_error = str(exc)
        try:
            claims = _LOOSE_JSON.decode(payload.decode("utf-8"))
        except (UnicodeError, ValueError, MalformedJWS):
            return _NOT_A_JWT
    if not isinstance(claims, dict):
        return _NOT_A_JWT
    iss: Any = claims.get("iss", "")
    fold = needs_folding(claims)
    if fold:
        # Go's struct decoding: a key matching "iss" case-insensitively counts; the last wins.
        for key, value in claims.items():
            if len(key) == 3 and (key == "iss" or key.casefold() == "iss"):
                iss = value
    if not isinstance(iss, str):
        return _NOT_A_JWT
    return _Unverified(iss, payload, None if strict_error else claims, strict_error, fold)


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
    _issuer_hash: str = attrs.field(init=False, repr=False)
    _needs_cel: bool = attrs.field(init=False, repr=False)
    _claim_issuers: dict[str, KeySet] = attrs.field(factory=dict, init=False, repr=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._issuer_hash = sha256_label(self.issuer_url)
        self._needs_cel = self.mapper.uses_cel or bool(self.claim_rules.expressions)

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

        One generator, no nested flow on the common path: each level costs on every token.
        """
        if len(token) > MAX_TOKEN_BYTES or (
            token[:1] == "{" or (token[:1].isspace() and token.lstrip().startswith("{"))
        ):
            return None
        parts = token.split(".")
        if len(parts) != 3:
            return None
        pre = _unverified(parts[1])
        iss = "https://" + _GOOGLE if pre.iss == _GOOGLE else pre.iss
        if iss != self.issuer_url:
            return None
        pre.parts = parts
        metrics = self.metrics
        start, result = (self.clock() if metrics is not None else 0.0), "failure"
        keys = self.keys
        try:
            if not keys.ready:
                try:
                    yield from keys.ensure_ready_flow(ctx.now)
                except KeysUnavailable:
                    raise BackendUnavailable(
                        "oidc: authenticator not initialized", url=self.issuer_url
                    ) from None
            try:
                jws = self._parse(token, pre)
                if not keys.jwks.verifies(jws):
                    yield from self._refresh_and_verify(keys, jws, ctx.now)
                std = self._check_claims(pre, self.issuer_url, ctx.now)
            except InvalidJWT as exc:
                raise InvalidJWT(f"oidc: verify token: {exc}") from None
            except BackendUnavailable as exc:
                raise BackendUnavailable(f"oidc: verify token: {exc}", url=exc.url) from None
            claims = pre.claims
            assert claims is not None  # _check_claims raises when the payload was not strict
            mapper = self.mapper
            if mapper.groups_claim and mapper.groups_claim not in claims:
                try:
                    claims = yield from self._distributed_groups(
                        claims, std, mapper.groups_claim, ctx
                    )
                except AuthenticationError as exc:
                    raise InvalidJWT(f"oidc: could not expand distributed claims: {exc}") from None
            cel_vars = {"claims": cel_value(claims)} if self._needs_cel else None
            user = mapper.user(claims, cel_vars)
            self.claim_rules.check(claims, cel_vars)
            self.user_rules.check(user)
            result = "success"
            return Response(user, expires_at=None if std.exp is None else float(std.exp))
        finally:
            if metrics is not None:
                metrics.observe_latency(self._issuer_hash, result, self.clock() - start)

    def _verify(
        self,
        token: str,
        keys: KeySet,
        pre: _Unverified,
        now: float,
    ) -> Flow[StandardClaims]:
        """go-oidc's ``Verify`` (spec §13.6), texts without the ``oidc: verify token:`` prefix."""
        jws = self._parse(token, pre)
        if not keys.jwks.verifies(jws):
            yield from self._refresh_and_verify(keys, jws, now)
        return self._check_claims(pre, keys.issuer_url, now)

    def _parse(self, token: str, pre: _Unverified) -> CompactJWS:
        try:
            if len(pre.parts) == 3:  # the pre-check split it already (at most MAX_TOKEN_BYTES)
                head, body, sig = pre.parts
                jws = _parse_parts(head, body, sig, pre.payload)
            else:
                jws = _parse_compact(token, payload=pre.payload)
        except MalformedJWS as exc:
            raise InvalidJWT(f"oidc: malformed jwt: {exc}") from None
        if jws.alg not in self.algorithms:
            raise InvalidJWT(
                "oidc: id token signed with unsupported algorithm, "
                f"expected {_go_list(self.algorithms)} got {json.dumps(jws.alg)}"
            )
        return jws

    @staticmethod
    def _refresh_and_verify(keys: KeySet, jws: CompactJWS, now: float) -> Flow[None]:
        try:
            yield from keys.verify_flow(jws, now)
        except ValueError as exc:
            raise InvalidJWT(str(exc)) from None

    def _check_claims(self, pre: _Unverified, expected: str, now: float) -> StandardClaims:
        """Steps 5-11 of spec §13.6, after the signature verified."""
        if pre.claims is None:
            raise InvalidJWT(f"oidc: failed to unmarshal claims: {pre.strict_error}")
        std = _standard_claims(pre.claims, fold=pre.fold)
        for source in std.claim_names.values():
            if not source:
                raise InvalidJWT("oidc: failed to obtain source from claim name")
            if source not in std.claim_sources:
                raise InvalidJWT("oidc: source does not exist")
        if std.iss != expected and not (expected == "https://" + _GOOGLE and std.iss == _GOOGLE):
            raise InvalidJWT(
                "oidc: id token issued by a different provider, "
                f"expected {json.dumps(expected)} got {json.dumps(std.iss)}"
            )
        auds = self.audiences
        if not (auds[0] in std.aud if len(auds) == 1 else any(a in std.aud for a in auds)):
            if len(auds) == 1:
                want = json.dumps(auds[0])
                raise InvalidJWT(f"oidc: expected audience {want} got {_go_list(std.aud)}")
            want = _go_list(sorted(auds))
            raise InvalidJWT(f"oidc: expected audience in {want} got {_go_list(std.aud)}")
        if std.exp is None:
            raise InvalidJWT("oidc: token is expired (Token Expiry: 0001-01-01 00:00:00 +0000 UTC)")
        if std.exp < now:  # exp == now is still valid; no leeway (spec §13.6 step 9)
            raise InvalidJWT(f"oidc: token is expired (Token Expiry: {_go_time(std.exp)})")
        if std.nbf is not None and now + _NBF_LEEWAY < std.nbf:
            raise InvalidJWT(
                f"oidc: current time {_go_time(now)} before the nbf (not before) time: "
                f"{_go_time(std.nbf)}"
            )
        return std

    # -- distributed claims (spec §13.9) ------------------------------------------------------
    def _distributed_groups(
        self, claims: dict[str, Any], std: StandardClaims, name: str, ctx: Context
    ) -> Flow[dict[str, Any]]:
        # go-oidc's verification already checked that every name points at an existing source
        # (spec §13.6 step 6), so the lookups below cannot miss.
        source_name = std.claim_names.get(name)
        if source_name is None:
            return claims
        endpoint, access_token = std.claim_sources[source_name]
        if not endpoint:
            return claims  # an aggregated claim (a JWT inline): ignored, as in Kubernetes
        headers = {"accept": "application/jwt"}
        if access_token:
            headers["authorization"] = "Bearer " + access_token
        fetch = Fetch("GET", endpoint, headers, timeout=self.timeout, tls=self.tls)
        where = f"while getting distributed claim {json.dumps(name)}: "
        try:
            resp = yield fetch
        except BackendUnavailable as exc:
            raise InvalidJWT(where + str(exc)) from None
        if not 200 <= resp.status <= 226:
            raise InvalidJWT(
                where + f"error while getting distributed claim JWT: {_status_line(resp.status)}"
            )
        value = yield from self._claim_from_jwt(resp.body, endpoint, name, ctx)
        return {**claims, name: value}

    def _claim_from_jwt(self, body: bytes, endpoint: str, name: str, ctx: Context) -> Flow[Any]:
        token = body.decode("utf-8", "replace").strip()
        parts = token.split(".")
        pre = _unverified(parts[1]) if len(parts) == 3 else _NOT_A_JWT
        iss = pre.iss
        try:
            if not iss.startswith("https://"):
                # Beyond Kubernetes: never run discovery over plain HTTP (or for no issuer).
                raise KeysUnavailable(iss)
            keys = self._claim_issuer_keys(iss)
            yield from keys.ensure_ready_flow(ctx.now)
        except KeysUnavailable:
            raise InvalidJWT(
                f"verifying untrusted issuer {iss} failed: "
                f"verifier not initialized for issuer: {json.dumps(iss)}"
            ) from None
        try:
            yield from self._verify(token, keys, pre, ctx.now)
        except (InvalidJWT, BackendUnavailable) as exc:
            raise InvalidJWT(f"verify distributed claim token: {exc}") from None
        if pre.claims is None or name not in pre.claims:
            raise InvalidJWT(
                f"jwt returned by distributed claim endpoint {json.dumps(endpoint)} "
                f"did not contain claim: {name}"
            )
        return pre.claims[name]

    def _claim_issuer_keys(self, iss: str) -> KeySet:
        # Kubernetes trusts any issuer a claims endpoint names once its discovery works; we do
        # the same, with at most _MAX_CLAIM_ISSUERS verifiers kept (oldest dropped first).
        with self._lock:
            keys = self._claim_issuers.get(iss)
            if keys is None:
                if len(self._claim_issuers) >= _MAX_CLAIM_ISSUERS:
                    self._claim_issuers.pop(next(iter(self._claim_issuers)))
                keys = self._claim_issuers[iss] = KeySet(iss, tls=self.tls, timeout=self.timeout)
            return keys


def _status_line(status: int) -> str:
    import http

    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


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
