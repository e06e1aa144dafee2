"""The shared filter pieces: Status bodies, the filter flow, strip and skip policy."""

from __future__ import annotations

import json

import pytest

from k8sauthn import Context, Headers, RequestView, Response, UserInfo, run_pure
from k8sauthn.exceptions import AuthenticationError
from k8sauthn.middleware import FilterPolicy, status_body
from k8sauthn.middleware._common import (
    AudienceMismatch,
    NotAuthenticated,
    der_chain_from_pem,
    filter_flow,
    is_anonymous,
    warning_header,
    without_token_protocol,
)

from .._pki import Cert
from ._support import FakeChain, FakeRequestAuthenticator


def test_status_body_is_kube_apiserver_bytes() -> None:
    """Field order and compact separators match Go's json.Encoder, newline included."""
    body = status_body(403, "Forbidden", 'User "a" cannot')
    assert body == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"User \\"a\\" cannot","reason":"Forbidden","code":403}\n'
    )
    assert json.loads(body)["code"] == 403


class TestFilterFlow:
    def test_no_opinion_is_not_authenticated(self) -> None:
        """A chain with no opinion raises NotAuthenticated, an AuthenticationError."""
        flow = filter_flow(FakeRequestAuthenticator(), _view(), Context(now=0))
        with pytest.raises(NotAuthenticated) as info:
            run_pure(flow)
        assert isinstance(info.value, AuthenticationError)

    def test_audience_mismatch_text(self) -> None:
        """The mismatch error reads as kube-apiserver logs it: credential's, then API audiences."""
        auth = FakeRequestAuthenticator(audiences=("b", "c"))
        flow = filter_flow(auth, _view("alice-token"), Context(now=0, audiences=("a",)))
        with pytest.raises(AudienceMismatch) as info:
            run_pure(flow)
        assert str(info.value) == "unable to match the audience: [b c] , accepted: [a]"
        assert (info.value.audiences, info.value.accepted) == (("b", "c"), ("a",))

    @pytest.mark.parametrize(
        ("api", "resp"), [(None, ("b",)), (("a",), ()), (("a", "b"), ("b",)), ((), ("x",))]
    )
    def test_audiences_accepted(self, api: tuple[str, ...] | None, resp: tuple[str, ...]) -> None:
        """Empty API audiences, empty response audiences, or an overlap all pass (§2.4)."""
        auth = FakeRequestAuthenticator(audiences=resp)
        out = run_pure(filter_flow(auth, _view("alice-token"), Context(now=0, audiences=api)))
        assert out.user.name == "alice"


class TestPolicy:
    def test_create_keeps_defaults_and_lowercases(self) -> None:
        """Spec §10.4 defaults are always stripped; custom names are matched case-insensitively."""
        policy = FilterPolicy.create(strip_headers=["X-Proxy-User", " "], strip_prefixes=["X-P-"])
        assert policy.strips("authorization")
        assert policy.strips("x-remote-extra-foo")
        assert policy.strips("x-proxy-user")
        assert policy.strips("x-p-thing")
        assert not policy.strips("x-remote-group-1")

    def test_from_chain(self) -> None:
        """A chain's strip lists join the defaults."""
        policy = FilterPolicy.from_chain(
            FakeChain(strip_headers=("X-U",), strip_prefixes=("X-E-",)), skip_paths=["/a*"]
        )
        assert policy.strips("x-u")
        assert policy.strips("x-e-k")
        assert policy.skips("/a/b")
        assert not policy.skips("/b")

    def test_failure_headers(self) -> None:
        """The challenge is present unless disabled."""
        assert ("www-authenticate", "Bearer") in FilterPolicy.create().failure_headers()
        names = [n for n, _ in FilterPolicy.create(www_authenticate=None).failure_headers()]
        assert "www-authenticate" not in names


def test_without_token_protocol() -> None:
    """The token entry goes; the rest is joined with ',' as kube-apiserver does (§7.2)."""
    token = "base64url.bearer.authorization.k8s.io.YQ"
    assert without_token_protocol([f"{token}, a", "b"]) == "a,b"
    assert without_token_protocol([token]) is None


def test_warning_header_quotes_like_go() -> None:
    """Warning values are quoted like strconv.QuoteToASCII: no raw control or non-ASCII char."""
    assert warning_header('a "b" \\') == '299 - "a \\"b\\" \\\\"'
    assert warning_header("x\r\nSet-Cookie: y\x01\x7f") == (
        '299 - "x\\r\\nSet-Cookie: y\\x01\\x7f"'
    )
    assert warning_header("caf\u00e9 \u2603 \U0001f600") == (
        '299 - "caf\\u00e9 \\u2603 \\U0001f600"'
    )


def test_is_anonymous() -> None:
    """Anonymous means the anonymous name or the unauthenticated group."""
    assert is_anonymous(Response(UserInfo("system:anonymous")))
    assert is_anonymous(Response(UserInfo("x", groups=("system:unauthenticated",))))
    assert not is_anonymous(Response(UserInfo("x")))


def test_der_chain_from_pem(root_ca: Cert) -> None:
    """PEM texts become DER leaf first; a malformed one raises instead of being dropped."""
    leaf = root_ca.issue("a")
    assert der_chain_from_pem([leaf.pem, "", root_ca.pem.decode()]) == (leaf.der, root_ca.der)
    with pytest.raises(AuthenticationError):
        der_chain_from_pem(["not a certificate"])


def _view(token: str = "") -> RequestView:
    headers = Headers([("authorization", f"Bearer {token}")] if token else [])
    return RequestView(headers=headers)


@pytest.mark.parametrize(
    ("path", "skipped"),
    [
        ("/static/app.js", True),
        ("/static/", True),
        ("/static/../admin", False),
        ("/static/./x", False),
        ("/static/a/..", False),
        ("/static/..\\admin", False),
        ("/static/.well-known", True),
        ("/healthz", True),
        ("/healthz/", False),
    ],
)
def test_prefix_skips_refuse_dot_segments(path: str, skipped: bool) -> None:
    """A skip prefix cannot be stretched over another route with dot segments."""
    policy = FilterPolicy.create(skip_paths=["/healthz", "/static/*"])
    assert policy.skips(path) is skipped


def test_log_text_escapes_control_characters_and_bounds_length() -> None:
    """A remote error text cannot forge a log line or flood the log."""
    from k8sauthn.middleware._common import log_text

    assert log_text(ValueError("bad\nFAKE LOG LINE")) == "bad\\nFAKE LOG LINE"
    assert len(log_text(ValueError("x" * 5000))) == 1024 + 3
    assert log_text(ValueError("plain text")) == "plain text"
