"""Unions: try authenticators in order, first success wins (Kubernetes ``union.go``, spec §4).

A member that raises is remembered and the next one is tried; a success discards the earlier
errors. When nothing succeeds the remembered errors are raised together (apimachinery's aggregate
text, :func:`~k8sauthn.exceptions.aggregate`), or ``None`` is returned when there were none.
With ``fail_on_error`` the first error is raised at once: kube-apiserver uses that mode to put
the anonymous authenticator behind everything else, so a rejected credential is never anonymous.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._flow import Flow, pure
from .._protocols import RequestAuthenticator, TokenAuthenticator
from .._types import Context, RequestView, Response
from ..exceptions import AuthenticationError, aggregate

__all__ = ["RequestUnion", "TokenUnion", "request_union", "token_union"]


class TokenUnion:
    """Several token authenticators tried in order; build it with :func:`token_union`."""

    __slots__ = ("fail_on_error", "members")

    def __init__(self, members: Sequence[TokenAuthenticator], *, fail_on_error: bool = False):
        self.members: tuple[TokenAuthenticator, ...] = tuple(members)
        self.fail_on_error = fail_on_error

    def __repr__(self) -> str:
        return f"TokenUnion({list(self.members)!r}, fail_on_error={self.fail_on_error})"

    def token_flow(self, token: str, ctx: Context, /) -> Flow[Response | None]:
        if not self.members:
            return pure(None)
        return self._flow(token, ctx)

    def _flow(self, token: str, ctx: Context) -> Flow[Response | None]:
        errors: list[AuthenticationError] = []
        for member in self.members:
            try:
                resp = yield from member.token_flow(token, ctx)
            except AuthenticationError as exc:
                if self.fail_on_error:
                    raise
                errors.append(exc)
                continue
            if resp is not None:
                return resp
        _raise_collected(errors)
        return None


class RequestUnion:
    """Several request authenticators tried in order; build it with :func:`request_union`."""

    __slots__ = ("fail_on_error", "members")

    def __init__(self, members: Sequence[RequestAuthenticator], *, fail_on_error: bool = False):
        self.members: tuple[RequestAuthenticator, ...] = tuple(members)
        self.fail_on_error = fail_on_error

    def __repr__(self) -> str:
        return f"RequestUnion({list(self.members)!r}, fail_on_error={self.fail_on_error})"

    def request_flow(self, request: RequestView, ctx: Context, /) -> Flow[Response | None]:
        if not self.members:
            return pure(None)
        return self._flow(request, ctx)

    def _flow(self, request: RequestView, ctx: Context) -> Flow[Response | None]:
        errors: list[AuthenticationError] = []
        for member in self.members:
            try:
                resp = yield from member.request_flow(request, ctx)
            except AuthenticationError as exc:
                if self.fail_on_error:
                    raise
                errors.append(exc)
                continue
            if resp is not None:
                return resp
        _raise_collected(errors)
        return None


def _raise_collected(errors: list[AuthenticationError]) -> None:
    err = aggregate(errors)
    if err is not None:
        raise err


def token_union(*members: TokenAuthenticator, fail_on_error: bool = False) -> TokenAuthenticator:
    """A union of token authenticators; a union of exactly one is that one (spec §4)."""
    if len(members) == 1:
        return members[0]
    return TokenUnion(members, fail_on_error=fail_on_error)


def request_union(
    *members: RequestAuthenticator, fail_on_error: bool = False
) -> RequestAuthenticator:
    """A union of request authenticators; a union of exactly one is that one (spec §4)."""
    if len(members) == 1:
        return members[0]
    return RequestUnion(members, fail_on_error=fail_on_error)
