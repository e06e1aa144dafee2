"""The two one-method interfaces every authenticator implements (Kubernetes ``interfaces.go``).

Outcomes, in Python form: a :class:`~k8sauthn.Response` is *accepted*; ``None`` is *no opinion*
(the chain tries the next one); a raised :class:`~k8sauthn.exceptions.AuthenticationError` is
*rejected* (or could not be checked) and stops the anonymous fallback.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ._flow import Flow
from ._types import Context, RequestView, Response

__all__ = ["RequestAuthenticator", "TokenAuthenticator"]


@runtime_checkable
class TokenAuthenticator(Protocol):
    """Authenticates a bearer token string."""

    def token_flow(self, token: str, ctx: Context, /) -> Flow[Response | None]: ...


@runtime_checkable
class RequestAuthenticator(Protocol):
    """Authenticates a whole request (headers, peer certificates, path)."""

    def request_flow(self, request: RequestView, ctx: Context, /) -> Flow[Response | None]: ...
