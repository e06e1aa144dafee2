"""Verify a presented client certificate chain the way Go's ``crypto/x509`` does (spec §9.4).

Path building and signatures are ``cryptography.x509.verification``'s; the policy around it is
Kubernetes': required EKU clientAuth (a leaf without EKU is good for anything; every CA in the
chain that carries an EKU must allow clientAuth or any), validity windows at the request's time,
untrusted intermediates taken from what the client sent, and a certificate that is itself in the
root pool verifies. The WebPKI defaults reject ordinary Kubernetes client certificates (no SAN, no
AKI, CAs without keyUsage), so the extension policies are spelled out here.

Errors carry Go's texts (``x509: certificate signed by unknown authority`` ...) because Kubernetes
puts them in its logs and TokenReview-like answers; the cryptography text is kept in ``detail``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Final, Generic, TypeVar

import attrs
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    VerificationError,
)

from ._pem import go_quote
from ._trust import _CLIENT_USAGES, NO_REVOCATION, CABundle, Revocation, Source

__all__ = [
    "ChainVerifier",
    "VerificationFailed",
    "certificate_identifier",
    "common_name",
    "parse_chain",
]

T = TypeVar("T")

UNKNOWN_AUTHORITY: Final = "x509: certificate signed by unknown authority"
INCOMPATIBLE_USAGE: Final = "x509: certificate specifies an incompatible key usage"
NOT_A_CA: Final = "x509: certificate is not authorized to sign other certificates"
CANNOT_SIGN: Final = (
    "x509: invalid signature: parent certificate cannot sign this kind of certificate"
)
UNHANDLED_CRITICAL: Final = "x509: unhandled critical extension"
MALFORMED: Final = "x509: malformed certificate"
UNSUPPORTED_ALGORITHM: Final = (
    "x509: certificate chain uses a key or signature algorithm k8sauthn does not accept"
)
SIGNATURE_CHECK_LIMIT: Final = (
    "x509: signature check attempts limit reached while verifying certificate chain"
)
_ALGORITHM_MARKERS: Final = ("Forbidden public key algorithm", "Forbidden signature", "too weak")
_EKU_MARKER: Final = "k8sauthn: CA does not allow clientAuth"
# Extensions Go's parser understands; any other critical one makes Verify fail.
_GO_HANDLED: Final = frozenset(
    x509.ObjectIdentifier(oid)
    for oid in (
        "2.5.29.14", "2.5.29.15", "2.5.29.17", "2.5.29.19", "2.5.29.30", "2.5.29.31",
        "2.5.29.32", "2.5.29.33", "2.5.29.35", "2.5.29.36", "2.5.29.37", "2.5.29.54",
        "1.3.6.1.5.5.7.1.1",
    )
)  # fmt: skip
#: Chains longer than this are not built (cryptography's default is 8; Go has no fixed limit).
MAX_CHAIN_DEPTH: Final = 16


class VerificationFailed(Exception):
    """A chain did not verify: ``reason`` is Go's text, ``leaf`` the parsed leaf (if any).

    ``detail`` keeps cryptography's own explanation, for logs.
    """

    def __init__(self, reason: str, leaf: x509.Certificate | None = None, detail: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.leaf = leaf
        self.detail = detail


def _ca_eku(_policy: Policy, _cert: x509.Certificate, eku: x509.ExtendedKeyUsage | None) -> None:
    # Go's checkChainForKeyUsage: a CA with an EKU extension must allow clientAuth or any. Done
    # inside path building so that, as in Go, another path can still be found.
    if eku is not None and len(eku) and not _CLIENT_USAGES.intersection(eku):
        raise ValueError(_EKU_MARKER)


def _ca_key_usage(_policy: Policy, _cert: x509.Certificate, ku: x509.KeyUsage | None) -> None:
    # Go's CheckSignatureFrom: an issuer whose keyUsage is present but lacks keyCertSign cannot
    # sign certificates (RFC 5280 4.2.1.3). Go ignores key usage only on the leaf.
    if ku is not None and not ku.key_cert_sign:
        raise ValueError("k8sauthn: CA keyUsage lacks keyCertSign")


_A = Criticality.AGNOSTIC
# The leaf: anything goes here; EKU and critical extensions are checked in Go's order below.
_EE_POLICY: Final = ExtensionPolicy.permit_all()
# CAs: basicConstraints cA=true is required (Go's CheckSignatureFrom for v3 issuers); keyUsage
# may be absent, but when present it must allow keyCertSign. The checking variant costs Python
# callbacks per CA, so it is used only when a CA could fail them: a presented intermediate, or a
# bundle certificate whose EKU excludes clientAuth or whose keyUsage excludes keyCertSign
# (CABundle.restricts_client_auth / restricts_signing).
_CA_POLICY: Final = ExtensionPolicy.permit_all().require_present(x509.BasicConstraints, _A, None)
_CA_POLICY_CHECKED: Final = _CA_POLICY.may_be_present(
    x509.ExtendedKeyUsage, _A, _ca_eku
).may_be_present(x509.KeyUsage, _A, _ca_key_usage)


def parse_chain(peer_chain: tuple[bytes, ...]) -> list[x509.Certificate]:
    """DER certificates as sent by the client; a garbage one is a :class:`VerificationFailed`."""
    certs: list[x509.Certificate] = []
    for der in peer_chain:
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            raise VerificationFailed(MALFORMED, certs[0] if certs else None, str(exc)) from None
    return certs


def chain_digest(peer_chain: tuple[bytes, ...]) -> bytes:
    """A digest of the whole presented chain (length-prefixed: no two chains collide)."""
    h = hashlib.sha256()
    for der in peer_chain:
        h.update(len(der).to_bytes(4, "big"))
        h.update(der)
    return h.digest()


def common_name(name: x509.Name) -> str:
    """Go's ``pkix.Name.CommonName``: the value of the *last* CN attribute, else ""."""
    cns = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    value = cns[-1].value if cns else ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _colon_hex(data: bytes | None) -> str:
    return ":".join(f"{b:02X}" for b in data) if data else ""


def certificate_identifier(cert: x509.Certificate) -> str:
    """``SN=<decimal>, SKID=<AA:BB>, AKID=<CC:DD>`` as Kubernetes logs a rejected certificate."""
    try:
        skid: bytes | None = cert.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value.digest
    except (x509.ExtensionNotFound, ValueError):
        skid = None
    try:
        akid = cert.extensions.get_extension_for_class(
            x509.AuthorityKeyIdentifier
        ).value.key_identifier
    except (x509.ExtensionNotFound, ValueError):
        akid = None
    return f"SN={cert.serial_number}, SKID={_colon_hex(skid)}, AKID={_colon_hex(akid)}"


def _rfc3339(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def validity_error(cert: x509.Certificate, now: float) -> str | None:
    """Go's expired / not-yet-valid text for ``cert`` at ``now``, or None when it is valid."""
    nb, na = cert.not_valid_before_utc, cert.not_valid_after_utc
    t = dt.datetime.fromtimestamp(now, dt.UTC)
    if t < nb:
        detail = f"current time {_rfc3339(t)} is before {_rfc3339(nb)}"
    elif t > na:
        detail = f"current time {_rfc3339(t)} is after {_rfc3339(na)}"
    else:
        return None
    return "x509: certificate has expired or is not yet valid: " + detail


def _leaf_eku_ok(cert: x509.Certificate) -> bool:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return not len(eku) or bool(_CLIENT_USAGES.intersection(eku))


def _unhandled_critical(cert: x509.Certificate) -> bool:
    return any(e.critical and e.oid not in _GO_HANDLED for e in cert.extensions)


def _signature_failure(issuer: x509.Certificate) -> str:
    key = issuer.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "crypto/rsa: verification error"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "x509: ECDSA verification failure"
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return "x509: Ed25519 verification failure"
    return "x509: signature verification failure"


def _candidate_name(cert: x509.Certificate) -> str:
    cn = common_name(cert.subject)
    if cn:
        return cn
    orgs = cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    return str(orgs[0].value) if orgs else f"serial:{cert.serial_number}"


def _cannot_sign(cert: x509.Certificate) -> bool:
    # Go's CheckSignatureFrom constraints, checked before the signature: a v3 issuer needs
    # basicConstraints with cA, and a keyUsage extension, if present, must allow keyCertSign.
    try:
        bc: x509.BasicConstraints | None = cert.extensions.get_extension_for_class(
            x509.BasicConstraints
        ).value
    except (x509.ExtensionNotFound, ValueError):
        bc = None
    if (bc is None and cert.version == x509.Version.v3) or (bc is not None and not bc.ca):
        return True
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return not ku.key_cert_sign


def _unknown_authority(
    leaf: x509.Certificate, intermediates: list[x509.Certificate], roots: CABundle, now: float
) -> str:
    # Go's UnknownAuthorityError names the first candidate issuer that failed and why, checked in
    # Go's order: CheckSignatureFrom (constraints, then signature), then isValid (critical
    # extensions, validity window, an intermediate that is not a CA).
    for cand, is_root in [*((c, True) for c in roots.certs), *((c, False) for c in intermediates)]:
        if cand.subject != leaf.issuer:
            continue
        hint: str | None
        if _cannot_sign(cand):
            hint = CANNOT_SIGN
        else:
            try:
                leaf.verify_directly_issued_by(cand)
            except (ValueError, TypeError, InvalidSignature):
                hint = _signature_failure(cand)
            else:
                hint = (
                    (UNHANDLED_CRITICAL if _unhandled_critical(cand) else None)
                    or validity_error(cand, now)
                    or (None if is_root or _is_ca(cand) else NOT_A_CA)
                )
        if hint:
            return (
                f"{UNKNOWN_AUTHORITY} (possibly because of {go_quote(hint)} while trying to "
                f"verify candidate authority certificate {go_quote(_candidate_name(cand))})"
            )
    return UNKNOWN_AUTHORITY


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


@attrs.frozen
class _Entry(Generic[T]):
    not_before: float
    not_after: float
    leaf_not_after: float
    value: T


class ChainVerifier(Generic[T]):
    """Verifies presented chains against the current CA bundle and converts verified ones.

    Successful results are cached by a digest of the whole presented chain. An entry is used only
    inside the validity windows of every certificate of its verified chain, and the cache is
    dropped whenever the CA bundle or the revocation data changes. Failures are not cached.
    """

    def __init__(
        self,
        ca: Source[CABundle | None],
        convert: Callable[[list[x509.Certificate]], T],
        *,
        revocation: Source[Revocation] | None = None,
        cache_size: int = 4096,
        max_chain_depth: int = MAX_CHAIN_DEPTH,
        observe_expiry: Callable[[float], None] | None = None,
    ) -> None:
        self._ca = ca
        self._revocation = revocation
        self._convert = convert
        self._cache_size = cache_size
        self._depth = max_chain_depth
        # Spec §9.2 step 4: the leaf's remaining lifetime is observed before verification.
        self._observe = observe_expiry
        self._cache: OrderedDict[bytes, _Entry[T]] = OrderedDict()
        self._trust: tuple[object, object] = (None, None)
        self._lock = threading.Lock()

    def current_bundle(self) -> CABundle | None:
        """The CA bundle in force now (None or empty: the authenticator has no opinion)."""
        return self._ca.value

    def verify(self, peer_chain: tuple[bytes, ...], now: float, bundle: CABundle) -> T:
        """Verify ``peer_chain`` (DER, leaf first) at ``now`` and return the converted chain."""
        revocation = self._revocation.value if self._revocation is not None else NO_REVOCATION
        key = chain_digest(peer_chain)
        with self._lock:
            if self._trust[0] is not bundle or self._trust[1] is not revocation:
                self._cache.clear()
                self._trust = (bundle, revocation)
            entry = self._cache.get(key)
            if entry is not None and entry.not_before <= now <= entry.not_after:
                self._cache.move_to_end(key)
                if self._observe is not None:
                    self._observe(entry.leaf_not_after - now)
                return entry.value
        certs = parse_chain(peer_chain)
        leaf_not_after = certs[0].not_valid_after_utc.timestamp()
        if self._observe is not None:
            self._observe(leaf_not_after - now)
        chain = self._verify(certs, now, bundle, revocation)
        value = self._convert(chain)
        entry = _Entry(
            max(c.not_valid_before_utc.timestamp() for c in chain),
            min(c.not_valid_after_utc.timestamp() for c in chain),
            leaf_not_after,
            value,
        )
        with self._lock:
            if self._trust[0] is bundle and self._trust[1] is revocation:
                self._cache[key] = entry
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return value

    def _verify(
        self, certs: list[x509.Certificate], now: float, bundle: CABundle, revocation: Revocation
    ) -> list[x509.Certificate]:
        # Go's intermediate pool ignores a certificate added twice; so do we (repeats would only
        # spend the path builder's signature-check budget).
        leaf, intermediates = certs[0], list(dict.fromkeys(certs[1:]))
        # Go checks the leaf itself first (isValid): critical extensions, then its validity. The
        # (costly) critical-extension scan runs only when something failed.
        expired = validity_error(leaf, now)
        if expired:
            raise VerificationFailed(
                UNHANDLED_CRITICAL if _unhandled_critical(leaf) else expired, leaf
            )
        checked = bool(intermediates) or bundle.restricts_client_auth or bundle.restricts_signing
        verifier = (
            PolicyBuilder()
            .store(bundle.store)
            .time(dt.datetime.fromtimestamp(now, dt.UTC))
            .max_chain_depth(self._depth)
            .extension_policies(
                ee_policy=_EE_POLICY, ca_policy=_CA_POLICY_CHECKED if checked else _CA_POLICY
            )
            .build_client_verifier()
        )
        try:
            chain = verifier.verify(leaf, intermediates).chain
        except VerificationError as exc:
            text = str(exc)
            if _unhandled_critical(leaf):
                reason = UNHANDLED_CRITICAL
            elif _EKU_MARKER in text:
                reason = INCOMPATIBLE_USAGE
            elif "maximum signature check limit" in text:
                # Both libraries cap path building (Go: 100 signature checks) against a client
                # that presents many look-alike intermediates.
                reason = SIGNATURE_CHECK_LIMIT
            elif any(m in text for m in _ALGORITHM_MARKERS):
                # Go would accept these (Ed25519, RSA-1024): say why instead of "unknown CA".
                reason = UNSUPPORTED_ALGORITHM
            else:
                reason = _unknown_authority(leaf, intermediates, bundle, now)
            raise VerificationFailed(reason, leaf, text) from None
        if not _leaf_eku_ok(leaf):
            raise VerificationFailed(INCOMPATIBLE_USAGE, leaf)
        revoked = revocation.revoked(chain)
        if revoked is not None:
            raise VerificationFailed(
                f"x509: certificate SN={revoked.serial_number} has been revoked", leaf
            )
        return chain
