"""OIDC/JWT rows: one issuer, key already held, no token cache, RS256-2048 and ES256.

The floor is ``cryptography`` verifying the very same signature over the very same signing input
(with the ES256 signature already converted to DER): the least any JWT verifier must do.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from _fixtures import need
from _harness import Case, NotAvailable, Pair, Settings
from k8sauthn import Context, run_pure

ISSUER = "https://issuer.bench.example"
AUDIENCE = "bench-client"


@functools.cache
def signing_key(alg: str) -> Any:
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(alg: str, kid: str) -> dict[str, Any]:
    algo = jwt.algorithms.RSAAlgorithm if alg == "RS256" else jwt.algorithms.ECAlgorithm
    jwk = json.loads(algo.to_jwk(signing_key(alg).public_key()))
    jwk.update(kid=kid, use="sig", alg=alg)
    return dict(jwk)


def make_token(alg: str, *, issuer: str = ISSUER, kid: str = "k1", now: float) -> str:
    claims = {
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": "jane",
        "groups": ["dev", "ops"],
        "iat": int(now) - 10,
        "nbf": int(now) - 10,
        "exp": int(now) + 3600,
        "jti": "bench-jti",
    }
    return jwt.encode(claims, signing_key(alg), algorithm=alg, headers={"kid": kid})


def raw_verify_floor(alg: str, token: str) -> Callable[[], object]:
    """``cryptography`` verifying ``token``'s signature: the floor of any JWT verifier."""
    head, payload, sig_b64 = token.split(".")
    signing_input = f"{head}.{payload}".encode()
    sig = jwt.utils.base64url_decode(sig_b64)
    public = signing_key(alg).public_key()
    if alg == "RS256":
        pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
        return lambda: public.verify(sig, signing_input, pkcs1, sha256)
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    ecdsa = ec.ECDSA(hashes.SHA256())
    return lambda: public.verify(der, signing_input, ecdsa)


def jwt_authenticator(alg: str, *, issuer: str = ISSUER, kid: str = "k1") -> Any:
    """A single-issuer ``JWTAuthenticator`` holding its key already (no discovery)."""
    oidc = need("k8sauthn.token.oidc")
    cfgmod = need("k8sauthn.config.authentication")
    cfg = cfgmod.JWTAuthenticatorConfig(
        issuer=cfgmod.Issuer(url=issuer, audiences=(AUDIENCE,)),
        claim_mappings=cfgmod.ClaimMappings(
            username=cfgmod.PrefixedClaimOrExpression(claim="sub", prefix=""),
            groups=cfgmod.PrefixedClaimOrExpression(claim="groups", prefix=""),
        ),
    )
    jwks = {"keys": [public_jwk(alg, kid)]}
    try:
        return oidc.JWTAuthenticator.from_config(cfg, signing_algs=(alg,), keys=jwks)
    except TypeError as exc:
        raise NotAvailable(f"JWTAuthenticator.from_config(keys=...): {exc}") from None


def _jwt_pair(alg: str) -> Callable[[Settings], Pair]:
    def make(settings: Settings) -> Pair:
        now = time.time()
        token = make_token(alg, now=now)
        auth = jwt_authenticator(alg)
        ctx = Context(now=now, audiences=(AUDIENCE,))
        flow = auth.token_flow

        def path() -> object:
            return run_pure(flow(token, ctx))

        def check() -> None:
            resp = path()
            if getattr(getattr(resp, "user", None), "name", None) != "jane":
                raise AssertionError(f"expected jane, got {resp!r}")

        return Pair(path, raw_verify_floor(alg, token), check=check)

    return make


CASES = [
    Case(
        "OIDC/JWT RS256-2048, key held, cache off",
        "raw cryptography RSA verify",
        "ratio",
        1.5,
        pair=_jwt_pair("RS256"),
    ),
    Case(
        "OIDC/JWT ES256, key held, cache off",
        "raw cryptography ECDSA verify",
        "ratio",
        1.2,
        pair=_jwt_pair("ES256"),
    ),
]
