"""Flask behind k8sauthn: run ``K8SAUTHN_TOKEN_FILE=tokens.csv python flask_app.py``."""

from __future__ import annotations

import os

from flask import Flask, request

from k8sauthn.config.build import Chain, build
from k8sauthn.config.options import AuthenticationOptions
from k8sauthn.integrations.flask import KubernetesAuth, current_user


def create_app(chain: Chain) -> Flask:
    """The example application authenticating with ``chain``."""
    app = Flask(__name__)
    auth = KubernetesAuth(app, chain=chain)

    @app.get("/me")
    def me() -> dict[str, object]:
        user = current_user()
        assert user is not None  # every non-exempt view runs with an accepted user
        return {
            "name": user.name,
            "uid": user.uid,
            "groups": list(user.groups),
            "sees_token": "Authorization" in request.headers,
        }

    @app.get("/admin")
    @auth.require_groups("admins")
    def admin() -> dict[str, str]:
        user = current_user()
        return {"admin": user.name if user else ""}

    @app.get("/healthz")
    @auth.exempt
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    return app


if __name__ == "__main__":  # pragma: no cover - manual use
    token_file = os.environ["K8SAUTHN_TOKEN_FILE"]
    create_app(build(AuthenticationOptions(token_auth_file=token_file))).run("127.0.0.1", 8000)
