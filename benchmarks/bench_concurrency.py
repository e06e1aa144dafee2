"""Single flight: 1,000 concurrent async requests with one new token make one backend call.

The backend is a real HTTP TokenReview server on 127.0.0.1 that counts its calls and answers
after 200 ms, so every request is in flight before the first answer arrives.
"""

from __future__ import annotations

import asyncio
import time

import bench_oidc
from _fixtures import TOKEN, USER, IdPServer, WebhookServer, need
from _harness import Case, Measured, Settings
from k8sauthn import Headers, RequestView
from k8sauthn.config.options import AuthenticationOptions


async def _storm(root: object, n: int, *, as_request: bool) -> list[object]:
    from k8sauthn.io import AsyncAuthenticator

    async with AsyncAuthenticator(root) as authn:  # type: ignore[arg-type]
        if not as_request:
            return await asyncio.gather(*(authn.authenticate_token(TOKEN) for _ in range(n)))
        view = RequestView(headers=Headers((("authorization", "Bearer " + TOKEN),)))
        return await asyncio.gather(*(authn.authenticate_request(view) for _ in range(n)))


def webhook_single_flight(settings: Settings, n: int = 1000) -> Measured:
    """Backend calls made by ``n`` concurrent requests carrying one token nobody has seen.

    Through kube-apiserver's default chain built from the webhook flags (outer cache, union,
    webhook cache); if the chain builder does not wire the webhook yet, through the webhook
    authenticator from its kubeconfig alone (said in the note).
    """
    build = need("k8sauthn.config.build")
    webhook = need("k8sauthn.token.webhook")
    backend = WebhookServer(delay=0.2)
    try:
        kubeconfig = str(backend.kubeconfig())
        chain = build.build(
            AuthenticationOptions(authentication_token_webhook_config_file=kubeconfig)
        )
        via = "the default chain"
        t0 = time.perf_counter()
        responses = asyncio.run(_storm(chain.request, n, as_request=True))
        if backend.calls == 0:
            via = "WebhookTokenAuthenticator.from_kubeconfig_file (build() does not wire it yet)"
            auth = webhook.WebhookTokenAuthenticator.from_kubeconfig_file(kubeconfig)
            t0 = time.perf_counter()
            responses = asyncio.run(_storm(auth, n, as_request=False))
        elapsed = time.perf_counter() - t0
        bad = [r for r in responses if getattr(getattr(r, "user", None), "name", None) != USER]
        if bad:
            raise AssertionError(f"{len(bad)} of {n} requests were not authenticated: {bad[0]!r}")
        calls = backend.calls
    finally:
        backend.close()
    return Measured(
        value=calls,
        low=calls,
        high=calls,
        unit="calls",
        note=f"{n} concurrent requests through {via}, answered in {elapsed:.2f}s",
    )


async def _jwt_storm(auth: object, token: str, n: int) -> list[object]:
    from k8sauthn.io import AsyncAuthenticator

    async with AsyncAuthenticator(auth) as authn:  # type: ignore[arg-type]
        return await asyncio.gather(
            *(authn.authenticate_token(token, audiences=(bench_oidc.AUDIENCE,)) for _ in range(n))
        )


def idp_single_flight(settings: Settings, n: int = 1000) -> Measured:
    """Calls to a cold OpenID provider made by ``n`` concurrent requests with one new JWT.

    The JWT authenticator has never talked to its issuer: the first token triggers discovery and
    the JWKS fetch. Reported: the largest number of calls any one endpoint received.
    """
    oidc = need("k8sauthn.token.oidc")
    cfgmod = need("k8sauthn.config.authentication")
    idp = IdPServer({"keys": [bench_oidc.public_jwk("ES256", "k1")]})
    try:
        cfg = cfgmod.JWTAuthenticatorConfig(
            issuer=cfgmod.Issuer(
                url=idp.issuer,
                audiences=(bench_oidc.AUDIENCE,),
                certificate_authority=idp.ca_pem,
            ),
            claim_mappings=cfgmod.ClaimMappings(
                username=cfgmod.PrefixedClaimOrExpression(claim="sub", prefix=""),
            ),
        )
        auth = oidc.JWTAuthenticator.from_config(cfg, signing_algs=("ES256",))
        token = bench_oidc.make_token("ES256", issuer=idp.issuer, now=time.time())
        t0 = time.perf_counter()
        responses = asyncio.run(_jwt_storm(auth, token, n))
        elapsed = time.perf_counter() - t0
        bad = [r for r in responses if getattr(getattr(r, "user", None), "name", None) != "jane"]
        if bad:
            raise AssertionError(f"{len(bad)} of {n} requests were not authenticated: {bad[0]!r}")
        calls = dict(idp.calls)
    finally:
        idp.close()
    worst = max(calls.values(), default=0)
    shown = ", ".join(f"{path}: {count}" for path, count in sorted(calls.items()))
    return Measured(
        value=worst,
        low=worst,
        high=worst,
        unit="calls",
        note=f"{n} concurrent requests, calls per endpoint: {shown}; answered in {elapsed:.2f}s",
    )


CASES = [
    Case(
        "1,000 concurrent async requests, one new token (webhook)",
        "— (calls counted on a local TokenReview server)",
        "count",
        1,
        measure=webhook_single_flight,
    ),
    Case(
        "1,000 concurrent async requests, one new JWT, cold OpenID provider",
        "— (calls per endpoint counted on a local HTTPS provider)",
        "count",
        1,
        measure=idp_single_flight,
    ),
]
