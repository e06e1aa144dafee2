"""kubectl -> nginx (authenticating proxy) -> ``k8sauthn serve`` (request-header authenticator).

nginx maps a bearer token it knows to a user, drops everything the client sent, and proxies over
TLS with the front-proxy client certificate (resuming TLS sessions, as nginx does by default).
k8sauthn believes X-Remote-User / X-Remote-Group only from that certificate.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .._pki import Cert
from ..conftest import require_tool
from ..server._server import RunningServer
from .test_kubectl import UNAUTHORIZED, Env, _user_info

pytestmark = pytest.mark.integration

NGINX_TOKEN = "token-nginx-knows-for-erin"
NGINX_CONF = """
{user}
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp-body;
    proxy_temp_path {dir}/tmp-proxy;
    fastcgi_temp_path {dir}/tmp-fastcgi;
    uwsgi_temp_path {dir}/tmp-uwsgi;
    scgi_temp_path {dir}/tmp-scgi;
    map $http_authorization $asserted_user {{ "Bearer {token}" "erin"; default ""; }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {dir}/nginx.crt;
        ssl_certificate_key {dir}/nginx.key;
        location / {{
            if ($asserted_user = "") {{ return 401; }}
            proxy_pass {upstream};
            proxy_pass_request_headers off;
            proxy_set_header Content-Type $content_type;
            proxy_set_header X-Remote-User $asserted_user;
            proxy_set_header X-Remote-Group "proxied";
            proxy_ssl_certificate {dir}/front-proxy-client.crt;
            proxy_ssl_certificate_key {dir}/front-proxy-client.key;
            proxy_ssl_trusted_certificate {dir}/server-ca.crt;
            proxy_ssl_verify on;
            proxy_ssl_name localhost;
            proxy_ssl_session_reuse on;
        }}
    }}
}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    return Env(tmp_path_factory.mktemp("kubectl-nginx"))


@pytest.fixture(scope="module")
def backend(env: Env) -> Iterator[RunningServer]:
    proxy_ca = Cert.new_ca("front-proxy-ca")
    (env.tmp / "proxy-ca.crt").write_bytes(proxy_ca.pem)
    proxy_ca.issue("front-proxy-client").write(env.tmp, "front-proxy-client")
    flags = [
        *env.flags(),
        f"--requestheader-client-ca-file={env.tmp / 'proxy-ca.crt'}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
    ]
    with RunningServer.from_flags(flags) as srv:
        yield srv


@pytest.fixture(scope="module")
def nginx_url(env: Env, backend: RunningServer) -> Iterator[str]:
    binary = require_tool("nginx")
    env.server_ca.server().write(env.tmp, "nginx")
    port = _free_port()
    conf = env.tmp / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            user="user root;" if os.geteuid() == 0 else "",
            dir=env.tmp,
            port=port,
            token=NGINX_TOKEN,
            upstream=backend.url,
        )
    )
    proc = subprocess.Popen(
        [binary, "-p", str(env.tmp), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(port, proc, env.tmp / "error.log")
        yield f"https://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def _wait_for(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"nginx exited: {err} {log.read_text() if log.exists() else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nginx did not start")


def test_kubectl_through_the_authenticating_proxy(env, nginx_url):
    """kubectl's token is turned into X-Remote-* by nginx and believed from its certificate."""
    for attempt in range(2):  # nginx offers to resume its upstream TLS session the 2nd time
        info = _user_info(env.whoami(nginx_url, {"token": NGINX_TOKEN}, tag=f"nginx-{attempt}"))
        assert info == {"username": "erin", "groups": ["proxied", "system:authenticated"]}


def test_unknown_token_is_refused_by_the_proxy(env, nginx_url):
    """nginx itself answers 401 for a token it does not know (its HTML body is no Status,
    so kubectl words the reason differently from k8sauthn's own 401)."""
    proc = env.whoami(nginx_url, {"token": "unknown"}, tag="nginx-unknown")
    assert proc.returncode == 1
    assert "error: You must be logged in to the server (" in proc.stderr
    assert UNAUTHORIZED not in proc.stderr


def test_headers_without_the_proxy_certificate_are_not_believed(env, backend):
    """Going around nginx with forged X-Remote-User is a 401, not the forged user."""
    ctx = ssl.create_default_context(cafile=str(env.server_ca_file))
    with httpx.Client(verify=ctx, timeout=10) as client:
        r = client.post(
            backend.url + "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            headers={"X-Remote-User": "system:admin", "X-Remote-Group": "system:masters"},
        )
    assert r.status_code == 401
