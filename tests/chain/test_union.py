"""Unions: first success wins, errors aggregated, fail-on-error, union of one (spec §4)."""

from __future__ import annotations

import pytest

from k8sauthn import (
    AuthenticationError,
    ChainError,
    Context,
    Flow,
    RequestView,
    Response,
    Sleep,
    run_pure,
)
from k8sauthn.chain import RequestUnion, TokenUnion, request_union, token_union
from k8sauthn.chain._step import Pending, flow_of
from k8sauthn.io import AsyncAuthenticator, Authenticator

from .._fakes import FakeRequest, FakeToken, user

CTX = Context(now=1.0)
VIEW = RequestView()


class TestConstruction:
    def test_union_of_one_is_that_one(self) -> None:
        """A token union of exactly one member returns the member itself."""
        only = FakeToken({})
        assert token_union(only) is only
        assert token_union(only, fail_on_error=True) is only

    def test_request_union_of_one_is_that_one(self) -> None:
        """A request union of exactly one member returns the member itself."""
        only = FakeRequest(None)
        assert request_union(only) is only

    def test_union_of_several_is_a_union(self) -> None:
        """Two members make a union object that keeps its members and mode."""
        a, b = FakeToken({}), FakeToken({})
        u = token_union(a, b, fail_on_error=True)
        assert isinstance(u, TokenUnion)
        assert (a, b) == u.members
        assert u.fail_on_error
        assert "fail_on_error=True" in repr(u)

    def test_empty_unions_have_no_opinion(self) -> None:
        """Zero members: no opinion, no error."""
        assert run_pure(token_union().token_flow("t", CTX)) is None
        assert run_pure(request_union().request_flow(VIEW, CTX)) is None


class TestTokenUnion:
    def test_first_success_wins_and_later_members_are_not_called(self) -> None:
        """The first accepting member answers; the ones after it are never asked."""
        first = FakeToken({"t": None})
        second = FakeToken({"t": user("bob")})
        third = FakeToken({"t": user("carol")})
        resp = run_pure(token_union(first, second, third).token_flow("t", CTX))
        assert resp is not None
        assert resp.user.name == "bob"
        assert (first.calls, second.calls, third.calls) == (["t"], ["t"], [])

    def test_success_discards_earlier_errors(self) -> None:
        """An error before a success is dropped: the success is returned."""
        bad = FakeToken({"t": AuthenticationError("boom")})
        good = FakeToken({"t": user()})
        resp = run_pure(token_union(bad, good).token_flow("t", CTX))
        assert resp is not None
        assert resp.user.name == "alice"

    def test_all_no_opinion_is_no_opinion(self) -> None:
        """Nothing accepted and no error: None."""
        assert run_pure(token_union(FakeToken({}), FakeToken({})).token_flow("t", CTX)) is None

    def test_single_error_is_raised_verbatim(self) -> None:
        """One remembered error is raised as itself, not wrapped."""
        err = AuthenticationError("only one")
        with pytest.raises(AuthenticationError) as info:
            run_pure(token_union(FakeToken({"t": err}), FakeToken({})).token_flow("t", CTX))
        assert info.value is err

    def test_several_errors_are_aggregated(self) -> None:
        """Several errors become one ChainError with the aggregate text and every error."""
        e1, e2 = AuthenticationError("a"), AuthenticationError("b")
        with pytest.raises(ChainError) as info:
            run_pure(token_union(FakeToken({"t": e1}), FakeToken({"t": e2})).token_flow("t", CTX))
        assert str(info.value) == "[a, b]"
        assert (e1, e2) == info.value.errors

    def test_duplicate_error_texts_collapse(self) -> None:
        """Two errors with the same text aggregate to that text alone."""
        union = token_union(
            FakeToken({"t": AuthenticationError("same")}),
            FakeToken({"t": AuthenticationError("same")}),
        )
        with pytest.raises(ChainError, match=r"^same$"):
            run_pure(union.token_flow("t", CTX))

    def test_fail_on_error_stops_at_first_error(self) -> None:
        """In fail-on-error mode the first error is raised and later members are not asked."""
        later = FakeToken({"t": user()})
        err = AuthenticationError("stop")
        union = token_union(FakeToken({"t": err}), later, fail_on_error=True)
        with pytest.raises(AuthenticationError) as info:
            run_pure(union.token_flow("t", CTX))
        assert info.value is err
        assert later.calls == []

    def test_non_authentication_errors_propagate(self) -> None:
        """A programming error in a member is not swallowed as an authentication failure."""
        union = token_union(FakeToken({"t": RuntimeError("bug")}), FakeToken({"t": user()}))
        with pytest.raises(RuntimeError):
            run_pure(union.token_flow("t", CTX))

    def test_effects_pass_through_sync_runner(self) -> None:
        """A member that sleeps is driven by the sync runner through the union."""
        union = token_union(FakeToken({}, sleep=0.001), FakeToken({"t": user()}, sleep=0.001))
        resp = Authenticator(union).authenticate_token("t")
        assert resp is not None
        assert resp.user.name == "alice"

    async def test_effects_pass_through_async_runner(self) -> None:
        """The same union runs under the asyncio runner."""
        union = token_union(FakeToken({}, sleep=0.001), FakeToken({"t": user()}, sleep=0.001))
        resp = await AsyncAuthenticator(union).authenticate_token("t")
        assert resp is not None
        assert resp.user.name == "alice"


class TestRequestUnion:
    def test_first_success_wins(self) -> None:
        """Members are tried in order; the first accepting one answers."""
        a, b, c = FakeRequest(None), FakeRequest(user("b")), FakeRequest(user("c"))
        resp = run_pure(request_union(a, b, c).request_flow(VIEW, CTX))
        assert resp is not None
        assert resp.user.name == "b"
        assert (a.calls, b.calls, c.calls) == (1, 1, 0)

    def test_errors_aggregate_when_nothing_accepts(self) -> None:
        """Errors from several members are raised together."""
        union = request_union(
            FakeRequest(AuthenticationError("x")),
            FakeRequest(None),
            FakeRequest(AuthenticationError("y")),
        )
        with pytest.raises(ChainError, match=r"^\[x, y\]$"):
            run_pure(union.request_flow(VIEW, CTX))

    def test_error_then_success_is_success(self) -> None:
        """A later success discards an earlier error (non-fail-fast)."""
        union = request_union(FakeRequest(AuthenticationError("x")), FakeRequest(user()))
        assert run_pure(union.request_flow(VIEW, CTX)) is not None

    def test_fail_on_error_blocks_later_members(self) -> None:
        """Fail-on-error: an error before anonymous is raised, anonymous is never reached."""
        anon = FakeRequest(user("system:anonymous"))
        union = request_union(FakeRequest(AuthenticationError("x")), anon, fail_on_error=True)
        assert isinstance(union, RequestUnion)
        with pytest.raises(AuthenticationError, match=r"^x$"):
            run_pure(union.request_flow(VIEW, CTX))
        assert anon.calls == 0
        assert "RequestUnion(" in repr(union)


class _SharedStep:
    """A token authenticator whose step is one shared function object (a staticmethod-like
    attribute), answering None first and then a pending flow that has no opinion either."""

    def __init__(self) -> None:
        self.calls = 0

        def token_step(token: str, ctx: Context) -> Response | Pending | None:
            self.calls += 1
            return None if self.calls == 1 else Pending(self._none_after_sleep())

        self.token_step = token_step

    def _none_after_sleep(self) -> Flow[Response | None]:
        yield Sleep(0)
        return None

    def token_flow(self, token: str, ctx: Context, /) -> Flow[Response | None]:
        return flow_of(self.token_step(token, ctx))


class TestPendingPosition:
    def test_repeated_member_resumes_after_its_own_position(self) -> None:
        """A member listed twice that goes pending the second time resumes after that slot."""
        shared, last = _SharedStep(), FakeToken({"t": user("zoe")})
        union = token_union(shared, shared, last)  # type: ignore[arg-type]
        resp = Authenticator(union).run(union.token_flow("t", CTX))
        assert resp == user("zoe")
        assert shared.calls == 2
        assert last.calls == ["t"]

    def test_pending_member_keeps_earlier_errors(self) -> None:
        """Errors before a pending member are still aggregated when nothing accepts."""
        slow = FakeToken({"t": None}, sleep=0.0001)
        union = token_union(FakeToken({"t": AuthenticationError("first")}), slow)
        with pytest.raises(AuthenticationError, match="first"):
            Authenticator(union).run(union.token_flow("t", CTX))
