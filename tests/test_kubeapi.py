"""The flow-based Kubernetes API client: endpoints, status errors, retries, in-cluster config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from k8sauthn import BackendUnavailable, ConfigError, Fetched
from k8sauthn.kubeapi import (
    APIStatusError,
    Backoff,
    KubeAPI,
    call_with_retries,
    is_retriable,
    status_error,
)

from .token._drive import drive

NOW = 1_800_000_000.0


def test_status_details_retry_after() -> None:
    """A Status body's details.retryAfterSeconds makes the error retriable with that delay."""
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "message": "m",
        "details": {"retryAfterSeconds": 3},
    }
    err = status_error(Fetched(409, {}, json.dumps(body).encode(), NOW))
    assert (err.retry_after, is_retriable(err)) == (3.0, True)


def test_retry_after_only_on_429_and_5xx() -> None:
    """Retry-After counts on 429/5xx only, and must be a positive integer."""
    assert status_error(Fetched(400, {"retry-after": "5"}, b"", NOW)).retry_after == 0
    assert status_error(Fetched(502, {"retry-after": "soon"}, b"", NOW)).retry_after == 0
    assert status_error(Fetched(502, {"retry-after": "-1"}, b"", NOW)).retry_after == 0
    assert status_error(Fetched(502, {"retry-after": "7"}, b"", NOW)).retry_after == 7


def test_plain_errors_are_not_retriable() -> None:
    """Exceptions that are not backend errors are never retried."""
    assert not is_retriable(ValueError("x"))
    assert not is_retriable(APIStatusError("m", code=404, reason="NotFound"))


def test_no_time_for_any_attempt() -> None:
    """A zero deadline makes no call and reports the deadline."""
    flow = call_with_retries(
        lambda t: KubeAPI("https://k").fetch("GET", "/x", timeout=t),
        start=NOW,
        deadline=0.0,
        backoff=Backoff(),
    )
    with pytest.raises(BackendUnavailable, match="context deadline exceeded"):
        drive(flow, [])


def test_fetch_shape() -> None:
    """A Fetch joins the path to the base URL and carries TLS, credentials and bounds."""
    api = KubeAPI("https://k:6443", headers={"Authorization": "Bearer x"}, timeout=5)
    fetch = api.fetch("POST", "/apis/x", b"{}", timeout=60)
    assert fetch.url == "https://k:6443/apis/x"
    assert fetch.timeout == 5
    assert fetch.headers["Content-Type"] == "application/json"
    assert api.url("") == "https://k:6443"
    assert "Bearer x" not in repr(api)
    assert "pw" not in repr(KubeAPI("https://u:pw@k/x"))
    assert "https://***@k/x" in repr(KubeAPI("https://u:pw@k/x"))


class TestInCluster:
    def sa_dir(self, tmp_path: Path, token: str = "tok") -> Path:
        (tmp_path / "token").write_text(token)
        (tmp_path / "ca.crt").write_text("ca")
        return tmp_path

    def test_env_and_files(self, tmp_path: Path) -> None:
        """Host and port come from the environment (IPv6 bracketed); the token is sent."""
        env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
        api = KubeAPI.in_cluster(environ=env, sa_dir=self.sa_dir(tmp_path))
        assert api.base_url == "https://[fd00::1]:443"
        assert api.fetch("GET", "/api").headers["Authorization"] == "Bearer tok"
        assert api.tls is not None
        assert api.tls.ca_pem == b"ca"

    def test_missing_environment_or_token(self, tmp_path: Path) -> None:
        """Without the service environment or with an empty token there is no configuration."""
        with pytest.raises(
            ConfigError, match="KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT"
        ):
            KubeAPI.in_cluster(environ={"KUBERNETES_SERVICE_HOST": "h"})
        env = {"KUBERNETES_SERVICE_HOST": "h", "KUBERNETES_SERVICE_PORT": "1"}
        with pytest.raises(ConfigError, match="empty"):
            KubeAPI.in_cluster(environ=env, sa_dir=self.sa_dir(tmp_path, "\n"))
