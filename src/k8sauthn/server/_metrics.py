"""The HTTP filter's metrics (spec §15, §18) in Prometheus text, when prometheus-client is there.

The authenticators' own metrics (token cache, client certificates, JWT) share the registry:
``authentication`` is a :class:`k8sauthn.metrics.AuthenticatorMetrics` to pass to ``build()``.
Names follow kube-apiserver's; prometheus-client adds the ``_total`` suffix to counters
(``authentication_attempts_total``), which client_golang does not.
"""

from __future__ import annotations

from typing import Any, Final

from .._types import Response

__all__ = ["Metrics", "compress_username"]

#: kube-apiserver's buckets: 0.001 * 2**k, k = 0..14.
DURATION_BUCKETS: Final = tuple(0.001 * 2**k for k in range(15))
_KNOWN_USERS: Final = frozenset(
    {"admin", "client", "kube_proxy", "kubelet", "system:serviceaccount:kube-system:default"}
)


def compress_username(name: str) -> str:
    """The bounded ``username`` label of ``authenticated_user_requests`` (``compressUsername``)."""
    if name in _KNOWN_USERS:
        return name
    if "@" in name:
        return "email_id"
    return "other"


class Metrics:
    """A private registry with the three filter metrics. Raises ImportError without the extra."""

    def __init__(self) -> None:
        import prometheus_client as prom

        from ..metrics import AuthenticatorMetrics

        self._prom = prom
        self.registry = prom.CollectorRegistry(auto_describe=True)
        self.authentication = AuthenticatorMetrics(self.registry)
        self.attempts = prom.Counter(
            "authentication_attempts",
            "Counter of authenticated attempts.",
            ["result"],
            registry=self.registry,
        )
        self.duration = prom.Histogram(
            "authentication_duration_seconds",
            "Authentication duration in seconds broken out by result.",
            ["result"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.user_requests = prom.Counter(
            "authenticated_user_requests",
            "Counter of authenticated requests broken out by username.",
            ["username"],
            registry=self.registry,
        )
        self._by_result: dict[str, tuple[Any, Any]] = {}
        self._by_user: dict[str, Any] = {}

    @classmethod
    def create(cls) -> Metrics | None:
        """Metrics when the ``k8sauthn[metrics]`` extra is installed, else None."""
        try:
            return cls()
        except ImportError:
            return None

    def attempt(self, result: str, seconds: float, resp: Response | None) -> None:
        # labels() takes a lock and builds a key on every call: keep the children instead.
        # Both label sets are small and closed (three results, seven compressed names).
        children = self._by_result.get(result)
        if children is None:
            children = self._by_result[result] = (
                self.attempts.labels(result),
                self.duration.labels(result),
            )
        children[0].inc()
        children[1].observe(seconds)
        if resp is not None:
            name = compress_username(resp.user.name)
            user = self._by_user.get(name)
            if user is None:
                user = self._by_user[name] = self.user_requests.labels(name)
            user.inc()

    def exposition(self) -> tuple[bytes, str]:
        body: Any = self._prom.generate_latest(self.registry)
        return bytes(body), str(self._prom.CONTENT_TYPE_LATEST)
