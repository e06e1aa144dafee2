"""The extension-apiserver-authentication ConfigMap as a configuration source (spec §10.5)."""

from __future__ import annotations

import json

import pytest
import yaml

from k8sauthn import AuthenticationError, ConfigError, Headers, RequestView
from k8sauthn.config.configmap import (
    authenticators_from_configmap,
    load_configmap,
    parse_configmap,
)
from tests._pki import Cert
from tests.request.test_x509_support import NOW_TS, chain


@pytest.fixture(scope="module")
def cas() -> tuple[Cert, Cert]:
    return Cert.new_ca("cm-client-ca"), Cert.new_ca("cm-front-proxy-ca")


def configmap(client: Cert | None, proxy: Cert | None, **lists: list[str] | str) -> dict:
    data: dict[str, str] = {}
    if client is not None:
        data["client-ca-file"] = client.pem.decode()
    if proxy is not None:
        data["requestheader-client-ca-file"] = proxy.pem.decode()
    for key, value in lists.items():
        data[key.replace("_", "-")] = value if isinstance(value, str) else json.dumps(value)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "extension-apiserver-authentication", "namespace": "kube-system"},
        "data": data,
    }


class TestParse:
    def test_yaml_configmap_is_read(self, cas):
        """Both CA bundles and every JSON list come out of a YAML ConfigMap."""
        client, proxy = cas
        doc = configmap(
            client,
            proxy,
            requestheader_username_headers=["X-Remote-User"],
            requestheader_uid_headers=["X-Remote-Uid"],
            requestheader_group_headers=["X-Remote-Group"],
            requestheader_extra_headers_prefix=["X-Remote-Extra-"],
            requestheader_allowed_names=["front-proxy-client"],
        )
        got = parse_configmap(yaml.safe_dump(doc))
        assert [c.subject for c in got.client_ca.certs] == [client.cert.subject]
        assert [c.subject for c in got.requestheader_ca.certs] == [proxy.cert.subject]
        opts = got.requestheader_options()
        assert opts.username_headers == ("X-Remote-User",)
        assert opts.uid_headers == ("X-Remote-Uid",)
        assert opts.group_headers == ("X-Remote-Group",)
        assert opts.extra_headers_prefix == ("X-Remote-Extra-",)
        assert opts.allowed_names == ("front-proxy-client",)

    def test_json_configmap_and_absent_keys(self, cas):
        """JSON works too; absent or empty keys are nil lists and no CA."""
        doc = configmap(cas[0], None, requestheader_allowed_names="")
        got = parse_configmap(json.dumps(doc).encode())
        assert got.requestheader_ca is None
        assert got.allowed_names == ()
        assert got.username_headers == ()

    def test_every_bad_value_is_reported(self, cas):
        """Non-array values and broken bundles are all listed in one ConfigError."""
        doc = configmap(
            None,
            None,
            requestheader_username_headers='"X-Remote-User"',
            requestheader_group_headers="[1]",
            requestheader_allowed_names="not json",
        )
        doc["data"]["client-ca-file"] = "no certificates"
        with pytest.raises(ConfigError) as info:
            parse_configmap(json.dumps(doc))
        paths = [e.path for e in info.value.errors]
        assert paths == [
            "data.client-ca-file",
            "data.requestheader-username-headers",
            "data.requestheader-group-headers",
            "data.requestheader-allowed-names",
        ]

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("- a list", "a ConfigMap must be a mapping"),
            ("kind: Secret", "must be ConfigMap"),
            ("data: [1]", "must be a mapping of strings"),
            ("a: [", "unable to parse ConfigMap"),
        ],
    )
    def test_wrong_documents_are_rejected(self, text, message):
        """Documents that are not a ConfigMap are configuration errors."""
        with pytest.raises(ConfigError, match=message):
            parse_configmap(text)

    @pytest.mark.parametrize(
        "text", ["a: " + "[" * 100_000 + "]" * 100_000, "data: {x: " + "9" * 5000 + "}"]
    )
    def test_hostile_documents_are_config_errors(self, text):
        """Deep nesting or a giant integer is a ConfigError, not a stray interpreter error."""
        with pytest.raises(ConfigError, match=r"^unable to parse ConfigMap: "):
            parse_configmap(text)

    def test_non_string_bundle_is_rejected(self):
        """A CA key must hold a PEM string."""
        with pytest.raises(ConfigError, match="must be a PEM string"):
            parse_configmap(json.dumps({"data": {"client-ca-file": 5}}))


class TestAuthenticators:
    def test_configmap_builds_both_authenticators_and_follows_ca_changes(self, cas, tmp_path):
        """A delegated server authenticates proxies and clients from the file, and reloads it."""
        client, proxy = cas
        path = tmp_path / "cm.yaml"
        doc = configmap(
            client,
            proxy,
            requestheader_username_headers=["X-Remote-User"],
            requestheader_allowed_names=["front-proxy-client"],
        )
        path.write_text(yaml.safe_dump(doc))
        cm = load_configmap(path, reload_interval=0)
        rh, x5 = authenticators_from_configmap(cm)
        proxied = RequestView(
            Headers([("X-Remote-User", "alice")]), chain(proxy.issue("front-proxy-client"))
        )
        assert rh.authenticate(proxied, NOW_TS).user.name == "alice"
        assert x5.authenticate(chain(client.issue("bob")), NOW_TS).user.name == "bob"

        rotated = Cert.new_ca("rotated-client-ca")
        path.write_text(yaml.safe_dump(configmap(rotated, proxy)))
        assert x5.authenticate(chain(rotated.issue("carol")), NOW_TS).user.name == "carol"

    def test_allowed_names_follow_the_configmap(self, cas, tmp_path):
        """A reloaded allowed-names list applies to the next request (it is a trust decision)."""
        _, proxy = cas
        path = tmp_path / "cm.yaml"
        lists = {"requestheader_username_headers": ["X-Remote-User"]}
        doc = configmap(None, proxy, requestheader_allowed_names=["front-proxy-client"], **lists)
        path.write_text(yaml.safe_dump(doc))
        cm = load_configmap(path, reload_interval=0)
        rh, _ = authenticators_from_configmap(cm)
        proxied = RequestView(
            Headers([("X-Remote-User", "alice")]), chain(proxy.issue("front-proxy-client"))
        )
        assert rh.authenticate(proxied, NOW_TS).user.name == "alice"

        doc = configmap(None, proxy, requestheader_allowed_names=["other-proxy"], **lists)
        path.write_text(yaml.safe_dump(doc))
        with pytest.raises(AuthenticationError, match="cn=front-proxy-client is not in the"):
            rh.authenticate(proxied, NOW_TS)

    def test_missing_cas_build_nothing(self, tmp_path):
        """Without CA keys neither authenticator exists."""
        path = tmp_path / "cm.json"
        path.write_text(json.dumps(configmap(None, None)))
        assert authenticators_from_configmap(load_configmap(path)) == (None, None)
