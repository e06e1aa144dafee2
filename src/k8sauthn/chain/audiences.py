"""Audience helpers and the audience-agnostic wrapper (spec §2.2, §2.3).

kube-apiserver wraps the authenticators that do not understand audiences (token file, bootstrap
tokens, OIDC/JWT, request-header) so that they only answer requests aimed at the server's own
API audiences, and report those audiences in the response (``authenticator/audiences.go``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from .._flow import Flow
from .._protocols import RequestAuthenticator, TokenAuthenticator
from .._types import Context, RequestView, Response
from ..exceptions import AuthenticationError
from ._step import (
    Pending,
    RequestStep,
    Step,
    TokenStep,
    request_stepper,
    step_flow,
    token_stepper,
)

__all__ = [
    "AudienceAgnosticRequest",
    "AudienceAgnosticToken",
    "AudiencesReturned",
    "go_quote",
    "has_audience",
    "intersect",
]


def has_audience(audiences: Iterable[str], audience: str) -> bool:
    """Exact string membership."""
    return audience in audiences


def intersect(ours: Sequence[str], theirs: Sequence[str]) -> tuple[str, ...]:
    """The members of ``theirs`` that are in ``ours``, in ``theirs``' order (duplicates kept)."""
    if not ours:
        return ()
    return tuple(a for a in theirs if a in ours)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_GO_ESCAPES |= {"\v": "\\v", "\\": "\\\\", '"': '\\"'}


def go_quote(value: str) -> str:
    """Go's ``%q`` of a string (``strconv.Quote``); undecodable bytes appear as ``\\xNN``."""
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif 0xDC80 <= code <= 0xDCFF:  # a byte kept by surrogateescape: invalid UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


class AudiencesReturned(AuthenticationError):
    """An authenticator wrapped as audience-agnostic returned audiences itself."""

    def __init__(self, audiences: Sequence[str]) -> None:
        quoted = " ".join(go_quote(a) for a in audiences)
        super().__init__(
            "audience agnostic authenticator wrapped an authenticator that returned "
            f"audiences: [{quoted}]"
        )


def _finish(resp: Response | None, auds: tuple[str, ...]) -> Response | None:
    if resp is None:
        return None
    if resp.audiences:
        raise AudiencesReturned(resp.audiences)
    return attrs.evolve(resp, audiences=auds)


def _finish_step(outcome: Step, auds: tuple[str, ...]) -> Step:
    if type(outcome) is Pending:
        return Pending(_after(outcome.flow, auds))
    return _finish(outcome, auds)  # type: ignore[arg-type]


def _after(flow: Flow[Response | None], auds: tuple[str, ...]) -> Flow[Response | None]:
    resp = yield from flow
    return _finish(resp, auds)


def _tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class AudienceAgnosticToken:
    """Answers only for the server's ``implicit`` audiences (the API audiences), spec §2.3."""

    inner: TokenAuthenticator = attrs.field()
    implicit: tuple[str, ...] = attrs.field(converter=_tuple)
    _step: TokenStep = attrs.field(init=False, repr=False, eq=False)

    @_step.default
    def _default_step(self) -> TokenStep:
        return token_stepper(self.inner)

    def token_flow(self, token: str, ctx: Context, /) -> Flow[Response | None]:
        return step_flow(self.token_step, token, ctx)

    def token_step(self, token: str, ctx: Context, /) -> Step:
        if ctx.audiences is None:
            # No audience context at all: the wrapper is transparent.
            return self._step(token, ctx)
        auds = intersect(self.implicit, ctx.audiences)
        if not auds:
            return None
        return _finish_step(self._step(token, ctx), auds)


@attrs.frozen
class AudienceAgnosticRequest:
    """The request flavour of :class:`AudienceAgnosticToken` (used for request-header)."""

    inner: RequestAuthenticator = attrs.field()
    implicit: tuple[str, ...] = attrs.field(converter=_tuple)
    _step: RequestStep = attrs.field(init=False, repr=False, eq=False)

    @_step.default
    def _default_step(self) -> RequestStep:
        return request_stepper(self.inner)

    def request_flow(self, request: RequestView, ctx: Context, /) -> Flow[Response | None]:
        return step_flow(self.request_step, request, ctx)

    def request_step(self, request: RequestView, ctx: Context, /) -> Step:
        if ctx.audiences is None:
            return self._step(request, ctx)
        auds = intersect(self.implicit, ctx.audiences)
        if not auds:
            return None
        return _finish_step(self._step(request, ctx), auds)
