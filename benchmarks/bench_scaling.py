"""How cost grows: chain length, JWT issuers and keys, cache size, concurrency.

These rows have no goal; docs/performance.md quotes them. Most run in the full set only.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import time
from collections.abc import Callable
from typing import Any

import bench_oidc
import bench_x509
from _fixtures import USER, WebhookServer, need
from _harness import Case, Measured, Pair, Settings
from bench_concurrency import _storm
from k8sauthn import Context, RequestView, Response, UserInfo, pure, run_pure


# -- X.509 chain length ------------------------------------------------------------------------
def _chain_pair(levels: int) -> Callable[[Settings], Pair]:
    """A leaf ``levels - 1`` certificates below the root (2 = issued by the root itself)."""

    def make(settings: Settings) -> Pair:
        x509mod = need("k8sauthn.request.x509")
        trust = need("k8sauthn.request._trust")
        root = bench_x509.pki()["root"]
        issuers = [root]
        for i in range(levels - 2):
            issuers.append(issuers[-1].intermediate(f"bench-intermediate-{i}"))
        leaf = issuers[-1].issue(bench_x509._name(f"user-{levels}", "team"))
        chain = (leaf.der, *(c.der for c in reversed(issuers[1:])))
        bundle = trust.CABundle.from_pem(root.pem, name="bench-client-ca")
        auth = x509mod.ClientCertAuthenticator.from_source(trust.Fixed(bundle), cache_size=0)
        view, ctx = RequestView(peer_chain=chain), Context(now=time.time())
        flow = auth.request_flow
        verify = bench_x509.floor_verifier(root)

        def path() -> object:
            return run_pure(flow(view, ctx))

        return Pair(
            path, lambda: verify(chain), check=lambda: bench_x509._expect(path(), f"user-{levels}")
        )

    return make


# -- JWT issuers and keys ----------------------------------------------------------------------
def _issuers_pair(
    issuers: int, keys: int = 1, *, indexed: bool = True
) -> Callable[[Settings], Pair]:
    """A token of the LAST of ``issuers`` JWT authenticators, its issuer holding ``keys`` keys
    (the last signs). ``indexed``: combined as an AuthenticationConfiguration's are
    (``oidc.jwt_union``: an issuer index); else Kubernetes' fail-on-error union of all of them."""

    def make(settings: Settings) -> Pair:
        oidc = need("k8sauthn.token.oidc")
        union = need("k8sauthn.chain.union")
        cfgmod = need("k8sauthn.config.authentication")
        now = time.time()
        alg = "RS256"
        members = []
        for i in range(issuers):
            url = f"{bench_oidc.ISSUER}/{i}"
            jwks = {"keys": [bench_oidc.public_jwk(alg, f"k{j}") for j in range(keys)]}
            cfg = cfgmod.JWTAuthenticatorConfig(
                issuer=cfgmod.Issuer(url=url, audiences=(bench_oidc.AUDIENCE,)),
                claim_mappings=cfgmod.ClaimMappings(
                    username=cfgmod.PrefixedClaimOrExpression(claim="sub", prefix=""),
                    groups=cfgmod.PrefixedClaimOrExpression(claim="groups", prefix=""),
                ),
            )
            members.append(oidc.JWTAuthenticator.from_config(cfg, signing_algs=(alg,), keys=jwks))
        combine = getattr(oidc, "jwt_union", None)
        if indexed and combine is not None and len(members) > 1:
            auth = combine(members)
        else:
            auth = union.token_union(*members, fail_on_error=True)
        token = bench_oidc.make_token(
            alg, issuer=f"{bench_oidc.ISSUER}/{issuers - 1}", kid=f"k{keys - 1}", now=now
        )
        ctx = Context(now=now, audiences=(bench_oidc.AUDIENCE,))
        flow = auth.token_flow

        def path() -> object:
            return run_pure(flow(token, ctx))

        def check() -> None:
            if getattr(getattr(path(), "user", None), "name", None) != "jane":
                raise AssertionError("the token was not accepted")

        return Pair(path, bench_oidc.raw_verify_floor(alg, token), check=check)

    return make


# -- cache size --------------------------------------------------------------------------------
class _AcceptAll:
    def token_flow(self, token: str, ctx: Context, /) -> Any:
        return pure(Response(UserInfo(name="user-" + token[:8])))


def _cache_pair(entries: int) -> Callable[[Settings], Pair]:
    """A hit in a token cache holding ``entries`` entries, cycling through 1,000 of them
    (so the lookups are not all one hot line of CPU cache); the floor's dict is as large."""

    def make(settings: Settings) -> Pair:
        cachemod = need("k8sauthn.chain.cache")
        from k8sauthn.io import Authenticator

        cache = cachemod.CachedTokenAuthenticator(
            _AcceptAll(), success_ttl=3600, maxsize=entries + 1
        )
        runner = Authenticator(cache)
        ctx = Context(now=time.time())
        tokens = [os.urandom(16).hex() for _ in range(entries)]
        for t in tokens:
            runner.run(cache.token_flow(t, ctx))
        hot = tokens[:: max(1, entries // 1000)][:1000]
        key = os.urandom(32)
        table = {hmac.digest(key, t.encode(), "sha256"): t for t in tokens}
        flow, digest = cache.token_flow, hmac.digest
        state = {"i": 0}
        n = len(hot)

        def path() -> object:
            i = state["i"] = (state["i"] + 1) % n
            return run_pure(flow(hot[i], ctx))

        def floor() -> object:
            i = state["i"] = (state["i"] + 1) % n
            return table[digest(key, hot[i].encode(), "sha256")]

        def check() -> None:
            if cache.stats.misses != entries or path() is None:
                raise AssertionError("the cache did not hold every entry")

        return Pair(path, floor, check=check)

    return make


# -- concurrency -------------------------------------------------------------------------------
def _single_flight(n: int) -> Callable[[Settings], Measured]:
    def measure(settings: Settings) -> Measured:
        webhook = need("k8sauthn.token.webhook")
        backend = WebhookServer(delay=0.2)
        try:
            auth = webhook.WebhookTokenAuthenticator.from_kubeconfig_file(str(backend.kubeconfig()))
            t0 = time.perf_counter()
            responses = asyncio.run(_storm(auth, n, as_request=False))
            elapsed = time.perf_counter() - t0
        finally:
            backend.close()
        ok = sum(getattr(getattr(r, "user", None), "name", None) == USER for r in responses)
        return Measured(
            value=backend.calls,
            low=backend.calls,
            high=backend.calls,
            unit="calls",
            note=f"{ok}/{n} accepted in {elapsed * 1000:.0f} ms (backend answers in 200 ms)",
        )

    return measure


def _middleware_connections(connections: int) -> Callable[[Settings], Measured]:
    def measure(settings: Settings) -> Measured:
        import bench_middleware

        return bench_middleware.compare(settings, connections=connections, rounds=3, seconds=3.0)

    return measure


def _study(name: str, floor: str, **kwargs: Any) -> Case:
    return Case(name, floor, "study", None, in_quick=False, group="study", **kwargs)


_RAW = "raw cryptography RSA verify"
_HMAC = "HMAC-SHA256 + dict hit (same size)"
CASES = [
    *(
        _study(
            f"X.509 chain of {n} certificates, cache off", "prebuilt verifier", pair=_chain_pair(n)
        )
        for n in (2, 3, 4, 5)
    ),
    *(
        _study(f"JWT RS256, {n} issuer(s), token of the last", _RAW, pair=_issuers_pair(n))
        for n in (1, 8, 64)
    ),
    _study(
        "JWT RS256, 64 issuers in a plain fail-on-error union (Kubernetes' shape)",
        _RAW,
        pair=_issuers_pair(64, indexed=False),
    ),
    *(
        _study(
            f"JWT RS256, 1 issuer with {k} keys, kid of the last", _RAW, pair=_issuers_pair(1, k)
        )
        for k in (8, 64)
    ),
    *(
        _study(f"token cache hit, {n:,} entries held", _HMAC, pair=_cache_pair(n))
        for n in (1_000, 100_000, 1_000_000)
    ),
    *(
        _study(
            f"single flight, {n} concurrent requests, one new token", "—", measure=_single_flight(n)
        )
        for n in (10, 100, 1000, 5000)
    ),
    *(
        _study(
            f"ASGI middleware, wrk -c{c} (req/s ratio)",
            "the same app without the middleware",
            measure=_middleware_connections(c),
        )
        for c in (1, 64)
    ),
]
