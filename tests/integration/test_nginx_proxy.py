"""nginx as a real authenticating front proxy in front of the request-header authenticator.

nginx authenticates the user (a client certificate from its own user CA, or a bearer token it
knows), drops every header the client sent, sets X-Remote-User / X-Remote-Group, and proxies
over TLS with the front-proxy client certificate to uvicorn, which runs the authenticators.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import attrs
import httpx
import pytest

from tests._pki import Cert, name

from ._nginx import running_nginx
from .test_tls_uvicorn import Deployment, start_deployment

pytestmark = pytest.mark.integration

NGINX_HTTP = """
    # Who the user is: the CN of a verified certificate, else a known bearer token.
    map $ssl_client_s_dn $dn_cn {{ "~(^|,)CN=(?<cn>[^,]+)" $cn; default ""; }}
    map $ssl_client_s_dn $dn_o {{ "~(^|,)O=(?<o>[^,]+)" $o; default ""; }}
    map "$ssl_client_verify:$dn_cn" $cert_user {{ "~^SUCCESS:(?<u>.+)$" $u; default ""; }}
    map $http_authorization $token_user {{ "Bearer nginx-token-for-dave" "dave"; default ""; }}
    map "$cert_user|$token_user" $asserted_user {{
        "~^(?<u>[^|]+)\\|" $u;
        "~^\\|(?<u>.+)$" $u;
        default "";
    }}
    map "$cert_user|$token_user" $asserted_group {{
        "~^[^|]+\\|" $dn_o;
        default "token-users";
    }}

    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {dir}/nginx-server.crt;
        ssl_certificate_key {dir}/nginx-server.key;
        ssl_client_certificate {dir}/nginx-user-ca.pem;
        ssl_verify_client optional;

        location / {{
            if ($asserted_user = "") {{ return 401; }}
            proxy_pass {upstream};
            # Nothing the client sent reaches the API server: no forged X-Remote-* survive.
            proxy_pass_request_headers off;
            proxy_set_header Host localhost;
            proxy_set_header X-Remote-User $asserted_user;
            proxy_set_header X-Remote-Group $asserted_group;
            proxy_ssl_certificate {dir}/front-proxy-client.crt;
            proxy_ssl_certificate_key {dir}/front-proxy-client.key;
            proxy_ssl_trusted_certificate {dir}/root.pem;
            proxy_ssl_verify on;
            proxy_ssl_name localhost;
            proxy_ssl_server_name on;
        }}
    }}
"""


@attrs.define
class Nginx:
    url: str
    user_ca: Cert
    backend: Deployment


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    tmp = tmp_path_factory.mktemp("nginx")
    backend = start_deployment(tmp)
    user_ca = Cert.new_ca("nginx-user-ca")
    (tmp / "nginx-user-ca.pem").write_bytes(user_ca.pem)
    backend.root.server().write(tmp, "nginx-server")
    backend.proxy_ca.issue("front-proxy-client").write(tmp, "front-proxy-client")
    upstream = backend.server.url.replace("localhost", "127.0.0.1")
    try:
        with running_nginx(tmp, NGINX_HTTP, upstream=upstream) as port:
            yield Nginx(f"https://localhost:{port}", user_ca, backend)
    finally:
        backend.server.stop()


def client(n: Nginx, cert: Cert | None = None) -> httpx.Client:
    verify = ssl.create_default_context(cafile=n.backend.dir / "root.pem")
    if cert is not None:
        crt, key = cert.write(n.backend.dir, f"nginx-client-{id(cert)}")
        verify.load_cert_chain(crt, key)
    return httpx.Client(base_url=n.url, verify=verify, timeout=10, trust_env=False)


def test_certificate_user_is_asserted_by_the_proxy(nginx):
    """nginx verifies the user's certificate and the API server believes its headers."""
    with client(nginx, nginx.user_ca.issue(name("alice", orgs=["dev"]))) as c:
        body = c.get("/").json()
    assert body["user"] == {"username": "alice", "groups": ["dev"]}


def test_token_user_is_asserted_by_the_proxy(nginx):
    """nginx maps a bearer token it knows to a user; the token never reaches the backend."""
    with client(nginx) as c:
        body = c.get("/", headers={"Authorization": "Bearer nginx-token-for-dave"}).json()
    assert body["user"] == {"username": "dave", "groups": ["token-users"]}


def test_client_sent_remote_headers_are_replaced(nginx):
    """Forged X-Remote-* headers sent to nginx never reach the API server."""
    forged = {
        "Authorization": "Bearer nginx-token-for-dave",
        "X-Remote-User": "system:admin",
        "X-Remote-Group": "system:masters",
        "X-Remote-Extra-Scopes": "everything",
    }
    with client(nginx) as c:
        body = c.get("/", headers=forged).json()
    assert body["user"] == {"username": "dave", "groups": ["token-users"]}


def test_unauthenticated_client_is_stopped_by_the_proxy(nginx):
    """Without a certificate or a known token nginx answers 401 itself."""
    with client(nginx) as c:
        assert c.get("/", headers={"X-Remote-User": "system:admin"}).status_code == 401


def test_direct_spoof_without_proxy_certificate_is_ignored(nginx):
    """Going around nginx with forged headers but no proxy certificate names nobody."""
    verify = ssl.create_default_context(cafile=nginx.backend.dir / "root.pem")
    with httpx.Client(base_url=nginx.backend.server.url, verify=verify, trust_env=False) as c:
        r = c.get("/", headers={"X-Remote-User": "system:admin"})
    assert r.status_code == 401
