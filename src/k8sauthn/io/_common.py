"""What the sync and async runners share: client settings and outcome shaping."""

from __future__ import annotations

import ssl
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeAlias

import httpx

from .._flow import Fetch, Fetched, TLSConfig
from .._types import Context, Headers, RequestView
from ..exceptions import BackendUnavailable

ClientFactory: TypeAlias = Callable[[TLSConfig | None], Any]


def ssl_context(tls: TLSConfig | None) -> ssl.SSLContext | bool:
    """An SSL context for a backend, or True (system roots) when ``tls`` says nothing special."""
    if tls is None or (not tls.ca_pem and not tls.client_cert_pem and not tls.insecure_skip_verify):
        return True
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    # Python 3.13 turns on VERIFY_X509_STRICT, which rejects e.g. certificates without an
    # Authority Key Identifier. Go's verifier (kube-apiserver calling a webhook or an identity
    # provider with a configured CA) accepts them, so we do too.
    ctx.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
    if tls.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif tls.ca_pem:
        ctx.load_verify_locations(cadata=tls.ca_pem.decode("ascii", "replace"))
    if tls.client_cert_pem:
        # ssl can only load a key pair from files: write them to a private temporary directory
        # that is removed as soon as the context holds them.
        with tempfile.TemporaryDirectory(prefix="k8sauthn-") as tmp:
            cert, key = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
            cert.write_bytes(tls.client_cert_pem)
            key.touch(mode=0o600)
            key.write_bytes(tls.client_key_pem or tls.client_cert_pem)
            ctx.load_cert_chain(cert, key)
    return ctx


def default_client_kwargs(tls: TLSConfig | None) -> dict[str, Any]:
    """The settings both runners give httpx: our TLS, no redirects, no environment proxies' auth."""
    return {
        "verify": ssl_context(tls),
        "follow_redirects": False,
        "trust_env": False,
        "timeout": httpx.Timeout(30.0),
    }


def request_kwargs(fetch: Fetch) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "method": fetch.method,
        "url": fetch.url,
        "headers": dict(fetch.headers),
        "content": fetch.body or None,
        "timeout": fetch.timeout,
    }
    if fetch.tls is not None and fetch.tls.server_name:
        # kubeconfig tls-server-name: the name sent in SNI and checked against the certificate.
        kwargs["extensions"] = {"sni_hostname": fetch.tls.server_name}
    return kwargs


def too_large(fetch: Fetch, now: float | None = None) -> BackendUnavailable:
    return BackendUnavailable(
        f"response from {_safe_url(fetch.url)} exceeds {fetch.max_bytes} bytes",
        url=fetch.url,
        time=now,
    )


def transport_error(fetch: Fetch, exc: Exception, now: float | None = None) -> BackendUnavailable:
    """Go's ``*url.Error`` text (``Post "<url>": <reason>``), stamped with the clock ``now``."""
    cause = _cause(exc, (ConnectionResetError, ssl.SSLCertVerificationError))
    if isinstance(exc, httpx.TimeoutException):
        kind = "timed out"
    elif isinstance(cause, ConnectionResetError):
        # The one transport failure client-go's webhook backoff retries (apimachinery
        # net.IsConnectionReset: ECONNRESET); Go's text, which kubeapi.is_retriable looks for.
        kind = CONNECTION_RESET
    elif isinstance(cause, ssl.SSLCertVerificationError):
        # Go: "tls: failed to verify certificate: x509: ..."; OpenSSL's reason follows.
        reason = cause.verify_message or "certificate verify failed"
        kind = f"tls: failed to verify certificate: {reason}"
    else:
        kind = type(exc).__name__
    op = fetch.method[:1].upper() + fetch.method[1:].lower()  # Go: urlErrorOp
    return BackendUnavailable(f'{op} "{_safe_url(fetch.url)}": {kind}', url=fetch.url, time=now)


CONNECTION_RESET = "connection reset by peer"


def _cause(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> BaseException | None:
    # httpx wraps httpcore's error, which wraps the OSError (``raise ... from``): walk the chain.
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, kinds):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


def _safe_url(url: str) -> str:
    # Drop any userinfo a configured URL might carry; never echo a password.
    try:
        u = httpx.URL(url)
    except Exception:  # pragma: no cover - defensive: the URL came from configuration
        return "<invalid url>"
    return str(u.copy_with(username=None, password=None)) if u.userinfo else url


def fetched(status: int, headers: Mapping[str, str], body: bytes, now: float) -> Fetched:
    return Fetched(status, {k.lower(): v for k, v in headers.items()}, body, now)


def make_context(clock: Callable[[], float], audiences: tuple[str, ...] | None) -> Context:
    return Context(now=clock(), audiences=audiences)


def token_view(token: str) -> RequestView:
    return RequestView(headers=Headers((("authorization", "Bearer " + token),)))
