"""Audience helpers and the audience-agnostic wrapper (spec §2.2, §2.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8sauthn import Context, RequestView, Response, UserInfo, run_pure
from k8sauthn.chain import (
    AudienceAgnosticRequest,
    AudienceAgnosticToken,
    AudiencesReturned,
    has_audience,
    intersect,
)
from k8sauthn.chain.audiences import go_quote

from .._fakes import FakeRequest, FakeToken, user


class TestHelpers:
    def test_has_is_exact(self) -> None:
        """Membership is exact string equality."""
        assert has_audience(["a", "b"], "a")
        assert not has_audience(["a"], "A")

    def test_intersect_follows_second_order_and_keeps_duplicates(self) -> None:
        """The result walks the second list in order, keeping its duplicates."""
        assert intersect(["a", "b", "c"], ["c", "x", "a", "a"]) == ("c", "a", "a")
        assert intersect([], ["a"]) == ()
        assert intersect(["a"], []) == ()

    @given(st.lists(st.text(max_size=3)), st.lists(st.text(max_size=3)))
    def test_intersect_property(self, ours: list[str], theirs: list[str]) -> None:
        """Every element of the intersection is in both lists, in theirs' order."""
        got = intersect(ours, theirs)
        assert all(a in ours and a in theirs for a in got)
        assert list(got) == [a for a in theirs if a in ours]

    @pytest.mark.parametrize(
        ("value", "quoted"),
        [
            ("a", '"a"'),
            ('q"b\\', '"q\\"b\\\\"'),
            ("tab\there\n", '"tab\\there\\n"'),
            ("\x00\x7f", '"\\x00\\x7f"'),
            ("é", '"é"'),
            ("\u200b", '"\\u200b"'),
            ("\udcff", '"\\xff"'),
            ("\U000e0001", '"\\U000e0001"'),
        ],
    )
    def test_go_quote(self, value: str, quoted: str) -> None:
        """go_quote formats like Go's strconv.Quote."""
        assert quoted == go_quote(value)


class TestAudienceAgnostic:
    def test_no_audience_context_is_transparent(self) -> None:
        """Without audiences in the context the inner answer is returned as is."""
        inner = user()
        wrapped = AudienceAgnosticToken(FakeToken({"t": inner}), ["api"])
        assert run_pure(wrapped.token_flow("t", Context(now=1))) is inner

    def test_intersection_becomes_response_audiences(self) -> None:
        """An accepted response carries intersect(implicit, target), in target order."""
        wrapped = AudienceAgnosticToken(FakeToken({"t": user()}), ["a", "b"])
        resp = run_pure(wrapped.token_flow("t", Context(now=1, audiences=("x", "b", "a"))))
        assert resp is not None
        assert resp.audiences == ("b", "a")

    def test_no_intersection_skips_inner(self) -> None:
        """A target list sharing nothing with the implicit one: no opinion, inner not called."""
        fake = FakeToken({"t": user()})
        wrapped = AudienceAgnosticToken(fake, ["api"])
        assert run_pure(wrapped.token_flow("t", Context(now=1, audiences=("other",)))) is None
        assert fake.calls == []

    def test_empty_api_audiences_never_match_targets(self) -> None:
        """With no implicit audiences a request with target audiences never matches."""
        wrapped = AudienceAgnosticToken(FakeToken({"t": user()}), [])
        assert run_pure(wrapped.token_flow("t", Context(now=1, audiences=("x",)))) is None

    def test_empty_target_tuple_is_no_opinion(self) -> None:
        """An empty (not absent) target list intersects to nothing."""
        wrapped = AudienceAgnosticToken(FakeToken({"t": user()}), ["a"])
        assert run_pure(wrapped.token_flow("t", Context(now=1, audiences=()))) is None

    def test_inner_audiences_are_an_error(self) -> None:
        """An inner response that has audiences already is rejected with Kubernetes' text."""
        inner = Response(UserInfo("a"), audiences=("a", 'b"'))
        wrapped = AudienceAgnosticToken(FakeToken({"t": inner}), ["a"])
        with pytest.raises(AudiencesReturned) as info:
            run_pure(wrapped.token_flow("t", Context(now=1, audiences=("a",))))
        assert str(info.value) == (
            "audience agnostic authenticator wrapped an authenticator that returned audiences: "
            '["a" "b\\""]'
        )

    def test_inner_no_opinion_stays(self) -> None:
        """Inner no opinion with matching audiences is still no opinion."""
        wrapped = AudienceAgnosticToken(FakeToken({}), ["a"])
        assert run_pure(wrapped.token_flow("t", Context(now=1, audiences=("a",)))) is None

    def test_request_flavour(self) -> None:
        """The request wrapper applies the same rules."""
        wrapped = AudienceAgnosticRequest(FakeRequest(user()), ["a"])
        view = RequestView()
        assert run_pure(wrapped.request_flow(view, Context(now=1))) is not None
        assert run_pure(wrapped.request_flow(view, Context(now=1, audiences=("b",)))) is None
        resp = run_pure(wrapped.request_flow(view, Context(now=1, audiences=("a",))))
        assert resp is not None
        assert resp.audiences == ("a",)
