"""Group adders: decorators that append groups to an accepted user (spec §5).

They never mutate the inner response: a new :class:`~k8sauthn.UserInfo` is built with
:func:`attrs.evolve`, as Kubernetes copies the user (``group_adder.go``,
``authenticated_group_adder.go``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import attrs

from .._flow import Flow
from .._protocols import RequestAuthenticator, TokenAuthenticator
from .._types import (
    ALL_AUTHENTICATED,
    ALL_UNAUTHENTICATED,
    ANONYMOUS_USER,
    Context,
    RequestView,
    Response,
)
from ._step import Pending, RequestStep, Step, request_stepper, step_flow

__all__ = ["AuthenticatedGroupAdder", "RequestGroupAdder", "TokenGroupAdder"]

_MEMO_SIZE: Final = 4096


def _with_groups(resp: Response, groups: tuple[str, ...]) -> Response:
    user = attrs.evolve(resp.user, groups=(*resp.user.groups, *groups))
    return attrs.evolve(resp, user=user)


@attrs.frozen
class AuthenticatedGroupAdder:
    """Appends ``system:authenticated`` to every accepted request (spec §5.1).

    Unchanged: the anonymous user, and users that already carry ``system:authenticated`` or
    ``system:unauthenticated``.
    """

    inner: RequestAuthenticator = attrs.field()
    _step: RequestStep = attrs.field(init=False, repr=False, eq=False)
    # Cached responses come back as the same object on every hit: remember the copy made for
    # each (by identity; the entry holds the original so its id cannot be reused), so a cache
    # hit does not rebuild the user. Bounded; cleared when full.
    _memo: dict[int, tuple[Response, Response]] = attrs.field(
        factory=dict, init=False, repr=False, eq=False
    )

    @_step.default
    def _default_step(self) -> RequestStep:
        return request_stepper(self.inner)

    def request_flow(self, request: RequestView, ctx: Context, /) -> Flow[Response | None]:
        return step_flow(self.request_step, request, ctx)

    def request_step(self, request: RequestView, ctx: Context, /) -> Step:
        outcome = self._step(request, ctx)
        if outcome is None:
            return None
        if type(outcome) is Pending:
            return Pending(self._after(outcome.flow))
        # _add's memo hit, inlined: a cached response comes back as the same object.
        hit = self._memo.get(id(outcome))
        if hit is not None and hit[0] is outcome:
            return hit[1]
        return self._add(outcome)  # type: ignore[arg-type]

    def _after(self, flow: Flow[Response | None]) -> Flow[Response | None]:
        resp = yield from flow
        return None if resp is None else self._add(resp)

    def _add(self, resp: Response) -> Response:
        memo = self._memo
        hit = memo.get(id(resp))
        if hit is not None and hit[0] is resp:
            return hit[1]
        user = resp.user
        if user.name == ANONYMOUS_USER:
            return resp
        groups = user.groups
        if ALL_AUTHENTICATED in groups or ALL_UNAUTHENTICATED in groups:
            return resp
        out = _with_groups(resp, (ALL_AUTHENTICATED,))
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[id(resp)] = (resp, out)
        return out


def _groups(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class TokenGroupAdder:
    """Appends fixed ``groups`` after the existing ones (no de-duplication, spec §5.2)."""

    inner: TokenAuthenticator
    groups: tuple[str, ...] = attrs.field(converter=_groups)

    def token_flow(self, token: str, ctx: Context, /) -> Flow[Response | None]:
        resp = yield from self.inner.token_flow(token, ctx)
        return None if resp is None else _with_groups(resp, self.groups)


@attrs.frozen
class RequestGroupAdder:
    """Appends fixed ``groups`` after the existing ones (no de-duplication, spec §5.2)."""

    inner: RequestAuthenticator
    groups: tuple[str, ...] = attrs.field(converter=_groups)

    def request_flow(self, request: RequestView, ctx: Context, /) -> Flow[Response | None]:
        resp = yield from self.inner.request_flow(request, ctx)
        return None if resp is None else _with_groups(resp, self.groups)
