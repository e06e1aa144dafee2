"""A small flow-based Kubernetes API client: endpoints, status errors and retries.

Everything here builds :class:`~k8sauthn.Fetch` effects and interprets :class:`Fetched`
outcomes; the runners in :mod:`k8sauthn.io` perform them. Used by the webhook authenticator
(one POST per review), the delegating preset (TokenReview, the authentication ConfigMap) and the
bootstrap-token Secret lister.

Non-2xx answers become :class:`APIStatusError` with client-go's texts and reasons
(apimachinery ``NewGenericServerResponse``), because a webhook's ``status.error`` and log lines
should read the same as kube-apiserver's. Redirects are never followed: a 3xx is an error.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from ._flow import Fetch, Fetched, Flow, Sleep, TLSConfig
from .config._load import ReloadingFile, read_bytes
from .exceptions import BackendUnavailable, ConfigError

__all__ = [
    "SERVICE_ACCOUNT_DIR",
    "APIStatusError",
    "Backoff",
    "KubeAPI",
    "call_with_retries",
    "is_retriable",
    "status_error",
]

SERVICE_ACCOUNT_DIR: Final = "/var/run/secrets/kubernetes.io/serviceaccount"
_JSON: Final = "application/json"
# Transport failures that client-go retries: "connection reset by peer" and "http2: client
# connection lost" (apimachinery net.IsConnectionReset / IsHTTP2ConnectionLost). The runners
# name an ECONNRESET with Go's text (k8sauthn.io._common); refused connections, timeouts, TLS
# errors are not retried. A server that closes without answering is retried although Go sees
# a plain EOF there: httpx reports a reset that hits the request write the same way (httpcore
# suppresses the write error, then reads end-of-file). HTTP/1.1 only: no HTTP/2 to lose.
_RETRIABLE_TRANSPORT: Final = (": connection reset by peer", ": RemoteProtocolError")
_RETRIABLE_REASONS: Final = frozenset({"InternalError", "Timeout", "TooManyRequests"})
_GENERIC: Final[Mapping[int, tuple[str, str]]] = {
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    401: ("Unauthorized", "the server has asked for the client to provide credentials"),
    404: ("NotFound", "the server could not find the requested resource"),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    406: (
        "NotAcceptable",
        "the server was unable to respond with a content type that the client supports",
    ),
    409: ("Conflict", "the server reported a conflict"),
    415: ("UnsupportedMediaType", "the server was unable to process our request's content type"),
    422: ("Invalid", "the server rejected our request due to an error in our request"),
    429: (
        "TooManyRequests",
        "the server has received too many requests and has asked us to try again later",
    ),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: (
        "Timeout",
        "the server was unable to return a response in the time allotted, but may still be "
        "processing the request",
    ),
}


class APIStatusError(BackendUnavailable):
    """A non-2xx answer, shaped like an apimachinery ``StatusError``.

    ``retry_after`` is the server's suggested delay in seconds (``Retry-After`` on a 429/5xx, or
    ``details.retryAfterSeconds`` in a Status body); 0 when none was given.
    """

    def __init__(
        self, message: str, *, code: int, reason: str, retry_after: float = 0.0, url: str = ""
    ) -> None:
        super().__init__(message, url=url)
        self.code = code
        self.reason = reason
        self.retry_after = retry_after


def status_error(fetched: Fetched, *, url: str = "") -> APIStatusError:
    """The error for a non-2xx :class:`Fetched`: a Status body's own message, else client-go's."""
    code = fetched.status
    retry_after = 0.0
    if code == 429 or code >= 500:  # client-go honours Retry-After only on these (checkWait)
        retry_after = _retry_after(fetched.headers.get("retry-after", ""))
    status = _status_object(fetched.body)
    if status is not None:
        details = status.get("details")
        if isinstance(details, dict) and isinstance(details.get("retryAfterSeconds"), int):
            retry_after = max(retry_after, float(details["retryAfterSeconds"]))
        reason = status.get("reason")
        return APIStatusError(
            str(status.get("message") or ""),
            code=code,
            reason=reason if isinstance(reason, str) else "",
            retry_after=retry_after,
            url=url,
        )
    reason, message = _GENERIC.get(
        code,
        (
            "",
            f"the server responded with the status code {code} but did not return more information",
        ),
    )
    if code == 403:
        reason, message = "Forbidden", _server_text(fetched.body) or "forbidden"
    elif code >= 500 and code not in _GENERIC:
        reason = "InternalError"
        quoted = json.dumps(_server_text(fetched.body) or "unknown", ensure_ascii=False)
        message = f"an error on the server ({quoted}) has prevented the request from succeeding"
    return APIStatusError(message, code=code, reason=reason, retry_after=retry_after, url=url)


def is_retriable(exc: BaseException) -> bool:
    """Whether client-go's webhook backoff retries this error (spec §12.6)."""
    if isinstance(exc, APIStatusError):
        return (
            exc.reason in _RETRIABLE_REASONS
            or exc.reason == "ServerTimeout"
            or (exc.retry_after > 0)
        )
    if isinstance(exc, BackendUnavailable):
        return str(exc).endswith(_RETRIABLE_TRANSPORT)
    return False


def _retry_after(value: str) -> float:
    try:
        seconds = int(value.strip())
    except ValueError:
        return 0.0
    return float(seconds) if seconds > 0 else 0.0


def _status_object(body: bytes) -> dict[str, Any] | None:
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    if isinstance(obj, dict) and obj.get("kind") == "Status" and obj.get("apiVersion") == "v1":
        return obj
    return None


def _server_text(body: bytes) -> str:
    # Bounded: a hostile server's body must not turn into a megabyte-long error message.
    return body[:1024].decode("utf-8", "replace").strip()


@attrs.frozen
class Backoff:
    """client-go's ``wait.Backoff`` for webhooks: 0.5 s x 1.5, jitter 0.2, 5 attempts (§12.6)."""

    initial: float = 0.5
    factor: float = 1.5
    jitter: float = 0.2
    steps: int = attrs.field(default=5)

    @steps.validator
    def _check_steps(self, _attr: object, value: int) -> None:
        if value <= 0:
            raise ConfigError(
                f"number of webhook retry attempts must be greater than 0, but is: {value}"
            )

    def delay(self, retry: int, rand: Callable[[], float]) -> float:
        """The sleep before retry number ``retry`` (1-based), lengthened by up to ``jitter``."""
        base = self.initial * self.factor ** (retry - 1)
        return base + (base * self.jitter * rand() if self.jitter > 0 else 0.0)


def call_with_retries(
    make_fetch: Callable[[float], Fetch],
    *,
    start: float,
    deadline: float,
    backoff: Backoff,
    rand: Callable[[], float] = random.random,
) -> Flow[Fetched]:
    """Perform ``make_fetch(timeout)`` with retries; return the first 2xx :class:`Fetched`.

    Raises the last error after ``backoff.steps`` attempts, or as soon as the next attempt could
    not start before ``start + deadline``. Elapsed time is known from the runner's clock
    readings (``Fetched.time``, ``BackendUnavailable.time``) and the sleeps taken.
    """
    end = start + deadline
    now = start
    last: BackendUnavailable | None = None
    for attempt in range(backoff.steps):
        if attempt:
            assert last is not None
            pause = max(backoff.delay(attempt, rand), last_retry_after(last))
            if now + pause >= end:
                break
            yield Sleep(pause)
            now += pause
        timeout = end - now
        if timeout <= 0:
            break
        fetch = make_fetch(timeout)
        try:
            fetched = yield fetch
        except BackendUnavailable as exc:
            # A flow cannot read the clock: the runner stamps a transport failure with it, so a
            # server that stalls and then resets still uses up the deadline (docs/webhook.md).
            last = exc
            now = max(now, exc.time or now)
        else:
            now = max(now, fetched.time or now)
            # client-go: only 200..206 are success (rest.Request.transformResponse).
            if 200 <= fetched.status <= 206:
                return fetched  # type: ignore[no-any-return]
            last = status_error(fetched, url=fetch.url)
        if not is_retriable(last):
            break
    if last is None:  # the deadline left no time for a single attempt
        raise BackendUnavailable("webhook call failed: context deadline exceeded")
    raise last


def last_retry_after(exc: BaseException) -> float:
    return exc.retry_after if isinstance(exc, APIStatusError) else 0.0


@attrs.frozen
class KubeAPI:
    """Where and how to reach a Kubernetes-style API server (or a webhook URL).

    ``headers`` are sent on every call; ``token_file`` (in-cluster service-account tokens rotate)
    is re-read when it changes and sent as a bearer token. Both are secret: never shown.
    """

    base_url: str = attrs.field(repr=lambda url: repr(_without_userinfo(url)))
    tls: TLSConfig | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    token_file: ReloadingFile[str] | None = attrs.field(default=None, repr=False)
    timeout: float = 30.0
    max_bytes: int = 1 << 20

    @classmethod
    def in_cluster(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        sa_dir: str | os.PathLike[str] = SERVICE_ACCOUNT_DIR,
        timeout: float = 10.0,
    ) -> KubeAPI:
        """The in-cluster service-account identity (client-go ``rest.InClusterConfig``)."""
        env = os.environ if environ is None else environ
        host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "")
        if not host or not port:
            raise ConfigError(
                "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and "
                "KUBERNETES_SERVICE_PORT must be defined"
            )
        hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        root = Path(sa_dir)
        token = ReloadingFile(root / "token", _token_text, what="service-account token")
        ca = read_bytes(root / "ca.crt", what="service-account CA")
        return cls(
            f"https://{hostport}", tls=TLSConfig(ca_pem=ca), token_file=token, timeout=timeout
        )

    @classmethod
    def from_kubeconfig(cls, path: str | os.PathLike[str], *, timeout: float = 10.0) -> KubeAPI:
        """An API server's base URL and credentials from a kubeconfig's current context."""
        from .config.kubeconfig import load_kubeconfig

        kc = load_kubeconfig(path)
        return cls(kc.server.rstrip("/"), tls=kc.tls, headers=kc.headers, timeout=timeout)

    def url(self, path: str) -> str:
        """``base_url`` + ``path``; an empty path is ``base_url`` verbatim (webhooks)."""
        return self.base_url + path if path else self.base_url

    def fetch(
        self, method: str, path: str, body: bytes = b"", *, timeout: float | None = None
    ) -> Fetch:
        """A :class:`Fetch` with this server's TLS and credentials."""
        headers = {"Accept": _JSON, **self.headers}
        if body:
            headers["Content-Type"] = _JSON
        if self.token_file is not None:
            headers["Authorization"] = "Bearer " + self.token_file.value
        return Fetch(
            method,
            self.url(path),
            headers=headers,
            body=body,
            timeout=self.timeout if timeout is None else min(timeout, self.timeout),
            max_bytes=self.max_bytes,
            tls=self.tls,
        )

    def get_json(self, path: str, *, start: float, backoff: Backoff | None = None) -> Flow[Any]:
        """GET ``path`` and decode the JSON body; non-2xx raises :class:`APIStatusError`."""
        fetched = yield from call_with_retries(
            lambda timeout: self.fetch("GET", path, timeout=timeout),
            start=start,
            deadline=self.timeout,
            backoff=backoff or Backoff(steps=1),
        )
        try:
            return json.loads(fetched.body)
        except ValueError:
            raise BackendUnavailable(
                f"unable to decode the response of GET {self.url(path)}: not JSON",
                url=self.url(path),
            ) from None


def _without_userinfo(url: str) -> str:
    # A URL may carry a password (https://user:pass@host): never show it.
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    if sep and "@" in host:
        return f"{scheme}://***@{host.rsplit('@', 1)[1]}{slash}{path}"
    return url


def _token_text(data: bytes) -> str:
    token = data.decode("utf-8").strip()
    if not token:
        raise ConfigError("the service-account token file is empty")
    return token
