"""The static token file, --token-auth-file (spec §8)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8sauthn import ConfigError, Context, Response, run_pure
from k8sauthn.io import AsyncAuthenticator, Authenticator
from k8sauthn.token import ReloadingStaticTokenAuthenticator, StaticTokenAuthenticator

CTX = Context(now=1)


def lookup(
    auth: StaticTokenAuthenticator | ReloadingStaticTokenAuthenticator, token: str
) -> Response | None:
    return run_pure(auth.token_flow(token, CTX))


class TestParsing:
    def test_columns(self) -> None:
        """token, name, uid and a quoted comma-separated group list."""
        auth = StaticTokenAuthenticator.from_csv('tok1,alice,1,"dev,ops"\ntok2,bob,2\n')
        a, b = lookup(auth, "tok1"), lookup(auth, "tok2")
        assert a is not None
        assert (
            a.user.name,
            a.user.uid,
            a.user.groups,
        ) == ("alice", "1", ("dev", "ops"))
        assert b is not None
        assert (b.user.name, b.user.uid, b.user.groups) == ("bob", "2", ())
        assert a.audiences == ()
        assert dict(a.user.extra) == {}

    def test_spaces_are_kept(self) -> None:
        """No trimming: ' user1' is the name, ' b' a group, and ' tok' is another token."""
        auth = StaticTokenAuthenticator.from_csv('tok, user1,uid,"a, b"\n')
        resp = lookup(auth, "tok")
        assert resp is not None
        assert (resp.user.name, resp.user.groups) == (" user1", ("a", " b"))
        assert lookup(auth, " tok") is None

    def test_empty_fourth_field_is_one_empty_group(self) -> None:
        """An empty groups field gives [''] (strings.Split semantics), fields after it ignored."""
        auth = StaticTokenAuthenticator.from_csv("t,n,u,,ignored,more\n")
        resp = lookup(auth, "t")
        assert resp is not None
        assert resp.user.groups == ("",)

    def test_empty_name_and_uid_are_kept(self) -> None:
        """Name and uid are verbatim, even empty."""
        resp = lookup(StaticTokenAuthenticator.from_csv("t,,\n"), "t")
        assert resp is not None
        assert (resp.user.name, resp.user.uid) == ("", "")

    def test_short_row_rejects_file(self) -> None:
        """A record with fewer than 3 fields rejects the whole file with Kubernetes' text."""
        with pytest.raises(ConfigError) as info:
            StaticTokenAuthenticator.from_csv("a,b,c\nx,y\n", path="/etc/tokens.csv")
        assert str(info.value) == (
            "token file '/etc/tokens.csv' must have at least 3 columns "
            "(token, user name, user uid), found 2"
        )

    def test_whitespace_line_is_a_short_row(self) -> None:
        """A line of spaces is a one-field record, not a blank line."""
        with pytest.raises(ConfigError, match=r"found 1$"):
            StaticTokenAuthenticator.from_csv("a,b,c\n   \n")

    def test_blank_lines_and_crlf(self) -> None:
        """Blank lines are skipped and CRLF endings accepted."""
        auth = StaticTokenAuthenticator.from_csv("\r\na,b,c\r\n\r\nd,e,f\r\n")
        assert len(auth) == 2

    def test_no_comments(self) -> None:
        """A '#' line is a record: its first field is a token."""
        auth = StaticTokenAuthenticator.from_csv("#tok,name,uid\n")
        assert lookup(auth, "#tok") is not None

    def test_parse_error_rejects_file(self) -> None:
        """A CSV syntax error anywhere rejects the whole file with Go's message."""
        with pytest.raises(ConfigError, match=r'^parse error on line 2, column 2: bare " in'):
            StaticTokenAuthenticator.from_csv('a,b,c\nx"y,z,w\n')

    def test_empty_token_is_skipped_with_warning(self, caplog: pytest.LogCaptureFixture) -> None:
        """An empty token field skips that record and logs a warning, the rest is loaded."""
        with caplog.at_level(logging.WARNING):
            auth = StaticTokenAuthenticator.from_csv(",name,uid\nt,n,u\n", path="f")
        assert len(auth) == 1
        assert lookup(auth, "") is None
        assert "empty token has been found in token file 'f', record number '1'" in caplog.text

    def test_empty_token_short_row_is_still_an_error(self) -> None:
        """The column check comes before the empty-token check."""
        with pytest.raises(ConfigError, match="found 2"):
            StaticTokenAuthenticator.from_csv(",name\n")

    def test_duplicate_later_wins(self, caplog: pytest.LogCaptureFixture) -> None:
        """A duplicated token keeps the later record and warns without naming the token."""
        with caplog.at_level(logging.WARNING):
            auth = StaticTokenAuthenticator.from_csv("dup,first,1\ndup,second,2\n", path="f")
        resp = lookup(auth, "dup")
        assert resp is not None
        assert resp.user.name == "second"
        assert "duplicate token has been found in token file 'f', record number '2'" in caplog.text
        assert "dup," not in caplog.text

    def test_bom_is_part_of_first_token(self) -> None:
        """A UTF-8 byte-order mark is not stripped."""
        auth = StaticTokenAuthenticator.from_csv(b"\xef\xbb\xbftok,n,u\n")
        assert lookup(auth, "tok") is None
        assert lookup(auth, "\ufefftok") is not None

    def test_lookup_is_exact(self) -> None:
        """Case and surrounding characters matter."""
        auth = StaticTokenAuthenticator.from_csv("Token,n,u\n")
        assert lookup(auth, "token") is None
        assert lookup(auth, "Token ") is None
        assert lookup(auth, "Token") is not None

    def test_invalid_utf8_tokens(self) -> None:
        """Bytes that are not UTF-8 are matched byte for byte (surrogate escapes)."""
        auth = StaticTokenAuthenticator.from_csv(b"t\xff,n,u\n")
        assert lookup(auth, "t\udcff") is not None
        assert lookup(auth, "t\ufffd") is None

    def test_repr_never_shows_tokens(self) -> None:
        """Neither the authenticator nor its table reveal a token."""
        auth = StaticTokenAuthenticator.from_csv("supersecret,n,u\n")
        assert "supersecret" not in repr(auth)
        assert b"supersecret" not in b"".join(auth._by_digest)  # keys are digests

    @given(
        st.text(
            alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"),
            min_size=1,
            max_size=20,
        )
    )
    def test_any_token_roundtrips_when_quoted(self, token: str) -> None:
        """Tokens with spaces, commas, quotes, newlines or unicode work when quoted."""
        quoted = '"' + token.replace('"', '""') + '"'
        auth = StaticTokenAuthenticator.from_csv(f"{quoted},user,uid\n")
        resp = lookup(auth, token)
        assert resp is not None
        assert resp.user.name == "user"


class TestFiles:
    def test_from_file(self, tmp_path: Path) -> None:
        """A file is read once; the path appears in error texts."""
        path = tmp_path / "tokens.csv"
        path.write_text("t,n,u\n")
        auth = StaticTokenAuthenticator.from_file(path)
        assert lookup(auth, "t") is not None
        path.write_text("t,n\n")
        with pytest.raises(ConfigError, match=f"token file '{path}'"):
            StaticTokenAuthenticator.from_file(path)

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file is a ConfigError."""
        with pytest.raises(ConfigError, match="unable to read token file"):
            StaticTokenAuthenticator.from_file(tmp_path / "absent.csv")

    def test_reloading_picks_up_changes_and_keeps_last_good(self, tmp_path: Path) -> None:
        """A changed file replaces the table; a broken one keeps it and reports the error."""
        path = tmp_path / "tokens.csv"
        path.write_text("old,n,u\n")
        errors: list[Exception] = []
        auth = StaticTokenAuthenticator.reloading(path, interval=3600, on_error=errors.append)
        assert isinstance(auth, ReloadingStaticTokenAuthenticator)
        assert lookup(auth, "old") is not None
        path.write_text("new,n,u\nnewer,n,u\n")
        os.utime(path, ns=(1, 1))
        assert auth.check()
        assert (lookup(auth, "old"), len(auth)) == (None, 2)
        assert lookup(auth, "new") is not None
        assert auth.token_step("newer", CTX) is not None
        path.write_text("broken\n")
        os.utime(path, ns=(2, 2))
        assert not auth.check()
        assert lookup(auth, "new") is not None
        assert isinstance(auth.last_error, ConfigError)
        assert [auth.last_error] == errors
        assert "tokens.csv" in repr(auth)

    def test_reloading_logs_by_default(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Without on_error a failed reload is logged, without any token."""
        path = tmp_path / "tokens.csv"
        path.write_text("secret1,n,u\n")
        auth = StaticTokenAuthenticator.reloading(path, interval=3600)
        path.write_text("secret2,n\n")
        os.utime(path, ns=(3, 3))
        with caplog.at_level(logging.ERROR):
            assert not auth.check()
        assert "keeping the previous tokens" in caplog.text
        assert "secret" not in caplog.text.replace("tokens", "")

    def test_reloading_bad_initial_file_raises(self, tmp_path: Path) -> None:
        """A bad file at start-up is an error, not an empty table."""
        path = tmp_path / "tokens.csv"
        path.write_text("a\n")
        with pytest.raises(ConfigError):
            StaticTokenAuthenticator.reloading(path)


class TestRunners:
    def test_sync(self) -> None:
        """The sync runner authenticates a static token."""
        auth = StaticTokenAuthenticator.from_csv("t,n,u\n")
        assert Authenticator(auth).authenticate_token("t") is not None

    async def test_async(self) -> None:
        """The async runner authenticates a static token."""
        auth = StaticTokenAuthenticator.from_csv("t,n,u\n")
        assert await AsyncAuthenticator(auth).authenticate_token("t") is not None
