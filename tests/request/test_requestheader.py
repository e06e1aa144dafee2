"""The authenticating proxy: request-header authentication (spec §10)."""

from __future__ import annotations

import pytest

from k8sauthn import AuthenticationError, ConfigError, Context, Headers, RequestView, run_pure
from k8sauthn.chain.union import RequestUnion
from k8sauthn.config.build import build
from k8sauthn.config.options import AuthenticationOptions, RequestHeaderOptions
from k8sauthn.request._trust import CABundle
from k8sauthn.request.requestheader import (
    OVERLAPPING_CAS,
    HeaderNames,
    RequestHeaderAuthenticator,
    check_ca_overlap,
    path_unescape,
    read_user,
    validate_options,
)
from k8sauthn.request.x509 import CertificateRejected, ClientCertAuthenticator
from tests._pki import Cert

from .test_x509_support import NOW_TS, chain

STANDARD = HeaderNames(["X-Remote-User"], ["X-Remote-Uid"], ["X-Remote-Group"], ["X-Remote-Extra-"])


@pytest.fixture(scope="module")
def proxy_ca() -> Cert:
    return Cert.new_ca("front-proxy-ca")


@pytest.fixture(scope="module")
def client_ca() -> Cert:
    return Cert.new_ca("client-ca")


@pytest.fixture(scope="module")
def proxy(proxy_ca: Cert) -> Cert:
    return proxy_ca.issue("front-proxy-client")


def view(cert: Cert | None, *headers: tuple[str, str]) -> RequestView:
    return RequestView(Headers(headers), chain(cert) if cert else ())


def authn_for(proxy_ca: Cert, **kw: object) -> RequestHeaderAuthenticator:
    kw.setdefault("uid_headers", ["X-Remote-Uid"])
    return RequestHeaderAuthenticator.behind_proxy(
        proxy_ca=CABundle((proxy_ca.cert,)),
        **kw,  # type: ignore[arg-type]
    )


class TestProxyVerification:
    def test_verified_proxy_headers_become_the_user(self, proxy_ca, proxy):
        """Name, UID, groups and extra come from the headers of a verified proxy."""
        authn = authn_for(proxy_ca, allowed_names=["front-proxy-client"])
        resp = authn.authenticate(
            view(
                proxy,
                ("X-Remote-User", "alice"),
                ("X-Remote-Uid", "u-1"),
                ("X-Remote-Group", "dev"),
                ("X-Remote-Group", "a,b"),
                ("X-Remote-Extra-Scopes", "read"),
            ),
            NOW_TS,
        )
        assert resp is not None
        assert resp.user.name == "alice"
        assert resp.user.uid == "u-1"
        assert resp.user.groups == ("dev", "a,b")
        assert dict(resp.user.extra) == {"scopes": ("read",)}
        assert resp.audiences == ()

    def test_spoofed_headers_without_a_certificate_are_ignored(self, proxy_ca):
        """X-Remote-User without a TLS client certificate is no opinion."""
        authn = authn_for(proxy_ca)
        assert authn.authenticate(view(None, ("X-Remote-User", "admin")), NOW_TS) is None

    def test_certificate_from_another_ca_is_a_raw_x509_error(self, proxy_ca, client_ca):
        """A user certificate presented instead of the proxy's is an error without SN prefix."""
        authn = authn_for(proxy_ca)
        with pytest.raises(CertificateRejected) as info:
            authn.authenticate(view(client_ca.issue("alice"), ("X-Remote-User", "admin")), NOW_TS)
        assert str(info.value) == "x509: certificate signed by unknown authority"

    def test_disallowed_common_name_is_an_error(self, proxy_ca):
        """A verified proxy certificate whose CN is not listed is rejected."""
        authn = authn_for(proxy_ca, allowed_names=["front-proxy-client"])
        other = proxy_ca.issue("someone-else")
        with pytest.raises(AuthenticationError) as info:
            authn.authenticate(view(other, ("X-Remote-User", "admin")), NOW_TS)
        assert str(info.value) == "x509: subject with cn=someone-else is not in the allowed list"

    def test_allowed_names_are_case_sensitive(self, proxy_ca):
        """The allowed-names comparison is exact."""
        authn = authn_for(proxy_ca, allowed_names=["Front-Proxy-Client"])
        with pytest.raises(AuthenticationError, match="not in the allowed list"):
            authn.authenticate(
                view(proxy_ca.issue("front-proxy-client"), ("X-Remote-User", "a")), NOW_TS
            )

    def test_empty_allowed_names_accept_any_verified_certificate(self, proxy_ca):
        """Without allowed names any certificate the CA verifies may act as the proxy."""
        authn = authn_for(proxy_ca)
        resp = authn.authenticate(view(proxy_ca.issue("anything"), ("X-Remote-User", "a")), NOW_TS)
        assert resp.user.name == "a"

    def test_server_auth_only_proxy_certificate_is_rejected(self, proxy_ca):
        """The proxy certificate must be good for client authentication."""
        from tests._pki import SERVER_AUTH

        authn = authn_for(proxy_ca)
        with pytest.raises(CertificateRejected, match="incompatible key usage"):
            authn.authenticate(
                view(proxy_ca.issue("p", eku=SERVER_AUTH), ("X-Remote-User", "a")), NOW_TS
            )

    def test_no_username_header_is_no_opinion(self, proxy_ca, proxy):
        """A verified proxy that names nobody has no opinion; the proxy is never the user."""
        authn = authn_for(proxy_ca)
        assert authn.authenticate(view(proxy, ("X-Remote-Group", "dev")), NOW_TS) is None

    def test_proxy_ca_may_be_pem_bytes(self, proxy_ca, proxy):
        """behind_proxy accepts the PEM bundle itself."""
        authn = RequestHeaderAuthenticator.behind_proxy(proxy_ca=proxy_ca.pem)
        assert authn.authenticate(view(proxy, ("X-Remote-User", "a")), NOW_TS).user.name == "a"

    def test_no_ca_in_force_is_no_opinion(self, proxy):
        """Without a loaded CA the authenticator has no opinion."""
        from k8sauthn.request._trust import Fixed

        authn = RequestHeaderAuthenticator.behind_proxy(proxy_ca=Fixed(None))
        assert authn.authenticate(view(proxy, ("X-Remote-User", "a")), NOW_TS) is None

    def test_request_flow_is_pure(self, proxy_ca, proxy):
        """The flow performs no effect."""
        authn = authn_for(proxy_ca)
        flow = authn.request_flow(view(proxy, ("X-Remote-User", "a")), Context(now=NOW_TS))
        assert run_pure(flow).user.name == "a"

    def test_strip_lists(self, proxy_ca):
        """Configured names and prefixes are what the filter strips after success."""
        authn = authn_for(proxy_ca, username_headers=["X-User "], group_headers=["X-Groups"])
        assert authn.strip_headers == ("x-user", "x-remote-uid", "x-groups")
        assert authn.strip_prefixes == ("x-remote-extra-",)

    def test_user_certificate_falls_through_to_x509(self, proxy_ca, client_ca):
        """In a non-fail-fast union the proxy error is dropped when X.509 accepts."""
        union = RequestUnion([authn_for(proxy_ca), ClientCertAuthenticator.from_pem(client_ca.pem)])
        req = view(client_ca.issue("alice"), ("X-Remote-User", "admin"))
        assert run_pure(union.request_flow(req, Context(now=NOW_TS))).user.name == "alice"


class TestHeaderReader:
    def test_first_non_empty_username_header_wins(self):
        """An empty first value skips that header, even if a later value is set."""
        names = HeaderNames(["X-A", "X-B"], [], [], [])
        headers = Headers([("X-A", ""), ("X-A", "ignored"), ("X-B", "bob")])
        assert read_user(headers, names).name == "bob"

    def test_header_order_is_configuration_order(self):
        """The first configured header with a value wins, whatever the arrival order."""
        names = HeaderNames(["X-A", "X-B"], [], [], [])
        headers = Headers([("X-B", "bob"), ("x-a", "alice")])
        assert read_user(headers, names).name == "alice"

    def test_groups_keep_every_non_empty_value_unsplit(self):
        """Groups come from every configured header in order, empty values dropped."""
        names = HeaderNames(["X-User"], [], ["X-G1", "X-G2"], [])
        headers = Headers(
            [("X-G2", "z"), ("X-User", "u"), ("X-G1", "a,b"), ("X-G1", ""), ("X-G1", "c")]
        )
        assert read_user(headers, names).groups == ("a,b", "c", "z")

    def test_no_groups_is_an_empty_tuple(self):
        """Without group headers the groups are empty."""
        assert read_user(Headers([("X-Remote-User", "u")]), STANDARD).groups == ()

    def test_extra_keys_are_lowercased_then_unescaped(self):
        """%4A becomes J because lower-casing happens before percent-decoding."""
        headers = Headers(
            [
                ("X-Remote-User", "u"),
                ("X-Remote-Extra-Acme.com%2FProject", "p1"),
                ("X-Remote-Extra-%4A", "j"),
                ("X-Remote-Extra-Bad%zz", "kept"),
                ("X-Remote-Extra-", "empty-key"),
                ("X-Remote-Extra-Scopes", ""),
                ("X-Remote-Extra-Scopes", "read"),
            ]
        )
        extra = dict(read_user(headers, STANDARD).extra)
        assert extra == {
            "acme.com/project": ("p1",),
            "J": ("j",),
            "bad%zz": ("kept",),
            "": ("empty-key",),
            "scopes": ("", "read"),
        }

    def test_extra_values_of_several_prefixes_are_merged_in_prefix_order(self):
        """A key fed by two prefixes gets the first prefix's values first."""
        names = HeaderNames(["X-User"], [], [], ["X-Second-", "X-First-"])
        headers = Headers([("X-First-K", "1"), ("X-Second-K", "2"), ("X-User", "u")])
        assert dict(read_user(headers, names).extra) == {"k": ("2", "1")}

    def test_uid_defaults_to_empty(self):
        """Without a UID header the UID is empty."""
        assert read_user(Headers([("X-Remote-User", "u")]), STANDARD).uid == ""

    @pytest.mark.parametrize(
        ("raw", "decoded"),
        [
            ("a%2fb", "a/b"),
            ("a+b", "a+b"),
            ("%", "%"),
            ("%4", "%4"),
            ("%%41", "%%41"),
            ("plain", "plain"),
            ("%e2%82%ac", "\u20ac"),
        ],
    )
    def test_path_unescape_matches_go(self, raw, decoded):
        """Go's PathUnescape: %XX decoded, '+' kept, any malformed escape keeps the input."""
        assert path_unescape(raw) == decoded

    def test_empty_header_name_is_a_config_error(self):
        """A header name that is only whitespace cannot be configured."""
        with pytest.raises(ConfigError, match=r'^empty header "  "$'):
            HeaderNames(["  "], [], [], [])
        with pytest.raises(ConfigError) as info:
            HeaderNames([], [], ["\t\n"], [])
        assert str(info.value) == 'empty header "\\t\\n"'  # quoted like Go's %q


class TestOptions:
    def test_from_options_without_ca_file_is_disabled(self):
        """Nothing is enabled without a request-header client CA, whatever the headers."""
        opts = RequestHeaderOptions(username_headers=["X-Remote-User"])
        assert RequestHeaderAuthenticator.from_options(opts) is None

    def test_from_options_reads_the_ca_file(self, proxy_ca, proxy, tmp_path):
        """The CA file and header flags configure a working authenticator."""
        ca = tmp_path / "front-proxy-ca.crt"
        ca.write_bytes(proxy_ca.pem)
        opts = RequestHeaderOptions(
            client_ca_file=str(ca),
            allowed_names=["front-proxy-client"],
            username_headers=["X-Remote-User"],
            group_headers=["X-Remote-Group"],
        )
        authn = RequestHeaderAuthenticator.from_options(opts)
        resp = authn.authenticate(
            view(proxy, ("X-Remote-User", "a"), ("X-Remote-Group", "g")), NOW_TS
        )
        assert (resp.user.name, resp.user.groups) == ("a", ("g",))

    @pytest.mark.parametrize(
        ("field", "flag"),
        [
            ("username_headers", "requestheader-username-headers"),
            ("uid_headers", "requestheader-uid-headers"),
            ("group_headers", "requestheader-group-headers"),
            ("extra_headers_prefix", "requestheader-extra-headers-prefix"),
            ("allowed_names", "requestheader-allowed-names"),
        ],
    )
    def test_blank_entries_are_errors(self, field, flag):
        """An entry that is empty after trimming names its flag."""
        with pytest.raises(ConfigError) as info:
            validate_options(RequestHeaderOptions(**{field: ["X-Remote-Uid", " "]}))
        assert f'empty value in "{flag}"' in [str(e) for e in info.value.errors]

    def test_uid_headers_need_the_standard_name(self):
        """UID headers without X-Remote-Uid are an error (API aggregation would break)."""
        with pytest.raises(ConfigError) as info:
            validate_options(RequestHeaderOptions(uid_headers=["X-Uid"]))
        assert str(info.value) == (
            "--requestheader-uid-headers is set without specifying the standard X-Remote-Uid "
            "header - API aggregation will not work"
        )

    def test_uid_headers_need_the_feature_gate(self):
        """UID headers with RemoteRequestHeaderUID off are an error."""
        with pytest.raises(ConfigError, match='requires the "RemoteRequestHeaderUID" feature'):
            validate_options(
                RequestHeaderOptions(uid_headers=["x-remote-uid"]), uid_headers_enabled=False
            )

    def test_errors_come_in_kubernetes_order(self):
        """The four lists first, then the UID headers (blank check, then the standard name)."""
        with pytest.raises(ConfigError) as info:
            validate_options(
                RequestHeaderOptions(
                    uid_headers=[" ", "X-Uid"], group_headers=[""], allowed_names=["\t"]
                )
            )
        assert [str(e) for e in info.value.errors] == [
            'empty value in "requestheader-group-headers"',
            'empty value in "requestheader-allowed-names"',
            'empty value in "requestheader-uid-headers"',
            "--requestheader-uid-headers is set without specifying the standard X-Remote-Uid "
            "header - API aggregation will not work",
        ]

    def test_gate_off_reports_only_the_gate_for_uid_headers(self):
        """With RemoteRequestHeaderUID off, blank UID entries are not checked, only the gate."""
        with pytest.raises(ConfigError) as info:
            validate_options(RequestHeaderOptions(uid_headers=[" "]), uid_headers_enabled=False)
        assert [str(e) for e in info.value.errors] == [
            '--requestheader-uid-headers requires the "RemoteRequestHeaderUID" feature to be '
            "enabled"
        ]

    def test_missing_standard_names_are_warnings(self):
        """Non-standard username/group/extra names only warn."""
        warnings = validate_options(
            RequestHeaderOptions(
                username_headers=["X-User"],
                group_headers=["x-remote-group"],
                extra_headers_prefix=["X-E-"],
            )
        )
        assert warnings == [
            "--requestheader-username-headers is set without specifying the standard "
            "X-Remote-User header - API aggregation will not work",
            "--requestheader-extra-headers-prefix is set without specifying the standard "
            "X-Remote-Extra- header prefix - API aggregation will not work",
        ]

    def test_overlapping_cas_need_allowed_names(self, client_ca, proxy_ca):
        """Sharing a certificate between both bundles is refused unless allowed names are set."""
        shared = client_ca.pem + proxy_ca.pem
        with pytest.raises(ConfigError) as info:
            check_ca_overlap(shared, proxy_ca.pem, [])
        assert str(info.value) == OVERLAPPING_CAS
        check_ca_overlap(shared, proxy_ca.pem, ["front-proxy-client"])
        check_ca_overlap(client_ca.pem, CABundle((proxy_ca.cert,)), [])


class TestBuild:
    def test_build_wires_request_header_and_x509(self, proxy_ca, client_ca, proxy, tmp_path):
        """config.build assembles both authenticators from the flags."""
        (tmp_path / "p.crt").write_bytes(proxy_ca.pem)
        (tmp_path / "c.crt").write_bytes(client_ca.pem)
        options = AuthenticationOptions(
            client_ca_file=str(tmp_path / "c.crt"),
            requestheader=RequestHeaderOptions(
                client_ca_file=str(tmp_path / "p.crt"), username_headers=["X-Remote-User"]
            ),
            anonymous_auth=False,
        )
        root = build(options).request
        ctx = Context(now=NOW_TS)
        by_proxy = run_pure(root.request_flow(view(proxy, ("X-Remote-User", "p")), ctx))
        by_cert = run_pure(root.request_flow(view(client_ca.issue("c")), ctx))
        assert (by_proxy.user.name, by_cert.user.name) == ("p", "c")
        assert "system:authenticated" in by_cert.user.groups


def test_ca_files_overlap_check_reads_the_flag_files(tmp_path, client_ca, proxy_ca):
    """The file-based overlap check refuses a shared CA and skips unset flags."""
    from k8sauthn.request.requestheader import check_ca_files_overlap

    (tmp_path / "c.pem").write_bytes(client_ca.pem + proxy_ca.pem)
    (tmp_path / "p.pem").write_bytes(proxy_ca.pem)
    with pytest.raises(ConfigError, match="overlapping certificates"):
        check_ca_files_overlap(str(tmp_path / "c.pem"), str(tmp_path / "p.pem"), [])
    check_ca_files_overlap(str(tmp_path / "c.pem"), "", [])
    check_ca_files_overlap(str(tmp_path / "c.pem"), str(tmp_path / "p.pem"), ["proxy"])


class TestRequestStep:
    def test_step_answers_what_the_flow_answers(self, proxy_ca, proxy):
        """The synchronous step returns the flow's user for a verified proxy."""
        authn = authn_for(proxy_ca)
        req = view(proxy, ("X-Remote-User", "a"), ("X-Remote-Group", "g"))
        ctx = Context(now=NOW_TS)
        assert authn.request_step(req, ctx) == run_pure(authn.request_flow(req, ctx))
        assert authn.request_step(req, ctx).user.groups == ("g",)

    def test_step_without_certificate_is_no_opinion(self, proxy_ca):
        """No peer certificate: no opinion, headers unread."""
        req = view(None, ("X-Remote-User", "admin"))
        assert authn_for(proxy_ca).request_step(req, Context(now=NOW_TS)) is None

    def test_step_raises_the_flow_error(self, proxy_ca, client_ca):
        """A certificate of another CA raises the same error from the step and the flow."""
        authn = authn_for(proxy_ca)
        req = view(client_ca.issue("alice"), ("X-Remote-User", "admin"))
        ctx = Context(now=NOW_TS)
        with pytest.raises(CertificateRejected) as from_step:
            authn.request_step(req, ctx)
        with pytest.raises(CertificateRejected) as from_flow:
            run_pure(authn.request_flow(req, ctx))
        assert str(from_step.value) == str(from_flow.value)

    def test_union_uses_the_step(self, proxy_ca):
        """A union adopts the step itself instead of stepping the flow."""
        authn = authn_for(proxy_ca)
        union = RequestUnion([authn, authn_for(proxy_ca)])
        assert union._steps[0] == authn.request_step
