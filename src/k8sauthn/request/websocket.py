"""Bearer tokens carried in a WebSocket subprotocol (spec §7.2, Kubernetes ``protocol.go``).

Browsers cannot set ``Authorization`` on a WebSocket; clients send
``Sec-WebSocket-Protocol: base64url.bearer.authorization.k8s.io.<unpadded base64url token>, <real
protocol>`` instead. On success the token entry must be removed from the header before the
request goes on: :func:`strip_token_protocol` gives the value Kubernetes puts back.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

from .._flow import Flow
from .._protocols import TokenAuthenticator
from .._types import Context, Headers, RequestView, Response
from ..chain._step import Step, step_flow, token_stepper
from ..exceptions import AuthenticationError
from .bearer import go_string, go_trim_space, require_answer

__all__ = [
    "PROTOCOL_PREFIX",
    "InvalidWebSocketToken",
    "WebSocketProtocolAuthenticator",
    "is_websocket_request",
    "strip_token_protocol",
]

PROTOCOL_PREFIX: Final = "base64url.bearer.authorization.k8s.io."
_PROTOCOL_HEADER: Final = "sec-websocket-protocol"
# wsstream.IsWebSocketRequest: "upgrade" as an element of the lower-cased first Connection
# value. Go's \s is [\t\n\f\r ] and its $ is the end of the text (Python: \Z).
_CONNECTION_UPGRADE: Final = re.compile(r"(?:^|,[\t\n\f\r ]*)upgrade(?:\Z|[\t\n\f\r ]*,)")
_B64URL: Final = re.compile(r"[A-Za-z0-9_-]*")


class InvalidWebSocketToken(AuthenticationError):
    """The subprotocol token entry is malformed (the texts are Kubernetes')."""


def is_websocket_request(headers: Headers) -> bool:
    """``Upgrade: websocket`` and ``upgrade`` listed in the first ``Connection`` value."""
    upgrade = headers.first("upgrade")
    if upgrade is None or go_string(upgrade).casefold() != "websocket":
        return False
    connection = go_string(headers.first("connection") or "").lower()
    return _CONNECTION_UPGRADE.search(connection) is not None


def _decode(encoded: str) -> str:
    # base64.RawURLEncoding: no padding, URL alphabet; Go skips embedded CR and LF.
    encoded = encoded.replace("\r", "").replace("\n", "")
    if len(encoded) % 4 == 1 or _B64URL.fullmatch(encoded) is None:
        raise InvalidWebSocketToken("invalid base64.bearer.authorization token encoding")
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):  # pragma: no cover - excluded by the checks above
        raise InvalidWebSocketToken("invalid base64.bearer.authorization token encoding") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidWebSocketToken("invalid base64.bearer.authorization token") from None


def _split(headers: Headers) -> tuple[str, list[str]]:
    """The token (possibly empty) and the other protocols, in order."""
    token = ""
    seen = False
    others: list[str] = []
    for value in headers.get(_PROTOCOL_HEADER, ()):
        for protocol in go_string(value).split(","):
            protocol = go_trim_space(protocol)
            if not protocol.startswith(PROTOCOL_PREFIX):
                others.append(protocol)
                continue
            if seen:
                raise InvalidWebSocketToken("multiple base64.bearer.authorization tokens specified")
            seen = True
            token = _decode(protocol[len(PROTOCOL_PREFIX) :])
    return token, others


def strip_token_protocol(headers: Headers) -> Headers:
    """``headers`` with ``Sec-WebSocket-Protocol`` reduced to the non-token protocols.

    Kubernetes does this after a successful authentication: one header value, the other
    protocols joined by ``,``.
    """
    others = [
        go_trim_space(p)
        for v in headers.get(_PROTOCOL_HEADER, ())
        for p in go_string(v).split(",")
        if not go_trim_space(p).startswith(PROTOCOL_PREFIX)
    ]
    kept = headers.without([_PROTOCOL_HEADER]).pairs()
    return Headers((*kept, (_PROTOCOL_HEADER, ",".join(others))))


class WebSocketProtocolAuthenticator:
    """Authenticates WebSocket upgrades by the subprotocol token, with the ``token`` chain."""

    __slots__ = ("_step", "token")

    def __init__(self, token: TokenAuthenticator) -> None:
        self.token = token
        self._step = token_stepper(token)

    def __repr__(self) -> str:
        return f"WebSocketProtocolAuthenticator({self.token!r})"

    def request_flow(self, request: RequestView, ctx: Context, /) -> Flow[Response | None]:
        return step_flow(self.request_step, request, ctx)

    def request_step(self, request: RequestView, ctx: Context, /) -> Step:
        headers = request.headers
        if _PROTOCOL_HEADER not in headers or not is_websocket_request(headers):
            return None
        token, others = _split(headers)
        # At least one other subprotocol must remain, to be echoed back to the client.
        if token and not others:
            raise InvalidWebSocketToken("missing additional subprotocol")
        if not token:
            return None
        return require_answer(self._step(token, ctx))
