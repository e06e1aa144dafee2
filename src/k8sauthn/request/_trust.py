"""What a certificate verification trusts: a CA bundle and, beyond Kubernetes, revocation data.

Both are immutable values. A source hands out the current value (a fixed one, or a
:class:`~k8sauthn.config._load.ReloadingFile` that follows the file on disk); the verifier notices
a new value by identity and drops its cache.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, Generic, Protocol, TypeVar

import attrs
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import Store

from ._pem import parse_certificates, parse_crls

__all__ = ["NO_REVOCATION", "CABundle", "Fixed", "Revocation", "Source"]

T_co = TypeVar("T_co", covariant=True)
T = TypeVar("T")


class Source(Protocol[T_co]):
    """Anything with a current ``value``: :class:`Fixed`, or a ``ReloadingFile``."""

    @property
    def value(self) -> T_co: ...


@attrs.frozen
class Fixed(Generic[T]):
    """A source whose value never changes."""

    value: T


@attrs.frozen(eq=False)
class CABundle:
    """Trust anchors parsed from a PEM bundle (``--client-ca-file``), with a ready ``Store``."""

    certs: tuple[x509.Certificate, ...]
    store: Store = attrs.field(init=False, repr=False)
    #: Some certificate carries an EKU without clientAuth/any (EKU nesting must be checked).
    restricts_client_auth: bool = attrs.field(init=False, repr=False)
    #: Some certificate has a keyUsage without keyCertSign (it must not act as an issuer).
    restricts_signing: bool = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "store", Store(list(self.certs)))
        object.__setattr__(
            self, "restricts_client_auth", any(_restricts_client_auth(c) for c in self.certs)
        )
        object.__setattr__(
            self, "restricts_signing", any(_restricts_signing(c) for c in self.certs)
        )

    @classmethod
    def from_pem(cls, data: bytes, *, name: str = "") -> CABundle:
        """Every ``CERTIFICATE`` block of ``data`` (spec §9.5); ConfigError if there is none."""
        return cls(parse_certificates(data, name=name))

    def pem(self) -> bytes:
        """The bundle as PEM again (for the ConfigMap format and the overlap check)."""
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.certs)


@attrs.frozen(eq=False)
class Revocation:
    """Revoked certificates: CRLs and a deny-list of serial numbers per issuer.

    Kubernetes has no revocation at all (spec §9.4); revoking a leaked client certificate there
    means rotating the CA. A CRL counts only when its signature verifies against the issuer found
    in the verified chain; its ``nextUpdate`` is ignored on purpose, because a stale CRL still
    lists certificates that must stay revoked.
    """

    crls: tuple[x509.CertificateRevocationList, ...] = ()
    #: issuer Name (DER) -> revoked serial numbers.
    denied: Mapping[bytes, frozenset[int]] = attrs.field(factory=dict)

    @classmethod
    def from_crl(cls, data: bytes, *, name: str = "") -> Revocation:
        """CRLs from a PEM file (``X509 CRL`` blocks) or one DER CRL."""
        return cls(crls=parse_crls(data, name=name))

    def deny(self, issuer: x509.Name, serials: Iterable[int]) -> Revocation:
        """A copy that also revokes ``serials`` issued by ``issuer``."""
        key = issuer.public_bytes()
        denied = dict(self.denied)
        denied[key] = denied.get(key, frozenset()) | frozenset(serials)
        return attrs.evolve(self, denied=denied)

    def with_crls(self, crls: Iterable[x509.CertificateRevocationList]) -> Revocation:
        """A copy with more CRLs."""
        return attrs.evolve(self, crls=(*self.crls, *crls))

    def revoked(self, chain: list[x509.Certificate]) -> x509.Certificate | None:
        """The first certificate of a verified chain (leaf first) that is revoked, if any."""
        if not self.crls and not self.denied:
            return None
        for i, cert in enumerate(chain):
            serials = self.denied.get(cert.issuer.public_bytes())
            if serials is not None and cert.serial_number in serials:
                return cert
            if i + 1 == len(chain):
                break  # a trust anchor: no issuer in the chain to check a CRL signature with
            issuer = chain[i + 1]
            for crl in self.crls:
                if crl.issuer != cert.issuer:
                    continue
                if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is None:
                    continue
                if _crl_signed_by(crl, issuer):
                    return cert
        return None


_CLIENT_USAGES: Final = frozenset(
    {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}
)


def _restricts_client_auth(cert: x509.Certificate) -> bool:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return bool(len(eku)) and not _CLIENT_USAGES.intersection(eku)


def _restricts_signing(cert: x509.Certificate) -> bool:
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return not ku.key_cert_sign


def _crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    try:
        return crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError, InvalidSignature):
        return False


NO_REVOCATION: Final = Revocation()
