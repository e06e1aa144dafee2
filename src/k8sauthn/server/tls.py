"""TLS the way kube-apiserver does it, under uvicorn's HTTP/1.1 protocol.

kube-apiserver *requests* a client certificate and verifies it later, in its X.509 and
request-header authenticators (Go ``tls.RequestClientCert``). A bad certificate therefore gets an
HTTP 401, not a failed handshake. Python's :mod:`ssl` cannot defer the decision (``CERT_OPTIONAL``
aborts the handshake on an untrusted certificate, and before 3.13 it exposes only the leaf), so
this module runs the handshake with pyOpenSSL over memory BIOs: a verify callback that accepts
everything, and ``get_peer_cert_chain()`` for the intermediates the client sent.

The pieces, each small:

* :class:`ServerCertificates` loads the serving certificate, its key and the client CA bundles
  (whose subjects go into the CertificateRequest, as kube-apiserver sends them), and rebuilds the
  ``SSL.Context`` when one of those files changes (a broken new file keeps the old context).
* :class:`TLSServerProtocol` is an :class:`asyncio.Protocol` on the TCP socket that decrypts into
  an inner protocol through a plaintext transport; the inner protocol is uvicorn's h11 protocol,
  unchanged except that it hands the ASGI app the ASGI ``tls`` extension
  (``scope["extensions"]["tls"]["client_cert_chain"]``: PEM strings, leaf first).
* :func:`serve` / :func:`serve_async` run any ASGI app this way with a :class:`uvicorn.Server`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Final

from ._context import ServerCertificates, StaticCertificates, build_context
from ._protocol import HANDSHAKE_TIMEOUT, TLSServerProtocol, peer_chain_der, tls_extension

__all__ = [
    "HANDSHAKE_TIMEOUT",
    "MAX_HEADER_BYTES",
    "ServerCertificates",
    "TLSServerProtocol",
    "bind",
    "build_context",
    "make_server",
    "peer_chain_der",
    "serve",
    "serve_async",
    "tls_extension",
]

log = logging.getLogger("k8sauthn.server")

#: Go's ``http.DefaultMaxHeaderBytes``: a 32 KiB bearer token must reach the authenticator (401),
#: not be refused by the HTTP parser (h11's default limit is 16 KiB).
MAX_HEADER_BYTES: Final = 1 << 20

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# -- uvicorn integration ----------------------------------------------------------------------
def _with_tls_extension(app: ASGIApp, ext: dict[str, Any]) -> ASGIApp:
    async def with_tls(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope["extensions"] = {**(scope.get("extensions") or {}), "tls": ext}
        await app(scope, receive, send)

    return with_tls


def _h11_protocol_class() -> type[asyncio.Protocol]:
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class PeerChainH11Protocol(H11Protocol):
        """uvicorn's h11 protocol, handing the app the ASGI ``tls`` extension."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            ext = transport.get_extra_info("k8sauthn.tls_extension")
            if ext is not None:
                self.app = _with_tls_extension(self.app, ext)

        def handle_websocket_upgrade(self, event: Any) -> None:
            super().handle_websocket_upgrade(event)
            upgraded = self.transport.get_protocol()
            if upgraded is not self and hasattr(upgraded, "app"):
                upgraded.app = self.app

    return PeerChainH11Protocol


def _protocol_factory(certs: ServerCertificates | StaticCertificates) -> Callable[..., Any]:
    h11_class = _h11_protocol_class()

    def factory(**kwargs: Any) -> TLSServerProtocol:
        return TLSServerProtocol(certs.context(), functools.partial(h11_class, **kwargs))

    return factory


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket; ``port`` 0 lets the OS choose (read it from ``getsockname``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def make_server(
    app: ASGIApp,
    certs: ServerCertificates | StaticCertificates,
    *,
    log_level: str = "warning",
    **uvicorn_options: Any,
) -> Any:
    """A :class:`uvicorn.Server` that serves ``app`` over kube-apiserver-style TLS."""
    import uvicorn

    config = uvicorn.Config(
        app,
        http=_protocol_factory(certs),  # type: ignore[arg-type]
        lifespan=uvicorn_options.pop("lifespan", "auto"),
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        log_level=log_level,
        access_log=False,  # the reference app writes its own structured access log
        server_header=False,
        proxy_headers=False,  # never trust X-Forwarded-* from the network
        **uvicorn_options,
    )
    return uvicorn.Server(config)


async def serve_async(
    app: ASGIApp,
    certs: ServerCertificates | StaticCertificates,
    *,
    sock: socket.socket | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    on_ready: Callable[[tuple[str, int]], None] | None = None,
    **uvicorn_options: Any,
) -> None:
    """Serve ``app`` until the server is asked to stop (uvicorn's signal handling)."""
    sock = sock or bind(host, port)
    server = make_server(app, certs, **uvicorn_options)
    if on_ready is not None:
        address = sock.getsockname()[:2]

        async def announce() -> None:
            while not server.started and not server.should_exit:
                await asyncio.sleep(0.01)
            if server.started:
                on_ready(address)

        task = asyncio.ensure_future(announce())
    await server.serve(sockets=[sock])
    if on_ready is not None:
        task.cancel()


def serve(
    app: ASGIApp,
    *,
    cert_file: str,
    key_file: str,
    client_ca_files: Sequence[str] = (),
    host: str = "127.0.0.1",
    port: int = 6443,
    **uvicorn_options: Any,
) -> None:
    """Run any ASGI app (for example one wrapped in k8sauthn's middleware) behind this TLS layer.

    The app finds the client's certificates in ``scope["extensions"]["tls"]["client_cert_chain"]``.
    Blocks until interrupted.
    """
    certs = ServerCertificates(cert_file, key_file, client_ca_files)
    asyncio.run(serve_async(app, certs, host=host, port=port, **uvicorn_options))
