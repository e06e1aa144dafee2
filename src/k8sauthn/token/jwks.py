"""An issuer's signing keys: OpenID discovery, the JWKS, rotation, outages (spec §13.4, §13.10).

:class:`JWKS` is an immutable key set, converted once per fetch. :class:`KeySet` is the live state
of one issuer, driven by flows:

* **Discovery is lazy.** Kubernetes starts it in the background at start-up and retries every 10 s;
  here the first token for the issuer runs it (as a :class:`~k8sauthn.Shared` effect, so concurrent
  tokens wait for one request), and a failure is retried at most every ``discovery_retry`` seconds.
  :meth:`KeySet.prime_flow` runs it eagerly for servers that want to be ready at start-up.
* **Keys are refreshed when no held key verifies a token** (rotation), single-flight and at most
  once per ``refresh_cooldown`` seconds. Kubernetes refreshes on every miss when the provider sends
  no caching headers, and never before the cached set nearly expires when it does.
* **A failed fetch keeps the keys we hold**, so a provider outage never rejects a token signed by a
  known key; a token for an unknown key fails closed after at most one fetch timeout.
"""

from __future__ import annotations

import hashlib
import http
import json
import os
import threading
from collections.abc import Iterable, Mapping
from typing import Final, Protocol

import attrs
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .._flow import Fetch, Fetched, Flow, Shared, TLSConfig
from ..exceptions import BackendUnavailable
from .jws import Check, CompactJWS, MalformedJWS, VerificationKey, loads_object

__all__ = ["JWKS", "JWTMetrics", "KeySet", "KeysUnavailable", "sha256_label"]

_WELL_KNOWN: Final = "/.well-known/openid-configuration"
_MAX_DOCUMENT_BYTES: Final = 1 << 20
_MAX_BODY_IN_ERROR: Final = 1024


def sha256_label(value: str) -> str:
    """``sha256:<hex>`` of a UTF-8 string, ``""`` for ``""`` (the metric label form, spec §18)."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest() if value else ""


class JWTMetrics(Protocol):
    """Where a JWT authenticator reports what spec §13.10 and §13.12 measure (no Prometheus here).

    ``issuer_hash`` is :func:`sha256_label` of the issuer URL; ``result`` is ``"success"`` or
    ``"failure"``; ``key_set_hash`` is ``sha256:<hex>`` of the JWKS body, ``""`` on failure.
    """

    def observe_latency(self, issuer_hash: str, result: str, seconds: float) -> None: ...

    def observe_jwks_fetch(
        self, issuer_hash: str, result: str, timestamp: float, key_set_hash: str
    ) -> None: ...


class KeysUnavailable(Exception):
    """The issuer's keys cannot be used yet: discovery has not succeeded (``oidc: not ready``)."""


@attrs.frozen
class JWKS:
    """A parsed key set. Keys we cannot use (``oct``, ``OKP``, bad parameters) are skipped."""

    keys: tuple[VerificationKey, ...] = ()
    digest: str = ""
    _by_kid: Mapping[str, tuple[VerificationKey, ...]] = attrs.field(
        init=False, repr=False, eq=False
    )
    # (kid, alg) -> the prepared checks to try, filled on first use; bounded by the kids this
    # set holds (plus None) times the nine algorithms: unknown kids are never stored.
    _plans: dict[tuple[str | None, str], tuple[Check, ...]] = attrs.field(
        init=False, repr=False, eq=False
    )

    def __attrs_post_init__(self) -> None:
        by_kid: dict[str, list[VerificationKey]] = {}
        for k in self.keys:
            if k.kid is not None:
                by_kid.setdefault(k.kid, []).append(k)
        object.__setattr__(self, "_by_kid", {k: tuple(v) for k, v in by_kid.items()})
        object.__setattr__(self, "_plans", {})

    @classmethod
    def from_json(cls, body: bytes) -> JWKS:
        """Parse a JWKS document (``{"keys": [...]}``); raises ``ValueError`` if it is not one."""
        doc = loads_object(body)
        keys = doc.get("keys")
        if not isinstance(keys, list):
            raise MalformedJWS('"keys" is not a list')
        parsed = (VerificationKey.from_jwk(k) for k in keys if isinstance(k, dict))
        return cls(tuple(k for k in parsed if k is not None), _sha256_bytes(body))

    @classmethod
    def from_public_keys(
        cls,
        keys: Mapping[str, rsa.RSAPublicKey | ec.EllipticCurvePublicKey]
        | Iterable[rsa.RSAPublicKey | ec.EllipticCurvePublicKey],
    ) -> JWKS:
        """A static set from ``cryptography`` public keys, by ``kid`` or without kids."""
        if isinstance(keys, Mapping):
            return cls(tuple(VerificationKey(kid, k) for kid, k in keys.items()))
        return cls(tuple(VerificationKey(None, k) for k in keys))

    def candidates(self, kid: str | None) -> tuple[VerificationKey, ...]:
        """With a ``kid`` only the keys carrying exactly that kid, else every key (go-jose)."""
        return self.keys if kid is None else self._by_kid.get(kid, ())

    def verifies(self, jws: CompactJWS) -> bool:
        """True when one candidate key verifies the token's signature."""
        return self.check(jws.alg, jws.kid, jws.signing_input, jws.signature)

    def check(self, alg: str, kid: str | None, signing_input: bytes, signature: bytes) -> bool:
        """True when a key with this ``kid`` (any key without one) verifies as ``alg``."""
        plan = self._plans.get((kid, alg))
        if plan is None:
            plan = self._plan(kid, alg)
        for check in plan:  # noqa: SIM110 - a plain loop: any(<genexpr>) costs a frame per token
            if check(signing_input, signature):
                return True
        return False

    def _plan(self, kid: str | None, alg: str) -> tuple[Check, ...]:
        plan = tuple(
            check for key in self.candidates(kid) if (check := key.check_for(alg)) is not None
        )
        if kid is None or kid in self._by_kid:
            self._plans[(kid, alg)] = plan  # a benign race: every thread computes the same
        return plan


def _sha256_bytes(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _status_line(resp: Fetched) -> str:
    """Go's ``resp.Status`` (``"404 Not Found"``)."""
    try:
        return f"{resp.status} {http.HTTPStatus(resp.status).phrase}"
    except ValueError:
        return str(resp.status)


def _body_text(resp: Fetched) -> str:
    return resp.body[:_MAX_BODY_IN_ERROR].decode("utf-8", "replace")


class KeySet:
    """The discovery document and signing keys of one issuer, shared by every request.

    Thread-safe: the lock guards only short state updates and is never held across a ``yield``.
    The constructor discovers lazily (OpenID discovery, then the ``jwks_uri``); :meth:`static`
    pins keys.
    """

    def __init__(
        self,
        issuer_url: str,
        *,
        discovery_url: str = "",
        jwks: JWKS | None = None,
        tls: TLSConfig | None = None,
        timeout: float = 30.0,
        refresh_cooldown: float = 10.0,
        discovery_retry: float = 10.0,
        metrics: JWTMetrics | None = None,
    ) -> None:
        self.issuer_url = issuer_url
        # Spec §13.4: only the GET of <issuer>/.well-known/openid-configuration is redirected.
        # Go's strings.TrimSuffix: one trailing slash only.
        self._discovery_url = discovery_url or issuer_url.removesuffix("/") + _WELL_KNOWN
        self._static = jwks is not None
        #: The keys held now (possibly empty); replaced as a whole on refresh. A plain
        #: attribute, not a property: it is read once per token.
        self.jwks: JWKS = jwks or JWKS()
        self._jwks_uri: str | None = "" if self._static else None
        #: True once discovery succeeded (always for a static set). A plain attribute: it is
        #: read once per token.
        self.ready = self._static
        self._tls = tls
        self._timeout = timeout
        self._cooldown = refresh_cooldown
        self._retry = discovery_retry
        self._metrics = metrics
        self._issuer_hash = sha256_label(issuer_url)
        self._lock = threading.Lock()
        # Random flight keys: distinct per instance, and they reveal nothing.
        self._jwks_flight = b"k8sauthn.jwks:" + os.urandom(16)
        self._discovery_flight = b"k8sauthn.discovery:" + os.urandom(16)
        self._fetching = False
        self._fetch_generation = 0
        self._last_fetch: float | None = None
        self._fetch_error = ""
        self._discovering = False
        self._discovery_generation = 0
        self._last_discovery: float | None = None
        self._discovery_error = ""

    @classmethod
    def static(cls, issuer_url: str, jwks: JWKS) -> KeySet:
        """A key set that is ready at once and never fetches (tests, pinned keys)."""
        return cls(issuer_url, jwks=jwks)

    # -- state --------------------------------------------------------------------------------
    def health_error(self) -> str | None:
        """``None`` when ready, else Kubernetes' health-check text (spec §13.4)."""
        if self.ready:
            return None
        prefix = f"oidc: authenticator for issuer {_go_quote(self.issuer_url)}"
        if not self._discovery_error:
            return prefix + " is not initialized"
        return f"{prefix} is not healthy: {self._discovery_error}"

    # -- flows --------------------------------------------------------------------------------
    def ensure_ready_flow(self, now: float) -> Flow[None]:
        """Discover the issuer if needed (rate-limited); raise :class:`KeysUnavailable` if not."""
        if self._jwks_uri is not None:
            return
        with self._lock:
            generation = self._discovery_generation
            allowed = self._discovering or _elapsed(self._last_discovery, now, self._retry)
        if allowed:
            yield Shared(self._discovery_flight, lambda: self._discover_flow(generation, now))
        if self._jwks_uri is None:
            raise KeysUnavailable(self.health_error())

    def prime_flow(self, now: float) -> Flow[bool]:
        """Discover now and fetch the keys once; True when both succeeded (start-up readiness)."""
        if self._static:
            return True
        if self._jwks_uri is None:
            with self._lock:
                generation = self._discovery_generation
            yield Shared(self._discovery_flight, lambda: self._discover_flow(generation, now))
            if self._jwks_uri is None:
                return False
        with self._lock:
            generation = self._fetch_generation
        yield Shared(self._jwks_flight, lambda: self._fetch_flow(generation, now, force=True))
        return not self._fetch_error

    def verify_flow(self, jws: CompactJWS, now: float) -> Flow[None]:
        """Return when a key verifies ``jws``; else refresh once (if allowed) and raise.

        Raises ``ValueError`` with go-oidc's text (``failed to verify signature: ...``), or
        ``BackendUnavailable`` when the last attempt to fetch the keys failed.
        """
        if self.jwks.verifies(jws):
            return
        if not self._static:
            with self._lock:
                generation = self._fetch_generation
                allowed = self._fetching or _elapsed(self._last_fetch, now, self._cooldown)
            if allowed:
                yield Shared(self._jwks_flight, lambda: self._fetch_flow(generation, now))
                if self.jwks.verifies(jws):
                    return
            if self._fetch_error:
                # The keys could not be fetched: "could not check", never cached as a rejection.
                raise BackendUnavailable(
                    f"failed to verify signature: fetching keys {self._fetch_error}",
                    url=self._jwks_uri or "",
                )
        raise ValueError("failed to verify signature: failed to verify id token signature")

    # -- the shared sub-flows (one runs per flight) --------------------------------------------
    def _discover_flow(self, seen_generation: int, now: float) -> Flow[None]:
        with self._lock:
            if self._discovery_generation != seen_generation or self._jwks_uri is not None:
                return  # another flight finished after our caller looked: nothing to do
            self._discovering, self._last_discovery = True, now
        error = ""
        try:
            resp = yield self._get(self._discovery_url)
            error = self._accept_discovery(resp)
        except BackendUnavailable as exc:
            error = str(exc)
        finally:
            with self._lock:
                self._discovering = False
                self._discovery_generation += 1
                self._discovery_error = error

    def _accept_discovery(self, resp: Fetched) -> str:
        if resp.status != 200:
            return f"{_status_line(resp)}: {_body_text(resp)}"
        try:
            doc = loads_object(resp.body)
        except MalformedJWS as exc:
            return f"oidc: failed to decode provider discovery object: {exc}"
        issuer, jwks_uri = doc.get("issuer"), doc.get("jwks_uri")
        if not isinstance(issuer, str) or not isinstance(jwks_uri, (str, type(None))):
            return "oidc: failed to decode provider discovery object: issuer/jwks_uri not strings"
        if issuer != self.issuer_url:  # exact: no trailing-slash normalisation (spec §13.4)
            return (
                "oidc: issuer did not match the issuer returned by provider, "
                f"expected {_go_quote(self.issuer_url)} got {_go_quote(issuer)}"
            )
        if not jwks_uri:
            return "provider did not return JWKS URL"
        if not jwks_uri.startswith("https://"):
            # Beyond Kubernetes: keys fetched over plain HTTP could be swapped in transit.
            return f"oidc: jwks_uri must use https, got {_go_quote(jwks_uri)}"
        self._jwks_uri = jwks_uri
        self.ready = True
        return ""

    def _fetch_flow(self, seen_generation: int, now: float, *, force: bool = False) -> Flow[None]:
        uri = self._jwks_uri
        with self._lock:
            if self._fetch_generation != seen_generation or not uri:
                return
            if not force and not _elapsed(self._last_fetch, now, self._cooldown):
                return
            self._fetching, self._last_fetch = True, now
        error, digest, at = "", "", now
        try:
            resp = yield self._get(uri)
            at = resp.time or now
            if resp.status != 200:
                error = f"oidc: get keys failed: {_status_line(resp)} {_body_text(resp)}"
            else:
                try:
                    jwks = JWKS.from_json(resp.body)
                except MalformedJWS as exc:
                    error = f"oidc: failed to decode keys: {exc} {_body_text(resp)}"
                else:
                    self.jwks, digest = jwks, jwks.digest
        except BackendUnavailable as exc:
            error = f"oidc: get keys failed {exc}"
        finally:
            with self._lock:
                self._fetching = False
                self._fetch_generation += 1
                self._fetch_error = error
            if self._metrics is not None:
                result = "failure" if error else "success"
                self._metrics.observe_jwks_fetch(self._issuer_hash, result, at, digest)

    def _get(self, url: str) -> Fetch:
        return Fetch(
            "GET",
            url,
            headers={"accept": "application/json"},
            timeout=self._timeout,
            max_bytes=_MAX_DOCUMENT_BYTES,
            tls=self._tls,
        )


def _elapsed(last: float | None, now: float, interval: float) -> bool:
    return last is None or now - last >= interval or now < last


def _go_quote(value: str) -> str:
    """Go's ``%q`` for the printable strings we quote (JSON escaping is the same for them)."""
    return json.dumps(value, ensure_ascii=False)
