"""The core value types: UserInfo, Response, Context, Headers, RequestView."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8sauthn import Context, Headers, RequestView, Response, UserInfo


class TestUserInfo:
    def test_lists_become_tuples(self) -> None:
        """groups and extra values are frozen into tuples."""
        u = UserInfo("a", groups=["g1", "g2"], extra={"k": ["v1", "v2"]})
        assert u.groups == ("g1", "g2")
        assert dict(u.extra) == {"k": ("v1", "v2")}

    def test_order_and_duplicates_kept(self) -> None:
        """Groups keep their order and duplicates."""
        assert UserInfo("x", groups=("b", "a", "b")).groups == ("b", "a", "b")

    def test_frozen_and_hashable(self) -> None:
        """A user is immutable and hashable despite the extra mapping."""
        u = UserInfo("a", extra={"k": ["v"]})
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            u.name = "b"  # type: ignore[misc]
        assert hash(u) == hash(UserInfo("a", extra={"other": []}))

    def test_to_dict_omits_empty_fields(self) -> None:
        """The JSON shape omits empty fields like Go's omitempty."""
        assert UserInfo("").to_dict() == {}
        assert UserInfo("a").to_dict() == {"username": "a"}
        assert UserInfo("a", uid="1", groups=["g"], extra={"k": ["v"]}).to_dict() == {
            "username": "a",
            "uid": "1",
            "groups": ["g"],
            "extra": {"k": ["v"]},
        }

    def test_empty_extra_is_shared(self) -> None:
        """No extra means an empty mapping (one shared object, no allocation per user)."""
        assert UserInfo("a").extra is UserInfo("b", extra={}).extra


class TestResponseAndContext:
    def test_response_defaults(self) -> None:
        """A response has no audiences and no expiry unless given."""
        r = Response(UserInfo("a"))
        assert (r.audiences, r.expires_at) == ((), None)

    def test_context_warnings_are_per_context(self) -> None:
        """Each context has its own warnings list, ignored by equality and repr."""
        a, b = Context(now=1), Context(now=1)
        a.warnings.append("w")
        assert b.warnings == []
        assert a == b
        assert "warnings" not in repr(a)
        assert Context(now=1).audiences is None


class TestHeaders:
    def test_case_insensitive_multi_values(self) -> None:
        """Names match case-insensitively; every value is kept in order."""
        h = Headers([("X-A", "1"), ("x-a", "2"), ("B", "3")])
        assert h["X-a"] == ("1", "2")
        assert h.first("X-A") == "1"
        assert h.first("missing") is None
        assert {"x-a", "b"} == set(h)
        assert len(h) == 2
        assert h.pairs() == (("x-a", "1"), ("x-a", "2"), ("b", "3"))

    def test_from_raw_decodes_latin1(self) -> None:
        """ASGI byte pairs are decoded as latin-1."""
        h = Headers.from_raw([(b"Authorization", b"Bearer \xc3\xa9")])
        assert h.first("authorization") == "Bearer \u00c3\u00a9"

    def test_without_names_and_prefixes(self) -> None:
        """without() drops exact names and prefixed names, case-insensitively."""
        h = Headers(
            [("Authorization", "x"), ("X-Remote-Extra-Foo", "y"), ("X-Remote-Group-1", "z")]
        )
        out = h.without(["authorization"], ["x-remote-extra-"])
        assert out.pairs() == (("x-remote-group-1", "z"),)
        assert h.without([]).pairs() == h.pairs()

    def test_repr_hides_values(self) -> None:
        """The repr lists names only: values may be credentials."""
        assert "secret" not in repr(Headers([("Authorization", "Bearer secret")]))
        assert "authorization" in repr(Headers([("Authorization", "Bearer secret")]))

    @given(st.lists(st.tuples(st.sampled_from(["A", "a", "B", "c-D"]), st.text(max_size=5))))
    def test_first_is_first_pair_property(self, pairs: list[tuple[str, str]]) -> None:
        """first(name) is the value of the first pair with that name, case-insensitively."""
        h = Headers(pairs)
        for name in ("a", "b", "C-d"):
            expected = next((v for n, v in pairs if n.lower() == name.lower()), None)
            assert expected == h.first(name)


def test_request_view_defaults() -> None:
    """An empty request view: no headers, no certificates, path '/'."""
    v = RequestView()
    assert (len(v.headers), v.peer_chain, v.path) == (0, (), "/")


_NAMES = st.sampled_from(["Authorization", "authorization", "X-Remote-User", "x-remote-user", "A"])


@given(st.lists(st.tuples(_NAMES, st.text(max_size=5)), max_size=6), _NAMES)
def test_headers_dict_speed_methods_agree_with_mapping(
    pairs: list[tuple[str, str]], name: str
) -> None:
    """get/items/keys/values/in give what the Mapping mixins give through __getitem__."""
    from collections.abc import Mapping

    h = Headers(pairs)
    assert h.get(name) == Mapping.get(h, name)
    assert h.get(name, ()) == Mapping.get(h, name, ())
    assert (name in h) == Mapping.__contains__(h, name)
    assert list(h.items()) == list(Mapping.items(h))
    assert list(h.keys()) == list(Mapping.keys(h))
    assert list(h.values()) == list(Mapping.values(h))
    assert h.first(name) == (h[name][0] if name in h else None)


def test_headers_lookups_fold_case() -> None:
    """Mixed-case names find lower-cased keys; a missing name gives the default."""
    h = Headers([("X-Remote-Group", "a"), ("x-remote-group", "b")])
    assert h.get("X-REMOTE-GROUP") == ("a", "b")
    assert "X-Remote-GROUP" in h
    assert h.get("nope", ("d",)) == ("d",)
    assert h.first("X-Remote-Group") == "a"
    assert dict(h.items()) == {"x-remote-group": ("a", "b")}
