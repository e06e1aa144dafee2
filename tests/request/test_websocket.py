"""Bearer tokens in the WebSocket subprotocol header (spec §7.2)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8sauthn import (
    AuthenticationError,
    Context,
    Headers,
    InvalidBearerToken,
    RequestView,
    run_pure,
)
from k8sauthn.io import AsyncAuthenticator
from k8sauthn.request import InvalidWebSocketToken, WebSocketProtocolAuthenticator
from k8sauthn.request.websocket import PROTOCOL_PREFIX, is_websocket_request, strip_token_protocol

from .._fakes import FakeToken, user

UPGRADE = (("Upgrade", "websocket"), ("Connection", "Upgrade"))


def b64(token: str | bytes) -> str:
    raw = token.encode() if isinstance(token, str) else token
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def view(*protocols: str, upgrade: tuple[tuple[str, str], ...] = UPGRADE) -> RequestView:
    return RequestView(
        headers=Headers((*upgrade, *(("Sec-WebSocket-Protocol", p) for p in protocols)))
    )


def flow_calls(request: RequestView) -> tuple[list[str], object]:
    fake = FakeToken(lambda token, ctx: user(token))
    resp = run_pure(WebSocketProtocolAuthenticator(fake).request_flow(request, Context(now=1)))
    return fake.calls, resp


class TestUpgradeDetection:
    @pytest.mark.parametrize(
        "connection",
        [
            "Upgrade",
            "upgrade",
            "keep-alive, Upgrade",
            "Upgrade, keep-alive",
            "a,upgrade",
            "a ,\tupgrade ,b",
        ],
    )
    def test_upgrade_listed(self, connection: str) -> None:
        """'upgrade' as a comma-separated element of the first Connection value counts."""
        assert is_websocket_request(Headers([("Upgrade", "WebSocket"), ("Connection", connection)]))

    @pytest.mark.parametrize("connection", ["", "keep-alive", "upgrades", "xupgrade", "upgrade x"])
    def test_upgrade_not_listed(self, connection: str) -> None:
        """Substrings and other words do not count (wsstream's regexp, not a substring test)."""
        assert not is_websocket_request(
            Headers([("Upgrade", "websocket"), ("Connection", connection)])
        )

    def test_only_first_connection_value(self) -> None:
        """A second Connection header is not consulted (Header.Get)."""
        headers = Headers(
            [("Upgrade", "websocket"), ("Connection", "close"), ("Connection", "upgrade")]
        )
        assert not is_websocket_request(headers)

    def test_upgrade_must_be_websocket(self) -> None:
        """Upgrade must equal 'websocket' case-insensitively; absent means no."""
        assert not is_websocket_request(Headers([("Upgrade", "h2c"), ("Connection", "upgrade")]))
        assert not is_websocket_request(Headers([("Connection", "upgrade")]))

    def test_not_a_websocket_is_no_opinion(self) -> None:
        """Without the upgrade headers the subprotocol is ignored."""
        calls, resp = flow_calls(view(PROTOCOL_PREFIX + b64("t"), "chat", upgrade=()))
        assert (calls, resp) == ([], None)


class TestToken:
    def test_token_decoded_and_checked(self) -> None:
        """The unpadded base64url suffix is the token given to the token chain."""
        calls, resp = flow_calls(view(f"{PROTOCOL_PREFIX}{b64('my-token')}, chat"))
        assert calls == ["my-token"]
        assert resp is not None

    def test_values_across_headers(self) -> None:
        """Several protocol headers are read as one list."""
        calls, _ = flow_calls(view("chat", PROTOCOL_PREFIX + b64("tok")))
        assert calls == ["tok"]

    def test_unicode_token(self) -> None:
        """A UTF-8 token decodes to its text."""
        calls, _ = flow_calls(view(PROTOCOL_PREFIX + b64("tök"), "x"))
        assert calls == ["tök"]

    def test_newlines_inside_encoding_are_skipped(self) -> None:
        """Go's decoder ignores CR and LF inside the encoded token."""
        enc = b64("abcdef")
        calls, _ = flow_calls(view(PROTOCOL_PREFIX + enc[:2] + "\r\n" + enc[2:] + ",x"))
        assert calls == ["abcdef"]

    @pytest.mark.parametrize(
        ("protocols", "message"),
        [
            (
                (PROTOCOL_PREFIX + b64("a"), PROTOCOL_PREFIX + b64("b"), "x"),
                "multiple base64.bearer.authorization tokens specified",
            ),
            (
                (PROTOCOL_PREFIX + b64("ab") + "==", "x"),
                "invalid base64.bearer.authorization token encoding",
            ),
            ((PROTOCOL_PREFIX + "a+b/", "x"), "invalid base64.bearer.authorization token encoding"),
            (
                (PROTOCOL_PREFIX + "abcde", "x"),
                "invalid base64.bearer.authorization token encoding",
            ),
            (
                (PROTOCOL_PREFIX + b64(b"\xff\xfe"), "x"),
                "invalid base64.bearer.authorization token",
            ),
            ((PROTOCOL_PREFIX + b64("tok"),), "missing additional subprotocol"),
        ],
    )
    def test_errors(self, protocols: tuple[str, ...], message: str) -> None:
        """Malformed token entries are errors with Kubernetes' texts."""
        with pytest.raises(InvalidWebSocketToken) as info:
            flow_calls(view(*protocols))
        assert message == str(info.value)
        assert isinstance(info.value, AuthenticationError)

    def test_empty_token_is_no_opinion(self) -> None:
        """The prefix with nothing after it, or no token entry at all: no opinion."""
        assert flow_calls(view(PROTOCOL_PREFIX, "x")) == ([], None)
        assert flow_calls(view("chat")) == ([], None)
        assert flow_calls(view()) == ([], None)

    def test_empty_entries_count_as_other_protocols(self) -> None:
        """An empty list element is another protocol, so the token is accepted."""
        calls, _ = flow_calls(view(PROTOCOL_PREFIX + b64("t") + ","))
        assert calls == ["t"]

    def test_unknown_token_is_invalid_bearer_token(self) -> None:
        """No opinion from the token chain becomes 'invalid bearer token'."""
        auth = WebSocketProtocolAuthenticator(FakeToken({}))
        with pytest.raises(InvalidBearerToken):
            run_pure(auth.request_flow(view(PROTOCOL_PREFIX + b64("t"), "x"), Context(now=1)))

    async def test_async_runner(self) -> None:
        """The async runner authenticates a WebSocket upgrade."""
        auth = WebSocketProtocolAuthenticator(FakeToken({"t": user("ws")}))
        resp = await AsyncAuthenticator(auth).authenticate_request(
            view(PROTOCOL_PREFIX + b64("t"), "x")
        )
        assert resp is not None
        assert resp.user.name == "ws"
        assert "WebSocketProtocolAuthenticator(" in repr(auth)

    @given(st.text(min_size=1, max_size=30))
    def test_roundtrip_property(self, token: str) -> None:
        """Any non-empty text token survives encoding into the subprotocol and back."""
        try:
            token.encode()
        except UnicodeEncodeError:
            return
        calls, _ = flow_calls(view(PROTOCOL_PREFIX + b64(token), "x"))
        assert [token] == calls


def test_strip_token_protocol() -> None:
    """After success the header holds only the other protocols, joined by ','."""
    headers = Headers(
        [
            ("Sec-WebSocket-Protocol", f"{PROTOCOL_PREFIX}{b64('t')}, chat"),
            ("Sec-WebSocket-Protocol", "v2"),
            ("Upgrade", "websocket"),
        ]
    )
    out = strip_token_protocol(headers)
    assert out["sec-websocket-protocol"] == ("chat,v2",)
    assert out["upgrade"] == ("websocket",)
