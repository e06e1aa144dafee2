"""Run a real nginx on 127.0.0.1 for the authenticating-proxy tests.

Each test module writes the ``http { ... }`` body it needs (maps, server block); this module owns
the rest: the process-level settings, temp paths under the test's directory, a free port, the
start-up wait and the shutdown.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import require_tool

_PREAMBLE = """
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
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_nginx(directory: Path, http_body: str, **values: object) -> Iterator[int]:
    """Start nginx with ``http_body`` (a ``str.format`` template; ``{dir}`` and ``{port}`` are
    filled in, plus ``values``) inside the http block; yield its port; stop it afterwards."""
    binary = require_tool("nginx")
    port = free_port()
    fields = {"dir": directory, "port": port, **values}
    user = "user root;" if os.geteuid() == 0 else ""
    conf = directory / "nginx.conf"
    conf.write_text(
        _PREAMBLE.format(user=user, dir=directory) + http_body.format(**fields) + "\n}\n"
    )
    proc = subprocess.Popen(
        [binary, "-p", str(directory), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(port, proc, directory / "error.log")
        yield port
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
