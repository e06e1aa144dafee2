"""Bootstrap Secret sources: manifests on disk (reloaded) and a live Secrets API over HTTPS."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from k8sauthn import BackendUnavailable, ConfigError, Context, TLSConfig, run_pure
from k8sauthn.io import Authenticator
from k8sauthn.kubeapi import KubeAPI
from k8sauthn.token.bootstrap import BootstrapTokenAuthenticator
from k8sauthn.token.bootstrap_sources import (
    LIST_PATH,
    DirectorySecretSource,
    KubernetesSecretSource,
    parse_secret_manifests,
)

from .._pki import Cert
from ._drive import drive
from ._https_server import HTTPSServer, Seen

NOW = 1_800_000_000.0
TOKEN = "abcdef.0123456789abcdef"


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def secret_obj(token_id: str = "abcdef", secret: str = "0123456789abcdef", **meta: object) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system", **meta},
        "type": "bootstrap.kubernetes.io/token",
        "data": {
            "token-id": b64(token_id),
            "token-secret": b64(secret),
            "usage-bootstrap-authentication": b64("true"),
        },
    }


YAML_MANIFEST = """\
apiVersion: v1
kind: Secret
metadata:
  name: bootstrap-token-abcdef
  namespace: kube-system
type: bootstrap.kubernetes.io/token
stringData:
  token-id: abcdef
  token-secret: 0123456789abcdef
  usage-bootstrap-authentication: "true"
  auth-extra-groups: system:bootstrappers:kubeadm:default-node-token
"""


class TestManifests:
    def test_yaml_string_data(self) -> None:
        """stringData entries are read as plain text."""
        secrets = parse_secret_manifests(YAML_MANIFEST.encode())
        data = secrets["bootstrap-token-abcdef"].data
        assert data is not None
        assert data["token-secret"] == b"0123456789abcdef"

    def test_string_data_overrides_data(self) -> None:
        """stringData wins over data for the same key, as the API server merges them."""
        obj = secret_obj()
        obj["stringData"] = {"token-secret": "ffffffffffffffff"}
        data = parse_secret_manifests(json.dumps(obj).encode())["bootstrap-token-abcdef"].data
        assert data is not None
        assert data["token-secret"] == b"ffffffffffffffff"
        assert data["token-id"] == b"abcdef"

    def test_lists_multidoc_and_namespaces(self) -> None:
        """List objects and multi-document YAML unroll; other namespaces are ignored."""
        other = secret_obj("zzzzzz")
        other["metadata"]["namespace"] = "default"
        doc = {"apiVersion": "v1", "kind": "List", "items": [secret_obj(), other]}
        text = json.dumps(doc) + "\n---\n" + json.dumps(secret_obj("bbbbbb", deletionTimestamp="x"))
        secrets = parse_secret_manifests(text.encode())
        assert sorted(secrets) == ["bootstrap-token-abcdef", "bootstrap-token-bbbbbb"]
        assert secrets["bootstrap-token-bbbbbb"].deleting

    def test_secret_without_data(self) -> None:
        """A Secret with no data at all keeps data=None (a no-opinion case)."""
        obj = secret_obj()
        del obj["data"]
        assert (
            parse_secret_manifests(json.dumps(obj).encode())["bootstrap-token-abcdef"].data is None
        )

    @pytest.mark.parametrize(
        "text",
        [
            "{unclosed",
            "- 1\n",
            "kind: ConfigMap\nmetadata: {name: x}\n",
            "kind: Secret\nmetadata: {}\n",
            "kind: Secret\nmetadata: {name: x}\ndata: [1]\n",
            "kind: Secret\nmetadata: {name: x}\ndata: {a: '!!'}\n",
            "kind: Secret\nmetadata: {name: x}\nstringData: {a: 1}\n",
            "kind: Secret\nmetadata: {name: x}\ntype: 5\n",
            "kind: List\nitems: 5\n",
        ],
    )
    def test_invalid_manifests(self, text: str) -> None:
        """Malformed manifests are configuration errors naming the file."""
        with pytest.raises(ConfigError, match=r"f\.yaml"):
            parse_secret_manifests(text.encode(), "f.yaml")


class TestDirectory:
    def test_reads_yaml_and_json_and_follows_changes(self, tmp_path: Path) -> None:
        """The directory is rescanned after the interval; changed and new files take effect."""
        (tmp_path / "a.yaml").write_text(YAML_MANIFEST)
        (tmp_path / "ignored.txt").write_text("garbage")
        clock = [0.0]
        source = DirectorySecretSource(tmp_path, interval=10, clock=lambda: clock[0])
        auth = BootstrapTokenAuthenticator(source)
        resp = run_pure(auth.token_flow(TOKEN, Context(now=NOW)))
        assert resp is not None
        assert "system:bootstrappers:kubeadm:default-node-token" in resp.user.groups

        (tmp_path / "a.yaml").write_text(YAML_MANIFEST.replace("0123456789abcdef", "x" * 16))
        (tmp_path / "b.json").write_text(json.dumps(secret_obj("bbbbbb")))
        assert run_pure(auth.token_flow(TOKEN, Context(now=NOW))) is not None  # not yet rescanned
        clock[0] = 11.0
        assert run_pure(auth.token_flow(TOKEN, Context(now=NOW))) is None
        other = "bbbbbb.0123456789abcdef"
        assert run_pure(auth.token_flow(other, Context(now=NOW))) is not None
        assert "abcdef" not in repr(source) or "0123456789abcdef" not in repr(source)

    def test_broken_file_keeps_last_good(self, tmp_path: Path) -> None:
        """A file that stops parsing keeps its previous Secrets and reports the error."""
        (tmp_path / "a.yaml").write_text(YAML_MANIFEST)
        errors: list[Exception] = []
        source = DirectorySecretSource(tmp_path, on_error=errors.append)
        (tmp_path / "a.yaml").write_text("{broken")
        source.check()
        assert isinstance(source.last_error, ConfigError)
        assert errors == [source.last_error]
        assert run_pure(source.secret_flow("bootstrap-token-abcdef", Context(now=NOW))) is not None

    def test_removed_file_removes_tokens(self, tmp_path: Path) -> None:
        """Deleting a manifest revokes its tokens at the next scan."""
        (tmp_path / "a.yaml").write_text(YAML_MANIFEST)
        source = DirectorySecretSource(tmp_path)
        (tmp_path / "a.yaml").unlink()
        source.check()
        assert run_pure(source.secret_flow("bootstrap-token-abcdef", Context(now=NOW))) is None

    def test_startup_errors_raise(self, tmp_path: Path) -> None:
        """A bad file or a missing directory at start-up is a configuration error."""
        with pytest.raises(ConfigError, match="unable to list"):
            DirectorySecretSource(tmp_path / "missing")
        (tmp_path / "a.yaml").write_text("{broken")
        with pytest.raises(ConfigError):
            DirectorySecretSource(tmp_path)

    def test_directory_vanishing_later_keeps_tokens(self, tmp_path: Path) -> None:
        """If the directory disappears after start-up the last Secrets stay in force."""
        sub = tmp_path / "d"
        sub.mkdir()
        (sub / "a.yaml").write_text(YAML_MANIFEST)
        source = DirectorySecretSource(sub)
        (sub / "a.yaml").unlink()
        sub.rmdir()
        source.check()
        assert source.last_error is not None
        assert run_pure(source.secret_flow("bootstrap-token-abcdef", Context(now=NOW))) is not None


class TestKubernetesSourceFlow:
    def api(self) -> KubeAPI:
        return KubeAPI("https://k8s", headers={"Authorization": "Bearer sa"})

    def listing(self, *items: dict) -> object:
        from k8sauthn import Fetched

        body = json.dumps({"kind": "SecretList", "apiVersion": "v1", "items": list(items)})
        return Fetched(200, {}, body.encode(), NOW)

    def test_lists_once_per_ttl(self) -> None:
        """The Secret list is fetched once and served until the TTL passes."""
        source = KubernetesSecretSource(self.api(), ttl=30)
        auth = BootstrapTokenAuthenticator(source)
        resp, effects = drive(
            auth.token_flow(TOKEN, Context(now=NOW)), [self.listing(secret_obj())]
        )
        assert resp is not None
        assert effects[1].url == "https://k8s" + LIST_PATH
        assert drive(auth.token_flow(TOKEN, Context(now=NOW + 29)), [])[0] is not None
        assert drive(auth.token_flow(TOKEN, Context(now=NOW + 30)), [self.listing()])[0] is None

    def test_failure_without_snapshot_is_an_error(self) -> None:
        """With nothing listed yet, a failed list is the lister error."""
        from k8sauthn import Fetched

        auth = BootstrapTokenAuthenticator(KubernetesSecretSource(self.api()))
        with pytest.raises(BackendUnavailable):
            drive(auth.token_flow(TOKEN, Context(now=NOW)), [Fetched(403, {}, b"", NOW)])
        with pytest.raises(BackendUnavailable, match="not a SecretList"):
            drive(auth.token_flow(TOKEN, Context(now=NOW)), [Fetched(200, {}, b"[]", NOW)])
        with pytest.raises(BackendUnavailable, match="not JSON"):
            drive(auth.token_flow(TOKEN, Context(now=NOW)), [Fetched(200, {}, b"<", NOW)])

    def test_failure_keeps_last_list(self) -> None:
        """A failed refresh keeps serving the last list and retries after `retry` seconds."""
        source = KubernetesSecretSource(self.api(), ttl=10, retry=5)
        auth = BootstrapTokenAuthenticator(source)
        drive(auth.token_flow(TOKEN, Context(now=NOW)), [self.listing(secret_obj())])
        down = BackendUnavailable("GET: ConnectError")
        assert drive(auth.token_flow(TOKEN, Context(now=NOW + 10)), [down])[0] is not None
        assert source.last_error is down
        assert drive(auth.token_flow(TOKEN, Context(now=NOW + 14)), [])[0] is not None
        assert drive(auth.token_flow(TOKEN, Context(now=NOW + 15)), [self.listing()])[0] is None
        assert source.last_error is None

    def test_malformed_items_are_skipped(self) -> None:
        """One bad item in the list does not hide the others."""
        bad = {"kind": "Secret", "metadata": {}}
        source = KubernetesSecretSource(self.api())
        auth = BootstrapTokenAuthenticator(source)
        listing = self.listing(bad, "x", secret_obj())  # type: ignore[arg-type]
        assert drive(auth.token_flow(TOKEN, Context(now=NOW)), [listing])[0] is not None
        assert "sa" not in repr(source).replace("https", "")


@pytest.mark.integration
def test_live_secrets_api_over_https(tmp_path: Path, root_ca: Cert) -> None:
    """Against a real HTTPS Secrets API: authenticated list, TTL, single list for many callers."""
    secrets = [secret_obj()]

    def handler(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        if seen.headers.get("authorization") != "Bearer sa-token":
            return 401, {}, b""
        if seen.path != LIST_PATH:
            return 404, {}, b""
        return 200, {}, json.dumps({"kind": "SecretList", "items": secrets}).encode()

    with HTTPSServer(handler, tmp_path, root_ca.server()) as srv:
        api = KubeAPI(
            srv.url, tls=TLSConfig(ca_pem=root_ca.pem), headers={"Authorization": "Bearer sa-token"}
        )
        clock = [NOW]
        source = KubernetesSecretSource(api, ttl=30)
        with Authenticator(BootstrapTokenAuthenticator(source), clock=lambda: clock[0]) as runner:
            assert runner.authenticate_token(TOKEN) is not None
            assert runner.authenticate_token("abcdef.ffffffffffffffff") is None
            assert srv.calls() == 1
            secrets.clear()
            clock[0] += 31
            assert runner.authenticate_token(TOKEN) is None
            assert srv.calls() == 2


class TestBuild:
    def test_options_with_a_token_directory(self, tmp_path: Path) -> None:
        """--enable-bootstrap-token-auth with a directory authenticates through the built chain."""
        from k8sauthn.config.build import build
        from k8sauthn.config.options import AuthenticationOptions

        (tmp_path / "a.yaml").write_text(YAML_MANIFEST)
        options = AuthenticationOptions(
            enable_bootstrap_token_auth=True, bootstrap_token_dir=str(tmp_path)
        )
        chain = build(options)
        assert chain.token is not None
        resp = Authenticator(chain.token).authenticate_token(TOKEN)
        assert resp is not None
        assert resp.user.name == "system:bootstrap:abcdef"
        assert build(AuthenticationOptions(bootstrap_token_dir=str(tmp_path))).token is None

    def test_outside_a_cluster_without_directory(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without a directory the cluster is needed; outside one that is a ConfigError."""
        from k8sauthn.config.build import build
        from k8sauthn.config.options import AuthenticationOptions

        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        with pytest.raises(ConfigError, match="needs --bootstrap-token-dir"):
            build(AuthenticationOptions(enable_bootstrap_token_auth=True))
