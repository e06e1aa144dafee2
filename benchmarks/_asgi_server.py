"""A uvicorn server for the middleware row: the same tiny app, with or without k8sauthn.

    python benchmarks/_asgi_server.py plain|middleware TOKEN_FILE CPU

Binds 127.0.0.1 on a port the OS picks, prints the port on stdout, then serves until killed.
With K8SAUTHN_BENCH_PROFILE=PATH it runs under cProfile and writes the profile there on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

BODY = b"ok\n"


async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    """The protected application: a fixed 200 response."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"3")],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


def with_middleware(token_file: str, cache_ttl: float = 10.0) -> Any:
    """``app`` behind k8sauthn's ASGI middleware over kube-apiserver's default chain."""
    from k8sauthn.config.build import build
    from k8sauthn.config.options import AuthenticationOptions
    from k8sauthn.middleware.asgi import AuthenticationMiddleware

    options = AuthenticationOptions(token_auth_file=token_file, token_success_cache_ttl=cache_ttl)
    chain = build(options)
    return AuthenticationMiddleware(app, chain=chain)


async def serve(served: Any) -> None:
    import uvicorn

    # uvicorn binds port 0 itself: handing it a pre-bound socket (``sockets=``) made every
    # request take ~45 ms here (a delayed-ACK-like stall: 22 req/s on one connection).
    config = uvicorn.Config(
        served,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        access_log=False,
        lifespan="off",
        http="h11",
        loop="asyncio",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    print(server.servers[0].sockets[0].getsockname()[1], flush=True)
    await task


def main() -> None:
    mode, token_file, cpu = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    served = app if mode == "plain" else with_middleware(token_file)
    profile_to = os.environ.get("K8SAUTHN_BENCH_PROFILE")  # cProfile the server, dump on exit
    if not profile_to:
        asyncio.run(serve(served))
        return
    import cProfile
    import signal

    # uvicorn re-raises SIGTERM after its graceful shutdown: exit through SystemExit so that the
    # profile below is written.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        asyncio.run(serve(served))
    finally:
        profiler.disable()
        profiler.dump_stats(profile_to)


if __name__ == "__main__":
    main()
