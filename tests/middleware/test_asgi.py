"""The pure ASGI middleware: the HTTP filter of spec §15 around any ASGI application."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from k8sauthn.io import AsyncAuthenticator
from k8sauthn.middleware import UNAUTHORIZED_BODY, NotAuthenticated
from k8sauthn.middleware.asgi import (
    USER_KEY,
    AuthenticationMiddleware,
    ScopeAuthenticator,
)

from .._pki import Cert
from ._support import (
    EffectfulRequestAuthenticator,
    FakeChain,
    FakeRequestAuthenticator,
    ws_protocol,
)

EXPECTED_401 = (
    b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
    b'"message":"Unauthorized","reason":"Unauthorized","code":401}\n'
)


class Echo:
    """An ASGI app that records the scope it got and answers with the user and headers."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1000})
            return
        resp = scope.get(USER_KEY)
        body = json.dumps(
            {
                "user": resp.user.name if resp else None,
                "groups": list(resp.user.groups) if resp else [],
                "headers": sorted(n.decode() for n, _ in scope["headers"]),
            }
        ).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def drive(app: Any, scope: dict[str, Any], incoming: list[dict[str, Any]]) -> list[Any]:
    """Call an ASGI app by hand and return every message it sent."""
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def http_scope(path: str = "/", headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": path, "headers": headers or []}


def ws_scope(protocols: str, *, denial: bool = False) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "websocket",
        "path": "/ws",
        "headers": [
            (b"upgrade", b"websocket"),
            (b"connection", b"Upgrade"),
            (b"sec-websocket-protocol", protocols.encode()),
        ],
    }
    if denial:
        scope["extensions"] = {"websocket.http.response": {}}
    return scope


class TestHTTP:
    async def test_accepted_token_reaches_the_app_with_the_user(self) -> None:
        """A known bearer token puts the Response in the scope and calls the app."""
        app = Echo()
        async with client(AuthenticationMiddleware(app, chain=FakeChain())) as c:
            r = await c.get("/", headers={"Authorization": "Bearer alice-token"})
        assert r.status_code == 200
        assert r.json()["user"] == "alice"
        assert app.scopes[0][USER_KEY].user.uid == "1001"

    async def test_credentials_are_stripped_after_success(self) -> None:
        """Authorization and the standard X-Remote-* headers never reach the app (spec §10.4)."""
        app = AuthenticationMiddleware(Echo(), chain=FakeChain(strip_headers=("x-custom-user",)))
        headers = {
            "Authorization": "Bearer alice-token",
            "X-Remote-User": "mallory",
            "X-Remote-Uid": "0",
            "X-Remote-Group": "system:masters",
            "X-Remote-Extra-Scopes": "all",
            "X-Remote-Group-1": "kept",
            "X-Custom-User": "mallory",
        }
        async with client(app) as c:
            r = await c.get("/", headers=headers)
        seen = r.json()["headers"]
        assert "x-remote-group-1" in seen
        for gone in (
            "authorization",
            "x-remote-user",
            "x-remote-uid",
            "x-remote-group",
            "x-remote-extra-scopes",
            "x-custom-user",
        ):
            assert gone not in seen

    async def test_rejected_token_gets_the_exact_status_body(self) -> None:
        """An unknown token gets 401 with kube-apiserver's Status JSON; the app never runs."""
        app = Echo()
        async with client(AuthenticationMiddleware(app, chain=FakeChain())) as c:
            r = await c.get("/", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401
        assert r.content == EXPECTED_401 == UNAUTHORIZED_BODY
        assert r.headers["content-type"] == "application/json"
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert app.scopes == []

    async def test_rejections_are_logged_without_the_credential(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The failure reason is logged (never sent), and the token never appears in the log."""
        caplog.set_level(logging.DEBUG, logger="k8sauthn")
        async with client(AuthenticationMiddleware(Echo(), chain=FakeChain())) as c:
            r = await c.get("/", headers={"Authorization": "Bearer s3cret-Token-xyz"})
            await c.get("/")
        assert b"invalid bearer token" not in r.content
        assert "Unable to authenticate the request: invalid bearer token" in caplog.text
        assert "no authenticator accepted the request" in caplog.text
        assert "s3cret" not in caplog.text

    async def test_no_credentials_and_no_anonymous_is_401(self) -> None:
        """No opinion from the whole chain is a rejection, not a pass (spec §15 step 3)."""
        async with client(AuthenticationMiddleware(Echo(), chain=FakeChain())) as c:
            r = await c.get("/")
        assert r.status_code == 401

    async def test_anonymous_user_reaches_the_app(self) -> None:
        """With anonymous enabled a credential-less request runs as system:anonymous."""
        chain = FakeChain(request=FakeRequestAuthenticator(anonymous=True))
        async with client(AuthenticationMiddleware(Echo(), chain=chain)) as c:
            r = await c.get("/")
        assert r.json()["user"] == "system:anonymous"
        assert r.json()["groups"] == ["system:unauthenticated"]

    async def test_www_authenticate_can_be_turned_off_for_parity(self) -> None:
        """www_authenticate=None sends no challenge, exactly as kube-apiserver."""
        app = AuthenticationMiddleware(Echo(), chain=FakeChain(), www_authenticate=None)
        async with client(app) as c:
            r = await c.get("/")
        assert r.status_code == 401
        assert "www-authenticate" not in r.headers

    async def test_skipped_paths_bypass_authentication(self) -> None:
        """Exact and prefix skip paths run the app with no user and untouched headers."""
        app = Echo()
        mw = AuthenticationMiddleware(app, chain=FakeChain(), skip_paths=("/healthz", "/static/*"))
        async with client(mw) as c:
            assert (await c.get("/healthz")).status_code == 200
            r = await c.get("/static/app.js", headers={"Authorization": "Bearer nope"})
            assert r.status_code == 200
            assert "authorization" in r.json()["headers"]
            assert (await c.get("/healthz/x")).status_code == 401
        assert all(USER_KEY not in s for s in app.scopes)

    async def test_audience_mismatch_is_401(self) -> None:
        """An accepted response whose audiences miss the API audiences is rejected (spec §2.4)."""
        inner = FakeRequestAuthenticator(audiences=("other",))
        chain = FakeChain(request=inner, api_audiences=("api",))
        async with client(AuthenticationMiddleware(Echo(), chain=chain)) as c:
            r = await c.get("/", headers={"Authorization": "Bearer alice-token"})
        assert r.status_code == 401

    async def test_audience_overlap_is_accepted(self) -> None:
        """Response audiences that intersect the API audiences pass the final check."""
        inner = FakeRequestAuthenticator(audiences=("other", "api"))
        chain = FakeChain(request=inner, api_audiences=("api",))
        async with client(AuthenticationMiddleware(Echo(), chain=chain)) as c:
            r = await c.get("/", headers={"Authorization": "Bearer alice-token"})
        assert r.status_code == 200

    async def test_warnings_become_warning_headers(self) -> None:
        """Warnings recorded by authenticators are sent as `Warning: 299 - "..."` headers."""
        chain = FakeChain(request=FakeRequestAuthenticator(warning='extra "space"'))
        async with client(AuthenticationMiddleware(Echo(), chain=chain)) as c:
            r = await c.get("/", headers={"Authorization": "Bearer alice-token"})
        assert r.headers["warning"] == '299 - "extra \\"space\\""'

    async def test_an_empty_chain_is_a_no_op(self) -> None:
        """With no request authenticator configured the filter passes everything (spec §15.1)."""
        async with client(AuthenticationMiddleware(Echo(), chain=FakeChain(request=None))) as c:
            r = await c.get("/", headers={"Authorization": "Bearer nope"})
        assert r.json()["user"] is None

    async def test_a_ready_runner_can_be_given(self) -> None:
        """authenticator= takes an AsyncAuthenticator whose audiences are the API audiences."""
        runner = AsyncAuthenticator(FakeRequestAuthenticator(audiences=("x",)), audiences=["api"])
        async with client(AuthenticationMiddleware(Echo(), authenticator=runner)) as c:
            r = await c.get("/", headers={"Authorization": "Bearer alice-token"})
        assert r.status_code == 401

    async def test_a_chain_that_needs_effects_is_run_to_its_answer(self) -> None:
        """A chain that must perform I/O first (cache miss, webhook) still accepts and rejects."""
        slow = EffectfulRequestAuthenticator(FakeRequestAuthenticator(audiences=("api",)))
        app = Echo()
        mw = AuthenticationMiddleware(app, chain=FakeChain(request=slow, api_audiences=("api",)))
        async with client(mw) as c:
            ok = await c.get("/", headers={"Authorization": "Bearer alice-token"})
            bad = await c.get("/", headers={"Authorization": "Bearer nope"})
            none = await c.get("/")
        assert (ok.status_code, bad.status_code, none.status_code) == (200, 401, 401)
        assert ok.json()["user"] == "alice"
        assert "authorization" not in ok.json()["headers"]
        assert len(app.scopes) == 1

    async def test_authenticate_returns_the_response_and_warnings(self) -> None:
        """ScopeAuthenticator.authenticate (the integrations' entry) strips and reports."""
        auth = ScopeAuthenticator(
            chain=FakeChain(
                request=EffectfulRequestAuthenticator(FakeRequestAuthenticator(warning="w"))
            )
        )
        scope = http_scope(headers=[(b"Authorization", b"Bearer alice-token"), (b"x-a", b"1")])
        done = await auth.authenticate(scope)
        assert (done.response.user.name, done.warnings) == ("alice", ("w",))
        assert scope["headers"] == [(b"x-a", b"1")]
        assert scope[USER_KEY] is done.response

    async def test_headers_that_are_not_a_list_are_replaced(self) -> None:
        """A server may hand over a tuple of headers: the stripped list replaces it."""
        auth = ScopeAuthenticator(chain=FakeChain())
        scope = http_scope()
        scope["headers"] = ((b"authorization", b"Bearer alice-token"), (b"x-a", b"1"))
        await auth.authenticate(scope)
        assert scope["headers"] == [(b"x-a", b"1")]

    async def test_an_empty_chain_refuses_direct_authentication(self) -> None:
        """authenticate() on an empty chain raises: only the middleware turns it into a pass."""
        auth = ScopeAuthenticator(chain=FakeChain(request=None))
        assert not auth.enabled
        assert auth.context().audiences is None
        with pytest.raises(NotAuthenticated):
            await auth.authenticate(http_scope())
        await auth.aclose()

    async def test_lifespan_passes_through(self) -> None:
        """Non-HTTP scopes are handed to the app untouched."""
        app = Echo()
        seen: list[str] = []

        async def inner(scope: Any, receive: Any, send: Any) -> None:
            seen.append(scope["type"])

        await drive(AuthenticationMiddleware(inner, chain=FakeChain()), {"type": "lifespan"}, [])
        assert seen == ["lifespan"]
        assert app.scopes == []

    def test_exactly_one_source_is_required(self) -> None:
        """Neither or both of authenticator= and chain= is a TypeError."""
        with pytest.raises(TypeError):
            ScopeAuthenticator()
        with pytest.raises(TypeError):
            ScopeAuthenticator(
                chain=FakeChain(), authenticator=AsyncAuthenticator(FakeRequestAuthenticator())
            )

    def test_a_token_only_root_is_refused(self) -> None:
        """The runner must wrap a request authenticator: the filter sees whole requests."""

        class TokenOnly:
            def token_flow(self, token: str, ctx: Any, /) -> Any:
                raise AssertionError

        with pytest.raises(TypeError):
            ScopeAuthenticator(authenticator=AsyncAuthenticator(TokenOnly()))


class TestWebSocket:
    async def test_subprotocol_token_is_accepted_and_removed(self) -> None:
        """A token in the subprotocol carrier authenticates; the app sees only other protocols."""
        app = Echo()
        mw = AuthenticationMiddleware(app, chain=FakeChain())
        scope = ws_scope(f"{ws_protocol('alice-token')}, channel.k8s.io")
        sent = await drive(mw, scope, [{"type": "websocket.connect"}])
        assert sent[0]["type"] == "websocket.accept"
        seen = app.scopes[0]
        assert seen[USER_KEY].user.name == "alice"
        assert (b"sec-websocket-protocol", b"channel.k8s.io") in seen["headers"]
        assert not any(b"base64url" in v for _, v in seen["headers"])

    async def test_failure_closes_with_policy_violation(self) -> None:
        """Without the denial-response extension a rejected handshake is closed with 1008."""
        app = Echo()
        scope = ws_scope(f"{ws_protocol('bad')}, channel.k8s.io")
        sent = await drive(
            AuthenticationMiddleware(app, chain=FakeChain()), scope, [{"type": "websocket.connect"}]
        )
        assert sent == [{"type": "websocket.close", "code": 1008}]
        assert app.scopes == []

    async def test_failure_answers_401_when_the_server_allows(self) -> None:
        """With websocket.http.response the handshake gets the same 401 Status body as HTTP."""
        scope = ws_scope(f"{ws_protocol('bad')}, channel.k8s.io", denial=True)
        sent = await drive(
            AuthenticationMiddleware(Echo(), chain=FakeChain()),
            scope,
            [{"type": "websocket.connect"}],
        )
        assert sent[0]["type"] == "websocket.http.response.start"
        assert sent[0]["status"] == 401
        assert sent[1] == {"type": "websocket.http.response.body", "body": EXPECTED_401}

    async def test_disconnect_before_connect_sends_nothing(self) -> None:
        """A client that left before the handshake gets no reply."""
        scope = ws_scope("channel.k8s.io")
        sent = await drive(
            AuthenticationMiddleware(Echo(), chain=FakeChain()),
            scope,
            [{"type": "websocket.disconnect"}],
        )
        assert sent == []


class TestPeerChain:
    def test_tls_extension_chain_reaches_the_view(self, root_ca: Cert) -> None:
        """By default the ASGI TLS extension's PEM strings become the view's DER chain."""
        inter = root_ca.intermediate("inter")
        leaf = inter.issue("alice")
        auth = ScopeAuthenticator(chain=FakeChain())
        scope = http_scope()
        scope["extensions"] = {"tls": {"client_cert_chain": [leaf.pem.decode(), inter.pem]}}
        assert auth.view(scope).peer_chain == (leaf.der, inter.der)
        assert auth.view(http_scope()).peer_chain == ()

    async def test_peer_chain_reaches_the_chain(self, root_ca: Cert) -> None:
        """The request view carries the certificates the TLS layer handed over."""
        leaf = root_ca.issue("alice")
        auth = ScopeAuthenticator(chain=FakeChain())
        scope = http_scope()
        scope["extensions"] = {"tls": {"client_cert_chain": [leaf.pem.decode()]}}
        assert auth.view(scope).peer_chain == (leaf.der,)

    async def test_malformed_certificate_is_401(self) -> None:
        """A PEM entry that does not decode fails closed with 401, never anonymous."""
        chain = FakeChain(request=FakeRequestAuthenticator(anonymous=True))
        scope = http_scope()
        scope["extensions"] = {"tls": {"client_cert_chain": ["garbage"]}}
        sent = await drive(AuthenticationMiddleware(Echo(), chain=chain), scope, [])
        assert sent[0]["status"] == 401

    async def test_a_custom_reader_is_used(self, root_ca: Cert) -> None:
        """peer_chain= plugs in another source of client certificates (e.g. a proxy adapter)."""
        leaf = root_ca.issue("bob")
        auth = ScopeAuthenticator(chain=FakeChain(), peer_chain=lambda scope: (leaf.der,))
        assert auth.view(http_scope()).peer_chain == (leaf.der,)
