"""The server's ``SSL.Context``: kube-apiserver's handshake policy, and reloading its files.

kube-apiserver *requests* a client certificate and verifies it later, in the X.509 and
request-header authenticators (Go ``tls.RequestClientCert``), so a bad certificate is an HTTP 401
rather than a failed handshake. Here: a verify callback that accepts everything, the subjects of
the client CA bundles in the CertificateRequest (Go clients only send a certificate one of them
issued), TLS 1.2 minimum, ALPN ``http/1.1``, and no session resumption.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL, crypto

from ..config._load import ReloadingFile
from ..exceptions import ConfigError

__all__ = ["ServerCertificates", "StaticCertificates", "build_context"]

log = logging.getLogger("k8sauthn.server")


def _accept_any(
    _conn: SSL.Connection, _cert: crypto.X509, _errno: int, _depth: int, _ok: int
) -> bool:
    # The handshake only *collects* the client's certificates; the X.509 and request-header
    # authenticators verify them per request (kube-apiserver: tls.RequestClientCert).
    return True


def _select_http1(_conn: SSL.Connection, offered: list[bytes]) -> bytes:
    # uvicorn's h11 protocol speaks HTTP/1.1 only; Go clients offer h2 first and fall back.
    if b"http/1.1" in offered:
        return b"http/1.1"
    no_overlap: bytes = SSL.NO_OVERLAPPING_PROTOCOLS  # type: ignore[assignment]
    return no_overlap


def _load_certs(data: bytes, what: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigError(f"{what}: no valid PEM certificate found") from None
    return certs


def build_context(
    cert_chain_pem: bytes, key_pem: bytes, client_ca_pems: Sequence[bytes] = ()
) -> SSL.Context:
    """An ``SSL.Context`` that serves ``cert_chain_pem`` and requests (never verifies) a client
    certificate, listing the subjects of ``client_ca_pems`` in its CertificateRequest."""
    certs = _load_certs(cert_chain_pem, "serving certificate")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise ConfigError("serving key: not a valid unencrypted PEM private key") from None
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)  # kube-apiserver's default minimum
    ctx.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_CIPHER_SERVER_PREFERENCE)
    ctx.set_options(getattr(SSL, "OP_NO_RENEGOTIATION", 0))
    # pyOpenSSL takes cryptography objects (its own X509/PKey are deprecated); the
    # types-pyOpenSSL stubs predate that, hence the ignores.
    try:
        ctx.use_certificate(certs[0])  # type: ignore[arg-type]
        for extra in certs[1:]:
            ctx.add_extra_chain_cert(extra)  # type: ignore[arg-type]
        ctx.use_privatekey(key)  # type: ignore[arg-type]
        ctx.check_privatekey()
    except SSL.Error:
        raise ConfigError("serving certificate and key do not match") from None
    ctx.set_verify(SSL.VERIFY_PEER, _accept_any)
    seen: set[bytes] = set()
    for i, pem in enumerate(client_ca_pems):
        for ca in _load_certs(pem, f"client CA bundle {i}"):
            subject = ca.subject.public_bytes()
            if subject not in seen:
                seen.add(subject)
                ctx.add_client_ca(ca)
    # A verifying OpenSSL server needs a session id context, or a resumed session fails with
    # internal_error. Resumption itself is off: a resumed session would lose the intermediates
    # the client sent in the full handshake (OpenSSL keeps only the leaf in the session).
    ctx.set_session_id(b"k8sauthn")
    ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    ctx.set_options(SSL.OP_NO_TICKET)
    ctx.set_alpn_select_callback(_select_http1)
    return ctx


class ServerCertificates:
    """The serving certificate, its key and the client CA bundles, followed on disk.

    ``context()`` returns the current ``SSL.Context``; when one of the files changed (checked at
    most every ``interval`` seconds) it is rebuilt, and if the new files do not make a valid
    context the previous one stays in force (kube-apiserver reloads serving certificates and
    client CAs the same way).
    """

    def __init__(
        self,
        cert_file: str | os.PathLike[str],
        key_file: str | os.PathLike[str],
        client_ca_files: Sequence[str | os.PathLike[str]] = (),
        *,
        interval: float = 60.0,
    ) -> None:
        def raw(data: bytes) -> bytes:
            return data

        self._files = [
            ReloadingFile(cert_file, raw, interval=interval, what="tls-cert-file"),
            ReloadingFile(key_file, raw, interval=interval, what="tls-private-key-file"),
            *(
                ReloadingFile(f, raw, interval=interval, what="client CA file")
                for f in client_ca_files
            ),
        ]
        self._values = tuple(f.value for f in self._files)
        self._context = build_context(self._values[0], self._values[1], self._values[2:])

    @classmethod
    def from_pem(
        cls, cert_chain_pem: bytes, key_pem: bytes, client_ca_pems: Sequence[bytes] = ()
    ) -> StaticCertificates:
        """Fixed in-memory material (tests, a generated self-signed certificate)."""
        return StaticCertificates(build_context(cert_chain_pem, key_pem, client_ca_pems))

    def context(self) -> SSL.Context:
        values = tuple(f.value for f in self._files)
        if any(a is not b for a, b in zip(values, self._values, strict=True)):
            self._values = values
            try:
                self._context = build_context(values[0], values[1], values[2:])
                log.info("reloaded the serving certificate and client CA bundles")
            except ConfigError as exc:
                log.warning("keeping the previous TLS configuration: %s", exc)
        return self._context


@attrs.frozen
class StaticCertificates:
    _context: SSL.Context

    def context(self) -> SSL.Context:
        return self._context
