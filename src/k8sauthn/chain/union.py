"""Unions: try authenticators in order, first success wins (Kubernetes ``union.go``, spec §4).

A member that raises is remembered and the next one is tried; a success discards the earlier
errors. When nothing succeeds the remembered errors are raised together (apimachinery's aggregate
text, :func:`~k8sauthn.exceptions.aggregate`), or ``None`` is returned when there were none.
With ``fail_on_error`` the first error is raised at once: kube-apiserver uses that mode to put
the anonymous authenticator behind everything else, so a rejected credential is never anonymous.

Members are asked synchronously (:mod:`._step`) until one needs an effect; from there the union
continues as a flow, with the errors collected so far.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar, cast

from .._flow import Flow
from .._protocols import RequestAuthenticator, TokenAuthenticator
from .._types import Context, RequestView, Response
from ..exceptions import AuthenticationError, aggregate
from ._step import Pending, Step, request_stepper, step_flow, token_stepper

__all__ = ["RequestUnion", "TokenUnion", "request_union", "token_union"]

_S = TypeVar("_S", bound=Callable[..., Any])
_A = TypeVar("_A", str, RequestView)


def _distinct(steps: Iterable[_S]) -> tuple[_S, ...]:
    """The steps, each a distinct object (a repeated one is wrapped), for :func:`_position`."""
    out: list[_S] = []
    for member_step in steps:
        if any(s is member_step for s in out):
            member_step = cast(_S, functools.partial(member_step))
        out.append(member_step)
    return tuple(out)


def _position(steps: tuple[object, ...], member_step: object) -> int:
    # By identity: _distinct made every step its own object.
    return next(i for i, s in enumerate(steps) if s is member_step)


def _raise_collected(errors: list[AuthenticationError] | None) -> None:
    err = aggregate(errors or [])
    if err is not None:
        raise err


class _Union(Generic[_A]):
    """What the token and the request unions share: the member walk, written once.

    ``_A`` is what a member is asked about: a token string or a request view.
    """

    __slots__ = ("_steps", "fail_on_error")

    _steps: tuple[Callable[[_A, Context], Step], ...]
    fail_on_error: bool

    def _step(self, arg: _A, ctx: Context, /) -> Step:
        errors: list[AuthenticationError] | None = None
        steps = self._steps
        for member_step in steps:  # no enumerate: the index is only needed when pending
            try:
                outcome = member_step(arg, ctx)
            except AuthenticationError as exc:
                if self.fail_on_error:
                    raise
                if errors is None:
                    errors = [exc]
                else:
                    errors.append(exc)
                continue
            if outcome is None:
                continue
            if type(outcome) is Pending:
                index = _position(steps, member_step)
                return Pending(self._resume(outcome.flow, index, errors or [], arg, ctx))
            return outcome
        if errors:
            _raise_collected(errors)
        return None

    def _flow(self, arg: _A, ctx: Context) -> Flow[Response | None]:
        return step_flow(self._step, arg, ctx)

    def _resume(
        self,
        pending: Flow[Response | None],
        index: int,
        errors: list[AuthenticationError],
        arg: _A,
        ctx: Context,
    ) -> Flow[Response | None]:
        steps, flow = self._steps, pending
        while True:
            try:
                resp = yield from flow
            except AuthenticationError as exc:
                if self.fail_on_error:
                    raise
                errors.append(exc)
            else:
                if resp is not None:
                    return resp
            # The next members, synchronously again until one needs effects.
            while True:
                index += 1
                if index >= len(steps):
                    _raise_collected(errors)
                    return None
                try:
                    outcome = steps[index](arg, ctx)
                except AuthenticationError as exc:
                    if self.fail_on_error:
                        raise
                    errors.append(exc)
                    continue
                if outcome is None:
                    continue
                if type(outcome) is Pending:
                    flow = outcome.flow
                    break
                return outcome  # type: ignore[return-value]


class TokenUnion(_Union[str]):
    """Several token authenticators tried in order; build it with :func:`token_union`."""

    __slots__ = ("members",)

    def __init__(self, members: Sequence[TokenAuthenticator], *, fail_on_error: bool = False):
        self.members: tuple[TokenAuthenticator, ...] = tuple(members)
        self.fail_on_error = fail_on_error
        self._steps = _distinct(token_stepper(m) for m in self.members)

    def __repr__(self) -> str:
        return f"TokenUnion({list(self.members)!r}, fail_on_error={self.fail_on_error})"

    # The shared methods under the protocol names: an alias, not a wrapper (no extra call).
    token_step = _Union._step
    token_flow = _Union._flow


class RequestUnion(_Union[RequestView]):
    """Several request authenticators tried in order; build it with :func:`request_union`."""

    __slots__ = ("members",)

    def __init__(self, members: Sequence[RequestAuthenticator], *, fail_on_error: bool = False):
        self.members: tuple[RequestAuthenticator, ...] = tuple(members)
        self.fail_on_error = fail_on_error
        self._steps = _distinct(request_stepper(m) for m in self.members)

    def __repr__(self) -> str:
        return f"RequestUnion({list(self.members)!r}, fail_on_error={self.fail_on_error})"

    request_step = _Union._step
    request_flow = _Union._flow


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
