"""The webhook authenticator against real HTTPS TokenReview servers on 127.0.0.1 (spec §12)."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest
import yaml

from k8sauthn import BackendUnavailable, ConfigError, TLSConfig
from k8sauthn.chain.groups import AuthenticatedGroupAdder
from k8sauthn.chain.union import RequestUnion, TokenUnion
from k8sauthn.io import AsyncAuthenticator, Authenticator
from k8sauthn.kubeapi import APIStatusError, Backoff
from k8sauthn.request.bearer import BearerAuthenticator
from k8sauthn.reviews import handle_token_review
from k8sauthn.token.bootstrap import BootstrapSecret, BootstrapTokenAuthenticator
from k8sauthn.token.bootstrap_sources import MappingSecretSource
from k8sauthn.token.webhook import WebhookTokenAuthenticator

from .._pki import SERVER_AUTH, Cert
from ..token._https_server import HTTPSServer, Seen

pytestmark = pytest.mark.integration
GOOD = "good-token"


def tokenreview_handler(seen: Seen) -> tuple[int, dict[str, str], bytes]:
    """A webhook: GOOD is alice (answered in the request's own version), anything else denied."""
    review = json.loads(seen.body)
    ok = review["spec"]["token"] == GOOD
    status: dict[str, object] = {"authenticated": ok}
    if ok:
        status["user"] = {"username": "alice", "groups": [review["apiVersion"]]}
    answer = {"apiVersion": review["apiVersion"], "kind": "TokenReview", "status": status}
    return 200, {}, json.dumps(answer).encode()


@pytest.fixture(scope="module")
def pki() -> dict[str, Cert]:
    ca = Cert.new_ca("webhook-ca")
    return {"ca": ca, "server": ca.server(), "client": ca.issue("kube-apiserver")}


def kubeconfig(tmp_path: Path, pki: dict[str, Cert], url: str, *, client: bool = True) -> Path:
    (tmp_path / "ca.pem").write_bytes(pki["ca"].pem)
    user: dict[str, str] = {}
    if client:
        pki["client"].write(tmp_path, "client")
        user = {"client-certificate": "client.crt", "client-key": "client.key"}
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "hook", "cluster": {"server": url, "certificate-authority": "ca.pem"}}
        ],
        "users": [{"name": "apiserver", "user": user}],
        "contexts": [{"name": "ctx", "context": {"cluster": "hook", "user": "apiserver"}}],
        "current-context": "ctx",
    }
    path = tmp_path / "webhook.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def server(tmp_path: Path, pki: dict[str, Cert]):  # type: ignore[no-untyped-def]
    with HTTPSServer(tokenreview_handler, tmp_path, pki["server"], client_ca=pki["ca"]) as srv:
        yield srv


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_mutual_tls_review(tmp_path: Path, pki, server: HTTPSServer, version: str) -> None:
    """k8sauthn presents its client certificate and reads v1 and v1beta1 answers."""
    path = kubeconfig(tmp_path, pki, server.url + "/authenticate")
    auth = WebhookTokenAuthenticator.from_kubeconfig_file(path, version=version)
    with Authenticator(auth) as runner:
        resp = runner.authenticate_token(GOOD)
        assert resp is not None
        assert resp.user.name == "alice"
        assert resp.user.groups == (f"authentication.k8s.io/{version}",)
        assert runner.authenticate_token("bad") is None
    assert [s.path for s in server.seen] == ["/authenticate", "/authenticate"]
    assert server.seen[0].client_cn == "kube-apiserver"


def test_without_client_certificate_is_an_error(tmp_path: Path, pki, server: HTTPSServer) -> None:
    """A server that refuses our TLS handshake makes an error, which is not cached."""
    path = kubeconfig(tmp_path, pki, server.url, client=False)
    auth = WebhookTokenAuthenticator.from_kubeconfig_file(path, backoff=Backoff(initial=0.001))
    with Authenticator(auth) as runner:
        for _ in range(2):
            with pytest.raises(BackendUnavailable):
                runner.authenticate_token(GOOD)


def test_untrusted_server_certificate(tmp_path: Path, pki) -> None:
    """A server certificate from another CA is rejected."""
    other = Cert.new_ca("other-ca").server()
    with HTTPSServer(tokenreview_handler, tmp_path, other) as srv:
        path = kubeconfig(tmp_path, pki, srv.url)
        auth = WebhookTokenAuthenticator.from_kubeconfig_file(path)
        with (
            Authenticator(auth) as runner,
            pytest.raises(
                BackendUnavailable, match=r'^Post ".*": tls: failed to verify certificate'
            ),
        ):
            runner.authenticate_token(GOOD)
        assert srv.calls() == 0


async def test_thousand_concurrent_requests_make_one_call(
    tmp_path: Path, pki, server: HTTPSServer
) -> None:
    """1000 concurrent async requests with one new token make exactly one webhook call."""
    path = kubeconfig(tmp_path, pki, server.url)
    auth = WebhookTokenAuthenticator.from_kubeconfig_file(path)
    async with AsyncAuthenticator(auth) as runner:
        results = await asyncio.gather(*(runner.authenticate_token(GOOD) for _ in range(1000)))
        assert {r.user.name for r in results if r is not None} == {"alice"}
        assert len(results) == 1000
        assert server.calls() == 1
        assert await runner.authenticate_token(GOOD) is not None
        assert server.calls() == 1


def test_sync_threads_share_one_call(tmp_path: Path, pki, server: HTTPSServer) -> None:
    """Concurrent threads on the sync runner also share one webhook call."""
    path = kubeconfig(tmp_path, pki, server.url)
    gate = threading.Event()
    inner = server.handler

    def slow(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        gate.wait(5)
        return inner(seen)

    server.handler = slow
    with Authenticator(WebhookTokenAuthenticator.from_kubeconfig_file(path)) as runner:
        out: list[object] = []
        threads = [
            threading.Thread(target=lambda: out.append(runner.authenticate_token(GOOD)))
            for _ in range(20)
        ]
        for t in threads:
            t.start()
        gate.set()
        for t in threads:
            t.join(10)
    assert len(out) == 20
    assert server.calls() == 1


def test_server_down_then_back(tmp_path: Path, pki, server: HTTPSServer) -> None:
    """While the webhook is down requests fail (not cached); when it is back they succeed."""
    path = kubeconfig(tmp_path, pki, server.url)
    with Authenticator(WebhookTokenAuthenticator.from_kubeconfig_file(path)) as runner:
        server.stop()
        with pytest.raises(BackendUnavailable, match="ConnectError"):
            runner.authenticate_token(GOOD)
        server.start()
        resp = runner.authenticate_token(GOOD)
        assert resp is not None
        assert resp.user.name == "alice"


def test_slow_webhook_hits_the_timeout(tmp_path: Path, pki, server: HTTPSServer) -> None:
    """A webhook slower than the timeout is an error, not a hang."""
    path = kubeconfig(tmp_path, pki, server.url)
    release = threading.Event()

    def stall(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        release.wait(5)
        return tokenreview_handler(seen)

    server.handler = stall
    auth = WebhookTokenAuthenticator.from_kubeconfig_file(path, timeout=0.3)
    try:
        with Authenticator(auth) as runner, pytest.raises(BackendUnavailable, match="timed out"):
            runner.authenticate_token(GOOD)
    finally:
        release.set()
    assert server.calls() == 1  # a timeout is not retried (spec §12.6)


def test_retries_then_succeeds(tmp_path: Path, pki, server: HTTPSServer) -> None:
    """Two 500s then a good answer: three calls, one user, with the injected tiny backoff."""
    path = kubeconfig(tmp_path, pki, server.url)
    answers = iter([(500, {}, b"busy"), (429, {}, b"")])

    def flaky(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        return next(answers, None) or tokenreview_handler(seen)

    server.handler = flaky
    auth = WebhookTokenAuthenticator.from_kubeconfig_file(path, backoff=Backoff(initial=0.001))
    with Authenticator(auth) as runner:
        assert runner.authenticate_token(GOOD) is not None
    assert server.calls() == 3


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ((200, {}, b"{" * 10 + b"x" * (2 << 20)), "exceeds"),
        ((307, {"Location": "/elsewhere"}, b""), "status code 307"),
        ((200, {}, b'{"kind":"TokenReview","status":{"authenticated":"yes"}}'), "decode"),
        ((200, {}, b'{"kind":"Pod","status":{"authenticated":true}}'), "decode"),
        ((500, {}, b"x" * 5000), "an error on the server"),
    ],
)
def test_malicious_answers(tmp_path: Path, pki, server: HTTPSServer, answer, error: str) -> None:
    """Huge bodies, redirects, wrong types and error floods are rejected within bounds."""
    path = kubeconfig(tmp_path, pki, server.url)
    server.handler = lambda seen: answer
    auth = WebhookTokenAuthenticator.from_kubeconfig_file(path, backoff=Backoff(initial=0.001))
    with Authenticator(auth) as runner, pytest.raises(BackendUnavailable, match=error) as err:
        runner.authenticate_token(GOOD)
    assert len(str(err.value)) < 1200
    assert all(s.path == "/" for s in server.seen)  # a redirect is never followed


def test_round_trip_through_our_own_tokenreview_endpoint(tmp_path: Path, pki) -> None:
    """k8sauthn's TokenReview handler served over HTTPS answers k8sauthn's webhook client."""
    secret = BootstrapSecret.for_token("abcdef", "0123456789abcdef")
    chain = AuthenticatedGroupAdder(
        RequestUnion(
            [
                BearerAuthenticator(
                    TokenUnion([BootstrapTokenAuthenticator(MappingSecretSource.of(secret))])
                )
            ]
        )
    )
    backend = Authenticator(chain)

    def serve(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        flow = handle_token_review(seen.body, chain, now=backend.context().now)
        code, body = backend.run(flow)
        return code, {}, body

    with HTTPSServer(serve, tmp_path, pki["server"], client_ca=pki["ca"]) as srv:
        path = kubeconfig(tmp_path, pki, srv.url + "/apis/authentication.k8s.io/v1/tokenreviews")
        auth = WebhookTokenAuthenticator.from_kubeconfig_file(path, version="v1")
        with Authenticator(auth) as runner:
            resp = runner.authenticate_token("abcdef.0123456789abcdef")
            assert resp is not None
            assert resp.user.name == "system:bootstrap:abcdef"
            assert resp.user.groups == ("system:bootstrappers", "system:authenticated")
            with pytest.raises(Exception, match="invalid bearer token"):
                runner.authenticate_token("abcdef.ffffffffffffffff")


def test_kubeconfig_errors_surface_at_construction(tmp_path: Path) -> None:
    """A missing kubeconfig is a configuration error before any request."""
    with pytest.raises(ConfigError, match="unable to read kubeconfig"):
        WebhookTokenAuthenticator.from_kubeconfig_file(tmp_path / "nope.yaml")
    assert TLSConfig() == TLSConfig()
    assert APIStatusError("m", code=1, reason="r").reason == "r"


def test_tls_server_name(tmp_path: Path, pki) -> None:
    """tls-server-name is the name checked on the server certificate (and sent in SNI)."""
    named = pki["ca"].issue("authn", eku=SERVER_AUTH, san_dns=("authn.internal",))
    with HTTPSServer(tokenreview_handler, tmp_path, named) as srv:
        path = kubeconfig(tmp_path, pki, srv.url)
        auth = WebhookTokenAuthenticator.from_kubeconfig_file(path)
        # 127.0.0.1 is not in the certificate
        with Authenticator(auth) as runner, pytest.raises(BackendUnavailable):
            runner.authenticate_token(GOOD)
        doc = yaml.safe_load(path.read_text())
        doc["clusters"][0]["cluster"]["tls-server-name"] = "authn.internal"
        path.write_text(yaml.safe_dump(doc))
        with Authenticator(WebhookTokenAuthenticator.from_kubeconfig_file(path)) as runner:
            assert runner.authenticate_token(GOOD) is not None


def test_connection_reset_is_retried(tmp_path: Path) -> None:
    """A server that resets every connection is tried five times (spec §12.6), then errors."""
    import socket
    import struct

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            conn.recv(65536)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()  # RST: "connection reset by peer"

    threading.Thread(target=serve, daemon=True).start()
    port = listener.getsockname()[1]
    path = tmp_path / "plain.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: k, cluster: {{server: 'http://127.0.0.1:{port}/'}}}}]\n"
        "contexts: [{name: c, context: {cluster: k}}]\n"
    )
    auth = WebhookTokenAuthenticator.from_kubeconfig_file(path, backoff=Backoff(initial=0.001))
    try:
        with Authenticator(auth) as runner, pytest.raises(BackendUnavailable):
            runner.authenticate_token(GOOD)
    finally:
        listener.close()
    assert len(accepted) == 5


async def _authenticate_good(runner: str, auth: object) -> object:
    """GOOD through the sync or the async runner."""
    if runner == "sync":
        with Authenticator(auth) as sync_runner:  # type: ignore[arg-type]
            return sync_runner.authenticate_token(GOOD)
    async with AsyncAuthenticator(auth) as async_runner:  # type: ignore[arg-type]
        return await async_runner.authenticate_token(GOOD)


class _StallThenReset:
    """A TCP server that reads each request, stalls ``stall`` seconds, then resets (RST)."""

    def __init__(self, stall: float) -> None:
        import socket

        self.accepted = 0
        self._stall = stall
        self._done = threading.Event()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import socket
        import struct

        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            conn.recv(65536)
            self._done.wait(self._stall)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    def close(self) -> None:
        self._done.set()
        self._listener.close()


@pytest.mark.parametrize("runner", ["sync", "async"])
async def test_stall_then_reset_keeps_the_overall_deadline(tmp_path: Path, runner: str) -> None:
    """A reset after a long stall uses up the deadline: no retry starts past it (both runners).

    The runner stamps the failure with its clock; without that stamp the flow would believe no
    time had passed and try five times (5 x the stall).
    """
    server = _StallThenReset(stall=0.7)
    path = tmp_path / "plain.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: k, cluster: {{server: 'http://127.0.0.1:{server.port}/'}}}}]\n"
        "contexts: [{name: c, context: {cluster: k}}]\n"
    )
    # 0.7 s stall + the 0.5 s first back-off ends past the 1 s deadline: one attempt only.
    auth = WebhookTokenAuthenticator.from_kubeconfig_file(path, deadline=1.0, cache_ttl=0)
    try:
        with pytest.raises(BackendUnavailable) as err:
            await _authenticate_good(runner, auth)
    finally:
        server.close()
    assert err.value.time is not None
    assert server.accepted == 1


@pytest.mark.parametrize("runner", ["sync", "async"])
async def test_trickled_answer_is_bounded_by_the_timeout(tmp_path: Path, runner: str) -> None:
    """A server that trickles its body a byte at a time cannot hold a call past its timeout.

    httpx's timeout restarts with every byte read; the runners bound the whole exchange (Go's
    http.Client.Timeout), so the call fails as timed out instead of waiting for the 1000 bytes.
    """
    import socket

    stop = threading.Event()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            while not stop.wait(0.05):
                try:
                    conn.sendall(b" ")
                except OSError:
                    return

    threading.Thread(target=serve, daemon=True).start()
    path = tmp_path / "plain.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: k, cluster: {{server: 'http://127.0.0.1:{listener.getsockname()[1]}/'}}}}]\n"
        "contexts: [{name: c, context: {cluster: k}}]\n"
    )
    auth = WebhookTokenAuthenticator.from_kubeconfig_file(path, timeout=0.5, cache_ttl=0)
    try:
        with pytest.raises(BackendUnavailable, match="timed out"):
            await _authenticate_good(runner, auth)
    finally:
        stop.set()
        listener.close()
