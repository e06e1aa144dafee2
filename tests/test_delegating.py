"""The delegating preset against a local HTTPS server that acts like kube-apiserver (§3.3)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from k8sauthn import (
    BackendUnavailable,
    ConfigError,
    Context,
    Headers,
    InvalidBearerToken,
    RequestView,
    run_pure,
)
from k8sauthn.config.options import RequestHeaderOptions
from k8sauthn.delegating import CONFIGMAP_PATH, TOKENREVIEW_PATH, DelegatingAuthenticator
from k8sauthn.io import Authenticator
from k8sauthn.kubeapi import Backoff

from ._pki import Cert
from .token._https_server import HTTPSServer, Seen

pytestmark = pytest.mark.integration
SA_TOKEN = "pod-sa-token"
NOW = time.time()  # the test certificates are valid around the real time


class FakeAPIServer:
    """Serves the authentication ConfigMap and TokenReview like kube-apiserver."""

    def __init__(self, pki: dict[str, Cert]) -> None:
        self.configmap: dict[str, str] | None = {
            "client-ca-file": pki["client_ca"].pem.decode(),
            "requestheader-client-ca-file": pki["proxy_ca"].pem.decode(),
            "requestheader-username-headers": '["X-Remote-User"]',
            "requestheader-group-headers": '["X-Remote-Group"]',
            "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
            "requestheader-allowed-names": '["front-proxy-client"]',
        }
        self.configmap_status = 200

    def __call__(self, seen: Seen) -> tuple[int, dict[str, str], bytes]:
        if seen.headers.get("authorization") != f"Bearer {SA_TOKEN}":
            return 401, {}, b""
        if seen.method == "GET" and seen.path == CONFIGMAP_PATH:
            if self.configmap_status != 200:
                return self.configmap_status, {}, b""
            if self.configmap is None:
                return 404, {}, b""
            cm = {"apiVersion": "v1", "kind": "ConfigMap", "data": self.configmap}
            return 200, {}, json.dumps(cm).encode()
        if seen.method == "POST" and seen.path == TOKENREVIEW_PATH:
            review = json.loads(seen.body)
            assert review["apiVersion"] == "authentication.k8s.io/v1"
            ok = review["spec"]["token"] == "user-token"
            status = {"authenticated": ok, "user": {"username": "bob"} if ok else {}}
            return 201, {}, json.dumps({"kind": "TokenReview", "status": status}).encode()
        return 404, {}, b""


@pytest.fixture(scope="module")
def pki() -> dict[str, Cert]:
    root = Cert.new_ca("cluster-ca")
    client_ca = Cert.new_ca("client-ca")
    proxy_ca = Cert.new_ca("front-proxy-ca")
    return {
        "root": root,
        "server": root.server(),
        "client_ca": client_ca,
        "proxy_ca": proxy_ca,
        "client": client_ca.issue("carol"),
        "proxy": proxy_ca.issue("front-proxy-client"),
    }


@pytest.fixture
def apiserver(tmp_path: Path, pki):  # type: ignore[no-untyped-def]
    fake = FakeAPIServer(pki)
    with HTTPSServer(fake, tmp_path, pki["server"]) as srv:
        srv.fake = fake  # type: ignore[attr-defined]
        yield srv


def in_cluster(tmp_path: Path, pki, srv: HTTPSServer, **options) -> DelegatingAuthenticator:  # type: ignore[no-untyped-def]
    sa = tmp_path / "sa"
    sa.mkdir(exist_ok=True)
    (sa / "token").write_text(SA_TOKEN + "\n")
    (sa / "ca.crt").write_bytes(pki["root"].pem)
    env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(srv.port)}
    return DelegatingAuthenticator.in_cluster(environ=env, sa_dir=sa, **options)


def bearer(token: str) -> RequestView:
    return RequestView(headers=Headers([("Authorization", f"Bearer {token}")]))


def test_all_three_credentials_and_anonymous(tmp_path: Path, pki, apiserver: HTTPSServer) -> None:
    """Bearer via TokenReview, client certificate and front proxy from the ConfigMap, anonymous."""
    authn = in_cluster(tmp_path, pki, apiserver)
    clock = [NOW]
    with Authenticator(authn, clock=lambda: clock[0]) as runner:
        runner.run(authn.initialize(NOW))
        assert apiserver.calls(CONFIGMAP_PATH) == 1

        resp = runner.authenticate_request(bearer("user-token"))
        assert resp is not None
        assert (resp.user.name, resp.user.groups) == ("bob", ("system:authenticated",))
        runner.authenticate_request(bearer("user-token"))
        assert apiserver.calls(TOKENREVIEW_PATH) == 1  # cached for 10 s
        with pytest.raises(InvalidBearerToken):
            runner.authenticate_request(bearer("wrong"))

        cert = runner.authenticate_request(RequestView(peer_chain=(pki["client"].der,)))
        assert cert is not None
        assert cert.user.name == "carol"

        proxied = RequestView(
            headers=Headers([("X-Remote-User", "dave"), ("X-Remote-Group", "ops")]),
            peer_chain=(pki["proxy"].der,),
        )
        via_proxy = runner.authenticate_request(proxied)
        assert via_proxy is not None
        assert (via_proxy.user.name, via_proxy.user.groups) == (
            "dave",
            ("ops", "system:authenticated"),
        )
        assert authn.request_header is not None

        anon = runner.authenticate_request(RequestView())
        assert anon is not None
        assert anon.user.name == "system:anonymous"

        assert apiserver.calls(TOKENREVIEW_PATH) == 2  # the wrong token
        with pytest.raises(InvalidBearerToken):
            runner.authenticate_request(bearer("wrong"))
        assert apiserver.calls(TOKENREVIEW_PATH) == 2  # denials are cached too
        clock[0] += 11
        runner.authenticate_request(bearer("user-token"))
        assert apiserver.calls(TOKENREVIEW_PATH) == 3


def test_lazy_lookup_and_refresh(tmp_path: Path, pki, apiserver: HTTPSServer) -> None:
    """The first request looks the ConfigMap up; later refreshes follow CA changes or keep them."""
    authn = in_cluster(tmp_path, pki, apiserver, refresh_interval=60.0)
    clock = [NOW]
    client = RequestView(peer_chain=(pki["client"].der,))
    fake: FakeAPIServer = apiserver.fake  # type: ignore[attr-defined]
    with Authenticator(authn, clock=lambda: clock[0]) as runner:
        assert runner.authenticate_request(client).user.name == "carol"  # type: ignore[union-attr]
        other = Cert.new_ca("rotated-client-ca")
        assert fake.configmap is not None
        fake.configmap["client-ca-file"] = other.pem.decode()
        clock[0] += 30
        assert runner.authenticate_request(client).user.name == "carol"  # type: ignore[union-attr]
        clock[0] += 31
        with pytest.raises(Exception, match="verifying certificate"):
            runner.authenticate_request(client)
        assert apiserver.calls(CONFIGMAP_PATH) == 2

        fake.configmap_status = 500
        clock[0] += 61
        with pytest.raises(Exception, match="verifying certificate"):
            runner.authenticate_request(client)
        assert authn.last_error is not None


def test_missing_configmap_means_tokens_only(tmp_path: Path, pki, apiserver: HTTPSServer) -> None:
    """A 404 ConfigMap is not an error: no client CA and no front proxy."""
    apiserver.fake.configmap = None  # type: ignore[attr-defined]
    authn = in_cluster(tmp_path, pki, apiserver)
    with Authenticator(authn) as runner:
        runner.run(authn.initialize(NOW))
        anon = runner.authenticate_request(RequestView(peer_chain=(pki["client"].der,)))
        assert anon is not None
        assert anon.user.name == "system:anonymous"
        assert runner.authenticate_request(bearer("user-token")) is not None
        assert authn.request_header is None


def test_lookup_failure_fatal_or_tolerated(tmp_path: Path, pki, apiserver: HTTPSServer) -> None:
    """A forbidden lookup fails start-up with the RBAC hint, unless failures are tolerated."""
    apiserver.fake.configmap_status = 403  # type: ignore[attr-defined]
    authn = in_cluster(tmp_path, pki, apiserver)
    with Authenticator(authn) as runner:
        with pytest.raises(BackendUnavailable, match="extension-apiserver-authentication-reader"):
            runner.run(authn.initialize(NOW))
        with pytest.raises(BackendUnavailable, match="unable to load configmap"):
            runner.authenticate_request(bearer("user-token"))

    tolerant = in_cluster(tmp_path, pki, apiserver, tolerate_lookup_failure=True)
    with Authenticator(tolerant) as runner:
        assert runner.authenticate_request(bearer("user-token")) is not None
        assert tolerant.last_error is not None


def test_skip_lookup(tmp_path: Path, pki, apiserver: HTTPSServer) -> None:
    """skip_lookup never reads the ConfigMap."""
    authn = in_cluster(tmp_path, pki, apiserver, skip_lookup=True)
    with Authenticator(authn) as runner:
        assert runner.authenticate_request(bearer("user-token")) is not None
    assert apiserver.calls(CONFIGMAP_PATH) == 0


def test_local_files_replace_the_lookup(tmp_path: Path, pki, apiserver: HTTPSServer) -> None:
    """With a local client CA and request-header CA there is nothing to look up."""
    (tmp_path / "client-ca.pem").write_bytes(pki["client_ca"].pem)
    (tmp_path / "proxy-ca.pem").write_bytes(pki["proxy_ca"].pem)
    rh = RequestHeaderOptions(
        client_ca_file=str(tmp_path / "proxy-ca.pem"), username_headers=("X-User",)
    )
    authn = in_cluster(
        tmp_path, pki, apiserver, client_ca_file=str(tmp_path / "client-ca.pem"), requestheader=rh
    )
    with Authenticator(authn) as runner:
        view = RequestView(headers=Headers([("X-User", "erin")]), peer_chain=(pki["proxy"].der,))
        assert runner.authenticate_request(view).user.name == "erin"  # type: ignore[union-attr]
    assert apiserver.calls(CONFIGMAP_PATH) == 0
    assert authn.request_header is not None


def test_request_header_is_not_audience_wrapped(
    tmp_path: Path, pki, apiserver: HTTPSServer
) -> None:
    """Unlike kube-apiserver's chain, the delegated front proxy answers for any audience."""
    authn = in_cluster(tmp_path, pki, apiserver, api_audiences=("api",))
    view = RequestView(headers=Headers([("X-Remote-User", "dave")]), peer_chain=(pki["proxy"].der,))
    with Authenticator(authn, audiences=("api",)) as runner:
        resp = runner.authenticate_request(view, runner.context(("elsewhere",)))
        assert resp is not None
        assert (resp.user.name, resp.audiences) == ("dave", ())


def test_websocket_bearer_protocol(tmp_path: Path, pki, apiserver: HTTPSServer) -> None:
    """A token in the WebSocket bearer subprotocol goes through the same TokenReview cache."""
    import base64

    encoded = base64.urlsafe_b64encode(b"user-token").decode().rstrip("=")
    view = RequestView(
        headers=Headers(
            [
                ("Connection", "Upgrade"),
                ("Upgrade", "websocket"),
                ("Sec-WebSocket-Protocol", f"base64url.bearer.authorization.k8s.io.{encoded}, v4"),
            ]
        )
    )
    authn = in_cluster(tmp_path, pki, apiserver, skip_lookup=True)
    with Authenticator(authn) as runner:
        resp = runner.authenticate_request(view)
        assert resp is not None
        assert resp.user.name == "bob"
        runner.authenticate_request(bearer("user-token"))
    assert apiserver.calls(TOKENREVIEW_PATH) == 1


def test_kubeconfig_constructor(tmp_path: Path, pki, apiserver: HTTPSServer) -> None:
    """A kubeconfig names the API server and credentials instead of the pod identity."""
    (tmp_path / "ca.pem").write_bytes(pki["root"].pem)
    (tmp_path / "kc.yaml").write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: k, cluster: {{server: '{apiserver.url}/', "
        "certificate-authority: ca.pem}}]\n"
        f"users: [{{name: u, user: {{token: {SA_TOKEN}}}}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
    )
    authn = DelegatingAuthenticator.from_kubeconfig(tmp_path / "kc.yaml", backoff=Backoff(steps=1))
    with Authenticator(authn) as runner:
        assert runner.authenticate_request(bearer("user-token")) is not None
    assert "127.0.0.1" in repr(authn)


def test_outside_a_cluster(tmp_path: Path) -> None:
    """No in-cluster environment is an error, unless optional: then anonymous only."""
    with pytest.raises(ConfigError, match="KUBERNETES_SERVICE_HOST"):
        DelegatingAuthenticator.in_cluster(environ={})
    authn = DelegatingAuthenticator.in_cluster(environ={}, optional=True)
    run_pure(authn.initialize(NOW))
    resp = run_pure(authn.request_flow(bearer("anything"), Context(now=NOW)))
    assert resp is not None
    assert resp.user.name == "system:anonymous"
    with pytest.raises(ConfigError, match="no authentication method configured"):
        run_pure(DelegatingAuthenticator(None, anonymous=False).initialize(NOW))


async def test_async_first_requests_share_the_lookup(
    tmp_path: Path, pki, apiserver: HTTPSServer
) -> None:
    """Concurrent first requests on the async runner share one ConfigMap GET and one review."""
    import asyncio

    from k8sauthn.io import AsyncAuthenticator

    authn = in_cluster(tmp_path, pki, apiserver)
    async with AsyncAuthenticator(authn) as runner:
        results = await asyncio.gather(
            *(runner.authenticate_request(bearer("user-token")) for _ in range(50))
        )
    assert {r.user.name for r in results if r is not None} == {"bob"}
    assert apiserver.calls(CONFIGMAP_PATH) == 1
    assert apiserver.calls(TOKENREVIEW_PATH) == 1
