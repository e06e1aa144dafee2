"""A real HTTPS server on 127.0.0.1 for webhook / Kubernetes API tests, run in a thread.

``handler(request) -> (status, headers, body)`` decides every answer; every request is recorded
(method, path, headers, body, client certificate subject) so tests can count calls.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import attrs

from .._pki import Cert


@attrs.frozen
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_cn: str


Answer = tuple[int, dict[str, str], bytes]
Handler = Callable[[Seen], Answer]


class HTTPSServer:
    """``with HTTPSServer(handler, tmp, server_cert, client_ca=...) as srv: srv.url``."""

    def __init__(
        self,
        handler: Handler,
        directory: Path,
        server_cert: Cert,
        *,
        client_ca: Cert | None = None,
        port: int = 0,
    ) -> None:
        self.handler = handler
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        cert_path, key_path = server_cert.write(directory, "server", with_chain=True)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        # Python 3.13's strict mode rejects client certificates without an AKI; Go does not.
        ctx.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
        ctx.load_cert_chain(cert_path, key_path)
        if client_ca is not None:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cadata=client_ca.pem.decode())
        self._ctx = ctx
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self.start()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._port}"

    def calls(self, path: str | None = None) -> int:
        with self._lock:
            return sum(1 for s in self.seen if path is None or s.path == path)

    def start(self) -> None:
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                peer = (
                    self.connection.getpeercert()
                    if hasattr(self.connection, "getpeercert")
                    else None
                )
                cn = ""
                for rdn in (peer or {}).get("subject", ()):
                    for key, value in rdn:
                        if key == "commonName":
                            cn = value
                seen = Seen(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    cn,
                )
                with outer._lock:
                    outer.seen.append(seen)
                status, headers, payload = outer.handler(seen)
                self.send_response(status)
                headers = {"Content-Type": "application/json", **headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _serve
            do_POST = _serve

            def log_message(self, format: str, *args: object) -> None:
                pass

        class _Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # failed handshakes are expected in TLS tests

        server = _Server(("127.0.0.1", self._port), _Handler)
        server.daemon_threads = True
        server.socket = self._ctx.wrap_socket(server.socket, server_side=True)
        self._port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> HTTPSServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
