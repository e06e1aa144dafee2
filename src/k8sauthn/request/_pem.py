"""PEM bundles as Kubernetes reads them: CA bundles (spec §9.5) and, beyond Kubernetes, CRLs.

Go's ``cert.ParseCertsPEM`` takes every ``CERTIFICATE`` block without headers, skips the other
blocks, fails on a certificate it cannot parse, and fails when no certificate was found.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

from cryptography import x509

from ..exceptions import ConfigError

__all__ = ["NO_CERTIFICATES", "go_quote", "parse_certificates", "parse_crls", "pem_blocks"]

#: The text Go's ``cert.ParseCertsPEM`` returns for a bundle without certificates.
NO_CERTIFICATES: Final = "data does not contain any valid RSA or ECDSA certificates"

_BLOCK = re.compile(
    rb"-----BEGIN (?P<type>[^-\r\n]*)-----\r?\n(?P<body>.*?)-----END (?P=type)-----", re.DOTALL
)


def pem_blocks(data: bytes) -> list[tuple[str, bytes]]:
    """Every well-formed PEM block as (type, DER); blocks with headers or bad base64 skipped."""
    out: list[tuple[str, bytes]] = []
    for m in _BLOCK.finditer(data):
        body = m.group("body")
        if b":" in body:  # RFC 1421 headers (Proc-Type: ...): Go skips such CERTIFICATE blocks
            continue
        try:
            der = base64.b64decode(b"".join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            continue
        out.append((m.group("type").decode("ascii", "replace"), der))
    return out


def parse_certificates(data: bytes, *, name: str = "") -> tuple[x509.Certificate, ...]:
    """The certificates of a PEM bundle, or ConfigError with Kubernetes' texts."""
    certs: list[x509.Certificate] = []
    for kind, der in pem_blocks(data):
        if kind != "CERTIFICATE":
            continue
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            raise ConfigError(_bundle_error(name, f"x509: malformed certificate ({exc})")) from None
    if not certs:
        raise ConfigError(_bundle_error(name, NO_CERTIFICATES))
    return tuple(certs)


def parse_crls(data: bytes, *, name: str = "") -> tuple[x509.CertificateRevocationList, ...]:
    """Every ``X509 CRL`` block of a PEM file, or a single DER CRL."""
    blocks = pem_blocks(data)
    ders = [der for kind, der in blocks if kind == "X509 CRL"] if blocks else [data]
    try:
        crls = tuple(x509.load_der_x509_crl(der) for der in ders)
    except ValueError as exc:
        raise ConfigError(f"error loading CRL {go_quote(name)}: {exc}") from None
    if not crls:
        raise ConfigError(f"error loading CRL {go_quote(name)}: no X509 CRL block found")
    return crls


def _bundle_error(name: str, detail: str) -> str:
    return f"error loading CA bundle for {go_quote(name)}: {detail}" if name else detail


def go_quote(text: str) -> str:
    """Go's ``%q`` for the printable strings we quote (file names, common names)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
