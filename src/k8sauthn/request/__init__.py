"""Request authenticators: a :class:`~k8sauthn.RequestView` in, a response out.

Bearer and WebSocket-protocol tokens (spec §7) and anonymous (spec §6) live here; x509 and the
request-header (front proxy) authenticators are in their own modules of this package.
"""

from .anonymous import AnonymousAuthenticator, AnonymousConfig
from .bearer import BearerAuthenticator
from .websocket import InvalidWebSocketToken, WebSocketProtocolAuthenticator

__all__ = [
    "AnonymousAuthenticator",
    "AnonymousConfig",
    "BearerAuthenticator",
    "InvalidWebSocketToken",
    "WebSocketProtocolAuthenticator",
]
