"""``k8sauthn demo``: everything a newcomer needs to watch kubectl authenticate, in one command.

It writes into a fresh directory: a CA, a serving certificate for 127.0.0.1, a static token file
with one random token, a client certificate, and a kubeconfig with two contexts (``token`` and
``cert``). Then it serves ``k8sauthn serve`` on 127.0.0.1 and prints the kubectl commands.
With ``--exit-after-check`` it authenticates each credential itself (with kubectl when it is
installed, else over HTTPS) and exits 0 when both come back as the expected user.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Final

import attrs

from ..config._pflag import Flag, FlagError, FlagSet
from ..config.flags import parse_serve_args
from ._pki import new_ca

__all__ = ["DEMO_HELP", "DemoFiles", "demo_command", "write_demo_files"]

_DEMO_FLAGS: Final = (
    Flag(
        "dir", "string", "", "demo", "Directory for the generated files (default: a new temp dir)."
    ),
    Flag("bind-address", "ip", "127.0.0.1", "demo", "Address to serve on."),
    Flag("secure-port", "int", 0, "demo", "Port to serve on (0: a free one)."),
    Flag(
        "exit-after-check",
        "bool",
        False,
        "demo",
        "Authenticate each credential, print the results and exit (0 when all pass).",
    ),
)

DEMO_HELP: Final = "Usage:\n  k8sauthn demo [flags]\n\nFlags:\n" + "".join(
    f"      --{f.name} {f.kind}\n            {f.help}\n" for f in _DEMO_FLAGS
)

TOKEN_USER: Final = ("alice", "uid-1001", ("developers", "readers"))
CERT_USER: Final = ("bob", ("ops",))


@attrs.frozen
class DemoFiles:
    """Paths of what :func:`write_demo_files` generated (the token itself is never printed)."""

    directory: Path
    ca: Path
    server_cert: Path
    server_key: Path
    token_file: Path
    client_cert: Path
    client_key: Path
    kubeconfig: Path
    token: str = attrs.field(repr=False)


def _private(path: Path) -> None:
    """Make ``path`` owner-only before a secret goes in (``touch`` keeps an old file's mode)."""
    path.touch(mode=0o600)
    path.chmod(0o600)


def write_demo_files(directory: Path) -> DemoFiles:
    """Generate the CA, the serving and client certificates, and the static token file."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = new_ca("k8sauthn-demo-ca")
    server = ca.issue("localhost", server=True, hosts=("localhost", "127.0.0.1", "::1"))
    client = ca.issue(CERT_USER[0], organizations=CERT_USER[1])
    token = secrets.token_urlsafe(32)
    name, uid, groups = TOKEN_USER

    def write(name: str, data: bytes, private: bool = False) -> Path:
        path = directory / name
        if private:
            _private(path)
        path.write_bytes(data)
        return path

    files = DemoFiles(
        directory=directory,
        ca=write("ca.crt", ca.cert_pem),
        server_cert=write("server.crt", server.cert_pem),
        server_key=write("server.key", server.key_pem, private=True),
        token_file=write(
            "tokens.csv", f'{token},{name},{uid},"{",".join(groups)}"\n'.encode(), True
        ),
        client_cert=write("client.crt", client.cert_pem),
        client_key=write("client.key", client.key_pem, private=True),
        kubeconfig=directory / "kubeconfig",
        token=token,
    )
    return files


def kubeconfig(files: DemoFiles, server_url: str) -> str:
    """A kubeconfig with a ``token`` context and a ``cert`` context (JSON is valid YAML)."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "demo",
                "cluster": {"server": server_url, "certificate-authority": str(files.ca)},
            }
        ],
        "users": [
            {"name": "token-user", "user": {"token": files.token}},
            {
                "name": "cert-user",
                "user": {
                    "client-certificate": str(files.client_cert),
                    "client-key": str(files.client_key),
                },
            },
        ],
        "contexts": [
            {"name": "token", "context": {"cluster": "demo", "user": "token-user"}},
            {"name": "cert", "context": {"cluster": "demo", "user": "cert-user"}},
        ],
        "current-context": "token",
    }
    return json.dumps(doc, indent=2) + "\n"


def _instructions(files: DemoFiles, url: str) -> str:
    kc = files.kubeconfig
    return (
        f"\nk8sauthn demo is serving on {url} (files in {files.directory}).\n"
        "Authenticate with a static token, then with a client certificate:\n\n"
        f"  kubectl --kubeconfig {kc} --context token auth whoami\n"
        f"  kubectl --kubeconfig {kc} --context cert auth whoami\n\n"
        "A wrong token gets kubectl's 401:\n\n"
        f"  kubectl --kubeconfig {kc} --context token --token wrong auth whoami\n\n"
        "Press Ctrl+C to stop.\n"
    )


def _expected() -> dict[str, tuple[str, list[str]]]:
    name, _uid, groups = TOKEN_USER
    return {
        "token": (name, [*groups, "system:authenticated"]),
        "cert": (CERT_USER[0], [*CERT_USER[1], "system:authenticated"]),
    }


def check_with_kubectl(files: DemoFiles, kubectl: str) -> dict[str, Any]:
    """Run ``kubectl auth whoami -o json`` for each context; the userInfo of each."""
    env = {
        **os.environ,
        "KUBECONFIG": str(files.kubeconfig),
        "KUBECACHEDIR": str(files.directory / "kube-cache"),
        "HOME": str(files.directory),
    }
    out: dict[str, Any] = {}
    for context in ("token", "cert"):
        proc = subprocess.run(
            [kubectl, "--context", context, "auth", "whoami", "-o", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            out[context] = {"error": proc.stderr.strip()}
            continue
        out[context] = json.loads(proc.stdout)["status"]["userInfo"]
    return out


def check_with_https(files: DemoFiles, url: str) -> dict[str, Any]:
    """The same checks without kubectl: a SelfSubjectReview POST per credential."""
    import ssl

    import httpx

    out: dict[str, Any] = {}
    for context in ("token", "cert"):
        ctx = ssl.create_default_context(cafile=str(files.ca))
        headers = {}
        if context == "cert":
            ctx.load_cert_chain(str(files.client_cert), str(files.client_key))
        else:
            headers["Authorization"] = f"Bearer {files.token}"
        with httpx.Client(verify=ctx, timeout=10.0) as client:
            r = client.post(
                f"{url}/apis/authentication.k8s.io/v1/selfsubjectreviews", headers=headers
            )
        out[context] = (
            r.json()["status"]["userInfo"]
            if r.status_code == 201
            else {"error": f"HTTP {r.status_code}"}
        )
    return out


def run_checks(files: DemoFiles, url: str) -> bool:
    """Authenticate both credentials and print the outcome; True when both are as expected."""
    kubectl = shutil.which("kubectl")
    results = check_with_kubectl(files, kubectl) if kubectl else check_with_https(files, url)
    ok = True
    for context, (name, groups) in _expected().items():
        got = results.get(context, {})
        passed = got.get("username") == name and got.get("groups") == groups
        ok = ok and passed
        verdict = "ok" if passed else "FAILED"
        sys.stdout.write(f"{context:6} {verdict}: {json.dumps(got)}\n")
    via = "kubectl" if kubectl else "HTTPS (kubectl not found)"
    sys.stdout.write(f"checked with {via}: {'all passed' if ok else 'failures'}\n")
    sys.stdout.flush()
    return ok


def demo_command(argv: list[str]) -> int:
    """``k8sauthn demo``."""
    from ..cli import configure_logging

    parsed = FlagSet(_DEMO_FLAGS).parse(argv)
    if parsed.positional:
        raise FlagError(
            f'"k8sauthn demo" does not take any arguments, got {list(parsed.positional)}'
        )
    v = parsed.values
    directory = Path(v["dir"]) if v["dir"] else Path(tempfile.mkdtemp(prefix="k8sauthn-demo-"))
    try:
        files = write_demo_files(directory)
        flags = parse_serve_args(
            [
                f"--bind-address={v['bind-address']}",
                f"--secure-port={v['secure-port']}",
                f"--tls-cert-file={files.server_cert}",
                f"--tls-private-key-file={files.server_key}",
                f"--client-ca-file={files.ca}",
                f"--token-auth-file={files.token_file}",
                "--anonymous-auth=false",
            ],
            command="k8sauthn demo",
        )
        configure_logging()
        return asyncio.run(_run(files, flags, exit_after_check=v["exit-after-check"]))
    finally:
        if not v["dir"]:
            # Our own temporary directory holds a token and private keys: never leave it.
            shutil.rmtree(directory, ignore_errors=True)


async def _run(files: DemoFiles, flags: Any, *, exit_after_check: bool) -> int:
    from ..cli import serve_flags

    loop = asyncio.get_running_loop()
    ready: asyncio.Future[tuple[str, int]] = loop.create_future()
    server: asyncio.Future[None] = asyncio.ensure_future(
        serve_flags(flags, on_ready=lambda address: ready.set_result(address))
    )
    waiting: set[asyncio.Future[Any]] = {server, ready}
    done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    if server in done:  # failed to start
        server.result()
        return 1
    host, port = ready.result()
    shown = f"[{host}]" if ":" in host else host
    url = f"https://{shown}:{port}"
    _private(files.kubeconfig)
    files.kubeconfig.write_text(kubeconfig(files, url))
    if not exit_after_check:
        sys.stdout.write(_instructions(files, url))
        sys.stdout.flush()
        await server
        return 0
    ok = await asyncio.to_thread(run_checks, files, url)
    server.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await server
    return 0 if ok else 1
