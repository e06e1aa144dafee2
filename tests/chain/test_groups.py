"""Group adders: system:authenticated and fixed groups, never mutating the inner user (spec §5)."""

from __future__ import annotations

import pytest

from k8sauthn import (
    ALL_AUTHENTICATED,
    ALL_UNAUTHENTICATED,
    ANONYMOUS_USER,
    AuthenticationError,
    Context,
    RequestView,
    Response,
    UserInfo,
    run_pure,
)
from k8sauthn.chain import AuthenticatedGroupAdder, RequestGroupAdder, TokenGroupAdder

from .._fakes import FakeRequest, FakeToken, user

CTX = Context(now=1.0)
VIEW = RequestView()


def added(resp: Response | None) -> Response | None:
    return run_pure(AuthenticatedGroupAdder(FakeRequest(resp)).request_flow(VIEW, CTX))


class TestAuthenticatedGroupAdder:
    def test_appends_authenticated_last(self) -> None:
        """system:authenticated is appended after the user's own groups."""
        resp = added(user("alice", "dev", "ops"))
        assert resp is not None
        assert resp.user.groups == ("dev", "ops", ALL_AUTHENTICATED)

    def test_keeps_name_uid_extra_and_audiences(self) -> None:
        """Everything but the groups is carried over unchanged."""
        inner = Response(UserInfo("a", uid="7", extra={"k": ["v"]}), audiences=("x",), expires_at=9)
        resp = added(inner)
        assert resp is not None
        assert (resp.user.name, resp.user.uid, dict(resp.user.extra)) == ("a", "7", {"k": ("v",)})
        assert (resp.audiences, resp.expires_at) == (("x",), 9)

    def test_inner_response_is_not_mutated(self) -> None:
        """The inner response keeps its groups (a copy is returned)."""
        inner = user("alice", "dev")
        resp = added(inner)
        assert inner.user.groups == ("dev",)
        assert resp is not inner

    @pytest.mark.parametrize(
        "resp",
        [
            Response(UserInfo(ANONYMOUS_USER)),
            user("bob", ALL_AUTHENTICATED),
            user("bob", "x", ALL_UNAUTHENTICATED),
        ],
    )
    def test_unchanged_cases(self, resp: Response) -> None:
        """Anonymous, or already authenticated/unauthenticated: returned as is."""
        assert added(resp) is resp

    def test_anonymous_name_is_exact(self) -> None:
        """Only the exact anonymous name is exempt."""
        resp = added(user("System:Anonymous"))
        assert resp is not None
        assert ALL_AUTHENTICATED in resp.user.groups

    def test_no_opinion_and_errors_pass_through(self) -> None:
        """None stays None and an inner error propagates."""
        assert added(None) is None
        with pytest.raises(AuthenticationError):
            added(AuthenticationError("no"))  # type: ignore[arg-type]

    def test_repeated_response_reuses_the_copy(self) -> None:
        """The same inner response (a cache hit) gets the same result object, no rebuild."""
        inner = user("alice")
        adder = AuthenticatedGroupAdder(FakeRequest(inner))
        first = run_pure(adder.request_flow(VIEW, CTX))
        second = run_pure(adder.request_flow(VIEW, CTX))
        assert first is second
        assert first is not None
        assert first.user.groups == (ALL_AUTHENTICATED,)

    def test_memo_is_bounded(self) -> None:
        """The memo of copies is cleared when full instead of growing."""
        fake = FakeRequest(None)
        adder = AuthenticatedGroupAdder(fake)
        for i in range(5000):
            fake.answer = user(f"u{i}")
            run_pure(adder.request_flow(VIEW, CTX))
        assert len(adder._memo) <= 4096


class TestFixedGroupAdders:
    def test_token_adder_appends_without_dedupe(self) -> None:
        """Configured groups follow the user's, duplicates kept."""
        adder = TokenGroupAdder(FakeToken({"t": user("a", "g1")}), ["g1", "g2"])
        resp = run_pure(adder.token_flow("t", CTX))
        assert resp is not None
        assert resp.user.groups == ("g1", "g1", "g2")
        assert run_pure(adder.token_flow("other", CTX)) is None

    def test_request_adder_appends(self) -> None:
        """The request flavour does the same."""
        adder = RequestGroupAdder(FakeRequest(user("a")), ("x",))
        resp = run_pure(adder.request_flow(VIEW, CTX))
        assert resp is not None
        assert resp.user.groups == ("x",)
        assert run_pure(RequestGroupAdder(FakeRequest(None), ()).request_flow(VIEW, CTX)) is None
