"""Certificates and DER surgery shared by the X.509 and request-header tests."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from tests._pki import NOW, Cert

NOW_TS = NOW.timestamp()
HOUR = dt.timedelta(hours=1)


def chain(*certs: Cert) -> tuple[bytes, ...]:
    """The DER chain a TLS client would present."""
    return tuple(c.der for c in certs)


def _len(n: int) -> bytes:
    if n < 128:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _tlv(buf: bytes, pos: int) -> tuple[int, int]:
    """Content start and end of the DER element at ``pos``."""
    length, p = buf[pos + 1], pos + 2
    if length & 0x80:
        k = length & 0x7F
        length, p = int.from_bytes(buf[p : p + k], "big"), p + k
    return p, p + length


def retag_and_resign(cert: Cert, issuer: Cert, marker: bytes, new_tag: int) -> bytes:
    """DER of ``cert`` with the ASN.1 tag of the string ``marker`` changed, re-signed."""
    der = cert.der
    start, _ = _tlv(der, 0)
    _, tbs_end = _tlv(der, start)
    tbs = bytearray(der[start:tbs_end])
    at = tbs.index(marker)
    tbs[at - 2] = new_tag
    _, alg_end = _tlv(der, tbs_end)
    signature = issuer.key.sign(bytes(tbs), ec.ECDSA(hashes.SHA256()))
    bits = b"\x03" + _len(len(signature) + 1) + b"\x00" + signature
    body = bytes(tbs) + der[tbs_end:alg_end] + bits
    out = b"\x30" + _len(len(body)) + body
    x509.load_der_x509_certificate(out)  # still a well-formed certificate
    return out


def test_retagged_certificate_keeps_a_valid_signature() -> None:
    """The DER surgery helper produces a certificate its issuer's key still verifies."""
    from tests._pki import name

    root = Cert.new_ca("surgery-root")
    leaf = root.issue(name("alice", uids=["MARK"]))
    out = x509.load_der_x509_certificate(retag_and_resign(leaf, root, b"MARK", 0x04))
    out.verify_directly_issued_by(root.cert)
    assert out.public_bytes(Encoding.DER) != leaf.der
