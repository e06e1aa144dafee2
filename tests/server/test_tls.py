"""The TLS layer: kube-apiserver's handshake (request, never verify) under uvicorn's h11."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from OpenSSL import SSL

from k8sauthn.exceptions import ConfigError
from k8sauthn.server import tls

from .._pki import Cert
from ._server import RunningServer


@pytest.fixture(scope="module")
def pki() -> dict[str, Cert]:
    root = Cert.new_ca("tls-root")
    inter = root.intermediate("tls-intermediate")
    other = Cert.new_ca("unrelated-root")
    return {
        "root": root,
        "inter": inter,
        "server": root.server(),
        "leaf": inter.issue("alice"),
        "stranger": other.issue("mallory"),
        "proxy_ca": Cert.new_ca("front-proxy-ca"),
    }


def _server_ctx(pki: dict[str, Cert]) -> SSL.Context:
    return tls.build_context(
        pki["server"].pem + pki["root"].pem,
        pki["server"].key_pem,
        [pki["root"].pem, pki["proxy_ca"].pem],
    )


def _client_ctx(cert: Cert | None = None, alpn: list[bytes] | None = None) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    if cert is not None:
        ctx.use_certificate(cert.cert)
        for c in cert.chain[:-1]:
            ctx.add_extra_chain_cert(c)
        ctx.use_privatekey(cert.key)
    if alpn is not None:
        ctx.set_alpn_protos(alpn)
    return ctx


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.closed = False
        self.aborted = False
        self.reading = True

    def write(self, data: Any) -> None:
        self.out += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5555), "sockname": ("127.0.0.1", 6443)}.get(name, default)

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def get_write_buffer_size(self) -> int:
        return len(self.out)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.limits = (high, low)


class Recorder(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: Any = None
        self.data = bytearray()
        self.lost: list[Exception | None] = []
        self.paused = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.append(exc)

    def pause_writing(self) -> None:
        self.paused += 1

    def resume_writing(self) -> None:
        self.paused -= 1


class Pair:
    """A pyOpenSSL client and the server protocol, wired through memory."""

    def __init__(self, server_ctx: SSL.Context, client_ctx: SSL.Context, **kw: Any) -> None:
        self.inner = Recorder()
        self.proto = tls.TLSServerProtocol(server_ctx, lambda: self.inner, **kw)
        self.raw = FakeTransport()
        self.proto.connection_made(self.raw)
        self.client = SSL.Connection(client_ctx, None)
        self.client.set_connect_state()

    def pump(self) -> None:
        for _ in range(10):
            out = _drain(self.client)
            if out:
                self.proto.data_received(out)
            if self.raw.out:
                self.client.bio_write(bytes(self.raw.out))
                self.raw.out.clear()
            elif not out:
                return

    def handshake(self) -> None:
        for _ in range(10):
            try:
                self.client.do_handshake()
                self.pump()
                return
            except SSL.WantReadError:
                self.pump()
        raise AssertionError("no handshake")

    def client_recv(self) -> bytes:
        self.pump()
        out = bytearray()
        while True:
            try:
                out += self.client.recv(65536)
            except SSL.WantReadError:
                return bytes(out)


def _drain(conn: SSL.Connection) -> bytes:
    out = bytearray()
    while True:
        try:
            chunk = conn.bio_read(65536)
        except SSL.WantReadError:
            return bytes(out)
        out += chunk


class TestHandshake:
    async def test_client_chain_reaches_the_inner_protocol_unverified(self, pki):
        """A leaf plus intermediate arrive, leaf first, as DER and as the ASGI tls extension."""
        pair = Pair(_server_ctx(pki), _client_ctx(pki["leaf"]))
        pair.handshake()
        info = pair.inner.transport.get_extra_info
        assert (pki["leaf"].der, pki["inter"].der) == info("k8sauthn.peer_chain")
        ext = info("k8sauthn.tls_extension")
        assert ext["client_cert_name"] == "CN=alice"
        assert ext["client_cert_chain"] == [pki["leaf"].pem.decode(), pki["inter"].pem.decode()]
        assert ext["server_cert"].startswith("-----BEGIN CERTIFICATE-----")
        assert info("sslcontext") is not None
        assert info("peername") == ("127.0.0.1", 5555)

    async def test_untrusted_certificate_completes_the_handshake(self, pki):
        """A certificate from an unknown CA is collected, not refused (HTTP 401 comes later)."""
        pair = Pair(_server_ctx(pki), _client_ctx(pki["stranger"]))
        pair.handshake()
        assert (pki["stranger"].der,) == pair.inner.transport.get_extra_info("k8sauthn.peer_chain")

    async def test_no_client_certificate_gives_an_empty_chain(self, pki):
        """Without a client certificate the chain is empty and the extension says so."""
        pair = Pair(_server_ctx(pki), _client_ctx())
        pair.handshake()
        assert pair.inner.transport.get_extra_info("k8sauthn.peer_chain") == ()
        assert (
            pair.inner.transport.get_extra_info("k8sauthn.tls_extension")["client_cert_name"]
            is None
        )

    async def test_certificate_request_lists_both_client_ca_subjects(self, pki):
        """Go clients only send a certificate whose issuer the CertificateRequest names."""
        pair = Pair(_server_ctx(pki), _client_ctx(pki["leaf"]))
        pair.handshake()
        names = {n.CN for n in pair.client.get_client_ca_list()}
        assert {"tls-root", "front-proxy-ca"} == names

    async def test_alpn_picks_http11_over_h2(self, pki):
        """Go offers h2 first; the h11 server must select http/1.1."""
        pair = Pair(_server_ctx(pki), _client_ctx(alpn=[b"h2", b"http/1.1"]))
        pair.handshake()
        assert pair.client.get_alpn_proto_negotiated() == b"http/1.1"

    async def test_alpn_without_http11_negotiates_nothing(self, pki):
        """A client offering only h2 gets no ALPN protocol rather than a lie."""
        pair = Pair(_server_ctx(pki), _client_ctx(alpn=[b"h2"]))
        pair.handshake()
        assert pair.client.get_alpn_proto_negotiated() == b""

    async def test_garbage_closes_the_connection(self, pki):
        """Bytes that are not TLS end the connection; no inner protocol is created."""
        pair = Pair(_server_ctx(pki), _client_ctx())
        pair.proto.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert pair.raw.closed
        assert pair.inner.transport is None
        pair.proto.data_received(b"more")  # ignored after close
        assert pair.inner.transport is None

    async def test_a_stalled_handshake_is_aborted(self, pki):
        """A client that never finishes its handshake is dropped after the timeout."""
        pair = Pair(_server_ctx(pki), _client_ctx(), handshake_timeout=0.01)
        await asyncio.sleep(0.05)
        assert pair.raw.aborted


class TestPlaintext:
    async def test_round_trip(self, pki):
        """Plaintext flows both ways through the TLS connection."""
        pair = Pair(_server_ctx(pki), _client_ctx())
        pair.handshake()
        pair.client.send(b"ping")
        pair.pump()
        assert bytes(pair.inner.data) == b"ping"
        pair.inner.transport.write(b"pong")
        pair.inner.transport.writelines([b"-", b"!"])
        assert pair.client_recv() == b"pong-!"

    async def test_close_sends_close_notify_then_closes(self, pki):
        """Closing the inner transport shuts TLS down cleanly; later writes are dropped."""
        pair = Pair(_server_ctx(pki), _client_ctx())
        pair.handshake()
        t = pair.inner.transport
        t.close()
        assert pair.raw.closed
        assert t.is_closing()
        t.write(b"late")  # ignored
        pair.client.bio_write(bytes(pair.raw.out))
        with pytest.raises(SSL.ZeroReturnError):
            pair.client.recv(100)

    async def test_client_close_notify_closes(self, pki):
        """The client's close_notify closes the socket."""
        pair = Pair(_server_ctx(pki), _client_ctx())
        pair.handshake()
        pair.client.shutdown()
        pair.pump()
        assert pair.raw.closed

    async def test_eof_and_connection_lost_reach_the_inner_protocol(self, pki):
        """A TCP EOF asks asyncio to close, and connection_lost is forwarded."""
        pair = Pair(_server_ctx(pki), _client_ctx())
        pair.handshake()
        assert pair.proto.eof_received() is None
        err = ConnectionResetError()
        pair.proto.connection_lost(err)
        assert [err] == pair.inner.lost

    async def test_flow_control_is_forwarded(self, pki):
        """Reading pauses on the socket; write pauses reach the (possibly swapped) protocol."""
        pair = Pair(_server_ctx(pki), _client_ctx())
        pair.handshake()
        t = pair.inner.transport
        t.pause_reading()
        assert not t.is_reading()
        t.resume_reading()
        assert t.is_reading()
        pair.proto.pause_writing()
        assert pair.inner.paused == 1
        swapped = Recorder()
        t.set_protocol(swapped)
        assert swapped is t.get_protocol()
        pair.proto.resume_writing()
        assert swapped.paused == -1
        t.set_write_buffer_limits(10, 5)
        assert pair.raw.limits == (10, 5)
        assert t.get_write_buffer_size() == 0
        assert not t.can_write_eof()
        t.abort()
        assert pair.raw.aborted

    async def test_corrupted_record_aborts(self, pki):
        """A tampered TLS record after the handshake aborts the connection."""
        pair = Pair(_server_ctx(pki), _client_ctx())
        pair.handshake()
        pair.client.send(b"hello")
        record = bytearray(_drain(pair.client))
        record[-1] ^= 0xFF
        pair.proto.data_received(bytes(record))
        assert pair.raw.aborted


class TestContext:
    def test_mismatched_key_is_a_config_error(self, pki):
        """A serving certificate with someone else's key is refused at start-up."""
        with pytest.raises(ConfigError, match="do not match"):
            tls.build_context(pki["server"].pem, pki["leaf"].key_pem)

    def test_garbage_certificate_is_a_config_error(self, pki):
        """A file that holds no certificate is refused at start-up."""
        with pytest.raises(ConfigError, match="no valid PEM certificate"):
            tls.build_context(b"junk", pki["server"].key_pem)

    def test_garbage_key_is_a_config_error(self, pki):
        """A file that holds no key is refused at start-up."""
        with pytest.raises(ConfigError, match="private key"):
            tls.build_context(pki["server"].pem, b"junk")

    def test_files_are_reloaded_and_a_broken_update_keeps_the_old_context(
        self, pki, tmp_path: Path, caplog
    ):
        """A rotated certificate is picked up; a broken one keeps the previous context."""
        cert, key = pki["server"].write(tmp_path, "srv")
        ca = tmp_path / "ca.crt"
        ca.write_bytes(pki["root"].pem)
        certs = tls.ServerCertificates(cert, key, [ca], interval=0)
        first = certs.context()
        assert first is certs.context()  # unchanged files: same context
        new = pki["root"].server("rotated")
        new.write(tmp_path, "srv")
        _touch(cert, key, seconds=5)  # file times are coarse: make the change visible
        second = certs.context()
        assert second is not first
        cert.write_bytes(b"-----BEGIN CERTIFICATE-----\nbroken\n")
        _touch(cert, seconds=10)
        with caplog.at_level(logging.WARNING, logger="k8sauthn.server"):
            assert second is certs.context()
        assert "keeping the previous TLS configuration" in caplog.text


def _touch(*paths: Path, seconds: float) -> None:
    when = time.time() + seconds
    for p in paths:
        os.utime(p, (when, when))


async def _echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        name = scope["extensions"]["tls"]["client_cert_name"]
        await send({"type": "websocket.send", "text": f"{name}|{scope['scheme']}"})
        await send({"type": "websocket.close"})
        return
    if scope["type"] != "http":
        return
    ext = scope["extensions"]["tls"]
    body = json.dumps(
        {
            "names": [k.decode() for k, _ in scope["headers"]],
            "chain": len(ext["client_cert_chain"]),
            "name": ext["client_cert_name"],
            "scheme": scope["scheme"],
        }
    ).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@pytest.mark.integration
class TestUnderUvicorn:
    @pytest.fixture
    def server(self, pki):
        certs = tls.ServerCertificates.from_pem(
            pki["server"].pem, pki["server"].key_pem, [pki["root"].pem]
        )
        with RunningServer(_echo, certs) as srv:
            yield srv

    def _client(self, pki, tmp_path: Path, cert: Cert | None = None) -> httpx.Client:
        ctx = ssl.create_default_context(cadata=pki["root"].pem.decode())
        if cert is not None:
            c, k = cert.write(tmp_path, "client", with_chain=True)
            ctx.load_cert_chain(c, k)
        return httpx.Client(verify=ctx, timeout=10)

    def test_any_asgi_app_gets_the_tls_extension(self, server, pki, tmp_path):
        """A user's own ASGI app sees https and the presented chain on every request."""
        with self._client(pki, tmp_path, pki["leaf"]) as client:
            for _ in range(2):  # keep-alive: the same connection, the same chain
                got = client.get(server.url + "/").json()
                assert (got["chain"], got["name"], got["scheme"]) == (2, "CN=alice", "https")

    def test_a_32_kib_header_reaches_the_app(self, server, pki, tmp_path):
        """Headers up to Go's 1 MiB pass the HTTP parser (h11's default is 16 KiB)."""
        with self._client(pki, tmp_path) as client:
            r = client.get(server.url + "/", headers={"authorization": "Bearer " + "a" * 32768})
        assert r.status_code == 200
        assert "authorization" in r.json()["names"]

    def test_headers_beyond_one_mib_are_refused(self, server, pki, tmp_path):
        """Headers well beyond 1 MiB are a protocol error, as in Go."""
        with self._client(pki, tmp_path) as client:
            try:
                r = client.get(server.url + "/", headers={"x-big": "a" * (2 << 20)})
            except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
                return  # the server closed the connection while the client was still sending
        assert r.status_code in (400, 431)

    def test_websocket_scope_gets_the_tls_extension(self, server, pki, tmp_path):
        """An upgraded connection's WebSocket scope carries the client certificate too."""
        ws_client = pytest.importorskip("websockets.sync.client")
        ctx = ssl.create_default_context(cadata=pki["root"].pem.decode())
        c, k = pki["leaf"].write(tmp_path, "ws-client", with_chain=True)
        ctx.load_cert_chain(c, k)
        url = server.url.replace("https://", "wss://") + "/ws"
        with ws_client.connect(url, ssl=ctx, open_timeout=10) as ws:
            assert ws.recv(timeout=10) == "CN=alice|wss"
