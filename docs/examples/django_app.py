"""A one-file Django + DRF project behind k8sauthn.

Run ``K8SAUTHN_TOKEN_FILE=tokens.csv python django_app.py runserver 127.0.0.1:8000``. In a real
project the ``settings.configure(...)`` values below go to ``settings.py``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import django
from django.conf import settings

from k8sauthn.config.build import build
from k8sauthn.config.options import AuthenticationOptions
from k8sauthn.middleware.wsgi import EnvironAuthenticator


def kubernetes() -> EnvironAuthenticator:
    """What ``K8SAUTHN_AUTHENTICATOR`` names: the chain kube-apiserver would build."""
    options = AuthenticationOptions(token_auth_file=os.environ["K8SAUTHN_TOKEN_FILE"])
    return EnvironAuthenticator(chain=build(options), skip_paths=["/healthz"])


def configure() -> None:
    """This example's Django settings; what a real project keeps in ``settings.py``."""
    settings.configure(
        DEBUG=False,
        SECRET_KEY="example-only",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
        # First, so no other middleware parses the credential headers before they are removed.
        MIDDLEWARE=["k8sauthn.integrations.django.KubernetesAuthenticationMiddleware"],
        K8SAUTHN_AUTHENTICATOR=f"{__name__}.kubernetes",  # built on the first request
        REST_FRAMEWORK={
            "DEFAULT_AUTHENTICATION_CLASSES": [
                "k8sauthn.integrations.django.KubernetesAuthentication"
            ],
            "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
            "UNAUTHENTICATED_USER": None,
        },
    )
    django.setup()


# DRF reads the settings while its views module is imported: configure first.
if not settings.configured:
    configure()

from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from rest_framework.permissions import IsAuthenticated  # noqa: E402
from rest_framework.request import Request  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

from k8sauthn.integrations.django import KubernetesAuthentication, in_groups  # noqa: E402


def me(request: HttpRequest) -> JsonResponse:
    user: Any = request.user  # a k8sauthn KubernetesUser
    return JsonResponse(
        {
            "name": user.username,
            "groups": list(user.groups),
            "sees_token": "Authorization" in request.headers,
        }
    )


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


class MeView(APIView):
    authentication_classes = [KubernetesAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return Response({"name": request.user.username, "uid": request.user.uid})


class AdminView(APIView):
    permission_classes = [IsAuthenticated, in_groups("admins")]

    def get(self, request: Request) -> Response:
        return Response({"admin": request.user.username})


urlpatterns = [
    path("me", me),
    path("healthz", healthz),
    path("api/me", MeView.as_view()),
    path("api/admin", AdminView.as_view()),
]


if __name__ == "__main__":  # pragma: no cover - manual use
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
