"""The reference ASGI app: kube-apiserver's endpoints, status codes, bodies and access log."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from k8sauthn import Headers, RequestView, Response, UserInfo
from k8sauthn.config.build import build
from k8sauthn.config.options import AuthenticationOptions
from k8sauthn.server._metrics import Metrics, compress_username
from k8sauthn.server._protocol import PEER_CHAIN_DER_KEY
from k8sauthn.server.app import (
    ReferenceApp,
    TokenReviewPolicy,
    decided_by,
    peer_chain_from_scope,
)

from .._pki import Cert

TOKEN = "alice-token-0123456789"
ADMIN_TOKEN = "admin-token-9876543210"
SSR = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
TR = "/apis/authentication.k8s.io/v1/tokenreviews"
UNAUTHORIZED = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "Unauthorized",
    "reason": "Unauthorized",
    "code": 401,
}


@pytest.fixture(scope="module")
def ca() -> Cert:
    return Cert.new_ca("app-client-ca")


@pytest.fixture
def files(tmp_path: Path, ca: Cert) -> dict[str, str]:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text(
        f'{TOKEN},alice,uid-1001,"dev,readers"\n{ADMIN_TOKEN},admin,uid-0,"system:masters"\n'
    )
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(ca.pem)
    return {"tokens": str(tokens), "ca": str(ca_file)}


def _app(files: dict[str, str], *, anonymous: bool = False, **kw: Any) -> ReferenceApp:
    options = AuthenticationOptions(
        token_auth_file=files["tokens"], client_ca_file=files["ca"], anonymous_auth=anonymous
    )
    return ReferenceApp.from_chain(build(options), clock=lambda: 1_800_000_000.0, **kw)


async def call(
    app: Any,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: bytes = b"",
    chain: list[str] | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
    chunks: int = 1,
) -> tuple[int, dict[bytes, bytes], bytes]:
    """Drive one HTTP request through an ASGI app; (status, headers, body)."""
    hdrs = list(headers or [])
    if token is not None:
        hdrs.append((b"authorization", f"Bearer {token}".encode()))
    scope: dict[str, Any] = {"type": "http", "method": method, "path": path, "headers": hdrs}
    if chain is not None:
        scope["extensions"] = {"tls": {"client_cert_chain": chain}}
    size = max(1, len(body) // chunks + 1)
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    messages = [
        {"type": "http.request", "body": p, "more_body": i < len(parts) - 1}
        for i, p in enumerate(parts)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start, resp_body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), resp_body


class TestSelfSubjectReview:
    @pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha1"])
    async def test_token_user_is_returned_with_201(self, files, version):
        """kubectl auth whoami gets 201 and the user, in the version it asked for."""
        path = f"/apis/authentication.k8s.io/{version}/selfsubjectreviews"
        status, headers, body = await call(_app(files), "POST", path, token=TOKEN)
        assert status == 201
        assert headers[b"content-type"] == b"application/json"
        doc = json.loads(body)
        assert f"authentication.k8s.io/{version}" == doc["apiVersion"]
        assert doc["kind"] == "SelfSubjectReview"
        assert doc["status"]["userInfo"] == {
            "username": "alice",
            "uid": "uid-1001",
            "groups": ["dev", "readers", "system:authenticated"],
        }

    async def test_protobuf_body_is_ignored_not_415(self, files):
        """kubectl 1.32 sends protobuf; the body is read and ignored."""
        body = b"k8s\x00\n\x1e\n\x19authentication.k8s.io/v1\x12\x11SelfSubjectReview"
        status, _, _ = await call(_app(files), "POST", SSR, token=TOKEN, body=body, chunks=3)
        assert status == 201

    async def test_client_certificate_user(self, files, ca):
        """A client certificate from the TLS extension authenticates (x509 extra included)."""
        leaf = ca.issue("bob", eku=None)
        status, _, body = await call(_app(files), "POST", SSR, chain=[leaf.pem.decode()])
        info = json.loads(body)["status"]["userInfo"]
        assert (status, info["username"]) == (201, "bob")
        assert info["extra"]["authentication.kubernetes.io/credential-id"][0].startswith(
            "X509SHA256="
        )

    async def test_der_chain_from_our_tls_layer_is_used_as_is(self, files, ca):
        """k8sauthn's TLS layer hands over DER too; it is preferred to re-decoding the PEM."""
        leaf = ca.issue("bob", eku=None)
        scope_ext = {"client_cert_chain": ["not even pem"], PEER_CHAIN_DER_KEY: (leaf.der,)}
        assert peer_chain_from_scope({"extensions": {"tls": scope_ext}}) == (leaf.der,)
        assert peer_chain_from_scope({"extensions": {"tls": {}}}) == ()
        assert peer_chain_from_scope({}) == ()

    async def test_pem_chain_cache_is_bounded(self, files, ca):
        """Other servers' PEM chains are decoded once each, but huge ones are never kept."""
        import k8sauthn.server.app as app_module

        leaf = ca.issue("bob", eku=None).pem.decode()
        app_module._cached_der_chain.cache_clear()
        ext = {"extensions": {"tls": {"client_cert_chain": [leaf]}}}
        assert peer_chain_from_scope(ext) == peer_chain_from_scope(ext)
        assert app_module._cached_der_chain.cache_info().hits == 1
        huge = {"extensions": {"tls": {"client_cert_chain": [leaf] * 100}}}
        assert len(peer_chain_from_scope(huge)) == 100
        assert app_module._cached_der_chain.cache_info().currsize == 1
        assert app_module._cached_der_chain.cache_info().maxsize == 256

    async def test_get_is_method_not_allowed(self, files):
        """Only POST creates a review."""
        status, _, body = await call(_app(files), "GET", SSR, token=TOKEN)
        assert (status, json.loads(body)["reason"]) == (405, "MethodNotAllowed")

    async def test_anonymous_user_when_anonymous_auth_is_on(self, files):
        """With --anonymous-auth, a request without credentials is system:anonymous."""
        status, _, body = await call(_app(files, anonymous=True), "POST", SSR)
        assert status == 201
        assert (json.loads(body)["status"]["userInfo"]) == {
            "username": "system:anonymous",
            "groups": ["system:unauthenticated"],
        }

    async def test_oversized_body_is_413(self, files):
        """The body is bounded (3 MiB) even though it is ignored."""
        status, _, _ = await call(
            _app(files), "POST", SSR, token=TOKEN, body=b"x" * (3 << 20) + b"x"
        )
        assert status == 413


class TestUnauthorized:
    async def test_no_credentials_is_401_with_the_status_body(self, files):
        """Without credentials (anonymous off) the answer is kube-apiserver's 401 Status."""
        status, _, body = await call(_app(files), "POST", SSR)
        assert status == 401
        assert json.loads(body) == UNAUTHORIZED

    async def test_wrong_token_is_401_even_with_anonymous_on(self, files):
        """A rejected token never falls back to anonymous."""
        status, _, body = await call(_app(files, anonymous=True), "POST", SSR, token="wrong")
        assert (status, json.loads(body)) == (401, UNAUTHORIZED)

    async def test_untrusted_certificate_is_401(self, files):
        """A certificate from another CA is an HTTP 401, not a TLS failure."""
        stranger = Cert.new_ca("stranger").issue("mallory")
        status, _, _ = await call(
            _app(files, anonymous=True), "POST", SSR, chain=[stranger.pem.decode()]
        )
        assert status == 401

    async def test_malformed_certificate_from_the_tls_layer_is_401(self, files):
        """A chain entry that is not PEM fails closed."""
        status, _, _ = await call(_app(files, anonymous=True), "POST", SSR, chain=["garbage"])
        assert status == 401

    async def test_no_authenticator_configured_is_401(self):
        """With nothing configured (and anonymous off) every request is refused."""
        app = ReferenceApp.from_chain(build(AuthenticationOptions(anonymous_auth=False)))
        status, _, _ = await call(app, "POST", SSR, token=TOKEN)
        assert status == 401

    async def test_version_is_401_without_and_404_with_credentials(self, files):
        """/version is not served, so the kubectl dispatcher keeps its built-in kubectl."""
        app = _app(files)
        assert (await call(app, "GET", "/version"))[0] == 401
        status, _, body = await call(app, "GET", "/version", token=TOKEN)
        assert (status, json.loads(body)["reason"]) == (404, "NotFound")


class TestHealth:
    @pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz", "/healthz/ping"])
    async def test_health_needs_no_credentials(self, files, path):
        """Probes answer ok without authentication."""
        assert (lambda r: (r[0], r[2]))(await call(_app(files), "GET", path)) == (200, b"ok")


class TestTokenReview:
    def _review(self, token: str, version: str = "v1", audiences: list[str] | None = None) -> bytes:
        spec: dict[str, Any] = {"token": token}
        if audiences:
            spec["audiences"] = audiences
        return json.dumps(
            {"apiVersion": f"authentication.k8s.io/{version}", "kind": "TokenReview", "spec": spec}
        ).encode()

    async def test_authenticated_caller_gets_the_review(self, files):
        """The webhook answer carries the reviewed token's user, never the token."""
        status, _, body = await call(
            _app(files), "POST", TR, token=ADMIN_TOKEN, body=self._review(TOKEN)
        )
        doc = json.loads(body)
        assert status == 201
        assert doc["status"]["authenticated"] is True
        assert doc["status"]["user"]["username"] == "alice"
        assert doc["spec"] == {"token": ""}  # k8sauthn.reviews' one redaction, as sent
        assert TOKEN.encode() not in body

    async def test_v1beta1_review(self, files):
        """kube-apiserver's default webhook version is v1beta1; it is answered in kind."""
        path = "/apis/authentication.k8s.io/v1beta1/tokenreviews"
        status, _, body = await call(
            _app(files), "POST", path, token=ADMIN_TOKEN, body=self._review(TOKEN, "v1beta1")
        )
        assert (status, json.loads(body)["apiVersion"]) == (201, "authentication.k8s.io/v1beta1")

    async def test_unknown_token_is_not_authenticated(self, files):
        """An unknown token yields authenticated=false with the chain's error text."""
        _, _, body = await call(
            _app(files), "POST", TR, token=ADMIN_TOKEN, body=self._review("nope")
        )
        st = json.loads(body)["status"]
        assert "authenticated" not in st
        assert st["error"] == "invalid bearer token"

    async def test_anonymous_caller_is_forbidden(self, files):
        """An anonymous caller may not review tokens (kube-apiserver's 403 text)."""
        status, _, body = await call(
            _app(files, anonymous=True), "POST", TR, body=self._review(TOKEN)
        )
        doc = json.loads(body)
        assert (status, doc["reason"]) == (403, "Forbidden")
        assert doc["message"].startswith(
            'tokenreviews.authentication.k8s.io is forbidden: User "system:anonymous"'
        )

    async def test_policy_restricts_to_named_groups(self, files):
        """With --tokenreview-allowed-groups, other authenticated users get 403."""
        app = _app(files, tokenreview=TokenReviewPolicy(groups=["system:masters"]))
        assert (await call(app, "POST", TR, token=TOKEN, body=self._review(TOKEN)))[0] == 403
        assert (await call(app, "POST", TR, token=ADMIN_TOKEN, body=self._review(TOKEN)))[0] == 201

    async def test_bad_request_and_wrong_method(self, files):
        """A body without a token is 400; GET is 405; a huge body is 413."""
        app = _app(files)
        status, _, body = await call(app, "POST", TR, token=ADMIN_TOKEN, body=self._review(""))
        assert (
            status,
            json.loads(body)["message"],
        ) == (400, "token is required for TokenReview in authentication")
        assert (await call(app, "GET", TR, token=ADMIN_TOKEN))[0] == 405
        big = b" " * (3 << 20) + b"{}"
        assert (await call(app, "POST", TR, token=ADMIN_TOKEN, body=big))[0] == 413


class TestPolicy:
    def test_empty_policy_allows_any_authenticated_user(self):
        """No lists: every authenticated user, never anonymous."""
        policy = TokenReviewPolicy()
        assert policy.allows(UserInfo("u", groups=("system:authenticated",)))
        assert not policy.allows(UserInfo("system:anonymous"))
        assert not policy.allows(UserInfo("x", groups=("system:unauthenticated",)))

    def test_users_and_groups(self):
        """A named user or a member of a named group is allowed; others are not."""
        policy = TokenReviewPolicy(users=["kube-apiserver"], groups=["webhook-callers"])
        assert policy.allows(UserInfo("kube-apiserver"))
        assert policy.allows(UserInfo("x", groups=("webhook-callers",)))
        assert not policy.allows(UserInfo("x", groups=("dev",)))


class TestObservability:
    async def test_access_log_has_user_and_authenticator_but_no_token(self, files, caplog):
        """One JSON line per request; the credential never appears."""
        app = _app(files)
        with caplog.at_level(logging.INFO, logger="k8sauthn.access"):
            await call(app, "POST", SSR, token=TOKEN)
            await call(app, "POST", SSR, token="wrong-secret-token")
        lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "k8sauthn.access"]
        assert {k: lines[0][k] for k in ("user", "authenticator", "status")} == {
            "user": "alice",
            "authenticator": "token",
            "status": 201,
        }
        assert (lines[1]["status"], lines[1]["reason"]) == (401, "invalid bearer token")
        assert TOKEN not in caplog.text
        assert "wrong-secret-token" not in caplog.text

    async def test_access_log_can_be_turned_off(self, files, caplog):
        """--access-log=false writes nothing per request."""
        with caplog.at_level(logging.INFO, logger="k8sauthn.access"):
            await call(_app(files, access_log_enabled=False), "POST", SSR, token=TOKEN)
        assert not [r for r in caplog.records if r.name == "k8sauthn.access"]

    async def test_access_log_line_not_built_when_info_is_off(self, files, caplog, monkeypatch):
        """With the access logger above INFO no line is encoded at all (hot path)."""
        import k8sauthn.server.app as app_module

        encoded: list[object] = []
        real_dumps = app_module.json.dumps
        monkeypatch.setattr(
            app_module.json, "dumps", lambda obj, **kw: encoded.append(obj) or real_dumps(obj, **kw)
        )
        with caplog.at_level(logging.WARNING, logger="k8sauthn.access"):
            status, _, _ = await call(_app(files), "POST", SSR, token=TOKEN)
        assert status == 201
        assert not [o for o in encoded if isinstance(o, dict) and "duration_ms" in o]

    async def test_metrics_count_results(self, files):
        """/metrics exposes kube-apiserver's filter metrics in Prometheus text."""
        app = _app(files, metrics=Metrics())
        await call(app, "POST", SSR, token=TOKEN)
        await call(app, "POST", SSR, token="wrong")
        status, headers, body = await call(app, "GET", "/metrics", token=TOKEN)
        text = body.decode()
        assert status == 200
        assert headers[b"content-type"].startswith(b"text/plain")
        assert 'authentication_attempts_total{result="success"} 2.0' in text
        assert 'authentication_attempts_total{result="error"} 1.0' in text
        assert 'authenticated_user_requests_total{username="other"} 2.0' in text
        assert "authentication_duration_seconds_bucket" in text

    def test_username_compression(self):
        """User names become a bounded label set."""
        assert compress_username("admin") == "admin"
        assert compress_username("jane@example.com") == "email_id"
        assert compress_username("jane") == "other"

    async def test_lifespan_closes_the_runner(self, files):
        """The app answers lifespan startup and shutdown."""
        app = _app(files)
        messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return messages.pop(0)

        async def send(m: dict[str, Any]) -> None:
            sent.append(m)

        await app({"type": "lifespan"}, receive, send)
        assert [m["type"] for m in sent] == [
            "lifespan.startup.complete",
            "lifespan.shutdown.complete",
        ]


class TestDecidedBy:
    @pytest.mark.parametrize(
        ("user", "headers", "chain", "expected"),
        [
            (UserInfo("system:anonymous"), (), (), "anonymous"),
            (
                UserInfo(
                    "b", extra={"authentication.kubernetes.io/credential-id": ["X509SHA256=1"]}
                ),
                (),
                (b"c",),
                "x509",
            ),
            (
                UserInfo("j", extra={"authentication.kubernetes.io/credential-id": ["JTI=1"]}),
                (("authorization", "Bearer x"),),
                (),
                "jwt",
            ),
            (
                UserInfo("system:bootstrap:abcdef"),
                (("authorization", "Bearer x"),),
                (),
                "bootstrap",
            ),
            (UserInfo("t"), (("authorization", "Bearer x"),), (), "token"),
            (UserInfo("p"), (("x-remote-user", "p"),), (b"c",), "requestheader"),
            (UserInfo("q"), (), (b"c",), "x509"),
            (UserInfo("r"), (), (), "unknown"),
        ],
    )
    def test_inference(self, user, headers, chain, expected):
        """The access log names the authenticator from the user and the credential shown."""
        view = RequestView(headers=Headers(headers), peer_chain=chain)
        assert expected == decided_by(view, Response(user), frozenset())
