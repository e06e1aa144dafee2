"""Synchronous steps: the hot path of the authenticators that usually need no effect.

Every flow layer (a generator wrapping a generator) costs about 0.2 µs per request, and a cached
bearer token crosses five of them in kube-apiserver's chain. So the decorators and authenticators
of this package also offer a *step*: a plain call that returns the answer directly, or a
:class:`Pending` holding the flow to run when an effect (a cache miss, a webhook call) is needed::

    def token_step(self, token, ctx, /) -> Response | None | Pending     # may raise
    def request_step(self, request, ctx, /) -> Response | None | Pending

Their ``token_flow`` / ``request_flow`` are the step wrapped into a flow (:func:`as_flow`), so
both interfaces always agree. Authenticators without a step (other packages, user code) are
adapted by :func:`token_stepper` / :func:`request_stepper`, which run their flow up to its first
effect: a pure flow still answers synchronously.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar

from .._flow import Effect, Flow, pure
from .._protocols import RequestAuthenticator, TokenAuthenticator
from .._types import Context, RequestView, Response
from ..exceptions import AuthenticationError

_A = TypeVar("_A", str, RequestView)

__all__ = [
    "Pending",
    "RequestStep",
    "Step",
    "TokenStep",
    "flow_of",
    "raising",
    "request_stepper",
    "step",
    "step_flow",
    "token_stepper",
]


class Pending:
    """The answer needs effects: ``flow`` produces it."""

    __slots__ = ("flow",)

    def __init__(self, flow: Flow[Response | None]) -> None:
        self.flow = flow


Step: TypeAlias = Response | Pending | None
TokenStep: TypeAlias = Callable[[str, Context], Step]
RequestStep: TypeAlias = Callable[[RequestView, Context], Step]


def raising(error: BaseException) -> Flow[Any]:
    """A flow that raises ``error`` when driven (errors surface when the flow runs)."""
    if False:  # pragma: no cover - makes this function a generator
        yield  # type: ignore[unreachable]
    raise error


def flow_of(outcome: Step) -> Flow[Response | None]:
    """The flow of a step's outcome: ``pure`` of the answer, or the pending flow.

    :func:`step_flow` wraps a step call so that a rejection surfaces when the flow runs.
    """
    if type(outcome) is Pending:
        return outcome.flow
    return pure(outcome)  # type: ignore[arg-type]


def step_flow(
    step_fn: Callable[[_A, Context], Step], arg: _A, ctx: Context, /
) -> Flow[Response | None]:
    """A step as a flow: its answer as ``pure``, the pending flow, or its rejection raised when
    the flow is driven (as it would be from a generator). Every ``*_flow`` of a class that has a
    step is this, so the two interfaces cannot disagree."""
    try:
        outcome = step_fn(arg, ctx)
    except AuthenticationError as exc:
        return raising(exc)
    return flow_of(outcome)


def step(flow: Flow[Response | None]) -> Step:
    """Run ``flow`` up to its first effect: its answer, or Pending(the rest of it)."""
    try:
        effect = flow.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    return Pending(_resume(flow, effect))


def _resume(flow: Flow[Response | None], first: Effect) -> Flow[Response | None]:
    """``flow`` again, from an effect it already yielded (send/throw/close forwarded)."""
    effect: Effect = first
    while True:
        try:
            sent = yield effect
        except GeneratorExit:
            flow.close()
            raise
        except BaseException as exc:  # thrown in by the runner: the flow decides
            try:
                effect = flow.throw(exc)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            continue
        try:
            effect = flow.send(sent)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


def token_stepper(auth: TokenAuthenticator) -> TokenStep:
    """``auth.token_step``, or an adapter that steps its flow."""
    own: TokenStep | None = getattr(auth, "token_step", None)
    if own is not None:
        return own
    flow_of = auth.token_flow
    return lambda token, ctx: step(flow_of(token, ctx))


def request_stepper(auth: RequestAuthenticator) -> RequestStep:
    """``auth.request_step``, or an adapter that steps its flow."""
    own: RequestStep | None = getattr(auth, "request_step", None)
    if own is not None:
        return own
    flow_of = auth.request_flow
    return lambda request, ctx: step(flow_of(request, ctx))
