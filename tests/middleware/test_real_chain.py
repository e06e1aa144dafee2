"""The ASGI middleware over kube-apiserver's real chain: certificates and front-proxy headers.

The chains come from ``k8sauthn.config.build``; the client certificates arrive through the ASGI
TLS extension exactly as ``k8sauthn.server`` or the uvicorn protocol put them there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from k8sauthn.config.build import build
from k8sauthn.config.options import AuthenticationOptions, RequestHeaderOptions
from k8sauthn.middleware.asgi import USER_KEY, AuthenticationMiddleware
from k8sauthn.peercert import TrustedProxyCertificate

from .._pki import Cert, name


def tls_app(app: Any, *certs: Cert) -> Any:
    """Wrap ``app`` so every request carries ``certs`` in the ASGI TLS extension."""

    async def wrapper(scope: Any, receive: Any, send: Any) -> None:
        pems = [c.pem.decode() for c in certs]
        scope = dict(scope, extensions={"tls": {"client_cert_chain": pems}})
        await app(scope, receive, send)

    return wrapper


async def whoami(scope: Any, receive: Any, send: Any) -> None:
    user = scope[USER_KEY].user
    body = httpx.Response(
        200,
        json={
            "name": user.name,
            "groups": list(user.groups),
            "extra": {k: list(v) for k, v in user.extra.items()},
            "headers": sorted(n.decode() for n, _ in scope["headers"]),
        },
    ).content
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def get(app: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get("/", headers=headers)


async def test_client_certificate_from_the_tls_extension(root_ca: Cert, tmp_path: Path) -> None:
    """A client certificate in the TLS extension authenticates as its CN and O (spec §9)."""
    inter = root_ca.intermediate("users-ca")
    leaf = inter.issue(name("carol", orgs=["dev", "ops"]))
    (tmp_path / "ca.crt").write_bytes(root_ca.pem)
    chain = build(AuthenticationOptions(client_ca_file=str(tmp_path / "ca.crt")))
    app = AuthenticationMiddleware(whoami, chain=chain)
    r = await get(tls_app(app, leaf, inter))
    assert r.json()["name"] == "carol"
    assert r.json()["groups"] == ["dev", "ops", "system:authenticated"]


async def test_unknown_certificate_is_401_not_anonymous(root_ca: Cert, tmp_path: Path) -> None:
    """A certificate from another CA is an error, which blocks the anonymous fallback."""
    (tmp_path / "ca.crt").write_bytes(root_ca.pem)
    stranger = Cert.new_ca("other").issue("mallory")
    chain = build(
        AuthenticationOptions(client_ca_file=str(tmp_path / "ca.crt"), anonymous_auth=True)
    )
    r = await get(tls_app(AuthenticationMiddleware(whoami, chain=chain), stranger))
    assert r.status_code == 401
    assert (await get(AuthenticationMiddleware(whoami, chain=chain))).json()["name"] == (
        "system:anonymous"
    )


async def test_front_proxy_headers_are_consumed_and_stripped(root_ca: Cert, tmp_path: Path) -> None:
    """Request-header auth via the proxy certificate; configured and standard names are removed."""
    proxy_ca = Cert.new_ca("front-proxy-ca")
    (tmp_path / "proxy-ca.crt").write_bytes(proxy_ca.pem)
    options = AuthenticationOptions(
        requestheader=RequestHeaderOptions(
            client_ca_file=str(tmp_path / "proxy-ca.crt"),
            allowed_names=["front-proxy-client"],
            username_headers=["X-Proxy-User"],
            group_headers=["X-Proxy-Group"],
            extra_headers_prefix=["X-Proxy-Extra-"],
        ),
        anonymous_auth=False,
    )
    app = AuthenticationMiddleware(whoami, chain=build(options))
    proxy = proxy_ca.issue("front-proxy-client")
    r = await get(
        tls_app(app, proxy),
        headers={
            "X-Proxy-User": "dave",
            "X-Proxy-Group": "devs",
            "X-Proxy-Extra-Scopes": "read",
            "X-Remote-User": "mallory",
            "X-Remote-Extra-Foo": "x",
            "X-Unrelated": "kept",
        },
    )
    body = r.json()
    assert body["name"] == "dave"
    assert body["groups"] == ["devs", "system:authenticated"]
    assert body["extra"] == {"scopes": ["read"]}
    assert "x-unrelated" in body["headers"]
    for gone in (
        "x-proxy-user",
        "x-proxy-group",
        "x-proxy-extra-scopes",
        "x-remote-user",
        "x-remote-extra-foo",
    ):
        assert gone not in body["headers"]


async def test_spoofed_proxy_headers_without_the_proxy_cert(tmp_path: Path) -> None:
    """X-Remote-User without a verified proxy certificate authenticates nobody."""
    proxy_ca = Cert.new_ca("front-proxy-ca")
    (tmp_path / "proxy-ca.crt").write_bytes(proxy_ca.pem)
    options = AuthenticationOptions(
        requestheader=RequestHeaderOptions(
            client_ca_file=str(tmp_path / "proxy-ca.crt"), username_headers=["X-Remote-User"]
        ),
        anonymous_auth=False,
    )
    app = AuthenticationMiddleware(whoami, chain=build(options))
    r = await get(app, headers={"X-Remote-User": "system:admin"})
    assert r.status_code == 401


async def test_certificate_forwarded_by_a_trusted_proxy(root_ca: Cert, tmp_path: Path) -> None:
    """peer_chain= takes k8sauthn.peercert's proxy adapter: nginx's escaped PEM header."""
    (tmp_path / "ca.crt").write_bytes(root_ca.pem)
    chain = build(AuthenticationOptions(client_ca_file=str(tmp_path / "ca.crt")))
    leaf = root_ca.issue(name("erin"))
    escaped = quote(leaf.pem.decode(), safe="")
    trusted = TrustedProxyCertificate.nginx(trusted_proxies=["127.0.0.1/32"])
    app = AuthenticationMiddleware(whoami, chain=chain, peer_chain=trusted)
    r = await get(app, headers={"ssl-client-cert": escaped})
    assert r.json()["name"] == "erin"
    untrusted = TrustedProxyCertificate.nginx(trusted_proxies=["10.0.0.0/8"])
    app = AuthenticationMiddleware(whoami, chain=chain, peer_chain=untrusted)
    r = await get(app, headers={"ssl-client-cert": escaped})
    assert r.json()["name"] == "system:anonymous"


async def test_extra_space_warning_rides_on_the_401(tmp_path: Path) -> None:
    """`Bearer  token` is ignored with a warning (§7.1); the 401 carries it as a Warning header."""
    (tmp_path / "tokens.csv").write_text("alice-token,alice,1\n")
    chain = build(
        AuthenticationOptions(token_auth_file=str(tmp_path / "tokens.csv"), anonymous_auth=False)
    )
    r = await get(
        AuthenticationMiddleware(whoami, chain=chain),
        headers={"Authorization": "Bearer  alice-token"},
    )
    assert r.status_code == 401
    assert r.headers["warning"] == (
        '299 - "the provided Authorization header contains extra space before the bearer '
        'token, and is ignored"'
    )
