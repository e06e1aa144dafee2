"""From :class:`AuthenticationOptions` to an authenticator graph, in kube-apiserver's order.

This is kube-apiserver's ``pkg/kubeapiserver/authenticator/config.go`` (spec §3.1, §3.2)::

    request chain = failOnErrorUnion(                       # only if anonymous is enabled
        AuthenticatedGroupAdder(union(                      # not fail-fast
            AudienceAgnostic(request-header),               # --requestheader-client-ca-file
            x509,                                           # --client-ca-file
            Bearer(token chain), WebSocket(token chain),    # the SAME token chain object
        )),
        Anonymous)
    token chain   = Cached(10s / 0s, cache_errors)(union(   # outer cache if a TTL > 0
        AudienceAgnostic(static token file),
        AudienceAgnostic(bootstrap tokens),
        AudienceAgnostic(failOnErrorUnion(JWT authenticators...)),
        webhook,                                            # already in its own cache
    ))

With nothing configured but anonymous, the request chain is anonymous alone (no group adder);
with nothing at all it is ``None`` (authentication disabled). Each authenticator family has its
own private ``_<family>(options)`` builder below.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final, Protocol

import attrs

from .._protocols import RequestAuthenticator, TokenAuthenticator
from ..chain.audiences import AudienceAgnosticRequest, AudienceAgnosticToken
from ..chain.cache import CachedTokenAuthenticator
from ..chain.groups import AuthenticatedGroupAdder
from ..chain.union import request_union, token_union
from ..exceptions import ConfigError, FieldError
from ..request.anonymous import AnonymousAuthenticator, AnonymousConfig
from ..request.bearer import BearerAuthenticator
from ..request.requestheader import RequestHeaderAuthenticator
from ..request.websocket import WebSocketProtocolAuthenticator
from ..request.x509 import ClientCertAuthenticator
from ..token.static import StaticTokenAuthenticator
from .options import AuthenticationOptions

if TYPE_CHECKING:
    from ..chain.cache import CacheStats
    from ..token.jwks import JWTMetrics

__all__ = ["STANDARD_STRIP_HEADERS", "STANDARD_STRIP_PREFIXES", "Chain", "ChainMetrics", "build"]

#: Deleted from the request after any successful authentication (spec §10.4, §15 step 5).
STANDARD_STRIP_HEADERS: Final = ("Authorization", "X-Remote-User", "X-Remote-Uid", "X-Remote-Group")
STANDARD_STRIP_PREFIXES: Final = ("X-Remote-Extra-",)

_ANONYMOUS_BOTH_SET: Final = FieldError(
    "anonymous",
    "Forbidden: --anonymous-auth flag cannot be set when anonymous field is configured in "
    "authentication configuration file",
)


_ANONYMOUS_OFF: Final = AnonymousConfig(enabled=False)


class ChainMetrics(Protocol):
    """Where the built authenticators report their metrics (spec §18), e.g.
    :class:`k8sauthn.metrics.AuthenticatorMetrics`: every token cache's counters, client
    certificate lifetimes, and the JWT authenticators' latency and JWKS fetches.
    """

    @property
    def jwt(self) -> JWTMetrics: ...

    def track_token_cache(self, stats: CacheStats, /) -> None: ...

    def observe_client_certificate_expiry(self, seconds: float, /) -> None: ...


def _tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class Chain:
    """The assembled authenticators and what the HTTP filter needs to run them.

    ``request`` is the root request authenticator (``None``: authentication disabled, every
    request passes without a user). ``token`` is the shared token chain, cache included, for
    callers that check bare tokens (``None`` when no token authenticator is configured).
    ``api_audiences`` go into every request's context. On success the filter deletes the
    ``strip_headers`` and every header starting with one of ``strip_prefixes``
    (case-insensitive, spec §10.4). ``anonymous`` is the effective anonymous configuration.
    """

    request: RequestAuthenticator | None
    token: TokenAuthenticator | None = None
    api_audiences: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    strip_headers: tuple[str, ...] = attrs.field(default=STANDARD_STRIP_HEADERS, converter=_tuple)
    strip_prefixes: tuple[str, ...] = attrs.field(default=STANDARD_STRIP_PREFIXES, converter=_tuple)
    anonymous: AnonymousConfig = _ANONYMOUS_OFF


def build(
    options: AuthenticationOptions,
    *,
    always_allow_authorizer: bool = False,
    metrics: ChainMetrics | None = None,
) -> Chain:
    """Assemble the authenticators ``options`` configure, in kube-apiserver's order.

    ``always_allow_authorizer``: the server's authorizer list contains ``AlwaysAllow``; as in
    kube-apiserver that forces ``--anonymous-auth`` to false (a config-file ``anonymous``
    section is not affected). ``metrics`` receives what the authenticators measure (spec §18).
    Raises :class:`~k8sauthn.exceptions.ConfigError`.
    """
    api_audiences = options.api_audiences
    jwt, anonymous_section = _authentication_config(options, metrics)
    anonymous = _anonymous(options, anonymous_section, always_allow_authorizer)

    # The token chain (spec §3.2). Service-account tokens (positions 2 and 3) are out of scope.
    tokens: list[TokenAuthenticator] = []
    static = _static_tokens(options)
    if static is not None:
        tokens.append(AudienceAgnosticToken(static, api_audiences))
    bootstrap = _bootstrap(options)
    if bootstrap is not None:
        tokens.append(AudienceAgnosticToken(bootstrap, api_audiences))
    if jwt is not None:
        tokens.append(AudienceAgnosticToken(jwt, api_audiences))
    webhook = _webhook(options)
    if webhook is not None:
        tokens.append(webhook)
        if metrics is not None and isinstance(webhook, CachedTokenAuthenticator):
            metrics.track_token_cache(webhook.stats)

    token_chain: TokenAuthenticator | None = None
    if tokens:
        token_chain = token_union(*tokens)
        success_ttl, failure_ttl = options.token_success_cache_ttl, options.token_failure_cache_ttl
        if success_ttl > 0 or failure_ttl > 0:
            token_chain = CachedTokenAuthenticator(
                token_chain, success_ttl=success_ttl, failure_ttl=failure_ttl, cache_errors=True
            )
            if metrics is not None:
                metrics.track_token_cache(token_chain.stats)

    # The request chain (spec §3.1).
    requests: list[RequestAuthenticator] = []
    request_header = _request_header(options)
    if request_header is not None:
        requests.append(AudienceAgnosticRequest(request_header, api_audiences))
    x509 = _x509(options, metrics)
    if x509 is not None:
        requests.append(x509)
    if token_chain is not None:
        requests.append(BearerAuthenticator(token_chain))
        requests.append(WebSocketProtocolAuthenticator(token_chain))

    root: RequestAuthenticator | None = None
    if requests:
        root = AuthenticatedGroupAdder(request_union(*requests))
        if anonymous.enabled:
            root = request_union(root, AnonymousAuthenticator(anonymous), fail_on_error=True)
    elif anonymous.enabled:
        root = AnonymousAuthenticator(anonymous)

    strip_headers = list(STANDARD_STRIP_HEADERS)
    strip_prefixes = list(STANDARD_STRIP_PREFIXES)
    rh = options.requestheader
    if rh.client_ca_file:
        # The configured front-proxy headers are stripped too (endpoints/filters/authentication.go).
        strip_headers += [*rh.username_headers, *rh.uid_headers, *rh.group_headers]
        strip_prefixes += rh.extra_headers_prefix
    return Chain(
        request=root,
        token=token_chain,
        api_audiences=api_audiences,
        strip_headers=_dedupe(strip_headers),
        strip_prefixes=_dedupe(strip_prefixes),
        anonymous=anonymous,
    )


def _dedupe(names: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for n in names:
        seen.setdefault(n.lower(), n)
    return tuple(seen.values())


def _anonymous(
    options: AuthenticationOptions,
    section: AnonymousConfig | None,
    always_allow_authorizer: bool,
) -> AnonymousConfig:
    """The flag or the config file's ``anonymous`` section, never both (spec §6)."""
    if section is not None:
        if options.anonymous_auth is not None:  # set explicitly, even to its default
            raise ConfigError([_ANONYMOUS_BOTH_SET])
        return section.validate()
    enabled = True if options.anonymous_auth is None else options.anonymous_auth
    if always_allow_authorizer:
        enabled = False
    return AnonymousConfig(enabled=enabled)


# -- one builder per authenticator family ---------------------------------------------------------


def _static_tokens(options: AuthenticationOptions) -> TokenAuthenticator | None:
    """``--token-auth-file`` (spec §8), optionally followed on disk (beyond Kubernetes)."""
    path = options.token_auth_file
    if not path:
        return None
    if options.reload_token_file:
        return StaticTokenAuthenticator.reloading(path, interval=options.reload_interval)
    return StaticTokenAuthenticator.from_file(path)


def _request_header(options: AuthenticationOptions) -> RequestAuthenticator | None:
    """The front-proxy authenticator (``--requestheader-*``, spec §10), proxy cert verified.

    Not audience-wrapped here: :func:`build` wraps it.
    """
    return RequestHeaderAuthenticator.from_options(
        options.requestheader, reload_interval=options.reload_interval
    )


def _x509(
    options: AuthenticationOptions, metrics: ChainMetrics | None = None
) -> RequestAuthenticator | None:
    """Client certificates verified against ``--client-ca-file`` (spec §9)."""
    if not options.client_ca_file:
        return None
    return ClientCertAuthenticator.from_ca_file(
        options.client_ca_file,
        reload_interval=options.reload_interval,
        observe_expiry=metrics.observe_client_certificate_expiry if metrics else None,
    )


def _bootstrap(options: AuthenticationOptions) -> TokenAuthenticator | None:
    """Bootstrap tokens (``--enable-bootstrap-token-auth``, spec §11).

    Not audience-wrapped here: :func:`build` wraps it. Secrets come from
    ``--bootstrap-token-dir`` (Secret manifests, re-read on change) or, without it, from the
    cluster the process runs in (in-cluster service-account credentials).
    """
    if not options.enable_bootstrap_token_auth:
        return None
    from ..kubeapi import KubeAPI
    from ..token.bootstrap import BootstrapTokenAuthenticator, SecretSource
    from ..token.bootstrap_sources import DirectorySecretSource, KubernetesSecretSource

    source: SecretSource
    if options.bootstrap_token_dir:
        source = DirectorySecretSource(
            options.bootstrap_token_dir, interval=options.reload_interval
        )
    else:
        try:
            source = KubernetesSecretSource(KubeAPI.in_cluster())
        except ConfigError as exc:
            raise ConfigError(
                "--enable-bootstrap-token-auth needs --bootstrap-token-dir outside a cluster: "
                f"{exc}"
            ) from None
    return BootstrapTokenAuthenticator(source)


def _webhook(options: AuthenticationOptions) -> TokenAuthenticator | None:
    """The TokenReview webhook (spec §12), already wrapped in its own cache (spec §14.1):
    ``CachedTokenAuthenticator(webhook, success_ttl=ttl, failure_ttl=ttl, cache_errors=False)``
    with ``ttl = options.authentication_token_webhook_cache_ttl``.
    """
    if not options.authentication_token_webhook_config_file:
        return None
    from ..token.webhook import WebhookTokenAuthenticator

    return WebhookTokenAuthenticator.from_kubeconfig_file(
        options.authentication_token_webhook_config_file,
        version=options.authentication_token_webhook_version,
        cache_ttl=options.authentication_token_webhook_cache_ttl,
        implicit_audiences=tuple(options.api_audiences),
    )


def _authentication_config(
    options: AuthenticationOptions, metrics: ChainMetrics | None = None
) -> tuple[TokenAuthenticator | None, AnonymousConfig | None]:
    """The JWT authenticators and the config file's ``anonymous`` section (spec §13, §6).

    From ``--authentication-config`` or the ``--oidc-*`` flags (exclusive). The JWT
    authenticators come back as ONE authenticator, already combined with
    ``token_union(*jwts, fail_on_error=True)`` (and swapped atomically on config reload);
    :func:`build` wraps it in the audience-agnostic wrapper. The anonymous section is ``None``
    when the file has none (or there is no file).
    """
    from ._load import read_text
    from .authentication import (
        OIDC_FLAGS_TOGETHER,
        jwt_config_from_oidc_options,
        legacy_signing_algs,
    )
    from .authentication_reload import AuthenticationConfigFile, build_jwt_authenticator
    from .options import OIDCOptions

    oidc_flags_set = options.oidc != OIDCOptions()
    if options.authentication_config:
        if oidc_flags_set:
            raise ConfigError("authentication-config file and oidc-* flags are mutually exclusive")
        jwt_metrics = metrics.jwt if metrics is not None else None
        live = AuthenticationConfigFile(
            options.authentication_config,
            interval=options.reload_interval,
            build=lambda cfg: build_jwt_authenticator(cfg, metrics=jwt_metrics),
        )
        return live, live.anonymous
    if not oidc_flags_set:
        return None, None
    if not (options.oidc.issuer_url and options.oidc.client_id):
        raise ConfigError(OIDC_FLAGS_TOGETHER)
    from ..token.oidc import JWTAuthenticator

    ca_pem = read_text(options.oidc.ca_file, what="oidc-ca-file") if options.oidc.ca_file else ""
    jwt = jwt_config_from_oidc_options(options.oidc, ca_pem)
    algs = legacy_signing_algs(options.oidc)
    jwt_metrics = metrics.jwt if metrics is not None else None
    return JWTAuthenticator.from_config(jwt, signing_algs=algs, metrics=jwt_metrics), None
