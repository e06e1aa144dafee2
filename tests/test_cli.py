"""The ``k8sauthn`` command: usage, ``check``, ``serve`` and ``demo``."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from k8sauthn.cli import check_command, command_help, main

from ._pki import NOW, Cert, name

TOKEN = "cli-check-token-0123456789"


@pytest.fixture(scope="module")
def ca() -> Cert:
    return Cert.new_ca("cli-ca")


@pytest.fixture
def flags(tmp_path: Path, ca: Cert) -> list[str]:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text(f'{TOKEN},alice,uid-1,"dev"\n')
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(ca.pem)
    return [f"--token-auth-file={tokens}", f"--client-ca-file={ca_file}", "--anonymous-auth=false"]


def run_check(argv: list[str]) -> tuple[int, dict[str, object]]:
    out = io.StringIO()
    code = check_command(argv, out)
    return code, json.loads(out.getvalue())


class TestMain:
    def test_no_arguments_prints_usage_and_exits_2(self, capsys):
        """Without a command the usage goes to stdout, exit 2."""
        assert main([]) == 2
        assert "k8sauthn serve" in capsys.readouterr().out

    def test_help(self, capsys):
        """--help is exit 0."""
        assert main(["--help"]) == 0
        assert "Usage:" in capsys.readouterr().out

    def test_unknown_command(self, capsys):
        """An unknown command is exit 2 with cobra's wording."""
        assert main(["serv"]) == 2
        assert 'Error: unknown command "serv" for "k8sauthn"' in capsys.readouterr().err

    def test_port_in_use_is_a_clean_error(self, flags, capsys):
        """A port that cannot be bound is an error message, not a traceback."""
        import socket

        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            assert main(["serve", "--bind-address=127.0.0.1", f"--secure-port={port}", *flags]) == 1
        assert f"failed to listen on 127.0.0.1:{port}" in capsys.readouterr().err

    def test_demo_takes_no_arguments(self, capsys):
        """A stray argument to demo is a usage error."""
        assert main(["demo", "extra"]) == 1
        assert "does not take any arguments" in capsys.readouterr().err

    def test_bad_flag_is_exit_1_with_pflags_text(self, capsys):
        """A flag error prints 'Error: ...' and a hint, exit 1."""
        assert main(["serve", "--nope"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("Error: unknown flag: --nope\n")
        assert "k8sauthn serve --help" in err

    @pytest.mark.parametrize("command", ["serve", "check", "demo"])
    def test_subcommand_help(self, command, capsys):
        """Each subcommand lists its flags."""
        assert main([command, "--help"]) == 0
        out = capsys.readouterr().out
        assert f"k8sauthn {command} [flags]" in out
        assert "--" in out
        assert command_help(command) == out


class TestCheck:
    def test_token_accepted(self, flags):
        """A good token: exit 0 and the user as JSON."""
        code, doc = run_check([*flags, f"--token={TOKEN}"])
        assert code == 0
        assert doc == {
            "authenticated": True,
            "user": {
                "username": "alice",
                "uid": "uid-1",
                "groups": ["dev", "system:authenticated"],
            },
        }

    def test_token_from_a_file(self, flags, tmp_path):
        """--token-file keeps the token off the command line."""
        f = tmp_path / "t"
        f.write_text(TOKEN + "\n")
        assert run_check([*flags, f"--token-file={f}"])[0] == 0

    def test_token_rejected_lists_each_authenticators_verdict(self, flags):
        """A bad token: exit 1, the chain's error and each authenticator's verdict."""
        code, doc = run_check([*flags, "--token=wrong"])
        assert code == 1
        assert doc["authenticated"] is False
        assert doc["error"] == "invalid bearer token"
        reasons = {r["authenticator"]: r["result"] for r in doc["reasons"]}
        assert reasons["StaticTokenAuthenticator"] == "no opinion"

    def test_certificate_accepted(self, flags, ca, tmp_path):
        """A client certificate file (and its matching key) authenticates offline."""
        cert, key = ca.issue(name("bob", orgs=["ops"])).write(tmp_path, "bob")
        code, doc = run_check([*flags, f"--cert={cert}", f"--key={key}"])
        assert code == 0
        assert doc["user"]["username"] == "bob"

    def test_expired_certificate_reason(self, flags, ca, tmp_path):
        """An expired certificate: exit 1 with the X.509 error text."""
        import datetime as dt

        old = ca.issue(
            "old", not_before=NOW - dt.timedelta(days=9), not_after=NOW - dt.timedelta(days=1)
        )
        cert, _ = old.write(tmp_path, "old")
        code, doc = run_check([*flags, f"--cert={cert}"])
        assert code == 1
        assert "x509" in doc["error"]
        assert any(r["result"] == "error" for r in doc["reasons"])

    def test_key_must_match(self, flags, ca, tmp_path, capsys):
        """--key of another certificate is refused before authenticating."""
        cert, _ = ca.issue("a").write(tmp_path, "a")
        _, other_key = ca.issue("b").write(tmp_path, "b")
        assert main(["check", *flags, f"--cert={cert}", f"--key={other_key}"]) == 1
        assert "--key does not match --cert" in capsys.readouterr().err

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            (b"not pem", "no PEM certificate found"),
            (b"-----BEGIN CERTIFICATE-----\nzz\n", "not a PEM"),
        ],
    )
    def test_bad_certificate_files(self, flags, tmp_path, capsys, content, message):
        """A certificate file without a certificate is a usage error."""
        f = tmp_path / "c.pem"
        f.write_bytes(content)
        assert main(["check", *flags, f"--cert={f}"]) == 1
        assert message in capsys.readouterr().err

    def test_a_credential_is_required(self, flags, capsys):
        """check needs --token, --token-file or --cert."""
        assert main(["check", *flags]) == 1
        assert "one of --token, --token-file or --cert is required" in capsys.readouterr().err

    def test_nothing_configured(self, capsys):
        """Without any authenticator there is nothing to check against."""
        assert main(["check", "--anonymous-auth=false", "--token=x"]) == 1
        assert "no authenticator is configured" in capsys.readouterr().err


@pytest.mark.integration
class TestProcesses:
    def test_serve_starts_listens_and_stops_on_sigterm(self, flags, ca, tmp_path):
        """python -m k8sauthn.server announces its address and exits cleanly on SIGTERM."""
        server = ca.server()
        cert, key = server.write(tmp_path, "srv")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "k8sauthn.server",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
                f"--tls-cert-file={cert}",
                f"--tls-private-key-file={key}",
                "--etcd-servers=https://etcd:2379",
                *flags,
            ],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            lines = []
            assert proc.stderr is not None
            for line in proc.stderr:
                lines.append(line)
                if "listening on" in line:
                    break
            assert any("ignoring --etcd-servers" in ln for ln in lines)
            url = lines[-1].split("listening on ")[1].strip()
            assert url.startswith("https://127.0.0.1:")
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=20)
        # uvicorn shuts down gracefully, then re-raises the signal it captured.
        assert proc.returncode in (0, -signal.SIGTERM)
        assert "Traceback" not in err

    def test_serve_on_ipv6_loopback(self, flags, ca, tmp_path):
        """An IPv6 bind address is served and announced in URL form."""
        cert, key = ca.server().write(tmp_path, "srv6")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "k8sauthn.server",
                "--bind-address=::1",
                "--secure-port=0",
                f"--tls-cert-file={cert}",
                f"--tls-private-key-file={key}",
                *flags,
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stderr is not None
            line = next(ln for ln in proc.stderr if "listening on" in ln)
            assert "listening on https://[::1]:" in line
        finally:
            proc.terminate()
            proc.wait(timeout=20)

    def test_serve_without_certificate_generates_one(self, flags):
        """Without --tls-cert-file a self-signed certificate is served (kube-apiserver does too)."""
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "k8sauthn.server",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
                *flags,
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stderr is not None
            seen = ""
            for line in proc.stderr:
                seen += line
                if "listening on" in line:
                    break
            assert "self-signed certificate" in seen
        finally:
            proc.terminate()
            proc.wait(timeout=20)

    def test_demo_exit_after_check(self, tmp_path, capsys):
        """The README command: generates, serves, authenticates both credentials, exits 0."""
        assert main(["demo", "--exit-after-check", f"--dir={tmp_path}"]) == 0
        out = capsys.readouterr().out
        assert "all passed" in out
        assert {"ca.crt", "server.crt", "tokens.csv", "client.crt", "kubeconfig"} <= {
            p.name for p in tmp_path.iterdir()
        }
        assert (tmp_path / "tokens.csv").stat().st_mode & 0o077 == 0

    def test_demo_tightens_existing_secret_files(self, tmp_path, capsys):
        """Re-using a --dir whose key files are world-readable makes them owner-only again."""
        secret_files = ("tokens.csv", "server.key", "client.key", "kubeconfig")
        for file_name in secret_files:
            (tmp_path / file_name).write_text("old")
            (tmp_path / file_name).chmod(0o644)
        assert main(["demo", "--exit-after-check", f"--dir={tmp_path}"]) == 0
        for file_name in secret_files:
            assert (tmp_path / file_name).stat().st_mode & 0o077 == 0, file_name

    def test_demo_checks_over_https_without_kubectl(self, tmp_path, capsys, monkeypatch):
        """Without kubectl on the PATH the demo checks both credentials with SelfSubjectReviews."""
        monkeypatch.setattr("k8sauthn.server.demo.shutil.which", lambda _name: None)
        assert main(["demo", "--exit-after-check", f"--dir={tmp_path}"]) == 0
        out = capsys.readouterr().out
        assert "checked with HTTPS (kubectl not found): all passed" in out
        assert '"username": "bob"' in out

    def test_demo_prints_the_kubectl_commands(self, tmp_path):
        """Interactive demo: prints the kubectl commands for both contexts, stops on SIGINT."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "k8sauthn.cli", "demo", f"--dir={tmp_path}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            assert proc.stdout is not None
            out = ""
            for line in proc.stdout:
                out += line
                if "Ctrl+C" in line:
                    break
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=20)
        kubeconfig = tmp_path / "kubeconfig"
        assert f"kubectl --kubeconfig {kubeconfig} --context token auth whoami" in out
        assert f"kubectl --kubeconfig {kubeconfig} --context cert auth whoami" in out
        assert json.loads(kubeconfig.read_text())["current-context"] == "token"
