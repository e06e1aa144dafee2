"""Sign JWTs in tests, including malformed ones no JWT library would produce."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from k8sauthn.config.authentication import (
    ClaimMappings,
    Issuer,
    JWTAuthenticatorConfig,
    PrefixedClaimOrExpression,
)

ISSUER = "https://issuer.example.com"
AUDIENCE = "my-client"
NOW = 1_800_000_000.0

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64int(n: int) -> str:
    return b64(n.to_bytes((n.bit_length() + 7) // 8 or 1, "big"))


@functools.cache
def rsa_key(name: str = "rsa", bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


_CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}


@functools.cache
def ec_key(name: str = "ec", crv: str = "P-256") -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(_CURVES[crv])


def jwk(key: PrivateKey, kid: str | None = "k1", **extra: Any) -> dict[str, Any]:
    """The public JWK of a private key."""
    out: dict[str, Any]
    if isinstance(key, rsa.RSAPrivateKey):
        pn = key.public_key().public_numbers()
        out = {"kty": "RSA", "n": b64int(pn.n), "e": b64int(pn.e)}
    else:
        en = key.public_key().public_numbers()
        size = (key.curve.key_size + 7) // 8
        crv = {256: "P-256", 384: "P-384", 521: "P-521"}[key.curve.key_size]
        out = {
            "kty": "EC",
            "crv": crv,
            "x": b64(en.x.to_bytes(size, "big")),
            "y": b64(en.y.to_bytes(size, "big")),
        }
    if kid is not None:
        out["kid"] = kid
    out.update(extra)
    return out


def jwks(*keys: dict[str, Any]) -> dict[str, Any]:
    return {"keys": list(keys)}


def _hash(alg: str) -> hashes.HashAlgorithm:
    return {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:]]


def raw_sign(alg: str, key: Any, signing_input: bytes) -> bytes:
    if alg.startswith("HS"):
        return hmac.new(key, signing_input, getattr(hashlib, "sha" + alg[2:])).digest()
    if alg.startswith("RS"):
        return bytes(key.sign(signing_input, padding.PKCS1v15(), _hash(alg)))
    if alg.startswith("PS"):
        pss = padding.PSS(padding.MGF1(_hash(alg)), _hash(alg).digest_size)
        return bytes(key.sign(signing_input, pss, _hash(alg)))
    if alg.startswith("ES"):
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(_hash(alg))))
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return b""


def claims(**over: Any) -> dict[str, Any]:
    """A valid payload for ISSUER/AUDIENCE at NOW; ``over`` replaces or (None-valued) drops."""
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "jane",
        "iat": int(NOW) - 60,
        "exp": int(NOW) + 3600,
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()
DROP: Any = _DROP


def token(
    payload: dict[str, Any] | bytes | str | None = None,
    *,
    key: Any = None,
    alg: str = "RS256",
    kid: str | None = "k1",
    header: dict[str, Any] | bytes | None = None,
    **extra_header: Any,
) -> str:
    """A compact JWS; ``payload``/``header`` may be raw bytes to build malformed tokens."""
    if payload is None:
        payload = claims()
    if header is None:
        h: dict[str, Any] = {"alg": alg, "typ": "JWT"}
        if kid is not None:
            h["kid"] = kid
        h.update(extra_header)
        header = h
    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    body = payload.encode() if isinstance(payload, str) else payload
    body = body if isinstance(body, bytes) else json.dumps(body).encode()
    signing_input = f"{b64(head)}.{b64(body)}".encode()
    if key is None:
        key = rsa_key() if alg[:2] in ("RS", "PS") else ec_key(crv=_CURVE_FOR.get(alg, "P-256"))
    return signing_input.decode() + "." + b64(raw_sign(alg, key, signing_input))


_CURVE_FOR = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


def config(
    *,
    issuer: str = ISSUER,
    audiences: tuple[str, ...] = (AUDIENCE,),
    username: PrefixedClaimOrExpression | None = None,
    groups: PrefixedClaimOrExpression | None = None,
    **kwargs: Any,
) -> JWTAuthenticatorConfig:
    mappings = kwargs.pop("claim_mappings", None) or ClaimMappings(
        username=username or PrefixedClaimOrExpression(claim="sub", prefix=""),
        groups=groups or PrefixedClaimOrExpression(),
    )
    return JWTAuthenticatorConfig(
        issuer=Issuer(
            url=issuer,
            audiences=audiences,
            audience_match_policy="MatchAny" if len(audiences) > 1 else "",
            **kwargs.pop("issuer_kwargs", {}),
        ),
        claim_mappings=mappings,
        **kwargs,
    )


def default_keys() -> dict[str, Any]:
    """RSA "k1", EC P-256 "e1", EC P-384 "e384", EC P-521 "e521"."""
    return jwks(
        jwk(rsa_key(), "k1"),
        jwk(ec_key(crv="P-256"), "e1"),
        jwk(ec_key(crv="P-384"), "e384"),
        jwk(ec_key(crv="P-521"), "e521"),
    )
