"""Compact JWS: a strict parser and signature verification with keys prepared once.

We own this parse instead of calling ``jwt.decode`` (design.md: pyjwt costs 4.2x a raw verify,
and reads the wall clock). What we accept is deliberately narrower than go-jose:

* exactly three ``.``-separated segments (five is a JWE: rejected), at most
  :data:`MAX_TOKEN_BYTES` characters;
* each segment strict base64url: alphabet ``A-Z a-z 0-9 - _``, no padding, no whitespace;
* header and payload are JSON objects; a duplicated key, ``NaN``/``Infinity`` or a lone surrogate
  makes the token malformed (Go keeps the last duplicate silently);
* ``alg`` must be one of the nine asymmetric algorithms of spec §13.4 and in the caller's
  allow-list; ``none`` and ``HS*`` can never be configured;
* a ``crit`` header never verifies (go-jose fails it for every key); ``kid`` and ``nonce`` must be
  strings (or null) as go-jose decodes them; ``jku``/``x5u``/``jwk``/``x5c`` are ignored: keys
  only ever come from the configured key set.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

__all__ = [
    "ALGORITHMS",
    "MAX_TOKEN_BYTES",
    "Check",
    "CompactJWS",
    "MalformedJWS",
    "VerificationKey",
    "b64decode_strict",
    "loads_object",
    "parse_compact",
    "parse_header",
    "parse_parts",
]

#: The JOSE algorithms a JWT authenticator may accept (spec §13.4), in Kubernetes' order.
ALGORITHMS: Final[tuple[str, ...]] = (
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
#: Upper bound on a token we decode at all; larger ones are never parsed.
MAX_TOKEN_BYTES: Final = 64 * 1024

# Go 1.24+ crypto/rsa refuses keys under 1024 bits; such a key can never verify there.
_MIN_RSA_BITS: Final = 1024
_HASHES: Final[Mapping[str, type[hashes.HashAlgorithm]]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_EC_CURVES: Final[Mapping[str, tuple[str, int]]] = {
    "ES256": ("secp256r1", 32),
    "ES384": ("secp384r1", 48),
    "ES512": ("secp521r1", 66),
}


class MalformedJWS(ValueError):
    """The token is not a compact JWS we are willing to read. The message never quotes it."""


def b64decode_strict(segment: str) -> bytes:
    """Decode unpadded base64url, refusing any character outside the alphabet (no ``=``)."""
    try:
        raw = segment.encode("ascii")
    except UnicodeEncodeError:
        raise MalformedJWS("illegal base64 data") from None
    if len(raw) % 4 == 1:
        raise MalformedJWS("illegal base64 data")
    # One translate maps base64url onto the standard alphabet and "+", "/", "=" onto "!", which
    # strict decoding then rejects along with whitespace and every other stray byte.
    try:
        return binascii.a2b_base64(
            raw.translate(_URL_TO_STD) + _PAD[len(raw) % 4], strict_mode=True
        )
    except binascii.Error:
        raise MalformedJWS("illegal base64 data") from None


_URL_TO_STD: Final = bytes.maketrans(b"-_+/=", b"+/!!!")
_PAD: Final = (b"", b"", b"==", b"=")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise MalformedJWS(f"duplicate JSON key {json.dumps(k)}")
            seen.add(k)
    return out


def _no_constant(name: str) -> Any:
    raise MalformedJWS(f"invalid JSON literal {name}")


_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")
_DECODER: Final = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


def loads_object(data: bytes) -> dict[str, Any]:
    """Parse a JSON object strictly (UTF-8, no duplicate keys, no NaN/Infinity)."""
    try:
        text = data.decode("utf-8")
        # The C scanner directly: JSONDecoder.decode adds two regex matches and two frames.
        start = len(text) - len(text.lstrip(_JSON_WS)) if text[:1] in _JSON_WS else 0
        value, end = _SCAN(text, start)
        if end != len(text) and text[end:].strip(_JSON_WS):
            raise MalformedJWS("invalid JSON: trailing data")
        if "\\" in text and _SURROGATE_ESCAPE.search(text):  # memchr first: escapes are rare
            # A lone surrogate escape cannot be re-encoded: Go would replace it, we refuse it.
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except MalformedJWS:
        raise
    except (UnicodeError, ValueError, RecursionError, StopIteration):
        raise MalformedJWS("invalid JSON") from None
    if not isinstance(value, dict):
        raise MalformedJWS("JSON value is not an object")
    return value


_JSON_WS: Final = " \t\n\r"
# scan_once is set by JSONDecoder.__init__ (the C scanner) but absent from typeshed's stub.
_SCAN: Final[Callable[[str, int], tuple[Any, int]]] = _DECODER.scan_once  # type: ignore[attr-defined]


class CompactJWS:
    """A parsed (not yet verified) compact JWS. ``kid`` is None unless the header has a string.

    A plain slotted class rather than attrs: one is built per token on the hot path.
    """

    __slots__ = ("alg", "header", "kid", "payload", "signature", "signing_input")

    def __init__(
        self,
        header: Mapping[str, Any],
        alg: str,
        kid: str | None,
        payload: bytes,
        signing_input: bytes,
        signature: bytes,
    ) -> None:
        self.header, self.alg, self.kid = header, alg, kid
        self.payload, self.signing_input, self.signature = payload, signing_input, signature

    def __repr__(self) -> str:
        return f"CompactJWS(alg={self.alg!r}, kid={self.kid!r})"


_Header = tuple[Mapping[str, Any], str, str | None]
#: Verifies ``(signing_input, signature)`` with one key and one algorithm, prepared once.
Check = Callable[[bytes, bytes], bool]
# Every token a key signs carries the same header segment: parse each distinct one once.
# Values are immutable (a read-only mapping), so sharing them between threads is safe.
# Only short segments are kept (real headers are ~100 characters): anyone can send tokens, so
# the cache must not become 256 copies of a 64 KiB header.
_HEADERS: dict[str, _Header] = {}
_MAX_HEADERS: Final = 256
_MAX_CACHED_HEADER: Final = 1024


def parse_header(segment: str) -> _Header:
    """The header segment's ``(header, alg, kid)``; raises :class:`MalformedJWS`.

    Every token a key signs carries the same header segment, so each distinct one is parsed
    once (at most 256 of up to 1 KiB kept; the values are read-only and shared between threads).
    """
    cached = _HEADERS.get(segment)
    if cached is not None:
        return cached
    header = loads_object(b64decode_strict(segment))
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str):
        raise MalformedJWS("header has no string alg")
    for name, what in _STRING_HEADERS:
        # go-jose's sanitized() decodes these into Go strings: another JSON type (null aside)
        # makes the whole token malformed.
        value = header.get(name)
        if value is not None and not isinstance(value, str):
            raise MalformedJWS(f"failed to unmarshal {what}: json: cannot unmarshal into string")
    parsed = (MappingProxyType(header), alg, kid)
    if len(segment) <= _MAX_CACHED_HEADER:
        if len(_HEADERS) >= _MAX_HEADERS:
            _HEADERS.clear()
        _HEADERS[segment] = parsed
    return parsed


_STRING_HEADERS: Final = (("kid", "key ID"), ("nonce", "nonce"))


def parse_compact(token: str, *, payload: bytes | None = None) -> CompactJWS:
    """Split and decode a compact JWS, checking the header's shape (not the signature).

    ``payload`` is the already decoded second segment, when the caller has it.
    """
    if len(token) > MAX_TOKEN_BYTES:
        raise MalformedJWS(f"token larger than {MAX_TOKEN_BYTES} bytes")
    parts = token.split(".")
    if len(parts) == 5:
        raise MalformedJWS("encrypted tokens (JWE) are not supported")
    if len(parts) != 3:
        raise MalformedJWS("compact JWS format must have three parts")
    return parse_parts(parts[0], parts[1], parts[2], payload)


def parse_parts(head: str, body: str, sig: str, payload: bytes | None = None) -> CompactJWS:
    """:func:`parse_compact` for a token already split in three (at most MAX_TOKEN_BYTES)."""
    header, alg, kid = parse_header(head)
    if "crit" in header:
        # go-jose rejects every crit header it was not told about; we are never told.
        raise MalformedJWS("unsupported crit header")
    if payload is None:
        payload = b64decode_strict(body)
    signature = b64decode_strict(sig)
    return CompactJWS(header, alg, kid, payload, f"{head}.{body}".encode("ascii"), signature)


@attrs.frozen
class VerificationKey:
    """A public key from a JWKS, converted once, that verifies the algorithms its type allows.

    ``kid`` is ``None`` when the JWK had none. :meth:`from_jwk` returns ``None`` for keys we
    cannot use for any allowed algorithm (``oct``, ``OKP``, unknown curves, RSA under 1024 bits)
    and for keys marked ``"use": "enc"`` or with an ``alg`` outside the nine.
    """

    kid: str | None
    key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey = attrs.field(repr=False)
    # One prepared check per algorithm this key can verify: no type test or parameter lookup
    # per token.
    _checks: Mapping[str, Check] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        key = self.key
        checks: dict[str, Check]
        if isinstance(key, rsa.RSAPublicKey):
            checks = {alg: _rsa_check(key, pad, h) for alg, (pad, h) in _RSA_PARAMS.items()}
        else:
            curve = key.curve.name
            checks = {
                alg: _ec_check(key, size, ecdsa)
                for alg, (name, size, ecdsa) in _EC_PARAMS.items()
                if name == curve
            }
        object.__setattr__(self, "_checks", checks)

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> VerificationKey | None:
        kid = jwk.get("kid")
        kid = kid if isinstance(kid, str) else None
        use, alg = jwk.get("use"), jwk.get("alg")
        if use not in (None, "sig") or alg not in (None, *ALGORITHMS):
            # An encryption key, or one declared for an algorithm we never accept (go-jose
            # would try it anyway; such a key can only verify what its owner did not intend).
            return None
        try:
            if jwk.get("kty") == "RSA":
                n, e = _b64int(jwk["n"]), _b64int(jwk["e"])
                if n.bit_length() < _MIN_RSA_BITS:
                    return None
                return cls(kid, rsa.RSAPublicNumbers(e, n).public_key())
            if jwk.get("kty") == "EC":
                curve = _JWK_CURVES[jwk["crv"]]
                x, y = _b64int(jwk["x"]), _b64int(jwk["y"])
                return cls(kid, ec.EllipticCurvePublicNumbers(x, y, curve).public_key())
        except (KeyError, TypeError, ValueError):
            return None
        return None

    def check_for(self, alg: str) -> Check | None:
        """The prepared check for ``alg``, or None when this key cannot verify it."""
        return self._checks.get(alg)

    def verify(self, alg: str, signing_input: bytes, signature: bytes) -> bool:
        """True when ``signature`` is a valid ``alg`` signature of ``signing_input``."""
        check = self._checks.get(alg)
        return check is not None and check(signing_input, signature)


def _rsa_check(
    key: rsa.RSAPublicKey, pad: padding.AsymmetricPadding, hash_: hashes.HashAlgorithm
) -> Check:
    verify = key.verify

    def check(signing_input: bytes, signature: bytes) -> bool:
        try:
            verify(signature, signing_input, pad, hash_)
        except InvalidSignature:
            return False
        return True

    return check


def _ec_check(key: ec.EllipticCurvePublicKey, size: int, ecdsa: ec.ECDSA) -> Check:
    verify = key.verify

    def check(signing_input: bytes, signature: bytes) -> bool:
        # JWS carries the fixed-size r||s (RFC 7518 §3.4); cryptography wants DER.
        if len(signature) != 2 * size:
            return False
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        try:
            verify(encode_dss_signature(r, s), signing_input, ecdsa)
        except InvalidSignature:
            return False
        return True

    return check


# Padding and hash objects are immutable: build them once, not per verification.
_RSA_PARAMS: Final[Mapping[str, tuple[padding.AsymmetricPadding, hashes.HashAlgorithm]]] = {
    **{f"RS{n}": (padding.PKCS1v15(), h()) for n, h in _HASHES.items()},
    # go-jose verifies PSS with an automatically detected salt length.
    **{
        f"PS{n}": (padding.PSS(padding.MGF1(h()), padding.PSS.AUTO), h())
        for n, h in _HASHES.items()
    },
}
# ES algorithms pin the curve and the fixed r||s signature length (RFC 7518 §3.4).
_EC_PARAMS: Final[Mapping[str, tuple[str, int, ec.ECDSA]]] = {
    alg: (curve, size, ec.ECDSA(_HASHES[alg[2:]]())) for alg, (curve, size) in _EC_CURVES.items()
}


_JWK_CURVES: Final[Mapping[str, ec.EllipticCurve]] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}


def _b64int(value: object) -> int:
    if not isinstance(value, str) or not value:
        raise ValueError("not a base64url integer")
    return int.from_bytes(b64decode_strict(value), "big")
