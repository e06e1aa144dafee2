"""Webhook kubeconfig loading: current context, TLS material, credentials, client-go errors."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from k8sauthn import ConfigError
from k8sauthn.config.kubeconfig import load_kubeconfig, parse_kubeconfig

from .._pki import Cert


def config(cluster: dict[str, object], user: dict[str, object] | None = None) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "hook",
        "clusters": [{"name": "authn", "cluster": cluster}],
        "users": [{"name": "apiserver", "user": user or {}}],
        "contexts": [{"name": "hook", "context": {"cluster": "authn", "user": "apiserver"}}],
    }


def write(tmp_path: Path, doc: object, name: str = "kubeconfig.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc) if name.endswith(".yaml") else json.dumps(doc))
    return path


@pytest.fixture(scope="module")
def pki() -> tuple[Cert, Cert]:
    ca = Cert.new_ca("kubeconfig-ca")
    return ca, ca.issue("apiserver")


class TestLoad:
    def test_files_resolved_relative_to_the_kubeconfig(self, tmp_path: Path, pki) -> None:
        """certificate-authority and client cert/key paths are relative to the file's directory."""
        ca, client = pki
        (tmp_path / "ca.pem").write_bytes(ca.pem)
        client.write(tmp_path, "client")
        doc = config(
            {"server": "https://h:8443/authn?q=1", "certificate-authority": "ca.pem"},
            {"client-certificate": "client.crt", "client-key": "client.key"},
        )
        kc = load_kubeconfig(write(tmp_path, doc))
        assert kc.server == "https://h:8443/authn?q=1"
        assert kc.tls is not None
        assert kc.tls.ca_pem == ca.pem
        assert kc.tls.client_cert_pem == client.pem
        assert kc.tls.client_key_pem == client.key_pem
        assert kc.headers == {}

    def test_inline_data_json(self, tmp_path: Path, pki) -> None:
        """*-data fields are base64 and JSON kubeconfigs load too."""
        ca, client = pki
        b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
        doc = config(
            {
                "server": "https://h",
                "certificate-authority-data": b64(ca.pem),
                "tls-server-name": "x",
            },
            {"client-certificate-data": b64(client.pem), "client-key-data": b64(client.key_pem)},
        )
        kc = load_kubeconfig(write(tmp_path, doc, "kc.json"))
        assert kc.tls is not None
        assert (kc.tls.ca_pem, kc.tls.server_name) == (ca.pem, "x")
        assert kc.tls.client_key_pem == client.key_pem

    def test_token_and_token_file(self, tmp_path: Path) -> None:
        """A token (inline or tokenFile) becomes a bearer Authorization header, never shown."""
        kc = parse_kubeconfig(yaml.safe_dump(config({"server": "https://h"}, {"token": "t0k"})))
        assert kc.headers == {"Authorization": "Bearer t0k"}
        assert kc.tls is None
        assert "t0k" not in repr(kc)
        (tmp_path / "tok").write_text("file-token\n")
        doc = config({"server": "https://h"}, {"tokenFile": "tok"})
        kc = parse_kubeconfig(yaml.safe_dump(doc), base_dir=tmp_path)
        assert kc.headers == {"Authorization": "Bearer file-token"}

    def test_basic_auth(self) -> None:
        """username/password become basic credentials."""
        doc = config({"server": "https://h"}, {"username": "u", "password": "p"})
        kc = parse_kubeconfig(yaml.safe_dump(doc))
        assert kc.headers == {"Authorization": "Basic " + base64.b64encode(b"u:p").decode()}

    def test_insecure(self) -> None:
        """insecure-skip-tls-verify is carried into the TLS settings."""
        doc = config({"server": "https://h", "insecure-skip-tls-verify": True})
        kc = parse_kubeconfig(yaml.safe_dump(doc))
        assert kc.tls is not None
        assert kc.tls.insecure_skip_verify

    def test_missing_user_means_no_credentials(self) -> None:
        """A context naming a missing user loads; calls carry no credentials."""
        doc = config({"server": "https://h"})
        doc["users"] = []
        assert parse_kubeconfig(yaml.safe_dump(doc)).headers == {}


class TestErrors:
    @pytest.mark.parametrize("text", ["", "current-context: ''\n", "kind: Config\n"])
    def test_no_configuration(self, text: str) -> None:
        """No current context is client-go's 'no configuration has been provided'."""
        with pytest.raises(ConfigError) as err:
            parse_kubeconfig(text)
        assert str(err.value) == "invalid configuration: no configuration has been provided"

    def test_unknown_context(self) -> None:
        """A current-context that does not exist is named in the error."""
        doc = config({"server": "https://h"})
        doc["current-context"] = "nope"
        with pytest.raises(ConfigError) as err:
            parse_kubeconfig(yaml.safe_dump(doc))
        assert str(err.value) == (
            "invalid configuration: context was not found for specified context: nope"
        )

    def test_no_server(self) -> None:
        """A cluster without a server, or a missing cluster, fails."""
        with pytest.raises(ConfigError, match='no server found for cluster "authn"'):
            parse_kubeconfig(yaml.safe_dump(config({"certificate-authority-data": ""})))
        doc = config({"server": "https://h"})
        doc["clusters"] = []
        with pytest.raises(ConfigError, match="cluster has no server defined"):
            parse_kubeconfig(yaml.safe_dump(doc))

    def test_unreadable_ca(self, tmp_path: Path) -> None:
        """An unreadable certificate-authority fails at load time with client-go's wording."""
        doc = config({"server": "https://h", "certificate-authority": "missing.pem"})
        with pytest.raises(ConfigError) as err:
            load_kubeconfig(write(tmp_path, doc))
        assert str(err.value).startswith(
            "invalid configuration: unable to read certificate-authority missing.pem for "
            "authn due to open "
        )
        assert "no such file or directory" in str(err.value)

    def test_several_errors_are_aggregated(self, pki) -> None:
        """Every problem is reported at once, and key material never appears in the text."""
        _, client = pki
        b64 = base64.b64encode(client.key_pem).decode()
        doc = config(
            {"server": "", "certificate-authority": "a", "certificate-authority-data": "Zm9v"},
            {"client-key-data": b64, "exec": {"command": "x"}},
        )
        with pytest.raises(ConfigError) as err:
            parse_kubeconfig(yaml.safe_dump(doc))
        text = str(err.value)
        assert text.startswith("invalid configuration: [")
        assert "certificate-authority-data and certificate-authority are both specified" in text
        assert "client-cert-data or client-cert must be specified for apiserver" in text
        assert "exec is not supported" in text
        assert b64 not in text
        assert "PRIVATE KEY" not in text

    @pytest.mark.parametrize(
        ("cluster", "user", "needle"),
        [
            (
                {"insecure-skip-tls-verify": True, "certificate-authority-data": "Zm9v"},
                {},
                "insecure flag",
            ),
            ({"certificate-authority-data": "!!"}, {}, "not valid base64"),
            ({"proxy-url": "http://p"}, {}, "proxy-url is not supported"),
            ({}, {"client-certificate-data": "Zm9v"}, "client-key-data or client-key must be"),
            ({}, {"token": "a", "username": "b"}, "more than one authentication method"),
            ({}, {"tokenFile": "/nonexistent/tok"}, "unable to read tokenFile"),
            ({}, {"token": 5}, "token for user 'apiserver' must be a string"),
        ],
    )
    def test_invalid_settings(self, cluster, user, needle: str) -> None:
        """Conflicting or unsupported settings are configuration errors."""
        doc = config({"server": "https://h", **cluster}, user)
        with pytest.raises(ConfigError, match=needle):
            parse_kubeconfig(yaml.safe_dump(doc))

    def test_tls_material_is_checked_at_load(self, pki) -> None:
        """A bad CA, certificate or key fails at load with Go's text, not as an ssl error later."""
        ca, client = pki
        other = Cert.new_ca("other").issue("x")

        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode()

        cases = [
            ({"certificate-authority-data": b64(b"not a pem")}, {}, "unable to load root"),
            (
                {},
                {"client-certificate-data": b64(b"x"), "client-key-data": b64(client.key_pem)},
                "failed to find any PEM data in certificate input",
            ),
            (
                {},
                {"client-certificate-data": b64(client.pem), "client-key-data": b64(b"x")},
                "failed to parse private key",
            ),
            (
                {},
                {
                    "client-certificate-data": b64(client.pem),
                    "client-key-data": b64(other.key_pem),
                },
                "private key does not match public key",
            ),
        ]
        for cluster, user, needle in cases:
            doc = config({"server": "https://h", **cluster}, user)
            with pytest.raises(ConfigError, match=needle) as err:
                parse_kubeconfig(yaml.safe_dump(doc))
            assert "PRIVATE KEY" not in str(err.value)
        good = config(
            {"server": "https://h", "certificate-authority-data": b64(ca.pem)},
            {"client-certificate-data": b64(client.pem), "client-key-data": b64(client.key_pem)},
        )
        assert parse_kubeconfig(yaml.safe_dump(good)).tls is not None

    @pytest.mark.parametrize(
        "text",
        [
            "[1, 2]",
            "kind: Pod\n",
            "current-context: [x]\n",
            "current-context: c\ncontexts: {}\n",
            "current-context: c\ncontexts: [{context: {}}]\n",
            "current-context: c\ncontexts: [{name: c, context: []}]\n",
            "{unclosed",
            "current-context: c\ncontexts: [{name: c, context: {}}, {name: c, context: {}}]\n",
            "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
            "clusters: [{name: k, cluster: {server: h, insecure-skip-tls-verify: 'yes'}}]\n",
        ],
    )
    def test_malformed_documents(self, text: str) -> None:
        """Documents of the wrong shape are rejected with a ConfigError, not a crash."""
        with pytest.raises(ConfigError):
            parse_kubeconfig(text)


def test_client_repr_hides_url_credentials() -> None:
    """A server URL with user-info or a query never shows them in the client's repr."""
    from k8sauthn.config.kubeconfig import KubeconfigClient

    text = repr(KubeconfigClient(server="https://admin:hunter2@authn.example/x?token=t0k"))
    assert "hunter2" not in text
    assert "t0k" not in text
    assert "authn.example/x" in text
