"""Litestar behind k8sauthn: run ``K8SAUTHN_TOKEN_FILE=tokens.csv python litestar_app.py``."""

from __future__ import annotations

import os
from typing import Any

from litestar import Litestar, Request, get
from litestar.middleware import DefineMiddleware

from k8sauthn import Response, UserInfo
from k8sauthn.config.build import Chain, build
from k8sauthn.config.options import AuthenticationOptions
from k8sauthn.integrations.litestar import (
    STATUS_EXCEPTION_HANDLERS,
    KubernetesAuthenticationMiddleware,
    requires_groups,
)


@get("/me")
async def me(request: Request[UserInfo, Response, Any]) -> dict[str, Any]:
    user = request.user
    return {"name": user.name, "uid": user.uid, "groups": list(user.groups)}


@get("/admin", guards=[requires_groups("admins")])
async def admin(request: Request[UserInfo, Response, Any]) -> dict[str, str]:
    return {"admin": request.user.name}


@get("/healthz", exclude_from_auth=True)
async def healthz() -> dict[str, bool]:
    return {"ok": True}


def create_app(chain: Chain) -> Litestar:
    """The example application authenticating with ``chain``."""
    auth = DefineMiddleware(KubernetesAuthenticationMiddleware, chain=chain, exclude=["^/schema"])
    return Litestar(
        route_handlers=[me, admin, healthz],
        middleware=[auth],
        exception_handlers=dict(STATUS_EXCEPTION_HANDLERS),
    )


def main() -> None:  # pragma: no cover - manual use
    import uvicorn

    chain = build(AuthenticationOptions(token_auth_file=os.environ["K8SAUTHN_TOKEN_FILE"]))
    uvicorn.run(create_app(chain), host="127.0.0.1", port=8000)


if __name__ == "__main__":  # pragma: no cover
    main()
