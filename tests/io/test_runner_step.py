"""The runners' synchronous step: looked up once per root, answers without a flow when it can."""

from __future__ import annotations

from k8sauthn import Context, Flow, RequestView, Response, Sleep, UserInfo, pure
from k8sauthn.chain._step import Pending
from k8sauthn.io import AsyncAuthenticator, Authenticator

ALICE = Response(UserInfo("alice"))
BOB = Response(UserInfo("bob"))


class Stepping:
    """A request authenticator with a step that answers directly or goes pending."""

    def __init__(self, answer: Response | None, *, pending: bool = False) -> None:
        self.answer, self.pending, self.contexts = answer, pending, list[Context]()

    def request_step(self, request: RequestView, ctx: Context, /) -> Response | Pending | None:
        self.contexts.append(ctx)
        return Pending(self._slow()) if self.pending else self.answer

    def _slow(self) -> Flow[Response | None]:
        yield Sleep(0)
        return self.answer

    def request_flow(self, request: RequestView, ctx: Context, /) -> Flow[Response | None]:
        raise AssertionError("the runner must use the step")


class FlowOnly:
    """A request authenticator without a step."""

    def request_flow(self, request: RequestView, ctx: Context, /) -> Flow[Response | None]:
        return pure(BOB)


def test_step_answer_is_returned_directly() -> None:
    """A direct answer (and no opinion) comes back from the step, with a fresh context."""
    root = Stepping(ALICE)
    runner = Authenticator(root, clock=lambda: 5.0, audiences=("api",))
    assert runner.authenticate_request(RequestView()) is ALICE
    assert root.contexts[0] == Context(5.0, ("api",))
    assert Authenticator(Stepping(None)).authenticate_request(RequestView()) is None


def test_pending_step_is_run() -> None:
    """A pending step's flow is driven to its answer, by both runners."""
    assert Authenticator(Stepping(ALICE, pending=True)).authenticate_request(RequestView()) is ALICE


async def test_async_runner_uses_the_step() -> None:
    """The async runner answers from the step, and runs a pending one."""
    assert await AsyncAuthenticator(Stepping(ALICE)).authenticate_request(RequestView()) is ALICE
    pending = AsyncAuthenticator(Stepping(BOB, pending=True))
    assert await pending.authenticate_request(RequestView()) is BOB


def test_given_context_is_passed_to_the_step() -> None:
    """A caller's context reaches the step unchanged."""
    root, ctx = Stepping(ALICE), Context(1.0)
    Authenticator(root).authenticate_request(RequestView(), ctx)
    assert root.contexts[0] is ctx


def test_replacing_the_root_replaces_the_step() -> None:
    """Assigning a new root makes the runner use that root's step (or its flow)."""
    runner = Authenticator(Stepping(ALICE))
    runner.root = FlowOnly()
    assert runner.authenticate_request(RequestView()) is BOB
    runner.root = Stepping(None)
    assert runner.authenticate_request(RequestView()) is None
    assert isinstance(runner.root, Stepping)
