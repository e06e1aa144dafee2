"""Certificates for ``k8sauthn demo`` and for a serve without ``--tls-cert-file``.

ECDSA P-256 keys, SHA-256 signatures; the CA is a root with ``keyCertSign``; leaves carry the
extended key usage they are for (client certificates clientAuth, the server serverAuth with
localhost / 127.0.0.1 / ::1 in its SANs, as Go clients require).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["KeyPair", "new_ca", "self_signed_server"]


@attrs.frozen
class KeyPair:
    """A certificate and its private key (never in a repr)."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey = attrs.field(repr=False)
    chain: tuple[x509.Certificate, ...] = ()  # issuers sent after the certificate

    @property
    def cert_pem(self) -> bytes:
        """The certificate followed by ``chain``, as a server or client presents it."""
        pem = serialization.Encoding.PEM
        return b"".join(c.public_bytes(pem) for c in (self.cert, *self.chain))

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def issue(
        self,
        common_name: str,
        *,
        organizations: Sequence[str] = (),
        server: bool = False,
        hosts: Sequence[str] = (),
        days: int = 365,
    ) -> KeyPair:
        """A leaf signed by this CA: a client certificate, or with ``server`` a serving one."""
        key = ec.generate_private_key(ec.SECP256R1())
        attrs_ = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
        attrs_.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        eku = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = _base(x509.Name(attrs_), self.cert.subject, key, days).add_extension(
            x509.ExtendedKeyUsage([eku]), critical=False
        )
        builder = builder.add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=True
        ).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
            critical=False,
        )
        if hosts:
            builder = builder.add_extension(_sans(hosts), critical=False)
        return KeyPair(builder.sign(self.key, hashes.SHA256()), key)


def _base(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, days: int
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def _sans(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    return x509.SubjectAlternativeName(names)


def new_ca(common_name: str, *, days: int = 365) -> KeyPair:
    """A self-signed root CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        _base(name, name, key, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert, key)


def self_signed_server(hosts: Sequence[str] = ("localhost", "127.0.0.1", "::1")) -> KeyPair:
    """What kube-apiserver generates without ``--tls-cert-file``: a localhost certificate
    signed by a throw-away CA, which ``cert_pem`` appends so a client can pin it."""
    ca = new_ca("k8sauthn-self-signed-ca")
    leaf = ca.issue(hosts[0], server=True, hosts=hosts)
    return KeyPair(leaf.cert, leaf.key, chain=(ca.cert,))
