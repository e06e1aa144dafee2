"""Bearer-token rows: the cached default chain, static tokens, bootstrap tokens, webhook hits.

Inputs are what the layer above hands over: a ``RequestView`` whose ``Headers`` the middleware
already parsed (the middleware row measures that part), or a token string and a ``Context``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from _fixtures import TOKEN, USER, WebhookServer, hmac_dict_floor, need, token_file
from _harness import Case, Pair, Settings
from k8sauthn import Context, Headers, RequestView, run_pure
from k8sauthn.config.options import AuthenticationOptions, RequestHeaderOptions

NOW = 1_800_000_000.0


def _expect(resp: object, name: str) -> None:
    user = getattr(resp, "user", None)
    if getattr(user, "name", None) != name:
        raise AssertionError(f"expected user {name!r}, got {resp!r}")


def default_chain_request(options: AuthenticationOptions) -> object:
    """The request authenticator kube-apiserver would build from ``options``."""
    build = need("k8sauthn.config.build")
    chain = build.build(options)
    if chain is None or chain.request is None:
        raise AssertionError("build() returned no request authenticator")
    return chain.request


def kubeadm_options() -> AuthenticationOptions:
    """The authentication flags kubeadm gives kube-apiserver: client CA, front proxy, tokens.

    (kubeadm uses service-account tokens and bootstrap tokens where we use a token file; the
    chain shape — request-header, x509, bearer over the cached token union, anonymous — is the
    same.)
    """
    import bench_x509

    p = bench_x509.pki()
    return AuthenticationOptions(
        token_auth_file=str(token_file()),
        client_ca_file=str(bench_x509.ca_file("client-ca", p["root"])),
        requestheader=RequestHeaderOptions(
            client_ca_file=str(bench_x509.ca_file("front-proxy-ca", p["proxy_ca"])),
            allowed_names=("front-proxy-client",),
            username_headers=("X-Remote-User",),
            group_headers=("X-Remote-Group",),
            extra_headers_prefix=("X-Remote-Extra-",),
        ),
    )


def _cached_chain(options: Callable[[], AuthenticationOptions]) -> Callable[[Settings], Pair]:
    def make(settings: Settings) -> Pair:
        return cached_chain(options())

    return make


def cached_chain(options: AuthenticationOptions) -> Pair:
    """Authorization header in, user out, through the chain ``build(options)`` assembles, with
    the outer token cache warm."""
    from k8sauthn.io import Authenticator

    root = default_chain_request(options)
    authn = Authenticator(root)  # type: ignore[arg-type]
    view = RequestView(headers=Headers((("authorization", "Bearer " + TOKEN),)))
    authenticate = authn.authenticate_request

    def path() -> object:
        return authenticate(view)

    return Pair(path, hmac_dict_floor(), check=lambda: _expect(path(), USER))


def static_uncached(settings: Settings) -> Pair:
    """The static token authenticator alone (no cache), driven by ``run_pure``."""
    static = need("k8sauthn.token.static")
    auth = static.StaticTokenAuthenticator.from_csv(token_file().read_text())
    ctx = Context(now=NOW)
    flow = auth.token_flow

    def path() -> object:
        return run_pure(flow(TOKEN, ctx))

    return Pair(path, hmac_dict_floor(), check=lambda: _expect(path(), USER))


BOOTSTRAP_ID, BOOTSTRAP_SECRET = "abcdef", "0123456789abcdef"


def bootstrap_in_memory(settings: Settings) -> Pair:
    """A bootstrap token checked against in-memory Secrets, driven by ``run_pure``."""
    boot = need("k8sauthn.token.bootstrap")
    auth = _bootstrap_authenticator(boot)
    token = f"{BOOTSTRAP_ID}.{BOOTSTRAP_SECRET}"
    ctx = Context(now=NOW)
    flow = auth.token_flow

    def path() -> object:
        return run_pure(flow(token, ctx))

    return Pair(
        path,
        hmac_dict_floor(token),
        check=lambda: _expect(path(), f"system:bootstrap:{BOOTSTRAP_ID}"),
    )


def _bootstrap_authenticator(boot: Any) -> Any:
    sources = need("k8sauthn.token.bootstrap_sources")
    secret = boot.BootstrapSecret.for_token(
        BOOTSTRAP_ID, BOOTSTRAP_SECRET, extra_groups=("system:bootstrappers:worker",)
    )
    return boot.BootstrapTokenAuthenticator(sources.MappingSecretSource.of(secret))


def webhook_cache_hit(settings: Settings) -> Pair:
    """A webhook token already in the webhook's own cache, driven by ``run_pure``."""
    webhook = need("k8sauthn.token.webhook")
    from k8sauthn.io import Authenticator

    server = WebhookServer()
    auth = webhook.WebhookTokenAuthenticator.from_kubeconfig_file(str(server.kubeconfig()))
    with Authenticator(auth) as runner:
        _expect(runner.authenticate_token(TOKEN), USER)  # one real call fills the cache
        ctx = runner.context()  # the cache's clock: entries live 2 minutes from now
    flow = auth.token_flow

    def path() -> object:
        return run_pure(flow(TOKEN, ctx))

    def check() -> None:
        before = server.calls
        _expect(path(), USER)
        if server.calls != before:
            raise AssertionError("the cache-hit path called the webhook")

    return Pair(path, hmac_dict_floor(), check=check, close=server.close)


CASES = [
    Case(
        "cached token, full default chain (header in, user out)",
        "HMAC-SHA256 + dict hit",
        "ratio",
        1.3,
        pair=_cached_chain(lambda: AuthenticationOptions(token_auth_file=str(token_file()))),
    ),
    Case("static token (uncached)", "HMAC-SHA256 + dict hit", "ratio", 1.0, pair=static_uncached),
    Case(
        "bootstrap token (in-memory Secrets)",
        "HMAC-SHA256 + dict hit",
        "ratio",
        2.0,
        pair=bootstrap_in_memory,
    ),
    Case("webhook, cache hit", "HMAC-SHA256 + dict hit", "ratio", 1.3, pair=webhook_cache_hit),
    Case(
        "cached token, kubeadm-shaped chain (+ client CA, + front proxy)",
        "HMAC-SHA256 + dict hit",
        "study",
        None,
        pair=_cached_chain(kubeadm_options),
        group="study",
    ),
]
