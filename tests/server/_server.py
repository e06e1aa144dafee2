"""Run the reference server (or any ASGI app behind k8sauthn's TLS layer) in a thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any

from k8sauthn.cli import build_app, server_certificates
from k8sauthn.config.flags import parse_serve_args
from k8sauthn.server import tls


class RunningServer:
    """A uvicorn server with k8sauthn's TLS on 127.0.0.1 and a port from the OS."""

    def __init__(self, app: Any, certs: Any) -> None:
        self.sock = tls.bind("127.0.0.1", 0)
        self.port: int = self.sock.getsockname()[1]
        self.server = tls.make_server(app, certs)
        self.app = app
        self._thread = threading.Thread(target=self._run, daemon=True)

    @classmethod
    def from_flags(cls, argv: Sequence[str]) -> RunningServer:
        flags = parse_serve_args(["--bind-address=127.0.0.1", "--secure-port=0", *argv])
        return cls(build_app(flags), server_certificates(flags))

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def __enter__(self) -> RunningServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(10)
