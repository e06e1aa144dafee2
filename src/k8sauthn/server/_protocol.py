"""Server-side TLS over memory BIOs (pyOpenSSL), feeding plaintext to any asyncio protocol.

Python's :mod:`ssl` cannot defer certificate verification to the application (``CERT_OPTIONAL``
aborts the handshake on an untrusted certificate) and, before 3.13, exposes only the peer's leaf.
pyOpenSSL with memory BIOs can: the handshake collects whatever the client sends, and
``get_peer_cert_chain()`` returns the intermediates too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL, crypto

__all__ = [
    "HANDSHAKE_TIMEOUT",
    "PEER_CHAIN_DER_KEY",
    "TLSServerProtocol",
    "peer_chain_der",
    "tls_extension",
]

log = logging.getLogger("k8sauthn.server")

#: The key of the DER client chain inside the ASGI ``tls`` extension this layer builds.
PEER_CHAIN_DER_KEY: Final = "k8sauthn.client_cert_chain_der"
#: A client that has not finished its handshake by then is dropped (bounded waits everywhere).
HANDSHAKE_TIMEOUT: Final = 10.0
_READ_CHUNK: Final = 256 * 1024


def peer_chain_der(conn: SSL.Connection) -> tuple[bytes, ...]:
    """The certificates the client sent, DER, leaf first (empty without a client certificate)."""
    leaf = conn.get_peer_certificate()
    if leaf is None:
        return ()
    out = [crypto.dump_certificate(crypto.FILETYPE_ASN1, leaf)]
    # On a server, OpenSSL's peer chain normally omits the leaf; tolerate either shape.
    for cert in conn.get_peer_cert_chain() or ():
        der = crypto.dump_certificate(crypto.FILETYPE_ASN1, cert)
        if der != out[0] or len(out) > 1:
            out.append(der)
    return tuple(out)


def tls_extension(conn: SSL.Connection, chain: Sequence[bytes]) -> dict[str, Any]:
    """The ASGI TLS extension for a finished handshake (asgiref ``specs/tls.rst``)."""
    certs = [x509.load_der_x509_certificate(d) for d in chain]
    pem = serialization.Encoding.PEM
    own = conn.get_certificate()
    return {
        "server_cert": crypto.dump_certificate(crypto.FILETYPE_PEM, own).decode() if own else None,
        "client_cert_chain": [c.public_bytes(pem).decode("ascii") for c in certs],
        "client_cert_name": certs[0].subject.rfc4514_string() if certs else None,
        # Deliberately unverified here: the authenticators decide (see the module docstring).
        "client_cert_error": None,
        "tls_version": conn.get_protocol_version(),
        "cipher_suite": None,
        # The DER chain as the handshake produced it: the reference app reads it directly
        # rather than decoding the PEM strings above again on every connection.
        PEER_CHAIN_DER_KEY: tuple(chain),
    }


class _TLSTransport(asyncio.Transport):
    """What the HTTP protocol writes to: plaintext in and out of one TLS connection."""

    def __init__(self, owner: TLSServerProtocol, extra: dict[str, Any]) -> None:
        super().__init__(extra)
        self._owner = owner
        self._protocol: asyncio.BaseProtocol | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._owner.send_plaintext(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self._owner.send_plaintext(b"".join(list_of_data))

    def close(self) -> None:
        self._owner.close_tls()

    def abort(self) -> None:
        self._owner.abort()

    def is_closing(self) -> bool:
        return self._owner.closing

    def can_write_eof(self) -> bool:
        return False

    def pause_reading(self) -> None:
        self._owner.raw.pause_reading()

    def resume_reading(self) -> None:
        self._owner.raw.resume_reading()

    def is_reading(self) -> bool:
        return self._owner.raw.is_reading()

    def get_write_buffer_size(self) -> int:
        return self._owner.raw.get_write_buffer_size()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._owner.raw.set_write_buffer_limits(high, low)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol  # uvicorn swaps in its WebSocket protocol on upgrade

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol


class TLSServerProtocol(asyncio.Protocol):
    """Server-side TLS over memory BIOs, feeding plaintext to an inner protocol.

    The inner protocol is created (and gets ``connection_made``) only once the handshake is
    complete, so it can read the peer chain from ``get_extra_info("k8sauthn.peer_chain")``.
    """

    def __init__(
        self,
        context: SSL.Context,
        make_inner: Callable[[], asyncio.Protocol],
        *,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        self._context = context
        self._make_inner = make_inner
        self._handshake_timeout = handshake_timeout
        self._conn: SSL.Connection | None = None
        self._inner: _TLSTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.closing = False
        self.raw: asyncio.Transport = None  # type: ignore[assignment]

    # -- socket side --------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.raw = transport
        self._conn = SSL.Connection(self._context, None)
        self._conn.set_accept_state()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._handshake_timeout, self._handshake_timed_out)

    def data_received(self, data: bytes) -> None:
        conn = self._conn
        if conn is None or self.closing:
            return
        conn.bio_write(data)
        if self._inner is None and not self._handshake():
            return
        self._pump_plaintext()

    def eof_received(self) -> bool | None:
        if self._conn is not None:
            self._conn.bio_shutdown()
            if self._inner is not None:
                self._pump_plaintext()
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        if self._timer is not None:
            self._timer.cancel()
        if self._inner is not None:
            self._inner.get_protocol().connection_lost(exc)
        self._conn = None

    def pause_writing(self) -> None:
        if self._inner is not None:
            proto = self._inner.get_protocol()
            assert isinstance(proto, asyncio.Protocol)
            proto.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            proto = self._inner.get_protocol()
            assert isinstance(proto, asyncio.Protocol)
            proto.resume_writing()

    # -- TLS ----------------------------------------------------------------------------------
    def _handshake(self) -> bool:
        conn = self._conn
        assert conn is not None
        try:
            conn.do_handshake()
        except SSL.WantReadError:
            self._flush()
            return False
        except SSL.Error as exc:
            # A broken handshake (not a bad certificate: those are accepted and judged later).
            log.debug("TLS handshake failed: %s", exc)
            self._flush()  # the alert, if any
            self.closing = True
            self.raw.close()
            return False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._flush()
        chain = peer_chain_der(conn)
        extra = {
            "peername": self.raw.get_extra_info("peername"),
            "sockname": self.raw.get_extra_info("sockname"),
            "socket": self.raw.get_extra_info("socket"),
            "sslcontext": self._context,  # uvicorn: scheme "https"
            "ssl_object": conn,
            "k8sauthn.peer_chain": chain,
            "k8sauthn.tls_extension": tls_extension(conn, chain),
        }
        self._inner = _TLSTransport(self, extra)
        inner = self._make_inner()
        self._inner.set_protocol(inner)
        inner.connection_made(self._inner)
        return True

    def _pump_plaintext(self) -> None:
        conn, inner = self._conn, self._inner
        assert inner is not None
        while conn is not None and not self.closing:
            try:
                data = conn.recv(_READ_CHUNK)
            except SSL.WantReadError:
                break
            except SSL.ZeroReturnError:  # the client's close_notify
                self.close_tls()
                break
            except SSL.Error as exc:
                log.debug("TLS read failed: %s", exc)
                self.abort()
                break
            proto = inner.get_protocol()
            assert isinstance(proto, asyncio.Protocol)
            proto.data_received(data)
            conn = self._conn
        self._flush()

    def _flush(self) -> None:
        conn = self._conn
        if conn is None:
            return
        while True:
            try:
                data = conn.bio_read(_READ_CHUNK)
            except SSL.WantReadError:
                return
            if not data:
                return
            self.raw.write(data)

    def _handshake_timed_out(self) -> None:
        self._timer = None
        if self._inner is None:
            log.debug("TLS handshake timed out")
            self.abort()

    # -- called by the inner transport --------------------------------------------------------
    def send_plaintext(self, data: bytes) -> None:
        conn = self._conn
        if conn is None or self.closing or not data:
            return
        try:
            conn.sendall(data)
        except SSL.Error as exc:
            log.debug("TLS write failed: %s", exc)
            self.abort()
            return
        self._flush()

    def close_tls(self) -> None:
        if self.closing:
            return
        self.closing = True
        if self._conn is not None:
            with contextlib.suppress(SSL.Error):
                self._conn.shutdown()  # queue close_notify
            self._flush()
        self.raw.close()

    def abort(self) -> None:
        self.closing = True
        self.raw.abort()
