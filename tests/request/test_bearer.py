"""Bearer-token extraction from the Authorization header (spec §7.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8sauthn import (
    AuthenticationError,
    Context,
    Headers,
    InvalidBearerToken,
    RequestView,
    Response,
    UserInfo,
    run_pure,
)
from k8sauthn.io import AsyncAuthenticator, Authenticator
from k8sauthn.request import BearerAuthenticator
from k8sauthn.request.bearer import EXTRA_SPACE_WARNING, go_string, go_trim_space

from .._fakes import FakeToken, user


def view(*values: str) -> RequestView:
    return RequestView(headers=Headers(("Authorization", v) for v in values))


def seen(*values: str) -> tuple[list[str], Response | None, list[str]]:
    """(tokens passed to the token chain, result, warnings) for Authorization values."""
    fake = FakeToken(lambda token, ctx: user(token))
    ctx = Context(now=1)
    resp = run_pure(BearerAuthenticator(fake).request_flow(view(*values), ctx))
    return fake.calls, resp, ctx.warnings


class TestExtraction:
    @pytest.mark.parametrize(
        ("header", "token"),
        [
            ("Bearer tok", "tok"),
            ("bearer tok", "tok"),
            ("BEARER tok", "tok"),
            ("  Bearer tok  ", "tok"),
            ("Bearer tok extra stuff", "tok"),
            ("Bearer tok,with,commas", "tok,with,commas"),
            ("Bearer a\tb", "a\tb"),
            ("\tBearer tok\r\n", "tok"),
        ],
    )
    def test_token_is_second_part(self, header: str, token: str) -> None:
        """The token is the second space-separated part of the trimmed header."""
        calls, resp, _ = seen(header)
        assert [token] == calls
        assert resp is not None
        assert token == resp.user.name

    @pytest.mark.parametrize(
        "header",
        ["", "   ", "Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer:", "bear x", "Bearer\ttok"],
    )
    def test_not_bearer_is_no_opinion(self, header: str) -> None:
        """Other schemes, a bare 'Bearer' and tab separators: no opinion, token chain not called."""
        calls, resp, warnings = seen(header)
        assert (calls, resp, warnings) == ([], None, [])

    def test_missing_header_is_no_opinion(self) -> None:
        """No Authorization header at all: no opinion."""
        fake = FakeToken({})
        assert (
            run_pure(BearerAuthenticator(fake).request_flow(RequestView(), Context(now=1))) is None
        )
        assert fake.calls == []

    def test_space_before_token_warns(self) -> None:
        """Two spaces after Bearer: no opinion plus Kubernetes' warning text."""
        calls, resp, warnings = seen("Bearer  tok")
        assert (calls, resp) == ([], None)
        assert warnings == [EXTRA_SPACE_WARNING]
        assert warnings[0].startswith("the provided Authorization header contains extra space")

    def test_only_first_header_is_used(self) -> None:
        """A second Authorization header is ignored (Go's Header.Get)."""
        calls, _, _ = seen("Basic x", "Bearer tok")
        assert calls == []

    def test_go_space_set_is_trimmed_but_not_python_extras(self) -> None:
        """Go trims NBSP/NEL sent as UTF-8 but keeps U+001F, which Python's strip would drop."""
        nbsp_utf8 = "\u00a0".encode().decode("latin-1")
        calls, _, _ = seen(f"{nbsp_utf8}Bearer tok{nbsp_utf8}")
        assert calls == ["tok"]
        calls, _, _ = seen("Bearer tok\x1f")
        assert calls == ["tok\x1f"]

    def test_non_ascii_token_is_read_as_utf8(self) -> None:
        """Header bytes are read as UTF-8, as Go does, so 'é' matches a token file's 'é'."""
        raw = "Bearer t\u00e9".encode().decode("latin-1")
        calls, _, _ = seen(raw)
        assert calls == ["t\u00e9"]

    def test_invalid_utf8_stays_distinct(self) -> None:
        """A byte that is not UTF-8 is kept as a surrogate escape, never replaced."""
        calls, _, _ = seen("Bearer t\xff")
        assert calls == ["t\udcff"]


class TestOutcome:
    def test_unknown_token_is_an_error(self) -> None:
        """A presented token with no opinion from the chain becomes 'invalid bearer token'."""
        with pytest.raises(InvalidBearerToken, match=r"^invalid bearer token$"):
            run_pure(
                BearerAuthenticator(FakeToken({})).request_flow(view("Bearer x"), Context(now=1))
            )

    def test_chain_errors_are_unchanged(self) -> None:
        """An error from the token chain is raised as it is."""
        err = AuthenticationError("expired")
        with pytest.raises(AuthenticationError) as info:
            run_pure(
                BearerAuthenticator(FakeToken({"x": err})).request_flow(
                    view("Bearer x"), Context(now=1)
                )
            )
        assert info.value is err

    def test_runners(self) -> None:
        """The sync runner authenticates a bearer request end to end."""
        auth = BearerAuthenticator(FakeToken({"x": user("bob")}))
        resp = Authenticator(auth).authenticate_request(view("Bearer x"))
        assert resp is not None
        assert resp.user.name == "bob"

    async def test_async_runner(self) -> None:
        """The async runner gives the same answer."""
        auth = BearerAuthenticator(FakeToken({"x": user("bob")}))
        resp = await AsyncAuthenticator(auth).authenticate_request(view("Bearer x"))
        assert resp is not None
        assert resp.user.name == "bob"
        assert "BearerAuthenticator(" in repr(auth)

    def test_huge_header_is_handled(self) -> None:
        """A megabyte-long header is parsed without trouble (the token chain decides)."""
        big = "a" * (1 << 20)
        calls, _, _ = seen(f"Bearer {big}")
        assert [big] == calls


class TestHelpers:
    def test_go_string_passes_ascii_and_real_text(self) -> None:
        """ASCII and text outside latin-1 are returned unchanged."""
        assert go_string("abc") == "abc"
        assert go_string("\u4e2d") == "\u4e2d"

    def test_go_trim_space(self) -> None:
        """Only Go's space characters are trimmed."""
        assert go_trim_space("\u3000\t x \u2028") == "x"
        assert go_trim_space("\x1cx ") == "\x1cx"

    @given(st.text(alphabet=st.characters(max_codepoint=0x7E), max_size=40))
    def test_header_property(self, header: str) -> None:
        """For any ASCII header: a token is extracted exactly when Go's rules give one."""
        calls, _, warnings = seen(header)
        parts = header.strip(" \t\n\v\f\r").split(" ", 2)
        expected = (
            [parts[1]] if len(parts) >= 2 and parts[0].lower() == "bearer" and parts[1] else []
        )
        assert expected == calls
        if warnings:
            assert calls == []
            assert len(parts) == 3
            assert parts[1] == ""


class TestPendingTokenChain:
    @pytest.mark.parametrize("header", ["Bearer x", "BEARER x", " Bearer x"])
    def test_token_chain_with_effects(self, header: str) -> None:
        """A token chain that needs effects still answers, on the fast and general paths."""
        auth = BearerAuthenticator(FakeToken({"x": user("slow")}, sleep=0.001))
        resp = Authenticator(auth).authenticate_request(view(header))
        assert resp is not None
        assert resp.user.name == "slow"

    @pytest.mark.parametrize("sleep", [0, 0.001])
    @pytest.mark.parametrize("header", ["Bearer unknown", "BEARER unknown"])
    def test_unknown_token(self, header: str, sleep: float) -> None:
        """No opinion, with or without effects, on either path is 'invalid bearer token'."""
        auth = BearerAuthenticator(FakeToken({}, sleep=sleep))
        with pytest.raises(InvalidBearerToken):
            Authenticator(auth).authenticate_request(view(header))


def _reference(header: str) -> tuple[str | None, list[str]]:
    """The general rules alone (no fast path): the token passed on, and the warnings."""
    auth = go_trim_space(go_string(header))
    parts = auth.split(" ", 2) if auth else []
    if len(parts) < 2 or parts[0].lower() != "bearer":
        return None, []
    if not parts[1]:
        return None, [EXTRA_SPACE_WARNING] if len(parts) == 3 else []
    return parts[1], []


_HEADER_CHARS = st.sampled_from(["a", "Z", "0", ".", " ", "\t", "\x1f", "\xa0", "é", "\x85"])


@given(
    st.sampled_from(["Bearer ", "bearer ", "BEARER ", "Bearer", " Bearer ", "Basic "]),
    st.text(_HEADER_CHARS, max_size=12),
)
def test_fast_path_passes_on_the_token_the_general_rules_give(prefix: str, rest: str) -> None:
    """For any header, the step passes on exactly the token (and warnings) of the general rules."""
    seen: list[str] = []

    def accept(token: str, ctx: Context) -> Response:
        seen.append(token)
        return Response(UserInfo(token))

    authn = BearerAuthenticator(FakeToken(accept))
    ctx = Context(now=1.0)
    outcome = authn.request_step(RequestView(Headers([("Authorization", prefix + rest)])), ctx)
    token, warnings = _reference(prefix + rest)
    assert seen == ([] if token is None else [token])
    assert outcome == (None if token is None else Response(UserInfo(token)))
    assert ctx.warnings == warnings
