"""Synchronous steps: answers without flows, Pending flows that resume correctly."""

from __future__ import annotations

import pytest

from k8sauthn import (
    AuthenticationError,
    BackendUnavailable,
    ChainError,
    Context,
    Fetch,
    Fetched,
    Flow,
    RequestView,
    Response,
    Sleep,
    UserInfo,
    run_pure,
)
from k8sauthn.chain import (
    AudienceAgnosticRequest,
    AudienceAgnosticToken,
    AuthenticatedGroupAdder,
    token_union,
)
from k8sauthn.chain._step import Pending, request_stepper, step, token_stepper
from k8sauthn.chain.union import RequestUnion, TokenUnion
from k8sauthn.io import AsyncAuthenticator, Authenticator

from .._fakes import FakeRequest, FakeToken, user

CTX = Context(now=1)


class FetchingToken:
    """A token authenticator without a step: it fetches, then answers from the status code."""

    def __init__(self, ok_status: int = 200) -> None:
        self.ok_status = ok_status

    def token_flow(self, token: str, ctx: Context, /) -> Flow[Response | None]:
        try:
            fetched = yield Fetch("GET", "http://backend/")
        except BackendUnavailable:
            return None
        if fetched.status == self.ok_status:
            return Response(UserInfo(token))
        if fetched.status == 500:
            raise AuthenticationError("backend said no")
        return None


class FetchingRequest:
    def request_flow(self, request: RequestView, ctx: Context, /) -> Flow[Response | None]:
        fetched = yield Fetch("GET", "http://backend/")
        return Response(UserInfo("req")) if fetched.status == 200 else None


def drive(flow: Flow[Response | None], *answers: Fetched | BaseException) -> Response | None:
    """Answer each Fetch in turn (an exception is thrown in); return the flow's value."""
    queue = list(answers)
    effect = next(flow)
    while True:
        assert isinstance(effect, Fetch)
        answer = queue.pop(0)
        try:
            thrown = isinstance(answer, BaseException)
            effect = flow.throw(answer) if thrown else flow.send(answer)  # type: ignore[arg-type]
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


class TestStep:
    def test_pure_flow_answers_synchronously(self) -> None:
        """A flow without effects gives its answer from step()."""
        assert step(FakeToken({"t": user()}).token_flow("t", CTX)) == user()

    def test_effectful_flow_is_pending_and_resumes(self) -> None:
        """A flow that yields is Pending; the pending flow yields that same effect first."""
        outcome = step(FetchingToken().token_flow("t", CTX))
        assert isinstance(outcome, Pending)
        assert drive(outcome.flow, Fetched(200)) == Response(UserInfo("t"))

    def test_resume_forwards_thrown_errors(self) -> None:
        """An exception thrown into the pending flow reaches the original flow."""
        outcome = step(FetchingToken().token_flow("t", CTX))
        assert isinstance(outcome, Pending)
        assert drive(outcome.flow, BackendUnavailable("down")) is None

    def test_resume_forwards_close(self) -> None:
        """Closing the pending flow closes the original one."""
        closed: list[bool] = []

        def flow() -> Flow[Response | None]:
            try:
                yield Sleep(1)
                yield Sleep(1)
            finally:
                closed.append(True)
            return None

        outcome = step(flow())
        assert isinstance(outcome, Pending)
        next(outcome.flow)
        outcome.flow.close()
        assert closed == [True]

    def test_resume_over_several_effects(self) -> None:
        """A flow with several effects is forwarded to the end."""

        def flow() -> Flow[Response | None]:
            yield Sleep(0)
            yield Sleep(0)
            return user("x")

        outcome = step(flow())
        assert isinstance(outcome, Pending)
        assert Authenticator(FakeToken({})).run(outcome.flow) == user("x")

    def test_steppers_prefer_own_step(self) -> None:
        """An authenticator with a step is used directly; others are adapted."""
        union = TokenUnion([FakeToken({})])
        assert token_stepper(union) == union.token_step
        adapted = token_stepper(FakeToken({"t": user()}))
        assert adapted("t", CTX) == user()
        req = RequestUnion([FakeRequest(None)])
        assert request_stepper(req) == req.request_step
        assert request_stepper(FakeRequest(user()))(RequestView(), CTX) == user()


class TestPendingThroughDecorators:
    def test_union_resumes_after_pending_member_with_errors(self) -> None:
        """Errors before and after a pending member are aggregated together."""
        union = token_union(
            FakeToken({"t": AuthenticationError("a")}),
            FetchingToken(),
            FakeToken({"t": AuthenticationError("b")}),
        )
        with pytest.raises(ChainError, match=r"^\[a, backend said no, b\]$"):
            drive(union.token_flow("t", CTX), Fetched(500))

    def test_union_pending_member_success(self) -> None:
        """A pending member that accepts wins; later members are not asked."""
        later = FakeToken({"t": user("later")})
        union = token_union(FakeToken({}), FetchingToken(), later)
        assert drive(union.token_flow("t", CTX), Fetched(200)) == Response(UserInfo("t"))
        assert later.calls == []

    def test_union_pending_then_later_member(self) -> None:
        """After a pending member with no opinion, the next member is asked."""
        union = token_union(FetchingToken(), FakeToken({"t": user("later")}))
        assert drive(union.token_flow("t", CTX), Fetched(404)) == user("later")

    def test_union_pending_fail_on_error(self) -> None:
        """Fail-on-error also stops at an error raised by a pending member."""
        later = FakeToken({"t": user()})
        union = token_union(FetchingToken(), later, fail_on_error=True)
        with pytest.raises(AuthenticationError, match="backend said no"):
            drive(union.token_flow("t", CTX), Fetched(500))
        assert later.calls == []

    def test_request_union_pending(self) -> None:
        """The request union resumes the same way."""
        union = RequestUnion([FakeRequest(AuthenticationError("x")), FetchingRequest()])
        assert drive(union.request_flow(RequestView(), CTX), Fetched(200)) == Response(
            UserInfo("req")
        )
        union = RequestUnion(
            [FetchingRequest(), FakeRequest(AuthenticationError("y"))], fail_on_error=False
        )
        with pytest.raises(AuthenticationError, match=r"^y$"):
            drive(union.request_flow(RequestView(), CTX), Fetched(404))
        union = RequestUnion([FetchingRequest(), FakeRequest(user("z"))], fail_on_error=True)
        assert drive(union.request_flow(RequestView(), CTX), Fetched(404)) == user("z")

    def test_union_step_errors_surface_when_flow_runs(self) -> None:
        """A union's synchronous rejection is raised by the flow, not by building it."""
        union = token_union(FakeToken({"t": AuthenticationError("a")}), FakeToken({}))
        flow = union.token_flow("t", CTX)
        with pytest.raises(AuthenticationError):
            run_pure(flow)

    def test_group_adder_pending(self) -> None:
        """The group adder adds system:authenticated after a pending answer."""
        adder = AuthenticatedGroupAdder(FetchingRequest())
        resp = drive(adder.request_flow(RequestView(), CTX), Fetched(200))
        assert resp is not None
        assert resp.user.groups == ("system:authenticated",)
        assert drive(adder.request_flow(RequestView(), CTX), Fetched(404)) is None

    def test_audience_agnostic_pending(self) -> None:
        """The audience wrapper finishes a pending answer with the intersection."""
        wrapped = AudienceAgnosticToken(FetchingToken(), ["api"])
        resp = drive(wrapped.token_flow("t", Context(now=1, audiences=("api",))), Fetched(200))
        assert resp is not None
        assert resp.audiences == ("api",)
        req = AudienceAgnosticRequest(FetchingRequest(), ["api"])
        resp = drive(
            req.request_flow(RequestView(), Context(now=1, audiences=("api",))), Fetched(200)
        )
        assert resp is not None
        assert resp.audiences == ("api",)

    async def test_runner_uses_pending_flow(self) -> None:
        """Both runners run the pending flow a root's step hands over."""
        union = RequestUnion([FakeRequest(None), FakeRequest(None)])
        slow = RequestUnion([FakeRequest(None), _Sleepy()])
        assert Authenticator(union).authenticate_request(RequestView()) is None
        assert Authenticator(slow).authenticate_request(RequestView()) == user("slept")
        assert await AsyncAuthenticator(slow).authenticate_request(RequestView()) == user("slept")


class _Sleepy:
    def request_flow(self, request: RequestView, ctx: Context, /) -> Flow[Response | None]:
        yield Sleep(0)
        return user("slept")


class TestResumeBranches:
    def test_after_pending_skip_none_then_pending_again(self) -> None:
        """After a pending member: no-opinion members are skipped, a second pending one runs."""
        union = token_union(FetchingToken(), FakeToken({}), FetchingToken())
        assert drive(union.token_flow("t", CTX), Fetched(404), Fetched(200)) == Response(
            UserInfo("t")
        )

    def test_after_pending_fail_on_error_in_later_member(self) -> None:
        """Fail-on-error applies to members asked after a pending one."""
        union = token_union(
            FetchingToken(), FakeToken({"t": AuthenticationError("late")}), fail_on_error=True
        )
        with pytest.raises(AuthenticationError, match="late"):
            drive(union.token_flow("t", CTX), Fetched(404))

    def test_request_union_branches(self) -> None:
        """The request union skips, re-pends and fails the same way."""
        union = RequestUnion([FetchingRequest(), FakeRequest(None), FetchingRequest()])
        assert drive(union.request_flow(RequestView(), CTX), Fetched(404), Fetched(200)) == (
            Response(UserInfo("req"))
        )
        union = RequestUnion(
            [FetchingRequest(), FakeRequest(AuthenticationError("late"))], fail_on_error=True
        )
        with pytest.raises(AuthenticationError, match="late"):
            drive(union.request_flow(RequestView(), CTX), Fetched(404))
        union = RequestUnion([FetchingRequest(), FakeRequest(None)])
        assert drive(union.request_flow(RequestView(), CTX), Fetched(404)) is None

    def test_thrown_error_ending_the_flow(self) -> None:
        """An exception thrown into a pending flow that then returns ends the resumed flow."""
        outcome = step(FetchingToken().token_flow("t", CTX))
        assert isinstance(outcome, Pending)
        next(outcome.flow)
        with pytest.raises(StopIteration):
            outcome.flow.throw(BackendUnavailable("down"))

    def test_request_wrapper_rejection_surfaces_on_run(self) -> None:
        """The request audience wrapper raises when its flow runs."""
        inner = FakeRequest(Response(UserInfo("a"), audiences=("x",)))
        wrapped = AudienceAgnosticRequest(inner, ["api"])
        flow = wrapped.request_flow(RequestView(), Context(now=1, audiences=("api",)))
        with pytest.raises(AuthenticationError, match="returned audiences"):
            run_pure(flow)
