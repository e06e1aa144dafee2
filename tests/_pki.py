"""Certificates made by the tests, per session: nothing that can expire is committed.

``CA.new("root")`` makes a self-signed CA; ``ca.intermediate(...)`` a sub-CA; ``ca.issue(...)``
a leaf with any subject, validity and EKU. Every object can write itself as PEM to a directory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

UID_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57683.2")
NOW = dt.datetime.now(dt.UTC)
CLIENT_AUTH = (ExtendedKeyUsageOID.CLIENT_AUTH,)
SERVER_AUTH = (ExtendedKeyUsageOID.SERVER_AUTH,)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def name(cn: str | None = None, orgs: Sequence[str] = (), uids: Sequence[str] = ()) -> x509.Name:
    attrs_: list[x509.NameAttribute] = [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs
    ]
    attrs_ += [x509.NameAttribute(UID_OID, u) for u in uids]
    if cn is not None:
        attrs_.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs_)


@attrs.define
class Cert:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    chain: tuple[x509.Certificate, ...] = ()  # issuers above this one, nearest first

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def chain_pem(self) -> bytes:
        """Leaf followed by its intermediates (not the root), as a client sends it."""
        return self.pem + b"".join(
            c.public_bytes(serialization.Encoding.PEM) for c in self.chain[:-1]
        )

    def write(self, directory: Path, stem: str, *, with_chain: bool = False) -> tuple[Path, Path]:
        cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert_path.write_bytes(self.chain_pem() if with_chain else self.pem)
        key_path.write_bytes(self.key_pem)
        key_path.chmod(0o600)
        return cert_path, key_path

    # -- issuing (only meaningful on CAs) -----------------------------------------------------
    @classmethod
    def new_ca(cls, cn: str = "test-root-ca", *, key_usage: bool = True) -> Cert:
        key = _key()
        subject = name(cn)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
        )
        if key_usage:
            builder = builder.add_extension(_CA_KEY_USAGE, critical=True)
        return cls(builder.sign(key, hashes.SHA256()), key, ())

    def intermediate(self, cn: str = "test-intermediate-ca") -> Cert:
        return self.issue(name(cn), ca=True, eku=None, key_usage=_CA_KEY_USAGE, aki=True)

    def issue(
        self,
        subject: x509.Name | str,
        *,
        eku: Sequence[x509.ObjectIdentifier] | None = CLIENT_AUTH,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        ca: bool = False,
        key_usage: x509.KeyUsage | None = None,
        aki: bool = False,
        san_dns: Sequence[str] = (),
        san_ip: Sequence[str] = (),
        serial: int | None = None,
    ) -> Cert:
        if isinstance(subject, str):
            subject = name(subject)
        key = _key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(serial if serial is not None else x509.random_serial_number())
            .not_valid_before(not_before or NOW - dt.timedelta(hours=1))
            .not_valid_after(not_after or NOW + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
        )
        if eku is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
        if key_usage is not None:
            builder = builder.add_extension(key_usage, critical=True)
        if aki:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        if san_dns or san_ip:
            import ipaddress

            alt: list[x509.GeneralName] = [x509.DNSName(d) for d in san_dns]
            alt += [x509.IPAddress(ipaddress.ip_address(i)) for i in san_ip]
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        return Cert(builder.sign(self.key, hashes.SHA256()), key, (self.cert, *self.chain))

    def server(self, hostname: str = "localhost") -> Cert:
        """A TLS server certificate for 127.0.0.1 / localhost."""
        return self.issue(
            name(hostname),
            eku=SERVER_AUTH,
            san_dns=(hostname, "localhost"),
            san_ip=("127.0.0.1",),
            key_usage=_LEAF_KEY_USAGE,
            aki=True,  # Python 3.13 clients verify strictly (VERIFY_X509_STRICT) by default
        )


_CA_KEY_USAGE = x509.KeyUsage(
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
_LEAF_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=True,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)
