"""X.509 client certificates (``--client-ca-file``, spec §9).

The TLS layer hands over the chain the client presented (``RequestView.peer_chain``, DER, leaf
first, not verified). :class:`ClientCertAuthenticator` verifies it against the CA bundle at the
request's time and maps the leaf to a user with :func:`common_name_user` (spec §9.3).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Final, Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from .._flow import Flow, pure
from .._types import CREDENTIAL_ID_KEY, Context, RequestView, Response, UserInfo
from ..config._load import ReloadingFile
from ..exceptions import AuthenticationError
from ._trust import CABundle, Fixed, Revocation, Source
from ._verify import ChainVerifier, VerificationFailed, certificate_identifier

__all__ = [
    "UID_OID",
    "CABundle",
    "CertificateRejected",
    "ClientCertAuthenticator",
    "Fixed",
    "Revocation",
    "UserConversion",
    "common_name_user",
    "revocation_source",
]

#: Subject attribute carrying the user's UID (gate ``AllowParsingUserUIDFromCertAuth``, on).
UID_OID: Final = x509.ObjectIdentifier("1.3.6.1.4.1.57683.2")
# Go's x509 parser turns only these ASN.1 string types into strings (cryptography decodes a few
# more, e.g. OCTET STRING, into str: such a value is "not a string" for Kubernetes).
_CN: Final = x509.NameOID.COMMON_NAME
_O: Final = x509.NameOID.ORGANIZATION_NAME
_SHA256: Final = hashes.SHA256()
_STRING_TYPES: Final = frozenset(
    {"UTF8String", "PrintableString", "IA5String", "T61String", "BMPString", "NumericString"}
)

UserConversion = Callable[[list[x509.Certificate]], Response | None]


class CertificateRejected(AuthenticationError):
    """A presented certificate chain did not verify; ``reason`` is Go's x509 error text."""

    def __init__(self, message: str, *, reason: str, detail: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.detail = detail


def _uid(uids: list[x509.NameAttribute[str | bytes]]) -> str:
    values: list[str] = []
    for attr in uids:
        kind = getattr(attr, "_type", None)  # cryptography keeps the ASN.1 tag here
        if not isinstance(attr.value, str) or getattr(kind, "name", "UTF8String") not in (
            _STRING_TYPES
        ):
            raise AuthenticationError("unable to parse UID into a string")
        values.append(attr.value)
    if not values:
        return ""
    if len(values) != 1:
        raise AuthenticationError(f"expected 1 UID, but found multiple: [{' '.join(values)}]")
    if not values[0]:
        raise AuthenticationError("UID cannot be an empty string")
    return values[0]


def common_name_user(chain: list[x509.Certificate], *, parse_uid: bool = True) -> Response | None:
    """Kubernetes' ``CommonNameUserConversion``: last CN is the name, O attributes the groups.

    A leaf without CN has no opinion. The UID comes from subject attribute
    1.3.6.1.4.1.57683.2 (exactly one, non-empty, a string). ``extra`` carries the credential id
    ``X509SHA256=<hex of the leaf DER's SHA-256>``.
    """
    leaf = chain[0]
    name = ""
    groups: list[str] = []
    uids: list[x509.NameAttribute[str | bytes]] = []
    for attr in leaf.subject:  # one pass: every access to .subject parses the Name again
        oid = attr.oid
        if oid == _CN:
            name = attr.value if isinstance(attr.value, str) else name  # Go: the last CN
        elif oid == _O:
            groups.append(str(attr.value))
        elif oid == UID_OID:
            uids.append(attr)
    if not name:
        return None
    uid = _uid(uids) if parse_uid else ""
    credential_id = "X509SHA256=" + leaf.fingerprint(_SHA256).hex()
    return Response(UserInfo(name, uid, groups, {CREDENTIAL_ID_KEY: (credential_id,)}))


def _no_uid(chain: list[x509.Certificate]) -> Response | None:
    return common_name_user(chain, parse_uid=False)


class ClientCertAuthenticator:
    """Authenticates the TLS client certificate chain (spec §9.2).

    * no peer certificate, or no CA bundle in force: no opinion (``None``);
    * a chain that does not verify: :class:`CertificateRejected`, whose text is
      ``verifying certificate SN=..., SKID=..., AKID=... failed: <x509 error>``;
    * a verified chain: the conversion's answer (no opinion for a leaf without CN).

    Build one with :meth:`from_ca_file`, :meth:`from_pem` or :meth:`from_source`.
    """

    def __init__(self, verifier: ChainVerifier[Response | None]) -> None:
        self._verifier = verifier

    @classmethod
    def from_source(
        cls,
        ca: Source[CABundle | None],
        *,
        revocation: Source[Revocation] | None = None,
        convert: UserConversion | None = None,
        parse_uid: bool = True,
        cache_size: int = 4096,
        observe_expiry: Callable[[float], None] | None = None,
    ) -> Self:
        """From any source of CA bundles (fixed, reloading, a ConfigMap ...)."""
        conv = convert or (common_name_user if parse_uid else _no_uid)
        return cls(
            ChainVerifier(
                ca,
                conv,
                revocation=revocation,
                cache_size=cache_size,
                observe_expiry=observe_expiry,
            )
        )

    @classmethod
    def from_pem(
        cls, data: bytes, *, revocation: Revocation | None = None, parse_uid: bool = True
    ) -> Self:
        """From a PEM CA bundle held in memory (every ``CERTIFICATE`` block is trusted)."""
        rev = Fixed(revocation) if revocation is not None else None
        return cls.from_source(
            Fixed(CABundle.from_pem(data, name="client-ca-bundle")),
            revocation=rev,
            parse_uid=parse_uid,
        )

    @classmethod
    def from_ca_file(
        cls,
        path: str | os.PathLike[str],
        *,
        reload_interval: float = 60.0,
        crl_file: str | os.PathLike[str] | None = None,
        denied: Revocation | None = None,
        parse_uid: bool = True,
        on_reload_error: Callable[[Exception], None] | None = None,
        observe_expiry: Callable[[float], None] | None = None,
    ) -> Self:
        """From ``--client-ca-file``; the file (and ``crl_file``) are re-read when they change.

        A changed file that does not parse leaves the previous bundle in force (spec §9.5);
        ``on_reload_error`` hears about it. A bad file at construction is a ``ConfigError``.
        ``observe_expiry`` gets each leaf's remaining lifetime in seconds (spec §9.6).
        """
        name = f"client-ca-bundle::{os.fspath(path)}"
        ca = ReloadingFile(
            path,
            lambda data: CABundle.from_pem(data, name=name),
            interval=reload_interval,
            what="client CA file",
            on_error=on_reload_error,
        )
        return cls.from_source(
            ca,
            revocation=revocation_source(crl_file, denied, reload_interval, on_reload_error),
            parse_uid=parse_uid,
            observe_expiry=observe_expiry,
        )

    def request_flow(self, request: RequestView, ctx: Context, /) -> Flow[Response | None]:
        return pure(self.authenticate(request.peer_chain, ctx.now))

    def request_step(self, request: RequestView, ctx: Context, /) -> Response | None:
        """The synchronous step (:mod:`k8sauthn.chain._step`): no effect is ever needed."""
        peer_chain = request.peer_chain
        if not peer_chain:  # the common case in a chain: no client certificate
            return None
        return self.authenticate(peer_chain, ctx.now)

    def authenticate(self, peer_chain: tuple[bytes, ...], now: float) -> Response | None:
        """The synchronous core of :meth:`request_flow` (no effects are ever needed)."""
        if not peer_chain:
            return None
        bundle = self._verifier.current_bundle()
        if bundle is None or not bundle.certs:
            return None
        try:
            return self._verifier.verify(peer_chain, now, bundle)
        except VerificationFailed as exc:
            ident = (
                certificate_identifier(exc.leaf)
                if exc.leaf is not None
                else "SN=<nil>, SKID=, AKID="
            )
            raise CertificateRejected(
                f"verifying certificate {ident} failed: {exc.reason}",
                reason=exc.reason,
                detail=exc.detail,
            ) from None


def revocation_source(
    crl_file: str | os.PathLike[str] | None,
    denied: Revocation | None,
    reload_interval: float,
    on_error: Callable[[Exception], None] | None = None,
) -> Source[Revocation] | None:
    """Revocation data from an optional (reloading) CRL file plus an optional deny-list."""
    if crl_file is None:
        return Fixed(denied) if denied is not None else None
    base = denied or Revocation()
    name = os.fspath(crl_file)
    return ReloadingFile(
        crl_file,
        lambda data: base.with_crls(Revocation.from_crl(data, name=name).crls),
        interval=reload_interval,
        what="CRL file",
        on_error=on_error,
    )
