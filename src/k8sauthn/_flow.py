"""Sans-I/O flows: authentication logic written once, driven by a sync or an async runner.

A flow is a generator. It yields *effects* described as data and receives their outcome:

* :class:`Fetch` -> :class:`Fetched` (an HTTP exchange; a transport failure is thrown into the
  flow as :class:`~k8sauthn.exceptions.BackendUnavailable`);
* :class:`Sleep` -> ``None`` (retry back-off);
* :class:`Shared` -> the value its sub-flow returns (single flight: concurrent ``Shared`` effects
  with the same key run the sub-flow once, and every waiter gets its result or its exception).

Only ``k8sauthn.io`` performs effects. Nothing here imports httpx.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from typing import Any, TypeAlias, TypeVar

import attrs

from .exceptions import redact_url

__all__ = ["Effect", "Fetch", "Fetched", "Flow", "Shared", "Sleep", "TLSConfig", "pure", "run_pure"]

T = TypeVar("T")


@attrs.frozen
class TLSConfig:
    """How to reach a backend over TLS. The runner keeps one HTTP client per distinct config.

    ``ca_pem`` empty means the system roots. ``client_key_pem`` is secret: never in a repr.
    """

    ca_pem: bytes = attrs.field(default=b"", repr=False)
    client_cert_pem: bytes = attrs.field(default=b"", repr=False)
    client_key_pem: bytes = attrs.field(default=b"", repr=False)
    insecure_skip_verify: bool = False
    server_name: str = ""


@attrs.frozen
class Fetch:
    """An HTTP request described as data.

    The runner never follows redirects, bounds the call by ``timeout`` seconds and the response
    body by ``max_bytes`` (a larger body is a :class:`BackendUnavailable`).
    """

    method: str
    url: str = attrs.field(repr=lambda url: repr(redact_url(url)))
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    body: bytes = attrs.field(default=b"", repr=False)
    timeout: float = 10.0
    max_bytes: int = 1 << 20
    tls: TLSConfig | None = None


@attrs.frozen
class Fetched:
    """The outcome of a :class:`Fetch`: status, lower-cased headers, body, clock at receipt."""

    status: int
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes = attrs.field(default=b"", repr=False)
    time: float = 0.0


@attrs.frozen
class Sleep:
    """Wait ``seconds`` before the flow continues (back-off between retries)."""

    seconds: float


@attrs.frozen
class Shared:
    """Run ``start()`` once for all concurrent waiters sharing ``key`` (single flight).

    ``key`` must not reveal a secret (derive it with an HMAC, as the token cache does).
    """

    key: bytes = attrs.field(repr=False)
    start: Callable[[], Flow[Any]]


Effect: TypeAlias = Fetch | Sleep | Shared
Flow: TypeAlias = Generator[Effect, Any, T]


def pure(value: T) -> Flow[T]:
    """A flow that performs no effect and returns ``value``."""
    if False:  # pragma: no cover - makes this function a generator
        yield  # type: ignore[unreachable]
    return value


def run_pure(flow: Flow[T]) -> T:
    """Drive a flow that must not perform effects (static tokens, x509, request-header ...)."""
    try:
        effect = next(flow)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    flow.close()
    raise RuntimeError(f"run_pure: the flow asked for an effect: {type(effect).__name__}")
