"""X.509 client certificate authentication (spec §9)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from k8sauthn import CREDENTIAL_ID_KEY, AuthenticationError, ConfigError, Context, RequestView
from k8sauthn.request._trust import CABundle, Fixed, Revocation
from k8sauthn.request.x509 import CertificateRejected, ClientCertAuthenticator
from tests._pki import NOW, SERVER_AUTH, Cert, name
from tests.conftest import run_pure

from .test_x509_support import HOUR, NOW_TS, chain, retag_and_resign

ANY_EKU = (ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,)
DIGITAL_SIGNATURE_ONLY = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


@pytest.fixture(scope="module")
def root() -> Cert:
    return Cert.new_ca("x509-root")


@pytest.fixture(scope="module")
def inter(root: Cert) -> Cert:
    return root.intermediate("x509-intermediate")


@pytest.fixture
def authn(root: Cert) -> ClientCertAuthenticator:
    return ClientCertAuthenticator.from_pem(root.pem)


def rejected(authn: ClientCertAuthenticator, *certs: Cert, now: float = NOW_TS) -> str:
    with pytest.raises(CertificateRejected) as info:
        authn.authenticate(chain(*certs), now)
    return str(info.value)


def ident(cert: Cert) -> str:
    skid = cert.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    return f"SN={cert.cert.serial_number}, SKID={':'.join(f'{b:02X}' for b in skid)}, AKID="


class TestUserConversion:
    def test_valid_leaf_maps_cn_and_organizations(self, authn, root):
        """CN is the name, every O is a group in order, OU is ignored, no audiences."""
        subject = x509.Name(
            [
                x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "dev"),
                x509.NameAttribute(x509.NameOID.ORGANIZATIONAL_UNIT_NAME, "unit"),
                x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "ops"),
                x509.NameAttribute(x509.NameOID.COMMON_NAME, "alice"),
            ]
        )
        leaf = root.issue(subject)
        resp = authn.authenticate(chain(leaf), NOW_TS)
        assert resp is not None
        assert (resp.user.name, resp.user.uid, resp.user.groups) == ("alice", "", ("dev", "ops"))
        assert resp.audiences == ()

    def test_credential_id_is_sha256_of_leaf_der(self, authn, root):
        """extra carries X509SHA256=<lowercase hex of the leaf's DER digest>."""
        leaf = root.issue("alice")
        resp = authn.authenticate(chain(leaf), NOW_TS)
        expected = "X509SHA256=" + hashlib.sha256(leaf.der).hexdigest()
        assert {CREDENTIAL_ID_KEY: (expected,)} == dict(resp.user.extra)

    def test_last_common_name_wins(self, authn, root):
        """With several CN attributes the last one is the user name, as in Go."""
        subject = x509.Name(
            [
                x509.NameAttribute(x509.NameOID.COMMON_NAME, "first"),
                x509.NameAttribute(x509.NameOID.COMMON_NAME, "last"),
            ]
        )
        assert authn.authenticate(chain(root.issue(subject)), NOW_TS).user.name == "last"

    def test_no_common_name_is_no_opinion(self, authn, root):
        """A verified certificate without CN does not authenticate anybody."""
        assert None is authn.authenticate(chain(root.issue(name(None, orgs=["dev"]))), NOW_TS)

    def test_no_organization_means_no_groups(self, authn, root):
        """Without O attributes the groups are empty."""
        assert authn.authenticate(chain(root.issue("bob")), NOW_TS).user.groups == ()

    def test_uid_attribute_is_the_uid(self, authn, root):
        """Subject attribute 1.3.6.1.4.1.57683.2 becomes the UID."""
        leaf = root.issue(name("alice", uids=["uid-1001"]))
        assert authn.authenticate(chain(leaf), NOW_TS).user.uid == "uid-1001"

    def test_several_uids_are_an_error(self, authn, root):
        """More than one UID attribute is rejected with Go's list formatting."""
        leaf = root.issue(name("alice", uids=["a", "b"]))
        with pytest.raises(
            AuthenticationError, match=r"^expected 1 UID, but found multiple: \[a b\]$"
        ):
            authn.authenticate(chain(leaf), NOW_TS)

    def test_empty_uid_is_an_error(self, authn, root):
        """A single empty UID attribute is rejected."""
        leaf = root.issue(name("alice", uids=[""]))
        with pytest.raises(AuthenticationError, match=r"^UID cannot be an empty string$"):
            authn.authenticate(chain(leaf), NOW_TS)

    def test_non_string_uid_is_an_error(self, authn, root):
        """A UID attribute that is not an ASN.1 string type cannot be parsed."""
        leaf = root.issue(name("alice", uids=["OCTETS"]))
        der = retag_and_resign(leaf, root, b"OCTETS", 0x04)
        with pytest.raises(AuthenticationError, match=r"^unable to parse UID into a string$"):
            authn.authenticate((der,), NOW_TS)

    def test_uid_parsing_can_be_turned_off(self, root):
        """With the feature gate off UID attributes are ignored, even invalid ones."""
        authn = ClientCertAuthenticator.from_pem(root.pem, parse_uid=False)
        leaf = root.issue(name("alice", uids=["a", "b"]))
        assert authn.authenticate(chain(leaf), NOW_TS).user.uid == ""

    def test_request_flow_is_pure(self, authn, root):
        """The flow performs no effect and returns the response."""
        view = RequestView(peer_chain=chain(root.issue("alice")))
        assert run_pure(authn.request_flow(view, Context(now=NOW_TS))).user.name == "alice"


class TestNoOpinion:
    def test_no_peer_certificate(self, authn):
        """A request without a client certificate is left to the next authenticator."""
        assert None is authn.authenticate((), NOW_TS)

    def test_no_ca_in_force(self, root):
        """While no CA bundle is loaded the authenticator has no opinion."""
        authn = ClientCertAuthenticator.from_source(Fixed(None))
        assert None is authn.authenticate(chain(root.issue("alice")), NOW_TS)


class TestVerification:
    def test_expired_leaf_error_text(self, authn, root):
        """An expired leaf fails with the SN/SKID/AKID identifier and Go's validity text."""
        leaf = root.issue("old", not_before=NOW - 48 * HOUR, not_after=NOW - 24 * HOUR)
        after = (NOW - 24 * HOUR).strftime("%Y-%m-%dT%H:%M:%SZ")
        current = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert (
            f"verifying certificate {ident(leaf)} failed: x509: certificate has expired or is not "
            f"yet valid: current time {current} is after {after}"
        ) == rejected(authn, leaf)

    def test_not_yet_valid_leaf(self, authn, root):
        """A leaf used before notBefore fails with Go's 'is before' text."""
        leaf = root.issue("early", not_before=NOW + HOUR)
        assert rejected(authn, leaf).endswith(
            f"is before {(NOW + HOUR).strftime('%Y-%m-%dT%H:%M:%SZ')}"
        )

    def test_unknown_authority(self, authn):
        """A leaf from another CA is signed by an unknown authority."""
        leaf = Cert.new_ca("elsewhere").issue("mallory")
        assert rejected(authn, leaf).endswith(
            "failed: x509: certificate signed by unknown authority"
        )

    def test_identifier_has_uppercase_colon_hex_key_ids(self, authn):
        """SKID and AKID print as uppercase hex pairs joined by colons, serial in decimal."""
        other = Cert.new_ca("elsewhere")
        leaf = other.issue("mallory", aki=True, serial=4660)
        akid = leaf.cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
        akid_hex = ":".join(f"{b:02X}" for b in akid.value.key_identifier)
        message = rejected(authn, leaf)
        assert message.startswith("verifying certificate SN=4660, SKID=")
        assert f", AKID={akid_hex} failed: " in message

    def test_server_auth_only_leaf_is_incompatible(self, authn, root):
        """A serverAuth-only certificate cannot authenticate a client."""
        leaf = root.issue("web", eku=SERVER_AUTH)
        assert rejected(authn, leaf).endswith(
            "failed: x509: certificate specifies an incompatible key usage"
        )

    @pytest.mark.parametrize("eku", [None, ANY_EKU, (ExtendedKeyUsageOID.CLIENT_AUTH,)])
    def test_leaf_without_eku_or_with_any_is_accepted(self, authn, root, eku):
        """No EKU means any usage; anyExtendedKeyUsage and clientAuth are accepted."""
        assert authn.authenticate(chain(root.issue("c", eku=eku)), NOW_TS).user.name == "c"

    def test_intermediate_sent_by_the_client_builds_the_path(self, authn, inter):
        """Certificates after the leaf are untrusted intermediates for path building."""
        leaf = inter.issue("bob")
        assert authn.authenticate(chain(leaf, inter), NOW_TS).user.name == "bob"

    def test_missing_intermediate_is_unknown_authority(self, authn, inter):
        """Without its intermediate the leaf does not chain to the bundle."""
        assert rejected(authn, inter.issue("bob")).endswith("signed by unknown authority")

    def test_intermediate_with_server_auth_eku_is_incompatible(self, authn, root):
        """EKU nesting: a CA whose EKU excludes clientAuth cannot issue client certificates."""
        ca = root.issue(name("server-only-ca"), ca=True, eku=SERVER_AUTH)
        leaf = ca.issue("bob", eku=None)
        assert rejected(authn, leaf, ca).endswith("incompatible key usage")

    def test_intermediate_with_client_auth_eku_is_fine(self, authn, root):
        """A CA that lists clientAuth (or any) in its EKU may issue client certificates."""
        ca = root.issue(name("client-ca"), ca=True, eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
        assert authn.authenticate(chain(ca.issue("bob"), ca), NOW_TS).user.name == "bob"

    def test_non_ca_intermediate_gives_a_hint(self, authn, root):
        """A leaf cannot sign: Go's CheckSignatureFrom names the candidate (constraint error)."""
        fake_ca = root.issue("not-a-ca")
        leaf = fake_ca.issue("bob")
        assert rejected(authn, leaf, fake_ca).endswith(
            'unknown authority (possibly because of "x509: invalid signature: parent certificate '
            'cannot sign this kind of certificate" while trying to verify candidate authority '
            'certificate "not-a-ca")'
        )

    def test_intermediate_whose_key_usage_excludes_cert_sign_cannot_issue(self, authn, root):
        """Go refuses an issuer whose keyUsage lacks keyCertSign (RFC 5280 4.2.1.3)."""
        ca = root.issue(name("sign-only-ca"), ca=True, eku=None, key_usage=DIGITAL_SIGNATURE_ONLY)
        assert rejected(authn, ca.issue("bob"), ca).endswith(
            'unknown authority (possibly because of "x509: invalid signature: parent certificate '
            'cannot sign this kind of certificate" while trying to verify candidate authority '
            'certificate "sign-only-ca")'
        )

    def test_intermediate_with_unknown_critical_extension_gives_a_hint(self, authn, root):
        """Go's isValid refuses a CA with an unhandled critical extension and names it."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name("critical-ca"))
            .issuer_name(root.cert.subject)
            .public_key(key.public_key())
            .serial_number(9)
            .not_valid_before(NOW - HOUR)
            .not_valid_after(NOW + HOUR)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4.5"), b"\x05\x00"),
                critical=True,
            )
            .sign(root.key, hashes.SHA256())
        )
        ca = Cert(cert, key, (root.cert,))
        assert rejected(authn, ca.issue("bob"), ca).endswith(
            'unknown authority (possibly because of "x509: unhandled critical extension" while '
            'trying to verify candidate authority certificate "critical-ca")'
        )

    def test_many_look_alike_intermediates_hit_the_signature_check_limit(self, authn, root):
        """A flood of same-name intermediates is cut off with Go's signature-limit error."""
        real = root.intermediate("look-alike")
        other = Cert.new_ca("other")
        fakes = [other.issue(name("look-alike"), ca=True, eku=None) for _ in range(300)]
        message = rejected(authn, real.issue("bob"), *fakes, real)
        assert message.endswith(
            "x509: signature check attempts limit reached while verifying certificate chain"
        )

    def test_repeated_intermediates_count_once(self, authn, root):
        """As in Go's pool, a certificate sent many times is one candidate."""
        real = root.intermediate("repeated")
        fake = Cert.new_ca("other").issue(name("repeated"), ca=True, eku=None)
        leaf = real.issue("bob")
        assert authn.authenticate(chain(leaf, *[fake] * 300, real), NOW_TS).user.name == "bob"

    def test_root_whose_key_usage_excludes_cert_sign_cannot_issue(self):
        """The same holds for a bundle certificate; it still verifies itself when presented."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = name("sign-only-root")
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(7)
            .not_valid_before(NOW - HOUR)
            .not_valid_after(NOW + HOUR)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(DIGITAL_SIGNATURE_ONLY, critical=True)
            .sign(key, hashes.SHA256())
        )
        bad_root = Cert(cert, key, ())
        authn = ClientCertAuthenticator.from_pem(bad_root.pem)
        assert "cannot sign this kind of certificate" in rejected(authn, bad_root.issue("bob"))
        assert authn.authenticate(chain(bad_root), NOW_TS).user.name == "sign-only-root"

    def test_expired_intermediate_gives_a_hint(self, authn, root):
        """An expired intermediate is named with its validity error."""
        ca = root.issue(
            name("old-ca"), ca=True, eku=None, not_before=NOW - 48 * HOUR, not_after=NOW - HOUR
        )
        message = rejected(authn, ca.issue("bob"), ca)
        assert 'possibly because of "x509: certificate has expired or is not yet valid' in message
        assert message.endswith('candidate authority certificate "old-ca")')

    def test_expired_root_gives_a_hint(self, authn, root):
        """Go checks the root's own validity window too."""
        leaf = root.issue("long", not_after=NOW + dt.timedelta(days=400))
        message = rejected(authn, leaf, now=(NOW + dt.timedelta(days=366)).timestamp())
        assert message.endswith('candidate authority certificate "x509-root")')

    def test_wrong_key_with_same_issuer_name_gives_signature_hint(self, authn, root):
        """A CA impersonating the root's name fails the signature check on that candidate."""
        impostor = Cert.new_ca(root.cert.subject.rfc4514_string()[3:])
        message = rejected(authn, impostor.issue("mallory"))
        assert '"x509: ECDSA verification failure"' in message

    def test_certificate_in_the_pool_verifies_itself(self, root):
        """A certificate that is itself in the root pool verifies, even a CA or a leaf."""
        leaf = Cert.new_ca("other").issue("pinned")
        authn = ClientCertAuthenticator.from_pem(root.pem + leaf.pem)
        assert authn.authenticate(chain(leaf), NOW_TS).user.name == "pinned"
        assert authn.authenticate(chain(root), NOW_TS).user.name == "x509-root"

    def test_ca_without_key_usage_is_accepted(self):
        """Kubernetes CAs often lack keyUsage; Go ignores key usage."""
        ca = Cert.new_ca("no-ku", key_usage=False)
        authn = ClientCertAuthenticator.from_pem(ca.pem)
        assert authn.authenticate(chain(ca.issue("x")), NOW_TS).user.name == "x"

    def test_self_signed_leaf_not_in_pool_is_rejected(self, authn):
        """A self-signed certificate outside the bundle is an unknown authority."""
        assert rejected(authn, Cert.new_ca("self")).endswith("signed by unknown authority")

    def test_unhandled_critical_extension_is_rejected(self, authn, root):
        """An unknown critical extension makes Go refuse the leaf."""
        leaf = root.issue("crit")
        unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4.5"), b"\x05\x00")
        cert = (
            x509.CertificateBuilder()
            .subject_name(leaf.cert.subject)
            .issuer_name(root.cert.subject)
            .public_key(leaf.key.public_key())
            .serial_number(7)
            .not_valid_before(NOW - HOUR)
            .not_valid_after(NOW + HOUR)
            .add_extension(unknown, critical=True)
            .sign(root.key, hashes.SHA256())
        )
        with pytest.raises(CertificateRejected, match=r"x509: unhandled critical extension$"):
            authn.authenticate((cert.public_bytes(Encoding.DER),), NOW_TS)

    def test_ed25519_chain_is_refused_with_a_clear_reason(self):
        """cryptography's verifier refuses Ed25519 (Go accepts it): the error says so."""
        key = ed25519.Ed25519PrivateKey.generate()
        root_name = name("ed-root")
        root_cert = (
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(key.public_key())
            .serial_number(1)
            .not_valid_before(NOW - HOUR)
            .not_valid_after(NOW + HOUR)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, None)
        )
        leaf_key = ed25519.Ed25519PrivateKey.generate()
        leaf = (
            x509.CertificateBuilder()
            .subject_name(name("ed-leaf"))
            .issuer_name(root_name)
            .public_key(leaf_key.public_key())
            .serial_number(2)
            .not_valid_before(NOW - HOUR)
            .not_valid_after(NOW + HOUR)
            .sign(key, None)
        )
        authn = ClientCertAuthenticator.from_pem(root_cert.public_bytes(Encoding.PEM))
        with pytest.raises(CertificateRejected) as info:
            authn.authenticate((leaf.public_bytes(Encoding.DER),), NOW_TS)
        assert info.value.reason.endswith("algorithm k8sauthn does not accept")
        assert "Ed25519" in info.value.detail

    def test_garbage_der_is_an_error_not_a_crash(self, authn, root):
        """Unparseable certificate bytes are rejected with a malformed-certificate error."""
        with pytest.raises(CertificateRejected) as info:
            authn.authenticate((b"\x30\x03garbage",), NOW_TS)
        assert str(info.value) == (
            "verifying certificate SN=<nil>, SKID=, AKID= failed: x509: malformed certificate"
        )
        with pytest.raises(CertificateRejected, match=r"x509: malformed certificate$"):
            authn.authenticate((root.issue("x").der, b"junk"), NOW_TS)


class TestCryptographyPolicies:
    """Why the extension policies are spelled out (design example 13)."""

    def _verify(self, root: Cert, leaf: Cert, ee: ExtensionPolicy, ca: ExtensionPolicy) -> None:
        PolicyBuilder().store(Store([root.cert])).time(NOW).extension_policies(
            ee_policy=ee, ca_policy=ca
        ).build_client_verifier().verify(leaf.cert, [])

    def test_webpki_defaults_reject_an_ordinary_kubernetes_client_cert(self, authn, root):
        """cryptography's WebPKI defaults refuse a leaf without SAN; we accept it, as Go does."""
        leaf = root.issue("kubelet")
        with pytest.raises(VerificationError):
            self._verify(
                root,
                leaf,
                ExtensionPolicy.webpki_defaults_ee(),
                ExtensionPolicy.webpki_defaults_ca(),
            )
        assert authn.authenticate(chain(leaf), NOW_TS).user.name == "kubelet"

    def test_permit_all_alone_accepts_server_auth_only(self, authn, root):
        """A permissive policy would let a serverAuth-only certificate in; we reject it."""
        leaf = root.issue("web", eku=SERVER_AUTH)
        ca = ExtensionPolicy.permit_all().require_present(
            x509.BasicConstraints, Criticality.AGNOSTIC, None
        )
        self._verify(root, leaf, ExtensionPolicy.permit_all(), ca)  # no error: too permissive
        with pytest.raises(CertificateRejected):
            authn.authenticate(chain(leaf), NOW_TS)


class TestCache:
    def test_cached_success_is_not_used_after_not_after(self, authn, root):
        """A cache entry expires with the earliest notAfter of its chain."""
        leaf = root.issue("short", not_after=NOW + HOUR)
        assert authn.authenticate(chain(leaf), NOW_TS) is not None
        later = NOW_TS + 2 * 3600
        with pytest.raises(CertificateRejected, match="is after"):
            authn.authenticate(chain(leaf), later)

    def test_cached_success_is_not_used_before_not_before(self, authn, root):
        """A cache entry is not served before the latest notBefore of its chain."""
        leaf = root.issue("fresh", not_before=NOW - HOUR)
        assert authn.authenticate(chain(leaf), NOW_TS) is not None
        with pytest.raises(CertificateRejected, match="is before"):
            authn.authenticate(chain(leaf), NOW_TS - 2 * 3600)

    def test_cache_is_dropped_when_the_bundle_changes(self, root, tmp_path):
        """After a CA rotation a previously accepted certificate is verified again."""
        ca_file = tmp_path / "ca.pem"
        ca_file.write_bytes(root.pem)
        authn = ClientCertAuthenticator.from_ca_file(ca_file, reload_interval=0)
        leaf = root.issue("alice")
        assert authn.authenticate(chain(leaf), NOW_TS) is not None
        ca_file.write_bytes(Cert.new_ca("rotated").pem)
        with pytest.raises(CertificateRejected, match="unknown authority"):
            authn.authenticate(chain(leaf), NOW_TS)

    def test_cache_is_bounded(self, root):
        """The success cache never holds more than its size."""
        authn = ClientCertAuthenticator.from_source(Fixed(CABundle((root.cert,))), cache_size=2)
        for i in range(5):
            authn.authenticate(chain(root.issue(f"u{i}")), NOW_TS)
        assert len(authn._verifier._cache) == 2

    def test_expiry_is_observed_before_verification(self, root):
        """The leaf's remaining lifetime is reported for accepted, cached and rejected chains."""
        seen: list[float] = []
        authn = ClientCertAuthenticator.from_source(
            Fixed(CABundle((root.cert,))), observe_expiry=seen.append
        )
        leaf = root.issue("alice", not_after=NOW + HOUR)
        authn.authenticate(chain(leaf), NOW_TS)
        authn.authenticate(chain(leaf), NOW_TS)
        with pytest.raises(CertificateRejected):
            authn.authenticate(chain(Cert.new_ca("x").issue("y", not_after=NOW + HOUR)), NOW_TS)
        assert [pytest.approx(3600, abs=1)] * 3 == seen


class TestBundle:
    def test_other_pem_blocks_are_skipped(self, root):
        """Only CERTIFICATE blocks count; keys and blocks with headers are skipped."""
        headers_block = (
            b"-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\n"
            b"AAAA\n-----END CERTIFICATE-----\n"
        )
        bundle = CABundle.from_pem(root.key_pem + headers_block + root.pem)
        assert [root.cert] == list(bundle.certs)

    def test_no_certificate_is_an_error(self, root):
        """A bundle without certificates fails with Kubernetes' text and the bundle name."""
        with pytest.raises(ConfigError) as info:
            CABundle.from_pem(root.key_pem, name="client-ca-bundle::/ca.pem")
        assert str(info.value) == (
            'error loading CA bundle for "client-ca-bundle::/ca.pem": data does not contain any '
            "valid RSA or ECDSA certificates"
        )

    def test_malformed_certificate_block_is_an_error(self):
        """A CERTIFICATE block that does not parse fails the whole bundle."""
        bad = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        with pytest.raises(ConfigError, match="malformed certificate"):
            CABundle.from_pem(bad)

    def test_bad_file_at_start_is_a_config_error(self, tmp_path):
        """from_ca_file refuses a file without certificates."""
        path = tmp_path / "ca.pem"
        path.write_text("nothing here")
        with pytest.raises(ConfigError, match="data does not contain any valid"):
            ClientCertAuthenticator.from_ca_file(path)

    def test_broken_new_file_keeps_the_old_bundle(self, root, tmp_path):
        """A reload that fails to parse leaves the previous bundle in force and reports it."""
        path = tmp_path / "ca.pem"
        path.write_bytes(root.pem)
        errors: list[Exception] = []
        authn = ClientCertAuthenticator.from_ca_file(
            path, reload_interval=0, on_reload_error=errors.append
        )
        path.write_text("-----BEGIN CERTIFICATE-----\ntruncated")
        assert authn.authenticate(chain(root.issue("a")), NOW_TS).user.name == "a"
        assert errors
        assert isinstance(errors[0], ConfigError)


class TestRevocation:
    def _crl(self, issuer: Cert, *serials: int, signer: Cert | None = None) -> bytes:
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(issuer.cert.subject)
            .last_update(NOW - HOUR)
            .next_update(NOW - dt.timedelta(minutes=1))  # stale on purpose: still honoured
        )
        for s in serials:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(s)
                .revocation_date(NOW - HOUR)
                .build()
            )
        crl = builder.sign((signer or issuer).key, hashes.SHA256())
        return crl.public_bytes(Encoding.PEM)

    def test_deny_listed_serial_is_rejected(self, root):
        """A serial on the deny-list of its issuer is refused."""
        leaf = root.issue("leaked")
        rev = Revocation().deny(root.cert.subject, [leaf.cert.serial_number])
        authn = ClientCertAuthenticator.from_pem(root.pem, revocation=rev)
        serial = leaf.cert.serial_number
        assert rejected(authn, leaf).endswith(f"x509: certificate SN={serial} has been revoked")
        assert authn.authenticate(chain(root.issue("ok")), NOW_TS).user.name == "ok"

    def test_crl_file_revokes_and_reloads(self, root, tmp_path: Path):
        """A CRL signed by the issuer revokes; a new CRL file is picked up and drops the cache."""
        leaf = root.issue("alice")
        ca, crl = tmp_path / "ca.pem", tmp_path / "crl.pem"
        ca.write_bytes(root.pem)
        crl.write_bytes(self._crl(root, 1))
        authn = ClientCertAuthenticator.from_ca_file(ca, crl_file=crl, reload_interval=0)
        assert authn.authenticate(chain(leaf), NOW_TS) is not None
        crl.write_bytes(self._crl(root, 1, leaf.cert.serial_number))
        assert rejected(authn, leaf).endswith("has been revoked")

    def test_crl_with_bad_signature_is_ignored(self, root):
        """A CRL not signed by the certificate's issuer does not revoke anything."""
        leaf = root.issue("alice")
        forged = self._crl(root, leaf.cert.serial_number, signer=Cert.new_ca("forger"))
        authn = ClientCertAuthenticator.from_pem(root.pem, revocation=Revocation.from_crl(forged))
        assert authn.authenticate(chain(leaf), NOW_TS) is not None

    def test_revoked_intermediate(self, root, inter):
        """Revoking an intermediate rejects every leaf below it."""
        rev = Revocation.from_crl(self._crl(root, inter.cert.serial_number))
        authn = ClientCertAuthenticator.from_pem(root.pem, revocation=rev)
        assert rejected(authn, inter.issue("bob"), inter).endswith("has been revoked")

    def test_deny_list_applies_to_a_pinned_certificate(self, root):
        """A certificate trusted by being in the bundle can still be deny-listed."""
        leaf = Cert.new_ca("other-ca").issue("pinned")
        rev = Revocation().deny(leaf.cert.issuer, [leaf.cert.serial_number])
        authn = ClientCertAuthenticator.from_pem(root.pem + leaf.pem, revocation=rev)
        assert rejected(authn, leaf).endswith("has been revoked")

    def test_garbage_crl_is_a_config_error(self):
        """A CRL file that does not parse is refused at load."""
        with pytest.raises(ConfigError, match="error loading CRL"):
            Revocation.from_crl(b"not a crl", name="crl.pem")


class TestRequestStep:
    def test_step_answers_what_the_flow_answers(self, authn, root):
        """The synchronous step returns the flow's user for a valid chain."""
        req = RequestView(peer_chain=(root.issue(name("alice", ("dev",))).der,))
        ctx = Context(now=NOW_TS)
        resp = authn.request_step(req, ctx)
        assert resp is not None
        assert resp.user.name == "alice"
        assert resp == run_pure(authn.request_flow(req, ctx))

    def test_step_without_certificate_is_no_opinion(self, authn):
        """No peer certificate: no opinion."""
        assert authn.request_step(RequestView(), Context(now=NOW_TS)) is None

    def test_step_raises_the_flow_error(self, authn):
        """A chain of an unknown CA raises the same error from the step and the flow."""
        req = RequestView(peer_chain=(Cert.new_ca("other").issue(name("bob")).der,))
        ctx = Context(now=NOW_TS)
        with pytest.raises(CertificateRejected) as from_step:
            authn.request_step(req, ctx)
        with pytest.raises(CertificateRejected) as from_flow:
            run_pure(authn.request_flow(req, ctx))
        assert str(from_step.value) == str(from_flow.value)
