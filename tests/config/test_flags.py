"""kube-apiserver's flags -> AuthenticationOptions, with its validation errors and --config."""

from __future__ import annotations

from pathlib import Path

import pytest

from k8sauthn.config.flags import (
    AUTHENTICATION_FLAGS,
    SERVER_FLAGS,
    FlagError,
    ServerOptions,
    flags_markdown,
    parse_serve_args,
)
from k8sauthn.config.options import AuthenticationOptions
from k8sauthn.exceptions import ConfigError

from .._pki import Cert

DOCS = Path(__file__).resolve().parents[2] / "docs" / "flags.md"


class TestDefaults:
    def test_no_flags_gives_kube_apiserver_defaults(self):
        """Every default is kube-apiserver's; anonymous-auth is 'not set', not true."""
        parsed = parse_serve_args([])
        assert AuthenticationOptions() == parsed.authentication
        assert ServerOptions() == parsed.server
        assert (parsed.server.bind_address, parsed.server.secure_port) == ("0.0.0.0", 6443)
        assert parsed.authentication.anonymous_auth is None
        assert parsed.authentication.authentication_token_webhook_cache_ttl == 120.0
        assert parsed.authentication.oidc.signing_algs == ("RS256",)

    def test_table_names_are_unique(self):
        """No flag is defined twice."""
        names = [f.name for f in (*SERVER_FLAGS, *AUTHENTICATION_FLAGS)]
        assert len(names) == len(set(names))


class TestMapping:
    def test_every_authentication_flag_lands_in_its_field(self):
        """A full kube-apiserver command line fills every option."""
        parsed = parse_serve_args(
            [
                "--bind-address=127.0.0.1",
                "--secure-port=8443",
                "--tls-cert-file=/c.crt",
                "--tls-private-key-file=/c.key",
                "--token-auth-file=/tokens.csv",
                "--client-ca-file=/ca.crt",
                "--requestheader-client-ca-file=/proxy-ca.crt",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-uid-headers=X-Remote-Uid",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                "--enable-bootstrap-token-auth",
                "--bootstrap-token-dir=/secrets",
                "--authentication-token-webhook-config-file=/webhook.yaml",
                "--authentication-token-webhook-version=v1",
                "--authentication-token-webhook-cache-ttl=30s",
                "--oidc-issuer-url=https://issuer.example.com",
                "--oidc-client-id=kubernetes",
                "--oidc-ca-file=/oidc-ca.crt",
                "--oidc-username-claim=email",
                "--oidc-username-prefix=oidc:",
                "--oidc-groups-claim=groups",
                "--oidc-groups-prefix=oidc:",
                "--oidc-signing-algs=RS256,ES256",
                "--oidc-required-claim=hd=example.com",
                "--oidc-required-claim=tier=a=b",
                "--anonymous-auth=false",
                "--api-audiences=https://kubernetes.default.svc,api",
                "--token-auth-file-reload",
                "--reload-interval=10s",
                "--tokenreview-allowed-users=kube-apiserver",
                "--tokenreview-allowed-groups=system:masters",
                "--access-log=false",
            ]
        )
        a, s = parsed.authentication, parsed.server
        assert (
            s.bind_address,
            s.secure_port,
            s.tls_cert_file,
            s.tls_private_key_file,
        ) == ("127.0.0.1", 8443, "/c.crt", "/c.key")
        assert (a.token_auth_file, a.client_ca_file) == ("/tokens.csv", "/ca.crt")
        rh = a.requestheader
        assert (
            rh.client_ca_file,
            rh.allowed_names,
            rh.username_headers,
        ) == ("/proxy-ca.crt", ("front-proxy-client",), ("X-Remote-User",))
        assert (
            rh.uid_headers,
            rh.group_headers,
            rh.extra_headers_prefix,
        ) == (("X-Remote-Uid",), ("X-Remote-Group",), ("X-Remote-Extra-",))
        assert (a.enable_bootstrap_token_auth, a.bootstrap_token_dir) == (True, "/secrets")
        assert (
            a.authentication_token_webhook_config_file,
            a.authentication_token_webhook_version,
            a.authentication_token_webhook_cache_ttl,
        ) == ("/webhook.yaml", "v1", 30.0)
        o = a.oidc
        assert (
            o.issuer_url,
            o.client_id,
            o.ca_file,
        ) == ("https://issuer.example.com", "kubernetes", "/oidc-ca.crt")
        assert (
            o.username_claim,
            o.username_prefix,
            o.groups_claim,
            o.groups_prefix,
        ) == ("email", "oidc:", "groups", "oidc:")
        assert o.signing_algs == ("RS256", "ES256")
        assert o.required_claims == (("hd", "example.com"), ("tier", "a=b"))
        assert a.anonymous_auth is False
        assert a.api_audiences == ("https://kubernetes.default.svc", "api")
        assert (a.reload_token_file, a.reload_interval) == (True, 10.0)
        assert (
            s.tokenreview_allowed_users,
            s.tokenreview_allowed_groups,
            s.access_log,
        ) == (("kube-apiserver",), ("system:masters",), False)

    def test_explicit_anonymous_auth_true_counts_as_set(self):
        """--anonymous-auth=true is 'set' even though it is the default (spec §6)."""
        assert parse_serve_args(["--anonymous-auth"]).authentication.anonymous_auth is True
        assert "anonymous-auth" in parse_serve_args(["--anonymous-auth=true"]).explicit

    def test_repeated_required_claim_keeps_the_last_value(self):
        """A Go map: the same key twice keeps the later value."""
        parsed = parse_serve_args(
            [
                "--oidc-issuer-url=https://i",
                "--oidc-client-id=c",
                "--oidc-required-claim=k=1",
                "--oidc-required-claim=k=2",
            ]
        )
        assert parsed.authentication.oidc.required_claims == (("k", "2"),)


class TestValidation:
    @pytest.mark.parametrize(
        "argv",
        [
            ["--oidc-issuer-url=https://i"],
            ["--oidc-client-id=c"],
            ["--oidc-username-claim=sub"],  # set explicitly, even to its default
        ],
    )
    def test_oidc_issuer_and_client_id_together(self, argv):
        """Any --oidc-* flag needs both the issuer URL and the client ID."""
        with pytest.raises(ConfigError) as exc:
            parse_serve_args(argv)
        assert str(exc.value) == (
            "oidc-issuer-url and oidc-client-id must be specified together when any oidc-* "
            "flags are set"
        )

    def test_authentication_config_excludes_oidc_flags(self):
        """--authentication-config and --oidc-* are mutually exclusive."""
        with pytest.raises(ConfigError) as exc:
            parse_serve_args(["--authentication-config=/a.yaml", "--oidc-groups-claim=g"])
        assert (
            str(exc.value) == "authentication-config file and oidc-* flags are mutually exclusive"
        )

    def test_requestheader_empty_values(self):
        """An empty entry in a --requestheader-* list names its flag."""
        with pytest.raises(ConfigError) as exc:
            parse_serve_args(["--requestheader-username-headers=X-Remote-User, "])
        assert str(exc.value) == 'empty value in "requestheader-username-headers"'

    def test_requestheader_uid_headers_need_the_standard_one(self):
        """UID headers without X-Remote-Uid break API aggregation: an error."""
        with pytest.raises(ConfigError, match="without specifying the standard X-Remote-Uid"):
            parse_serve_args(["--requestheader-uid-headers=X-Uid"])
        parse_serve_args(["--requestheader-uid-headers=x-remote-uid"])

    def test_overlapping_client_and_proxy_cas_need_allowed_names(self, tmp_path):
        """The same CA for users and the proxy is refused unless proxy names are pinned."""
        ca = tmp_path / "ca.crt"
        ca.write_bytes(Cert.new_ca("shared").pem)
        argv = [f"--client-ca-file={ca}", f"--requestheader-client-ca-file={ca}"]
        with pytest.raises(ConfigError, match="contain overlapping certificates"):
            parse_serve_args(argv)
        parse_serve_args([*argv, "--requestheader-allowed-names=front-proxy-client"])

    def test_unreadable_ca_files_skip_the_overlap_check(self, tmp_path):
        """As in Go, an unreadable bundle skips the overlap check (loading it fails later)."""
        argv = [f"--client-ca-file={tmp_path}/a", f"--requestheader-client-ca-file={tmp_path}/b"]
        assert parse_serve_args(argv).authentication.client_ca_file == f"{tmp_path}/a"

    def test_non_standard_header_names_only_warn(self):
        """Header lists without the standard names are a warning, not an error."""
        parsed = parse_serve_args(["--requestheader-username-headers=X-User"])
        assert any("X-Remote-User" in w for w in parsed.warnings)

    def test_several_errors_are_aggregated(self):
        """Every problem is reported at once, Kubernetes' aggregate style."""
        with pytest.raises(ConfigError) as exc:
            parse_serve_args(["--secure-port=70000", "--tls-cert-file=/c.crt"])
        assert len(exc.value.errors) == 2
        assert str(exc.value).startswith("[--secure-port 70000 must be between 0 and 65535")
        assert "missing filename for serving cert" in str(exc.value)

    def test_positional_arguments_are_refused(self):
        """kube-apiserver takes no arguments (cobra's text)."""
        with pytest.raises(FlagError) as exc:
            parse_serve_args(["--anonymous-auth", "false"])
        assert str(exc.value) == '"k8sauthn serve" does not take any arguments, got ["false"]'


class TestConfigFile:
    def test_yaml_settings_with_command_line_overrides(self, tmp_path):
        """--config holds flag-named settings; command-line flags win."""
        cfg = tmp_path / "serve.yaml"
        cfg.write_text(
            "bind-address: 127.0.0.1\n"
            "secure_port: 9443\n"
            "token-auth-file: /from-file.csv\n"
            "api-audiences: [a, b]\n"
            "requestheader-group-headers: X-Remote-Group,X-Group\n"
            "oidc-issuer-url: https://i\n"
            "oidc-client-id: c\n"
            "oidc-required-claim: {hd: example.com}\n"
            "anonymous-auth: false\n"
            "authentication-token-webhook-cache-ttl: 30\n"
            "reload-interval: 2m\n"
        )
        parsed = parse_serve_args([f"--config={cfg}", "--token-auth-file=/cli.csv"])
        a, s = parsed.authentication, parsed.server
        assert (s.bind_address, s.secure_port) == ("127.0.0.1", 9443)
        assert a.token_auth_file == "/cli.csv"
        assert a.api_audiences == ("a", "b")
        assert a.requestheader.group_headers == ("X-Remote-Group", "X-Group")
        assert a.oidc.required_claims == (("hd", "example.com"),)
        assert a.anonymous_auth is False
        assert (a.authentication_token_webhook_cache_ttl, a.reload_interval) == (30.0, 120.0)

    def test_required_claims_as_a_list(self, tmp_path):
        """oidc-required-claim may also be a list of key=value strings."""
        cfg = tmp_path / "c.yaml"
        cfg.write_text(
            "oidc-issuer-url: https://i\noidc-client-id: c\noidc-required-claim: [a=1, b=2]\n"
        )
        parsed = parse_serve_args([f"--config={cfg}"])
        assert parsed.authentication.oidc.required_claims == (("a", "1"), ("b", "2"))

    def test_unknown_and_malformed_settings_are_all_reported(self, tmp_path):
        """Unknown keys and bad values are errors naming the file and the key."""
        cfg = tmp_path / "c.yaml"
        cfg.write_text("tokenauthfile: x\nsecure-port: many\nbind-address: [1]\nconfig: x\n")
        with pytest.raises(ConfigError) as exc:
            parse_serve_args([f"--config={cfg}"])
        text = str(exc.value)
        assert f"--config {cfg}: unknown setting 'tokenauthfile'" in text
        assert f"--config {cfg}: unknown setting 'config'" in text
        assert 'secure-port: invalid argument "many"' in text
        assert "bind-address: unexpected value of type list" in text

    @pytest.mark.parametrize(
        ("content", "message"),
        [("a: [", "invalid YAML"), ("- a\n- b\n", "must be a mapping")],
    )
    def test_bad_documents(self, tmp_path, content, message):
        """A file that is not a YAML mapping is refused."""
        cfg = tmp_path / "c.yaml"
        cfg.write_text(content)
        with pytest.raises(ConfigError, match=message):
            parse_serve_args([f"--config={cfg}"])

    def test_empty_file_and_missing_file(self, tmp_path):
        """An empty file changes nothing; a missing one is a ConfigError."""
        cfg = tmp_path / "c.yaml"
        cfg.write_text("")
        assert AuthenticationOptions() == parse_serve_args([f"--config={cfg}"]).authentication
        with pytest.raises(ConfigError, match="unable to read config file"):
            parse_serve_args([f"--config={tmp_path / 'nope.yaml'}"])


class TestReference:
    def test_docs_flags_md_is_generated_from_the_parser(self):
        """docs/flags.md is exactly flags_markdown(); regenerate it when this fails."""
        assert DOCS.read_text() == flags_markdown(), (
            "docs/flags.md drifted: python -c 'from k8sauthn.config.flags import "
            'flags_markdown; print(flags_markdown(), end="")\' > docs/flags.md'
        )

    def test_reference_lists_every_flag_with_its_default(self):
        """Every flag and its kube-apiserver default appear in the reference."""
        text = flags_markdown()
        for flag in (*SERVER_FLAGS, *AUTHENTICATION_FLAGS):
            assert f"`--{flag.name}`" in text
        assert "| `--authentication-token-webhook-cache-ttl` | duration | `2m0s` |" in text
        assert "| `--oidc-signing-algs` | strings | `[RS256]` |" in text
        assert "`--etcd-servers`" in text
