"""A uvicorn HTTP/1.1 protocol that hands the ASGI app the TLS ``client_cert_chain``.

uvicorn does not fill the ASGI ``tls`` extension; this subclass of its h11 protocol does, once
per connection, from the stdlib ``ssl`` object: the leaf only on Python 3.11/3.12
(``getpeercert(binary_form=True)``), the whole presented chain on 3.13+
(``get_unverified_chain()``). Run it with::

    uvicorn.run(app, http=TLSExtensionH11Protocol, ssl_certfile=..., ssl_keyfile=...,
                ssl_ca_certs="client-ca.pem", ssl_cert_reqs=ssl.CERT_OPTIONAL)

With the stdlib, ``CERT_OPTIONAL`` still *verifies* a certificate the client sends: an untrusted
one aborts the handshake, so that client never reaches token authentication (docs/peercert.md).
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

from uvicorn.protocols.http.h11_impl import H11Protocol

from ._convert import peer_chain_der

__all__ = ["TLSExtensionH11Protocol", "tls_extension"]

_Scope = MutableMapping[str, Any]
_App = Callable[[_Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Any]

_TLS_VERSIONS: Final = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def tls_extension(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> dict[str, Any]:
    """The ASGI ``tls`` extension dict for a finished handshake."""
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(d) for d in peer_chain_der(ssl_object)],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
    }


class TLSExtensionH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus ``scope["extensions"]["tls"]`` on HTTP and WebSocket scopes."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            # The handshake is complete when asyncio calls connection_made; the chain cannot
            # change for this connection (TLS 1.3 has no renegotiation), so read it once.
            tls = tls_extension(ssl_object)
            self.app = _with_tls(self.app, tls)
            if self.ws_protocol_class is not None:
                self.ws_protocol_class = _ws_with_tls(self.ws_protocol_class, tls)


def _ws_with_tls(base: Any, tls: dict[str, Any]) -> Any:
    # uvicorn builds the WebSocket protocol on upgrade with the config's app: wrap it too.
    def make(**kwargs: Any) -> Any:
        protocol = base(**kwargs)
        protocol.app = _with_tls(protocol.app, tls)
        return protocol

    return make


def _with_tls(app: _App, tls: dict[str, Any]) -> _App:
    async def app_with_tls(scope: _Scope, receive: Any, send: Any) -> Any:
        if scope.get("type") in ("http", "websocket"):
            extensions = dict(scope.get("extensions") or {})
            extensions["tls"] = tls
            scope["extensions"] = extensions
        return await app(scope, receive, send)

    return app_with_tls
