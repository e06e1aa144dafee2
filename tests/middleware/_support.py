"""A small chain for the middleware tests: bearer and WebSocket tokens, optional anonymous.

It stands in for ``k8sauthn.config.build`` only where the tests need a behaviour the real chain
cannot produce on demand (audiences, warnings); the framework tests use the real builder.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from k8sauthn import Context, Flow, InvalidBearerToken, RequestView, Response, UserInfo, pure
from k8sauthn._flow import Sleep

TOKENS: Mapping[str, UserInfo] = {
    "alice-token": UserInfo("alice", uid="1001", groups=("dev",), extra={"scopes": ("read",)}),
    "root-token": UserInfo("root", groups=("admins",)),
}
WS_PREFIX = "base64url.bearer.authorization.k8s.io."


def ws_protocol(token: str) -> str:
    """The subprotocol entry that carries ``token`` (spec §7.2)."""
    return WS_PREFIX + base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


@attrs.frozen
class FakeRequestAuthenticator:
    """Bearer header or WebSocket token -> user; unknown token -> error; else anonymous or None."""

    anonymous: bool = False
    audiences: tuple[str, ...] = ()
    warning: str = ""

    def request_flow(self, request: RequestView, ctx: Context, /) -> Flow[Response | None]:
        token = None
        auth = request.headers.first("authorization")
        if auth and auth.startswith("Bearer "):
            token = auth[7:]
        for value in request.headers.get("sec-websocket-protocol", ()):
            for entry in (p.strip() for p in value.split(",")):
                if entry.startswith(WS_PREFIX):
                    raw = entry[len(WS_PREFIX) :]
                    token = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        if self.warning:
            ctx.warnings.append(self.warning)
        if token is not None:
            user = TOKENS.get(token)
            if user is None:
                raise InvalidBearerToken()
            groups = (*user.groups, "system:authenticated")
            return pure(Response(attrs.evolve(user, groups=groups), audiences=self.audiences))
        if self.anonymous:
            return pure(Response(UserInfo("system:anonymous", groups=("system:unauthenticated",))))
        return pure(None)


@attrs.frozen
class EffectfulRequestAuthenticator:
    """FakeRequestAuthenticator after one real effect (a Sleep), like a cache miss or a webhook."""

    inner: FakeRequestAuthenticator = FakeRequestAuthenticator()

    def request_flow(self, request: RequestView, ctx: Context, /) -> Flow[Response | None]:
        yield Sleep(0)
        return (yield from self.inner.request_flow(request, ctx))


@attrs.frozen
class FakeChain:
    """The attributes of ``k8sauthn.config.build.Chain`` the adapters read."""

    request: FakeRequestAuthenticator | EffectfulRequestAuthenticator | None = (
        FakeRequestAuthenticator()
    )
    token: None = None
    api_audiences: tuple[str, ...] = ()
    strip_headers: tuple[str, ...] = ()
    strip_prefixes: tuple[str, ...] = ()


def serve_asgi(app: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn on an OS-chosen 127.0.0.1 port; yield its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="warning", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:  # pragma: no cover - a broken environment
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
