"""go-oidc's ``IDTokenVerifier.Verify`` plus Kubernetes' audience rule (spec §13.5.1, §13.6).

* :func:`read_unverified` is Kubernetes' ``untrustedIssuer``: the payload and its ``iss`` read
  without any verification, only to route a token to its issuer (and, for distributed claims,
  to pick a verifier).
* :class:`IDTokenVerifier` checks a token of its issuer: compact-JWS shape and algorithm, the
  signature against a :class:`~.jwks.KeySet`, then the registered claims against ``now``.

Both are built to be cheap per token: the payload is decoded once, the header segment is parsed
once per distinct header, and keys carry prepared checks.
"""

from __future__ import annotations

import binascii
import json
from typing import Any, Final

from .._flow import Flow
from ._goclaims import (
    InvalidJWT,
    go_list,
    go_quote,
    go_time,
    go_type_name,
    needs_folding,
)
from ._goclaims import standard_claims as _standard_claims
from .jwks import JWKS, KeySet
from .jws import (
    _PAD,
    _URL_TO_STD,
    MAX_TOKEN_BYTES,
    CompactJWS,
    MalformedJWS,
    b64decode_strict,
    loads_object,
)
from .jws import parse_header as _parse_header

__all__ = ["GOOGLE_ISSUER", "IDTokenVerifier", "Unverified", "read_unverified"]

GOOGLE_ISSUER: Final = "https://accounts.google.com"
_GOOGLE_SHORT: Final = "accounts.google.com"
_NBF_LEEWAY: Final = 60.0
#: ``(alg, kid, signing_input, signature)`` of a token whose signature is still to be checked.
Signed = tuple[str, str | None, bytes, bytes]
_INT64: Final = 1 << 63


def _raise_malformed(constant: str) -> Any:
    raise MalformedJWS(f"invalid JSON literal {constant}")


# Go reads the issuer from any valid JSON (the last duplicate key wins); this decoder does the
# same when the strict one refuses the payload.
_LOOSE_JSON: Final = json.JSONDecoder(parse_constant=_raise_malformed)


class Unverified:
    """A token's payload read without verification (never trust it before :meth:`verify`).

    ``iss`` is the issuer to route by (``accounts.google.com`` already widened, as Kubernetes
    does), ``""`` with ``error`` set when the token is not a readable JWT. ``claims`` is the
    strictly parsed payload, None when only the lenient parse worked (``strict_error`` says
    why); ``fold`` tells whether a key could match a registered claim case-insensitively.
    """

    __slots__ = ("claims", "error", "fold", "iss", "parts", "payload", "strict_error", "token")

    def __init__(
        self,
        token: str,
        parts: list[str],
        iss: str,
        payload: bytes,
        claims: dict[str, Any] | None,
        strict_error: str,
        fold: bool,
        error: str = "",
    ) -> None:
        self.token, self.parts, self.iss, self.payload = token, parts, iss, payload
        self.claims, self.strict_error, self.fold, self.error = claims, strict_error, fold, error

    def __repr__(self) -> str:  # never the token
        return f"Unverified(iss={self.iss!r})"


def _unreadable(error: str) -> Unverified:
    return Unverified("", [], "", b"", None, "", False, error)


_NOT_COMPACT: Final = _unreadable("token is not compact JWT")
_MALFORMED: Final = _unreadable("malformed token")
_TOO_LARGE: Final = _unreadable(f"token larger than {MAX_TOKEN_BYTES} bytes")


def read_unverified(token: str) -> Unverified:
    """Kubernetes' ``untrustedIssuer`` (spec §13.5 step 1); check ``.error`` / ``.iss``."""
    if len(token) > MAX_TOKEN_BYTES:
        return _TOO_LARGE  # beyond Kubernetes: never decode more than 64 KiB
    first = token[:1]
    if first == "{" or (first.isspace() and token.lstrip().startswith("{")):
        return _NOT_COMPACT
    parts = token.split(".")
    if len(parts) != 3:
        return _MALFORMED
    segment = parts[1]
    try:
        # b64decode_strict(segment), inline on this per-token path.
        raw = segment.encode("ascii")
        if len(raw) % 4 == 1:
            raise binascii.Error
        payload = binascii.a2b_base64(
            raw.translate(_URL_TO_STD) + _PAD[len(raw) % 4], strict_mode=True
        )
    except (UnicodeError, binascii.Error):
        return _unreadable("error decoding token: illegal base64 data")
    strict_error = ""
    try:
        claims: Any = loads_object(payload)
    except MalformedJWS as exc:
        strict_error = str(exc)
        try:
            claims = _LOOSE_JSON.decode(payload.decode("utf-8"))
        except (UnicodeError, ValueError, RecursionError) as loose:
            return _unreadable(f"while unmarshaling token: {type(loose).__name__}")
    if not isinstance(claims, dict):
        return _unreadable("while unmarshaling token: JSON value is not an object")
    iss: Any = claims.get("iss", "")
    joined = "".join(claims)  # the common all-lower-case-ASCII case of needs_folding, inline
    fold = not (joined.isascii() and joined.islower()) and needs_folding(claims)
    if fold:
        # Go's struct decoding: a key matching "iss" case-insensitively counts; the last wins.
        for key, value in claims.items():
            if len(key) == 3 and (key == "iss" or key.casefold() == "iss"):
                iss = value
    if iss is None:
        iss = ""  # JSON null leaves a Go string empty
    elif type(iss) is not str:
        return _unreadable(
            f"while unmarshaling token: json: cannot unmarshal {go_type_name(iss)} "
            "into Go struct field .iss of type string"
        )
    if iss == _GOOGLE_SHORT:
        iss = GOOGLE_ISSUER
    return Unverified(
        token, parts, iss, payload, None if strict_error else claims, strict_error, fold
    )


class IDTokenVerifier:
    """Verifies tokens of one issuer for a set of audiences and algorithms (built once)."""

    __slots__ = ("_algs", "_audience_set", "_single", "algorithms", "audiences", "issuer_url")

    def __init__(
        self, issuer_url: str, audiences: tuple[str, ...], algorithms: tuple[str, ...]
    ) -> None:
        self.issuer_url, self.audiences, self.algorithms = issuer_url, audiences, algorithms
        self._algs = frozenset(algorithms)
        # One audience: go-oidc's client-ID check, before expiry. Several: go-oidc skips it
        # and Kubernetes' verifyAudience runs after go-oidc's Verify, so after expiry.
        self._single = audiences[0] if len(audiences) == 1 else None
        self._audience_set = frozenset(audiences)

    def check_signature(self, pre: Unverified, jwks: JWKS) -> Signed | None:
        """Steps 1-4 of spec §13.6 with the keys held: None when one verifies the signature.

        Otherwise the parsed pieces, for :func:`refresh_and_verify` (one call on the hot path).
        """
        head, body, sig = pre.parts
        try:
            header, alg, kid = _parse_header(head)
            signature = b64decode_strict(sig)
        except MalformedJWS as exc:
            raise InvalidJWT(f"oidc: malformed jwt: {exc}") from None
        if alg not in self._algs:
            raise InvalidJWT(
                "oidc: id token signed with unsupported algorithm, "
                f"expected {go_list(self.algorithms)} got {go_quote(alg)}"
            )
        if "crit" in header:
            # go-jose never verifies a token with a crit header (ErrCryptoFailure for every key),
            # so go-oidc reports a signature failure; we skip the pointless key refresh.
            raise InvalidJWT("failed to verify signature: failed to verify id token signature")
        signing_input = pre.token[: len(head) + len(body) + 1].encode("ascii")
        if jwks.check(alg, kid, signing_input, signature):
            return None
        return alg, kid, signing_input, signature

    def verify_flow(self, pre: Unverified, keys: KeySet, now: float) -> Flow[int]:
        """The whole of spec §13.6, refreshing keys if needed; texts without a prefix."""
        unverified = self.check_signature(pre, keys.jwks)
        if unverified is not None:
            yield from refresh_and_verify(keys, pre, unverified, now)
        return self.claims(pre, now)

    def claims(self, pre: Unverified, now: float) -> int:
        """Steps 5-11 of spec §13.6, after the signature verified; returns ``exp``."""
        claims = pre.claims
        if claims is not None and not pre.fold:
            # The common token, recognised without building the decoded struct: exact keys,
            # well-typed, and every check passes. Anything else takes the exact path below,
            # which decides (and words the error) as go-oidc does.
            get = claims.get
            exp, aud, nbf, iat = get("exp"), get("aud"), get("nbf", now), get("iat", 0)
            if (
                type(exp) is int
                and now <= exp < _INT64
                and type(aud) is str
                and aud in self._audience_set
                and get("iss") == self.issuer_url
                and type(get("sub", "")) is str
                and (type(nbf) is int or nbf is now)
                and nbf <= now + _NBF_LEEWAY
                and type(iat) is int
                and -_INT64 <= iat < _INT64
                and "_claim_names" not in claims
                and "_claim_sources" not in claims
                and "nonce" not in claims
                and "at_hash" not in claims
            ):
                return exp
        return self._claims_exactly(pre, now)

    def _claims_exactly(self, pre: Unverified, now: float) -> int:
        if pre.claims is None:
            raise InvalidJWT(f"oidc: failed to unmarshal claims: {pre.strict_error}")
        std = _standard_claims(pre.claims, fold=pre.fold)
        if std.claim_names:
            for source in std.claim_names.values():
                if not source:
                    raise InvalidJWT("oidc: failed to obtain source from claim name")
                if source not in std.claim_sources:
                    raise InvalidJWT("oidc: source does not exist")
        expected = self.issuer_url
        if std.iss != expected and not (expected == GOOGLE_ISSUER and std.iss == _GOOGLE_SHORT):
            raise InvalidJWT(
                "oidc: id token issued by a different provider, "
                f"expected {go_quote(expected)} got {go_quote(std.iss)}"
            )
        single = self._single
        if single is not None and single not in std.aud:
            raise InvalidJWT(f"oidc: expected audience {go_quote(single)} got {go_list(std.aud)}")
        exp = std.exp
        if exp is None:
            raise InvalidJWT("oidc: token is expired (Token Expiry: 0001-01-01 00:00:00 +0000 UTC)")
        if exp < now:  # exp == now is still valid; no leeway (spec §13.6 step 9)
            raise InvalidJWT(f"oidc: token is expired (Token Expiry: {go_time(exp)})")
        if std.nbf is not None and now + _NBF_LEEWAY < std.nbf:
            raise InvalidJWT(
                f"oidc: current time {go_time(now)} before the nbf (not before) time: "
                f"{go_time(std.nbf)}"
            )
        if single is None and not any(a in std.aud for a in self.audiences):
            want = go_list(sorted(self.audiences))
            raise InvalidJWT(f"oidc: expected audience in {want} got {go_list(std.aud)}")
        return exp


def refresh_and_verify(keys: KeySet, pre: Unverified, signed: Signed, now: float) -> Flow[None]:
    """No held key verified: let the key set refresh (rate-limited) and try again."""
    alg, kid, signing_input, signature = signed
    header, _, _ = _parse_header(pre.parts[0])
    jws = CompactJWS(header, alg, kid, pre.payload, signing_input, signature)
    try:
        yield from keys.verify_flow(jws, now)
    except ValueError as exc:  # BackendUnavailable (could not check) passes through
        raise InvalidJWT(str(exc)) from None
