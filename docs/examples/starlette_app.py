"""Starlette behind k8sauthn: run ``K8SAUTHN_TOKEN_FILE=tokens.csv python starlette_app.py``.

``tokens.csv`` is a kube-apiserver ``--token-auth-file`` (``token,user,uid,"group1,group2"``).
Then: ``curl -H 'Authorization: Bearer <token>' http://127.0.0.1:8000/me``.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from k8sauthn.config.build import Chain, build
from k8sauthn.config.options import AuthenticationOptions
from k8sauthn.integrations.starlette import authentication_middleware


@requires("authenticated")
async def me(request: Request) -> JSONResponse:
    user = request.user
    return JSONResponse({"name": user.name, "uid": user.uid, "groups": list(user.groups)})


@requires("group:admins")
async def admin(request: Request) -> JSONResponse:
    return JSONResponse({"admin": request.user.name})


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "authenticated": request.user.is_authenticated})


@requires("authenticated")
async def echo(websocket: WebSocket) -> None:
    # The token subprotocol entry is already gone; accept the application's own protocol.
    await websocket.accept(subprotocol="channel.k8s.io")
    await websocket.send_json({"name": websocket.user.name})
    await websocket.close()


def create_app(chain: Chain) -> Starlette:
    """The example application authenticating with ``chain``; /healthz needs no credential."""
    return Starlette(
        routes=[
            Route("/me", me),
            Route("/admin", admin),
            Route("/healthz", healthz),
            WebSocketRoute("/ws", echo),
        ],
        middleware=[authentication_middleware(chain=chain, skip_paths=["/healthz"])],
    )


def main() -> None:  # pragma: no cover - manual use
    import uvicorn

    chain = build(AuthenticationOptions(token_auth_file=os.environ["K8SAUTHN_TOKEN_FILE"]))
    uvicorn.run(create_app(chain), host="127.0.0.1", port=8000)


if __name__ == "__main__":  # pragma: no cover
    main()
