"""The real kubectl and the real Python kubernetes client against ``k8sauthn serve`` over TLS."""

from __future__ import annotations

import datetime as dt
import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .._pki import NOW, SERVER_AUTH, Cert, name
from ..conftest import require_tool
from ..server._server import RunningServer

pytestmark = pytest.mark.integration

TOKEN = "kubectl-e2e-token-3c5b1f0e9a"
UNAUTHORIZED = "error: You must be logged in to the server (Unauthorized)"


class Env:
    """Everything the tests share: the PKI on disk, the running server, a kubectl runner."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.root = Cert.new_ca("e2e-client-ca")
        self.inter = self.root.intermediate("e2e-intermediate")
        self.server_ca = Cert.new_ca("e2e-server-ca")
        self.server_cert, self.server_key = self.server_ca.server().write(tmp, "server")
        self.server_ca_file = tmp / "server-ca.crt"
        self.server_ca_file.write_bytes(self.server_ca.pem)
        self.client_ca_file = tmp / "client-ca.crt"
        self.client_ca_file.write_bytes(self.root.pem)
        self.tokens = tmp / "tokens.csv"
        self.tokens.write_text(f'{TOKEN},alice,uid-1001,"dev,readers"\n')
        self.caller = self.root.issue(name("kube-apiserver", orgs=["system:masters"]))
        self.kubectl = require_tool("kubectl")

    def flags(self) -> list[str]:
        return [
            f"--tls-cert-file={self.server_cert}",
            f"--tls-private-key-file={self.server_key}",
            f"--client-ca-file={self.client_ca_file}",
            f"--token-auth-file={self.tokens}",
            "--anonymous-auth=false",
            "--tokenreview-allowed-groups=system:masters",
        ]

    def write_cert(self, cert: Cert, stem: str, *, with_chain: bool = False) -> tuple[Path, Path]:
        return cert.write(self.tmp, stem, with_chain=with_chain)

    def whoami(
        self, url: str, user: dict[str, Any], *, tag: str
    ) -> subprocess.CompletedProcess[str]:
        """``kubectl auth whoami -o json`` with a kubeconfig holding ``user``."""
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "k8sauthn",
                    "cluster": {"server": url, "certificate-authority": str(self.server_ca_file)},
                }
            ],
            "users": [{"name": "u", "user": user}],
            "contexts": [{"name": "c", "context": {"cluster": "k8sauthn", "user": "u"}}],
            "current-context": "c",
        }
        path = self.tmp / f"kubeconfig-{tag}"
        path.write_text(json.dumps(kubeconfig))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.tmp / "home"),
            "KUBECACHEDIR": str(self.tmp / "kube-cache"),
            "KUBECONFIG": str(path),
        }
        return subprocess.run(
            [self.kubectl, "auth", "whoami", "-o", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    return Env(tmp_path_factory.mktemp("kubectl"))


@pytest.fixture(scope="module")
def server(env: Env) -> Iterator[RunningServer]:
    with RunningServer.from_flags(env.flags()) as srv:
        yield srv


def _user_info(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["kind"] == "SelfSubjectReview"
    return doc["status"]["userInfo"]  # type: ignore[no-any-return]


def _exec_plugin(env: Env, tag: str, status: dict[str, str]) -> dict[str, Any]:
    """A tiny exec credential plugin that prints a fixed ExecCredential."""
    script = env.tmp / f"plugin-{tag}.py"
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": status,
    }
    script.write_text(f"import json\nprint(json.dumps({credential!r}))\n")
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": [str(script)],
            "interactiveMode": "Never",
        }
    }


class TestWhoami:
    def test_static_token(self, env, server):
        """A --token-auth-file token: name, uid and groups as kube-apiserver reports them."""
        info = _user_info(env.whoami(server.url, {"token": TOKEN}, tag="token"))
        assert info == {
            "username": "alice",
            "uid": "uid-1001",
            "groups": ["dev", "readers", "system:authenticated"],
        }

    def test_client_certificate(self, env, server):
        """A client certificate: CN as name, O as groups, the credential-id extra."""
        cert, key = env.write_cert(env.root.issue(name("bob", orgs=["ops"])), "bob")
        user = {"client-certificate": str(cert), "client-key": str(key)}
        info = _user_info(env.whoami(server.url, user, tag="cert"))
        assert (info["username"], info["groups"]) == ("bob", ["ops", "system:authenticated"])
        (cred,) = info["extra"]["authentication.kubernetes.io/credential-id"]
        assert cred.startswith("X509SHA256=")

    def test_client_certificate_with_intermediate(self, env, server):
        """Leaf + intermediate in the certificate file verify against the root-only CA file."""
        cert, key = env.write_cert(env.inter.issue("carol"), "carol", with_chain=True)
        user = {"client-certificate": str(cert), "client-key": str(key)}
        assert _user_info(env.whoami(server.url, user, tag="chain"))["username"] == "carol"

    def test_exec_plugin_token(self, env, server):
        """An exec credential plugin returning a token."""
        user = _exec_plugin(env, "token", {"token": TOKEN})
        assert _user_info(env.whoami(server.url, user, tag="exec-token"))["username"] == "alice"

    def test_exec_plugin_client_certificate(self, env, server):
        """An exec credential plugin returning a client certificate and key."""
        dave = env.root.issue(name("dave", orgs=["plugins"]))
        user = _exec_plugin(
            env,
            "cert",
            {"clientCertificateData": dave.pem.decode(), "clientKeyData": dave.key_pem.decode()},
        )
        info = _user_info(env.whoami(server.url, user, tag="exec-cert"))
        assert (
            info["username"],
            info["groups"],
        ) == ("dave", ["plugins", "system:authenticated"])


class TestRejected:
    def test_wrong_token_gets_kubectls_401_text(self, env, server):
        """A rejected token: kubectl's 'You must be logged in' error, exit 1."""
        proc = env.whoami(server.url, {"token": "not-a-valid-token"}, tag="wrong")
        assert proc.returncode == 1
        assert UNAUTHORIZED in proc.stderr

    @pytest.mark.parametrize(
        "kind",
        ["expired", "server-auth-only"],
    )
    def test_bad_certificate_is_http_401_not_a_handshake_failure(self, env, server, kind):
        """A certificate the X.509 authenticator rejects is a 401, never 'Unable to connect'."""
        if kind == "expired":
            cert = env.root.issue(
                "old",
                not_before=NOW - dt.timedelta(days=10),
                not_after=NOW - dt.timedelta(days=1),
            )
        else:
            cert = env.root.issue("srv", eku=SERVER_AUTH)
        c, k = env.write_cert(cert, kind)
        proc = env.whoami(
            server.url, {"client-certificate": str(c), "client-key": str(k)}, tag=kind
        )
        assert UNAUTHORIZED in proc.stderr
        assert "Unable to connect" not in proc.stderr

    def test_32_kib_token_is_401_not_400(self, env, server):
        """A 32 KiB bearer token reaches the authenticator (Go's 1 MiB header limit)."""
        ctx = ssl.create_default_context(cafile=str(env.server_ca_file))
        with httpx.Client(verify=ctx, timeout=10) as client:
            r = client.post(
                server.url + "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                headers={"Authorization": "Bearer " + "x" * 32768},
            )
        assert r.status_code == 401
        assert r.json()["reason"] == "Unauthorized"
        proc = env.whoami(server.url, {"token": "y" * 32768}, tag="huge")
        assert UNAUTHORIZED in proc.stderr


class TestKubernetesClient:
    def _api(self, env: Env, server: RunningServer, caller: Cert, tag: str) -> Any:
        from kubernetes import client

        cert, key = env.write_cert(caller, f"caller-{tag}")
        config = client.Configuration()
        config.host = server.url
        config.ssl_ca_cert = str(env.server_ca_file)
        config.cert_file, config.key_file = str(cert), str(key)
        return client.AuthenticationV1Api(client.ApiClient(config))

    def test_token_review_as_a_cluster_calls_it(self, env, server):
        """The kubernetes client's create_token_review gets the token's user back."""
        from kubernetes import client

        api = self._api(env, server, env.caller, "apiserver")
        review = api.create_token_review(
            client.V1TokenReview(spec=client.V1TokenReviewSpec(token=TOKEN))
        )
        assert review.status.authenticated is True
        assert review.status.user.username == "alice"
        assert review.status.user.groups == ["dev", "readers", "system:authenticated"]
        unknown = api.create_token_review(
            client.V1TokenReview(spec=client.V1TokenReviewSpec(token="nope"))
        )
        assert not unknown.status.authenticated
        assert unknown.status.error == "invalid bearer token"

    def test_caller_outside_the_allowed_groups_is_forbidden(self, env, server):
        """--tokenreview-allowed-groups keeps other authenticated users out (403)."""
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        api = self._api(env, server, env.root.issue("eve"), "eve")
        with pytest.raises(ApiException) as exc:
            api.create_token_review(
                client.V1TokenReview(spec=client.V1TokenReviewSpec(token=TOKEN))
            )
        assert exc.value.status == 403
