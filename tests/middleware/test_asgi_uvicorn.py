"""The ASGI middleware under a real uvicorn server on 127.0.0.1, called over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from k8sauthn.middleware import UNAUTHORIZED_BODY
from k8sauthn.middleware.asgi import USER_KEY, AuthenticationMiddleware

from ._support import FakeChain, serve_asgi

pytestmark = pytest.mark.integration


async def whoami(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    resp = scope[USER_KEY]
    leaked = any(n == b"authorization" for n, _ in scope["headers"])
    body = f"{resp.user.name} leaked={leaked}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    yield from serve_asgi(AuthenticationMiddleware(whoami, chain=FakeChain()))


def test_token_over_real_http(base_url: str) -> None:
    """A real HTTP request with a bearer token reaches the app as the user, token stripped."""
    r = httpx.get(base_url + "/", headers={"Authorization": "Bearer alice-token"}, timeout=10)
    assert r.status_code == 200
    assert r.text == "alice leaked=False"


def test_rejection_over_real_http(base_url: str) -> None:
    """A real HTTP request with a bad token gets 401 and the Status body."""
    r = httpx.get(base_url + "/", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert r.status_code == 401
    assert r.content == UNAUTHORIZED_BODY
    assert r.headers["www-authenticate"] == "Bearer"
