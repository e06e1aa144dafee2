"""Peer-certificate adapters: ASGI TLS extension, forwarded-certificate headers, WSGI environ."""

from __future__ import annotations

import socket
import ssl
import sys
import threading
from pathlib import Path
from urllib.parse import quote

import pytest

from k8sauthn import AuthenticationError, ConfigError
from k8sauthn.peercert import (
    TrustedProxyCertificate,
    der_from_pem_texts,
    tls_extension_chain,
    wsgi_peer_chain,
)
from k8sauthn.peercert.proxy import parse_xfcc
from tests._pki import Cert


@pytest.fixture(scope="module")
def pki() -> tuple[Cert, Cert, Cert]:
    root = Cert.new_ca("peercert-root")
    inter = root.intermediate("peercert-intermediate")
    return root, inter, inter.issue("alice")


def scope(client: str | None, *headers: tuple[str, str], tls: dict | None = None) -> dict:
    out: dict = {
        "type": "http",
        "client": (client, 50000) if client else None,
        "headers": [(n.encode(), v.encode()) for n, v in headers],
    }
    if tls is not None:
        out["extensions"] = {"tls": tls}
    return out


class TestASGIExtension:
    def test_pem_chain_becomes_der(self, pki):
        """client_cert_chain PEM strings come back as DER, leaf first."""
        _, inter, leaf = pki
        s = scope(None, tls={"client_cert_chain": [leaf.pem.decode(), inter.pem.decode()]})
        assert tls_extension_chain(s) == (leaf.der, inter.der)

    def test_no_extension_or_empty_chain(self):
        """Without the extension or with an empty chain there is no certificate."""
        assert tls_extension_chain(scope(None)) == ()
        assert tls_extension_chain(scope(None, tls={"client_cert_chain": []})) == ()

    def test_malformed_entry_fails_closed(self, pki):
        """A malformed PEM is an authentication error, never silently dropped."""
        s = scope(None, tls={"client_cert_chain": ["not a certificate", pki[2].pem.decode()]})
        with pytest.raises(AuthenticationError, match="malformed client certificate"):
            tls_extension_chain(s)

    def test_one_item_may_hold_several_certificates(self, pki):
        """A PEM item holding leaf and intermediate yields both."""
        _, inter, leaf = pki
        assert der_from_pem_texts([leaf.chain_pem()]) == (leaf.der, inter.der)


class TestNginxHeader:
    def test_trusted_proxy_header_is_read(self, pki):
        """$ssl_client_escaped_cert from a declared proxy gives the leaf."""
        leaf = pki[2]
        reader = TrustedProxyCertificate.nginx(trusted_proxies=["127.0.0.1"])
        s = scope("127.0.0.1", ("SSL-Client-Cert", quote(leaf.pem.decode(), safe="")))
        assert reader(s) == (leaf.der,)

    def test_untrusted_peer_is_ignored(self, pki):
        """The same header from any other address is ignored: no certificate."""
        reader = TrustedProxyCertificate.nginx(trusted_proxies=["10.0.0.0/8"])
        s = scope("192.0.2.7", ("ssl-client-cert", quote(pki[2].pem.decode())))
        assert reader(s) == ()

    @pytest.mark.parametrize("client", [None, "unix-socket", "fe80::1%eth0"])
    def test_unusable_peer_addresses_are_not_trusted(self, pki, client):
        """No peer, a non-IP peer, or an address outside the list are not trusted."""
        reader = TrustedProxyCertificate.nginx(trusted_proxies=["127.0.0.1", "::1"])
        s = scope(client, ("ssl-client-cert", quote(pki[2].pem.decode())))
        assert reader(s) == ()

    def test_ipv6_network(self, pki):
        """IPv6 proxies are declared like IPv4 ones."""
        reader = TrustedProxyCertificate.nginx(trusted_proxies=["::1/128"])
        s = scope("::1", ("ssl-client-cert", quote(pki[2].pem.decode())))
        assert reader(s) == (pki[2].der,)

    def test_ipv4_mapped_peer_matches_its_ipv4_network(self, pki):
        """A dual-stack server reports ::ffff:127.0.0.1; it is the declared 127.0.0.1."""
        reader = TrustedProxyCertificate.nginx(trusted_proxies=["127.0.0.1"])
        s = scope("::ffff:127.0.0.1", ("ssl-client-cert", quote(pki[2].pem.decode())))
        assert reader(s) == (pki[2].der,)
        assert not reader.trusts("::ffff:10.0.0.1")

    def test_absent_or_empty_header_is_no_certificate(self):
        """A trusted proxy that forwards no certificate gives none."""
        reader = TrustedProxyCertificate.nginx(trusted_proxies=["127.0.0.1"])
        assert reader(scope("127.0.0.1")) == ()
        assert reader(scope("127.0.0.1", ("ssl-client-cert", " "))) == ()

    def test_duplicate_header_is_rejected(self, pki):
        """Two forwarded certificates are ambiguous: fail closed."""
        reader = TrustedProxyCertificate.nginx(trusted_proxies=["127.0.0.1"])
        value = quote(pki[2].pem.decode())
        with pytest.raises(AuthenticationError, match="2 ssl-client-cert headers"):
            reader(scope("127.0.0.1", ("ssl-client-cert", value), ("ssl-client-cert", value)))

    def test_garbage_header_is_rejected(self):
        """A trusted header that holds no certificate is an error."""
        reader = TrustedProxyCertificate.nginx(trusted_proxies=["127.0.0.1"])
        with pytest.raises(AuthenticationError):
            reader(scope("127.0.0.1", ("ssl-client-cert", "garbage")))

    def test_wsgi_environ(self, pki):
        """Under WSGI the peer is REMOTE_ADDR and the header an HTTP_ key."""
        reader = TrustedProxyCertificate.nginx(trusted_proxies=["127.0.0.1"], header="X-Cert")
        value = quote(pki[2].pem.decode())
        assert reader.from_environ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_CERT": value}) == (
            pki[2].der,
        )
        assert reader.from_environ({"REMOTE_ADDR": "10.1.1.1", "HTTP_X_CERT": value}) == ()
        assert reader.from_environ({"REMOTE_ADDR": "127.0.0.1"}) == ()

    @pytest.mark.parametrize("trusted", [[], ["not-an-ip"]])
    def test_trusted_proxies_must_be_addresses(self, trusted):
        """An empty or invalid trusted-proxy list is a configuration error."""
        with pytest.raises(ConfigError):
            TrustedProxyCertificate.nginx(trusted_proxies=trusted)


class TestEnvoyHeader:
    def test_cert_and_chain_fields(self, pki):
        """Chain= (leaf and intermediates) is preferred over Cert= (leaf only)."""
        _, inter, leaf = pki
        reader = TrustedProxyCertificate.envoy(trusted_proxies=["127.0.0.1"])
        cert = quote(leaf.pem.decode(), safe="")
        value = f'By=spiffe://x;Hash=abc;Cert="{cert}";Subject="CN=alice,O=a\\"b"'
        assert reader(scope("127.0.0.1", ("x-forwarded-client-cert", value))) == (leaf.der,)
        full = quote(leaf.chain_pem().decode(), safe="")
        value = f'Hash=abc;Cert="{cert}";Chain="{full}"'
        assert reader(scope("127.0.0.1", ("x-forwarded-client-cert", value))) == (
            leaf.der,
            inter.der,
        )

    def test_several_elements_are_rejected(self, pki):
        """With more than one hop the element to believe is unknown: fail closed."""
        reader = TrustedProxyCertificate.envoy(trusted_proxies=["127.0.0.1"])
        cert = quote(pki[2].pem.decode(), safe="")
        value = f'Hash=a;Cert="{cert}",Hash=b;Cert="{cert}"'
        with pytest.raises(AuthenticationError, match="2 elements"):
            reader(scope("127.0.0.1", ("x-forwarded-client-cert", value)))

    def test_element_without_certificate(self):
        """An element with only a hash carries no certificate."""
        reader = TrustedProxyCertificate.envoy(trusted_proxies=["127.0.0.1"])
        assert reader(scope("127.0.0.1", ("x-forwarded-client-cert", "Hash=abc"))) == ()

    def test_parser(self):
        """Quoted values keep commas, semicolons and escaped quotes; keys are lower-cased."""
        got = parse_xfcc('By=a;URI="x,y;z";Subject="q\\"r" , Hash=h')
        assert got == [{"by": "a", "uri": "x,y;z", "subject": 'q"r'}, {"hash": "h"}]

    @pytest.mark.parametrize("value", ["novalue", 'Cert="unterminated'])
    def test_malformed_header(self, value):
        """A header that does not parse is an error."""
        with pytest.raises(AuthenticationError, match="malformed"):
            parse_xfcc(value)


class TestWSGI:
    def test_ssl_client_cert_keys(self, pki):
        """SSL_CLIENT_CERT and SSL_CLIENT_CERT_CHAIN_n (werkzeug, mod_ssl) give the chain."""
        _, inter, leaf = pki
        environ = {"SSL_CLIENT_CERT": leaf.pem.decode(), "SSL_CLIENT_CERT_CHAIN_0": inter.pem}
        assert wsgi_peer_chain(environ) == (leaf.der, inter.der)
        assert wsgi_peer_chain({}) == ()

    def test_gunicorn_socket(self, pki, tmp_path: Path):
        """gunicorn's TLS socket in the environ yields the peer's leaf certificate."""
        root, intermediate, leaf = pki
        server_cert = root.server()
        srv_crt, srv_key = server_cert.write(tmp_path, "server")
        cli_crt, cli_key = leaf.write(tmp_path, "client", with_chain=True)
        (tmp_path / "ca.pem").write_bytes(root.pem)
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(srv_crt, srv_key)
        server_ctx.load_verify_locations(tmp_path / "ca.pem")
        server_ctx.verify_mode = ssl.CERT_OPTIONAL
        client_ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        client_ctx.load_cert_chain(cli_crt, cli_key)
        a, b = socket.socketpair()
        with a, b:
            client = client_ctx.wrap_socket(
                a, server_hostname="localhost", do_handshake_on_connect=False
            )
            t = threading.Thread(target=client.do_handshake)
            t.start()
            server = server_ctx.wrap_socket(b, server_side=True)
            t.join(10)
            # Python 3.13 exposes the whole presented chain; 3.11/3.12 only the leaf.
            expected = (leaf.der, intermediate.der) if sys.version_info >= (3, 13) else (leaf.der,)
            assert wsgi_peer_chain({"gunicorn.socket": server}) == expected


def test_uvicorn_protocol_is_imported_lazily():
    """The uvicorn protocol is reachable from the package; unknown names still fail."""
    import k8sauthn.peercert as peercert
    from k8sauthn.peercert.uvicorn import TLSExtensionH11Protocol

    assert peercert.TLSExtensionH11Protocol is TLSExtensionH11Protocol
    with pytest.raises(AttributeError):
        _ = peercert.NoSuchAdapter  # type: ignore[attr-defined]
