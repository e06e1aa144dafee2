"""The delegating preset: what an aggregated API server or an admission webhook needs (§3.3).

kube-apiserver forwards requests to extension servers with a front-proxy client certificate and
``X-Remote-*`` headers, and clients may call them directly with a client certificate or a bearer
token. k8s.io/apiserver's ``DelegatingAuthenticationOptions`` authenticates all three by asking
the cluster itself::

    failOnErrorUnion(
        AuthenticatedGroupAdder(union(
            request-header,                     # CA + header names from the ConfigMap
            x509,                               # client CA from the ConfigMap (or local files)
            Bearer + WebSocket(Cached(10 s, errors not cached)(TokenReview v1 -> API server)),
        )),
        Anonymous)

The ConfigMap is read through the Kubernetes API (``GET /api/v1/namespaces/kube-system/
configmaps/extension-apiserver-authentication``) as ``Fetch`` effects: once at
:meth:`DelegatingAuthenticator.initialize` (or lazily on the first request) and again every
``refresh_interval`` seconds; a refresh that fails keeps the values in force. CA changes apply to
the running authenticators; the header names are read once, as Kubernetes does.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from typing import Any, Final

import attrs

from ._flow import Flow, Shared
from ._protocols import RequestAuthenticator, TokenAuthenticator
from ._types import Context, RequestView, Response
from .chain.groups import AuthenticatedGroupAdder
from .chain.union import request_union
from .config.configmap import (
    CONFIGMAP_NAME,
    CONFIGMAP_NAMESPACE,
    ExtensionAuthentication,
    parse_configmap,
)
from .config.options import RequestHeaderOptions
from .exceptions import BackendUnavailable, ConfigError, redact_url
from .kubeapi import APIStatusError, Backoff, KubeAPI
from .request._trust import CABundle
from .request.anonymous import AnonymousAuthenticator
from .request.bearer import BearerAuthenticator
from .request.requestheader import RequestHeaderAuthenticator
from .request.websocket import WebSocketProtocolAuthenticator
from .request.x509 import ClientCertAuthenticator
from .token.webhook import WebhookTokenAuthenticator

__all__ = ["CONFIGMAP_PATH", "TOKENREVIEW_PATH", "DelegatingAuthenticator"]

CONFIGMAP_PATH: Final = f"/api/v1/namespaces/{CONFIGMAP_NAMESPACE}/configmaps/{CONFIGMAP_NAME}"
TOKENREVIEW_PATH: Final = "/apis/authentication.k8s.io/v1/tokenreviews"
_LOOKUP_HINT: Final = (
    "Usually fixed by 'kubectl create rolebinding -n kube-system ROLEBINDING_NAME "
    "--role=extension-apiserver-authentication-reader --serviceaccount=YOUR_NS:YOUR_SA'"
)


class _Current:
    """A CA source that reads the delegating authenticator's current ConfigMap values."""

    def __init__(self, owner: DelegatingAuthenticator, key: str) -> None:
        self._owner = owner
        self._key = key

    @property
    def value(self) -> CABundle | None:
        ext = self._owner.extension
        return None if ext is None else getattr(ext, self._key)


class DelegatingAuthenticator:
    """A request authenticator that delegates to the cluster, as extension API servers do.

    Build it with :meth:`in_cluster` or :meth:`from_kubeconfig`; run
    ``runner.run(authn.initialize(now))`` once at start-up to fail fast on a lookup error
    (otherwise the first request performs the lookup). ``last_error`` keeps the latest refresh
    failure.
    """

    def __init__(
        self,
        api: KubeAPI | None,
        *,
        cache_ttl: float = 10.0,
        api_audiences: tuple[str, ...] = (),
        client_ca_file: str = "",
        requestheader: RequestHeaderOptions | None = None,
        skip_lookup: bool = False,
        tolerate_lookup_failure: bool = False,
        refresh_interval: float = 60.0,
        anonymous: bool = True,
        backoff: Backoff | None = None,
    ) -> None:
        self.api = api
        self.api_audiences = tuple(api_audiences)
        self.refresh_interval = refresh_interval
        self.tolerate_lookup_failure = tolerate_lookup_failure
        self.extension: ExtensionAuthentication | None = None
        self.last_error: Exception | None = None
        self._anonymous = anonymous
        self._raw: Mapping[str, Any] | None = None
        self._local_ca = (
            ClientCertAuthenticator.from_ca_file(client_ca_file) if client_ca_file else None
        )
        self._local_rh = (
            RequestHeaderAuthenticator.from_options(requestheader) if requestheader else None
        )
        # Kubernetes looks the ConfigMap up only for what local options do not provide.
        self._lookup = (
            api is not None
            and not skip_lookup
            and (self._local_ca is None or self._local_rh is None)
        )
        self.token: TokenAuthenticator | None = None
        if api is not None:
            webhook = WebhookTokenAuthenticator(
                attrs.evolve(api, base_url=api.url(TOKENREVIEW_PATH)),
                version="v1",
                implicit_audiences=self.api_audiences,
                backoff=backoff or Backoff(),
                deadline=api.timeout,
            )
            self.token = webhook.cached(cache_ttl)
        self._root: RequestAuthenticator | None = None
        self._rh: RequestHeaderAuthenticator | None = None
        self._next_refresh = float("inf")
        tag = secrets.token_bytes(8)
        self._init_key, self._refresh_key = b"delegating.init:" + tag, b"delegating.refresh:" + tag

    def __repr__(self) -> str:
        where = redact_url(self.api.base_url) if self.api is not None else None
        return f"DelegatingAuthenticator({where!r}, lookup={self._lookup})"

    # -- constructors ---------------------------------------------------------------------------
    @classmethod
    def in_cluster(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        sa_dir: str | os.PathLike[str] | None = None,
        optional: bool = False,
        **options: Any,
    ) -> DelegatingAuthenticator:
        """Delegate with the pod's service-account identity (``rest.InClusterConfig``).

        ``optional=True`` mirrors ``--authentication-kubeconfig`` being optional: outside a
        cluster the result is anonymous-only and bearer tokens get no opinion.
        """
        kwargs: dict[str, Any] = {"environ": environ}
        if sa_dir is not None:
            kwargs["sa_dir"] = sa_dir
        try:
            api = KubeAPI.in_cluster(**kwargs)
        except ConfigError as exc:
            if not optional:
                raise ConfigError(
                    f"failed to get delegated authentication kubeconfig: {exc}"
                ) from None
            api = None
        return cls(api, **options)

    @classmethod
    def from_kubeconfig(
        cls, path: str | os.PathLike[str], **options: Any
    ) -> DelegatingAuthenticator:
        """Delegate to the API server named by a kubeconfig (``--authentication-kubeconfig``)."""
        return cls(KubeAPI.from_kubeconfig(path), **options)

    # -- the ConfigMap --------------------------------------------------------------------------
    def initialize(self, now: float) -> Flow[None]:
        """Look the ConfigMap up (unless skipped) and build the chain; idempotent.

        Raises :class:`BackendUnavailable` when the lookup fails and failures are not tolerated.
        A missing ConfigMap is not a failure: there is then no client CA and no request-header.
        """
        if self._root is not None:
            return None
        if self._lookup:
            try:
                yield from self._read(now)
            except BackendUnavailable as exc:
                self.last_error = exc
                if not self.tolerate_lookup_failure:
                    raise BackendUnavailable(
                        f"unable to load configmap based request-header-client-ca-file: {exc}. "
                        + _LOOKUP_HINT
                    ) from None
            self._next_refresh = now + self.refresh_interval
        self._root = self._build()
        return None

    def _read(self, now: float) -> Flow[None]:
        assert self.api is not None
        try:
            doc = yield from self.api.get_json(CONFIGMAP_PATH, start=now)
        except APIStatusError as exc:
            if exc.code == 404:
                self._install({}, None)
                return None
            raise
        data = doc.get("data") if isinstance(doc, dict) else None
        data = data or {}
        if data == self._raw:
            return None  # unchanged: keep the same bundles so verifier caches stay warm
        try:
            ext = parse_configmap(_json_bytes({"kind": "ConfigMap", "data": data}))
        except ConfigError as exc:
            raise BackendUnavailable(f"invalid {CONFIGMAP_NAME} ConfigMap: {exc}") from None
        self._install(data, ext)
        return None

    def _install(self, raw: Mapping[str, Any], ext: ExtensionAuthentication | None) -> None:
        self._raw, self.extension, self.last_error = raw, ext, None

    def _refresh(self, now: float) -> Flow[None]:
        if now < self._next_refresh:
            return None
        self._next_refresh = now + self.refresh_interval
        try:
            yield from self._read(now)
        except BackendUnavailable as exc:  # keep the values in force (dynamic CA semantics)
            self.last_error = exc
        return None

    def _build(self) -> RequestAuthenticator:
        members: list[RequestAuthenticator] = []
        ext = self.extension
        rh = self._local_rh
        if rh is None and ext is not None and ext.requestheader_ca is not None:
            # The ConfigMap's header lists are used as they are (kube-apiserver writes them
            # whenever it has a front-proxy CA); an empty username list accepts nobody.
            rh = RequestHeaderAuthenticator.behind_proxy(
                proxy_ca=_Current(self, "requestheader_ca"),
                allowed_names=ext.allowed_names,
                username_headers=ext.username_headers,
                uid_headers=ext.uid_headers,
                group_headers=ext.group_headers,
                extra_headers_prefix=ext.extra_headers_prefix,
            )
        if rh is not None:
            # Unlike kube-apiserver's chain, the delegated one does not audience-wrap the
            # front proxy (authenticatorfactory/delegating.go).
            members.append(rh)
        self._rh = rh
        x5 = self._local_ca
        if x5 is None and ext is not None and ext.client_ca is not None:
            x5 = ClientCertAuthenticator.from_source(_Current(self, "client_ca"))
        if x5 is not None:
            members.append(x5)
        if self.token is not None:
            # Bearer and WebSocket share the one cached TokenReview authenticator.
            members.append(BearerAuthenticator(self.token))
            members.append(WebSocketProtocolAuthenticator(self.token))
        if not members:
            if not self._anonymous:
                raise ConfigError("no authentication method configured")
            return AnonymousAuthenticator()
        root: RequestAuthenticator = AuthenticatedGroupAdder(request_union(*members))
        if self._anonymous:
            root = request_union(root, AnonymousAuthenticator(), fail_on_error=True)
        return root

    @property
    def request_header(self) -> RequestHeaderAuthenticator | None:
        """The request-header authenticator in use (its header names are what to strip)."""
        return self._rh

    # -- the authenticator ------------------------------------------------------------------------
    def request_flow(self, request: RequestView, ctx: Context, /) -> Flow[Response | None]:
        root = self._root
        if root is None or ctx.now >= self._next_refresh:
            return self._slow(request, ctx)
        return root.request_flow(request, ctx)

    def _slow(self, request: RequestView, ctx: Context) -> Flow[Response | None]:
        if self._root is None:
            yield Shared(self._init_key, lambda: self.initialize(ctx.now))
        elif ctx.now >= self._next_refresh:
            yield Shared(self._refresh_key, lambda: self._refresh(ctx.now))
        assert self._root is not None
        return (yield from self._root.request_flow(request, ctx))


def _json_bytes(obj: object) -> bytes:
    return json.dumps(obj).encode()
