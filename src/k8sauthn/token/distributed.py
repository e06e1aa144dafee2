"""Distributed ``groups`` claims (spec §13.9): Kubernetes' ``claimResolver``.

When ``claimMappings.groups.claim`` is set and the token lacks that claim, its
``_claim_names``/``_claim_sources`` (read by exact key, as Kubernetes reads its claim map) may
point at an endpoint. The endpoint's answer is itself a JWT, verified by a verifier for whatever
issuer it names (created on first use, with its own discovery), with the main token's audiences,
algorithms and clock; its value of the claim then replaces the missing one.

Beyond Kubernetes: the claim JWT's issuer must be an ``https`` URL, at most
:data:`MAX_CLAIM_ISSUERS` such verifiers are kept, and the endpoint's answer is bounded.
"""

from __future__ import annotations

import http
import threading
from collections.abc import Mapping
from typing import Any, Final

from .._flow import Fetch, Flow, TLSConfig
from .._types import Context
from ..exceptions import BackendUnavailable
from ._goclaims import InvalidJWT, cannot_unmarshal, go_quote, go_type_name
from ._verifier import IDTokenVerifier, read_unverified
from .jwks import KeySet, KeysUnavailable
from .jws import MAX_TOKEN_BYTES

__all__ = ["MAX_CLAIM_ISSUERS", "DistributedClaims"]

#: How many claim-JWT issuers one authenticator keeps verifiers for (oldest dropped first).
MAX_CLAIM_ISSUERS: Final = 16
_MAX_RESPONSE_BYTES: Final = MAX_TOKEN_BYTES + 1024
_ENDPOINT_FIELDS: Final = ("endpoint", "access_token", "JWT")


class DistributedClaims:
    """Resolves one claim (the groups claim) from a distributed source; thread-safe."""

    def __init__(
        self,
        claim: str,
        audiences: tuple[str, ...],
        algorithms: tuple[str, ...],
        *,
        tls: TLSConfig | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.claim = claim
        self._audiences, self._algorithms = audiences, algorithms
        self._tls, self._timeout = tls, timeout
        self._issuers: dict[str, tuple[IDTokenVerifier, KeySet]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DistributedClaims(claim={self.claim!r})"

    def needed(self, claims: Mapping[str, Any]) -> bool:
        """Cheap test for the hot path: only a token without the claim but with names."""
        return self.claim not in claims and "_claim_names" in claims

    def expand_flow(self, claims: dict[str, Any], ctx: Context) -> Flow[dict[str, Any]]:
        """Kubernetes' ``expand``: the claims, with the claim resolved when it is distributed.

        Errors are raised without the ``oidc: could not expand distributed claims:`` prefix.
        """
        name = self.claim
        if name in claims or "_claim_names" not in claims:
            return claims  # a normal claim wins; no names, nothing to look up
        names = _claim_names(claims["_claim_names"])
        if "_claim_sources" not in claims:
            raise InvalidJWT("oidc: no claim sources")
        sources = _claim_sources(claims["_claim_sources"])
        source = names.get(name)
        if source is None:
            return claims
        if source not in sources:
            raise InvalidJWT(
                f"id token _claim_names contained a source {source} missing in _claims_sources"
            )
        endpoint, access_token = sources[source]
        if not endpoint:
            return claims  # an aggregated claim (inline JWT): not supported, ignored
        value = yield from self._resolve(endpoint, access_token, ctx)
        return {**claims, name: value}

    def _resolve(self, endpoint: str, access_token: str, ctx: Context) -> Flow[Any]:
        name = self.claim
        headers = {"authorization": "Bearer " + access_token} if access_token else {}
        where = f"while getting distributed claim {go_quote(name)}: "
        try:
            resp = yield Fetch(
                "GET",
                endpoint,
                headers,
                timeout=self._timeout,
                max_bytes=_MAX_RESPONSE_BYTES,
                tls=self._tls,
            )
        except BackendUnavailable as exc:
            raise InvalidJWT(where + str(exc)) from None
        if not 200 <= resp.status <= 226:
            raise InvalidJWT(
                where + f"error while getting distributed claim JWT: {_status_line(resp.status)}"
            )
        # Go's base64 skips CR/LF, so a trailing newline after the JWT is harmless there.
        pre = read_unverified(resp.body.decode("utf-8", "replace").strip("\r\n"))
        if pre.error:
            raise InvalidJWT(
                f"getting untrusted issuer from endpoint {endpoint} failed for claim "
                f"{go_quote(name)}: {pre.error}"
            )
        iss = pre.iss
        try:
            if not iss.startswith("https://"):
                # Beyond Kubernetes: never run discovery over plain HTTP (or for no issuer).
                raise KeysUnavailable(iss)
            verifier, keys = self._verifier_for(iss)
            yield from keys.ensure_ready_flow(ctx.now)
        except KeysUnavailable:
            raise InvalidJWT(
                f"verifying untrusted issuer {iss} failed: "
                f"verifier not initialized for issuer: {go_quote(iss)}"
            ) from None
        try:
            yield from verifier.verify_flow(pre, keys, ctx.now)
        except (InvalidJWT, BackendUnavailable) as exc:
            raise InvalidJWT(f"verify distributed claim token: {exc}") from None
        claims = pre.claims
        if claims is None or name not in claims:  # verify_flow raised if claims were None
            raise InvalidJWT(
                f"jwt returned by distributed claim endpoint {go_quote(endpoint)} "
                f"did not contain claim: {name}"
            )
        return claims[name]

    def _verifier_for(self, iss: str) -> tuple[IDTokenVerifier, KeySet]:
        # Kubernetes trusts any issuer a claims endpoint names once its discovery works; we do
        # the same, with at most MAX_CLAIM_ISSUERS verifiers kept.
        with self._lock:
            pair = self._issuers.get(iss)
            if pair is None:
                if len(self._issuers) >= MAX_CLAIM_ISSUERS:
                    self._issuers.pop(next(iter(self._issuers)))
                pair = (
                    IDTokenVerifier(iss, self._audiences, self._algorithms),
                    KeySet(iss, tls=self._tls, timeout=self._timeout),
                )
                self._issuers[iss] = pair
            return pair


def _claim_names(value: Any) -> dict[str, str]:
    """``_claim_names`` as Go decodes it into ``map[string]string`` (null reads as empty)."""
    what = "oidc: error parsing distributed claim names: "
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidJWT(what + cannot_unmarshal(value, "map[string]string"))
    out: dict[str, str] = {}
    for key, source in value.items():
        if source is not None and not isinstance(source, str):
            raise InvalidJWT(what + cannot_unmarshal(source, "string"))
        out[key] = source or ""
    return out


def _claim_sources(value: Any) -> dict[str, tuple[str, str]]:
    """``_claim_sources`` as Go decodes it into ``map[string]endpoint`` (fields fold case)."""
    what = "oidc: could not parse claim sources: "
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidJWT(what + cannot_unmarshal(value, "map[string]oidc.endpoint"))
    out: dict[str, tuple[str, str]] = {}
    for key, source in value.items():
        if source is None:
            source = {}
        if not isinstance(source, dict):
            raise InvalidJWT(what + cannot_unmarshal(source, "oidc.endpoint"))
        fields: dict[str, str] = {}
        for field_key, field_value in source.items():  # document order: the last match wins
            field = _endpoint_field(field_key)
            if field is None:
                continue
            if field_value is not None and not isinstance(field_value, str):
                raise InvalidJWT(
                    f"{what}json: cannot unmarshal {go_type_name(field_value)} "
                    f"into Go struct field endpoint.{field} of type string"
                )
            fields[field] = field_value or ""
        out[key] = (fields.get("endpoint", ""), fields.get("access_token", ""))
    return out


def _endpoint_field(key: str) -> str | None:
    for field in _ENDPOINT_FIELDS:
        if key == field or (len(key) == len(field) and key.casefold() == field.casefold()):
            return field
    return None


def _status_line(status: int) -> str:
    """Go's ``resp.Status`` (``"404 Not Found"``)."""
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)
