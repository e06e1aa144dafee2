"""kubectl -> nginx (authenticating proxy) -> ``k8sauthn serve`` (request-header authenticator).

nginx maps a bearer token it knows to a user, drops everything the client sent, and proxies over
TLS with the front-proxy client certificate (resuming TLS sessions, as nginx does by default).
k8sauthn believes X-Remote-User / X-Remote-Group only from that certificate.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import pytest

from .._pki import Cert
from ..server._server import RunningServer
from ._nginx import running_nginx
from .test_kubectl import UNAUTHORIZED, Env, _user_info

pytestmark = pytest.mark.integration

NGINX_TOKEN = "token-nginx-knows-for-erin"
NGINX_HTTP = """
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
"""


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
    env.server_ca.server().write(env.tmp, "nginx")
    with running_nginx(env.tmp, NGINX_HTTP, token=NGINX_TOKEN, upstream=backend.url) as port:
        yield f"https://127.0.0.1:{port}"


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
