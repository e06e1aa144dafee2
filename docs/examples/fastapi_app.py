"""FastAPI behind k8sauthn: run ``K8SAUTHN_TOKEN_FILE=tokens.csv python fastapi_app.py``.

The dependencies show as the ``KubernetesBearer`` security scheme at http://127.0.0.1:8000/docs.
"""

# No "from __future__ import annotations": FastAPI must evaluate the Depends(...) annotations
# of the routes below, which refer to the local "auth".
import os
from typing import Annotated

from fastapi import Depends, FastAPI

from k8sauthn.config.build import Chain, build
from k8sauthn.config.options import AuthenticationOptions
from k8sauthn.integrations.fastapi import KubernetesAuth, KubernetesUser


def create_app(chain: Chain) -> FastAPI:
    """The example application authenticating with ``chain``."""
    app = FastAPI(title="k8sauthn example")
    auth = KubernetesAuth(chain=chain)
    auth.install(app)  # 401/403 answered with Kubernetes Status bodies

    @app.get("/me")
    async def me(user: Annotated[KubernetesUser, Depends(auth.current_user)]) -> dict[str, object]:
        return {"name": user.name, "uid": user.uid, "groups": list(user.groups)}

    @app.get("/admin")
    async def admin(
        user: Annotated[KubernetesUser, Depends(auth.require_groups("admins"))],
    ) -> dict[str, str]:
        return {"admin": user.name}

    @app.get("/hello")
    async def hello(
        user: Annotated[KubernetesUser | None, Depends(auth.optional_user)],
    ) -> dict[str, str]:
        return {"hello": user.name if user else "stranger"}

    return app


def main() -> None:  # pragma: no cover - manual use
    import uvicorn

    chain = build(AuthenticationOptions(token_auth_file=os.environ["K8SAUTHN_TOKEN_FILE"]))
    uvicorn.run(create_app(chain), host="127.0.0.1", port=8000)


if __name__ == "__main__":  # pragma: no cover
    main()
