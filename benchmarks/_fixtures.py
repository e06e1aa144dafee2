"""What several benchmark modules share: the HMAC+dict floor, files, a counting webhook server."""

from __future__ import annotations

import atexit
import hmac
import importlib
import json
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

from _harness import NotAvailable

TOKEN = "bench-" + secrets.token_urlsafe(24)  # a realistic 38-character opaque token
USER = "bench-user"
TMP = Path(tempfile.mkdtemp(prefix="k8sauthn-bench-"))
atexit.register(shutil.rmtree, TMP, ignore_errors=True)  # token files, keys, CA bundles


def need(module: str) -> ModuleType:
    """Import ``module`` or report the case as not available (the module has not landed yet)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            raise NotAvailable(module) from None
        raise


def hmac_dict_floor(token: str = TOKEN) -> Callable[[], object]:
    """One HMAC-SHA256 of the token under a 32-byte key plus one dict hit (the issue's floor)."""
    key = os.urandom(32)
    table = {hmac.digest(key, token.encode(), "sha256"): object()}
    digest = hmac.digest

    def floor() -> object:
        return table[digest(key, token.encode(), "sha256")]

    return floor


def token_file(rows: int = 1, token: str = TOKEN) -> Path:
    """A --token-auth-file with ``token`` for USER plus ``rows - 1`` other rows."""
    path = TMP / f"tokens-{rows}.csv"
    lines = [f'{token},{USER},uid-1,"group-a,group-b"']
    lines += [f"other-{i:08d}-{secrets.token_hex(8)},user-{i},uid-{i}" for i in range(1, rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


class IdPServer:
    """An OpenID provider on https://127.0.0.1: discovery + JWKS, each call counted per path."""

    def __init__(self, jwks: dict[str, object], *, delay: float = 0.2) -> None:
        import ssl
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from tests._pki import Cert

        ca = Cert.new_ca("bench-idp-ca")
        cert_path, key_path = ca.server().write(TMP, f"idp-{secrets.token_hex(4)}")
        self.ca_pem = ca.pem.decode()
        self.calls: dict[str, int] = {}
        lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with lock:
                    owner.calls[self.path] = owner.calls.get(self.path, 0) + 1
                time.sleep(delay)
                if self.path == "/.well-known/openid-configuration":
                    doc: object = {"issuer": owner.issuer, "jwks_uri": owner.issuer + "/jwks"}
                elif self.path == "/jwks":
                    doc = jwks
                else:
                    self.send_error(404)
                    return
                out = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_path, key_path)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.issuer = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class WebhookServer:
    """A TokenReview webhook on 127.0.0.1 that accepts every token and counts its calls."""

    def __init__(self, *, delay: float = 0.0, username: str = USER) -> None:
        self.calls = 0
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with owner._lock:
                    owner.calls += 1
                if delay:
                    time.sleep(delay)
                review = json.loads(body or b"{}")
                review["status"] = {
                    "authenticated": True,
                    "user": {"username": username, "uid": "w-1", "groups": ["webhook-group"]},
                    "audiences": (review.get("spec") or {}).get("audiences") or [],
                }
                out = json.dumps(review).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/authenticate"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def kubeconfig(self) -> Path:
        """A webhook kubeconfig pointing at this server (JSON is valid YAML)."""
        path = TMP / f"webhook-{self._server.server_address[1]}.json"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "webhook", "cluster": {"server": self.url}}],
            "users": [{"name": "apiserver", "user": {}}],
            "contexts": [
                {"name": "webhook", "context": {"cluster": "webhook", "user": "apiserver"}}
            ],
            "current-context": "webhook",
        }
        path.write_text(json.dumps(config))
        return path

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
