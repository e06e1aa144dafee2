"""Prometheus adapters for the authenticators' own metrics (spec §9.6, §13.10, §13.12, §14.5, §18).

Needs the ``k8sauthn[metrics]`` extra; ``prometheus_client`` is imported when an adapter is
built, never by ``import k8sauthn``. :class:`AuthenticatorMetrics` bundles the three adapters
for :func:`k8sauthn.config.build.build` (``metrics=``); each can also be used alone:

* :class:`TokenCacheCollector` reads :class:`~k8sauthn.chain.cache.CacheStats` at scrape time;
* :class:`ClientCertificateExpiry` is the ``observe_expiry`` hook of the x509 authenticator;
* :class:`PrometheusJWTMetrics` implements :class:`~k8sauthn.token.jwks.JWTMetrics`.

prometheus-client adds ``_total`` to counter names, as client_golang's names already have it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

from .token.jwks import sha256_label

if TYPE_CHECKING:
    from .chain.cache import CacheStats

__all__ = [
    "CLIENT_CERTIFICATE_EXPIRATION_BUCKETS",
    "JWT_LATENCY_BUCKETS",
    "AuthenticatorMetrics",
    "ClientCertificateExpiry",
    "PrometheusJWTMetrics",
    "TokenCacheCollector",
]

#: ``apiserver_client_certificate_expiration_seconds`` buckets (spec §18): 0s .. 360 days.
CLIENT_CERTIFICATE_EXPIRATION_BUCKETS: Final = (
    0.0,
    1800.0,
    3600.0,
    7200.0,
    21600.0,
    43200.0,
    86400.0,
    172800.0,
    345600.0,
    604800.0,
    2592000.0,
    7776000.0,
    15552000.0,
    31104000.0,
)
#: ``apiserver_authentication_jwt_authenticator_latency_seconds`` buckets (spec §13.12).
JWT_LATENCY_BUCKETS: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class TokenCacheCollector:
    """The token cache metrics of spec §14.5, summed over every tracked cache at scrape time.

    kube-apiserver's series carry no per-cache label (the outer cache and the webhook cache
    count into the same series), so the counters of all tracked caches are added up.
    Exposed: ``authentication_token_cache_request_total{status=hit|miss}``,
    ``authentication_token_cache_fetch_total{status=ok|error}`` and
    ``authentication_token_cache_active_fetch_count{status=in_flight}``. Not exposed, because
    :class:`~k8sauthn.chain.cache.CacheStats` does not record it:
    ``authentication_token_cache_request_duration_seconds`` (no per-lookup timing) and the
    ``blocked`` gauge (callers waiting on a shared call are collapsed inside the runner).
    """

    def __init__(self) -> None:
        # Bounded by the caches a chain builds (two today); reloads do not add caches.
        self._stats: list[CacheStats] = []
        self._lock = threading.Lock()

    def track(self, stats: CacheStats) -> None:
        """Read ``stats`` (a cache's ``.stats``) on every scrape from now on."""
        with self._lock:
            if not any(s is stats for s in self._stats):
                self._stats.append(stats)

    def describe(self) -> list[Any]:
        # Families without samples: registering must not read the counters.
        return list(_cache_families(None))

    def collect(self) -> Iterator[Any]:
        with self._lock:
            snapshots = [s.as_dict() for s in self._stats]
        names = ("hits", "misses", "fetch_ok", "fetch_error", "in_flight")
        yield from _cache_families({n: sum(s[n] for s in snapshots) for n in names})


def _cache_families(total: dict[str, int] | None) -> Iterator[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    requests = CounterMetricFamily(
        "authentication_token_cache_request",
        "Number of token cache requests, by hit or miss.",
        labels=["status"],
    )
    fetches = CounterMetricFamily(
        "authentication_token_cache_fetch",
        "Number of token cache fetches, by ok or error.",
        labels=["status"],
    )
    active = GaugeMetricFamily(
        "authentication_token_cache_active_fetch_count",
        "Number of token cache fetches running now.",
        labels=["status"],
    )
    if total is not None:
        requests.add_metric(["hit"], total["hits"])
        requests.add_metric(["miss"], total["misses"])
        fetches.add_metric(["ok"], total["fetch_ok"])
        fetches.add_metric(["error"], total["fetch_error"])
        active.add_metric(["in_flight"], total["in_flight"])
    yield requests
    yield fetches
    yield active


class ClientCertificateExpiry:
    """``apiserver_client_certificate_expiration_seconds`` (spec §9.6): call it with the leaf's
    remaining lifetime in seconds (negative once expired), as the x509 ``observe_expiry`` hook.
    """

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Histogram

        self.histogram = Histogram(
            "apiserver_client_certificate_expiration_seconds",
            "Distribution of the remaining lifetime on the certificate used to authenticate a "
            "request.",
            buckets=CLIENT_CERTIFICATE_EXPIRATION_BUCKETS,
            registry=registry,
        )
        self._observe = self.histogram.observe

    def __call__(self, seconds: float) -> None:
        self._observe(seconds)


class PrometheusJWTMetrics:
    """:class:`~k8sauthn.token.jwks.JWTMetrics` in Prometheus (spec §13.10, §13.12).

    ``apiserver_id`` is the server identity whose ``sha256:<hex>`` labels the JWKS gauges
    (``apiserver_id_hash``; ``""`` when empty, spec §18). Issuer hashes arrive already hashed.
    ``jwks_fetch_last_key_set_info`` keeps one series per issuer: a new key set replaces the
    previous one's series, so each issuer shows the hash of the set it uses now.
    """

    def __init__(self, registry: Any, *, apiserver_id: str = "") -> None:
        from prometheus_client import Gauge, Histogram

        self._apiserver_id_hash = sha256_label(apiserver_id)
        self.latency = Histogram(
            "apiserver_authentication_jwt_authenticator_latency_seconds",
            "Latency of jwt authentication operations in seconds. This is the time spent "
            "authenticating a token for cache miss only (i.e. when the token is not found in "
            "the cache).",
            ["result", "jwt_issuer_hash"],
            buckets=JWT_LATENCY_BUCKETS,
            registry=registry,
        )
        self.fetch_timestamp = Gauge(
            "apiserver_authentication_jwt_authenticator_jwks_fetch_last_timestamp_seconds",
            "Timestamp of the last successful or failed JWKS fetch split by result, api server "
            "identity and jwt issuer for the JWT authenticator.",
            ["result", "jwt_issuer_hash", "apiserver_id_hash"],
            registry=registry,
        )
        self.key_set_info = Gauge(
            "apiserver_authentication_jwt_authenticator_jwks_fetch_last_key_set_info",
            "Information about the last JWKS fetched by the JWT authenticator with hash as "
            "label, split by api server identity and jwt issuer.",
            ["jwt_issuer_hash", "apiserver_id_hash", "hash"],
            registry=registry,
        )
        # Children per label set: labels() locks and builds a key on every call. Bounded by
        # the configured issuers times two results.
        self._latency: dict[tuple[str, str], Any] = {}
        self._key_sets: dict[str, str] = {}
        self._lock = threading.Lock()

    def observe_latency(self, issuer_hash: str, result: str, seconds: float) -> None:
        child = self._latency.get((issuer_hash, result))
        if child is None:
            child = self._latency[(issuer_hash, result)] = self.latency.labels(result, issuer_hash)
        child.observe(seconds)

    def observe_jwks_fetch(
        self, issuer_hash: str, result: str, timestamp: float, key_set_hash: str
    ) -> None:
        server = self._apiserver_id_hash
        self.fetch_timestamp.labels(result, issuer_hash, server).set(timestamp)
        if result != "success" or not key_set_hash:
            return
        with self._lock:
            previous = self._key_sets.get(issuer_hash)
            if previous is not None and previous != key_set_hash:
                self.key_set_info.remove(issuer_hash, server, previous)
            self._key_sets[issuer_hash] = key_set_hash
            self.key_set_info.labels(issuer_hash, server, key_set_hash).set(1)


class AuthenticatorMetrics:
    """All three adapters on one registry, in the shape ``build(metrics=...)`` reads.

    Raises ImportError without prometheus-client (the ``k8sauthn[metrics]`` extra).
    """

    def __init__(self, registry: Any, *, apiserver_id: str = "") -> None:
        self.registry = registry
        self.token_cache = TokenCacheCollector()
        registry.register(self.token_cache)
        self.client_certificate_expiry = ClientCertificateExpiry(registry)
        self.jwt = PrometheusJWTMetrics(registry, apiserver_id=apiserver_id)

    def track_token_cache(self, stats: CacheStats) -> None:
        """Expose a token cache's counters (see :class:`TokenCacheCollector`)."""
        self.token_cache.track(stats)

    def observe_client_certificate_expiry(self, seconds: float) -> None:
        """Record a client certificate's remaining lifetime (spec §9.6)."""
        self.client_certificate_expiry(seconds)
