"""The token cache: HMAC keys, TTLs, error caching, expiry, bounds, single flight (spec §14)."""

from __future__ import annotations

import asyncio
import hmac
import threading

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from k8sauthn import (
    AuthenticationError,
    BackendUnavailable,
    Context,
    Flow,
    Response,
    Shared,
    UserInfo,
    run_pure,
)
from k8sauthn.chain import CachedTokenAuthenticator
from k8sauthn.chain._step import Pending
from k8sauthn.chain.cache import AuthenticationFailedUnexpectedly
from k8sauthn.io import AsyncAuthenticator, Authenticator

from .._fakes import FakeToken, user

# Kubernetes' cached_token_authenticator_test.go TestKeyFunc: fixed key, JWT, three audiences.
UPSTREAM_KEY = b"098c9e46-b7f4-4358-bb3c-35cb7495b836"
UPSTREAM_JWT = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6IiJ9.eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50Iiwia3ViZXJuZX"
    "Rlcy5pby9zZXJ2aWNlYWNjb3VudC9uYW1lc3BhY2UiOiJvcGVuc2hpZnQtc2RuIiwia3ViZXJuZXRlcy5pby9zZXJ2aW"
    "NlYWNjb3VudC9zZWNyZXQubmFtZSI6InNkbi10b2tlbi1nNndtYyIsImt1YmVybmV0ZXMuaW8vc2VydmljZWFjY291bn"
    "Qvc2VydmljZS1hY2NvdW50Lm5hbWUiOiJzZG4iLCJrdWJlcm5ldGVzLmlvL3NlcnZpY2VhY2NvdW50L3NlcnZpY2UtYW"
    "Njb3VudC51aWQiOiIzYzM5YzNhYS1kM2Q5LTExZTktYTVkMC0wMmI3YjllODg1OWUiLCJzdWIiOiJzeXN0ZW06c2Vydm"
    "ljZWFjY291bnQ6b3BlbnNoaWZ0LXNkbjpzZG4ifQ.PIs0rsUTekj5AX8yJeLDyW4vQB17YS4IOgO026yjEvsCY7Wv_2T"
    "D0lwyZWqyQh639q3jPh2_3LTQq2Cp0cReBP1PYOIGgprNm3C-3OFZRnkls-GH09kvPYE8J_-a1YwjxucOwytzJvEM5QTC"
    "9iXfEJNSTBfLge-HMYT1y0AGKs8DWTSC4rtd_2PedK3OYiAyDg_xHA8qNpG9pRNM8vfjV9VsmqJtlbnTVlTngqC0t5vyMa"
    "WrmLNRxN0rTbN2W9L3diXRnYqI8BUfgPQb7uhYcPuXGeypaFrN4d3yNN4NbgVxnkgdd2IXQ8elSJuQn6ynrvLgG0JPMmT"
    "hOHnwvsZDeA"
)
UPSTREAM_AUDS = (
    "7daf30b7-a85c-429b-8b21-e666aecbb235",
    "c22aa267-bdde-4acb-8505-998be7818400",
    "44f9b4f3-7125-4333-b04c-1446a16c6113",
)
# The Go string literals of the upstream test, as bytes (raw characters are UTF-8 in Go source).
KEY_WITH_AUDS = (
    b'"\xf7\xac\xcd\x12\xf5\x83l\xa9;@\n\xa13a;\nd\x1f\xdelL\xd1\xe1!\x8a\xdah'
    + "ٛ".encode()
    + b"\xbb\xf0"
)
KEY_WITHOUT_AUDS = (
    b"\x054a \xa5\x8e\xea\xb2?\x8c\x88\xb9,e\n5\xe7"
    + "ȵ".encode()
    + b">\xfdK\x0e\x93+\x02"
    + "˿".encode()
    + b"&\xf98\x1e"
)


def cache(inner: FakeToken, **kw: object) -> CachedTokenAuthenticator:
    kw.setdefault("success_ttl", 10.0)
    return CachedTokenAuthenticator(inner, **kw)  # type: ignore[arg-type]


def run(c: CachedTokenAuthenticator, token: str, now: float = 100.0, **kw: object) -> object:
    return Authenticator(c, clock=lambda: now).run(c.token_flow(token, Context(now=now, **kw)))  # type: ignore[arg-type]


class TestKey:
    def test_upstream_vectors(self) -> None:
        """The key of Kubernetes' test vector matches byte for byte, with and without audiences."""
        c = cache(FakeToken({}), key=UPSTREAM_KEY)
        assert c.cache_key(UPSTREAM_JWT, UPSTREAM_AUDS) == KEY_WITH_AUDS
        assert c.cache_key(UPSTREAM_JWT, None) == KEY_WITHOUT_AUDS

    def test_matches_hmac_module(self) -> None:
        """The primed-pad HMAC equals hmac.digest over the length-prefixed encoding."""
        c = cache(FakeToken({}), key=b"k" * 32)
        msg = b"\x00\x00\x00\x03tok\x00\x00\x00\x02\x00\x00\x00\x01a\x00\x00\x00\x02bc"
        assert hmac.digest(b"k" * 32, msg, "sha256") == c.cache_key("tok", ("a", "bc"))

    def test_long_key_is_hashed_first(self) -> None:
        """A key longer than the SHA-256 block is hashed first, as HMAC requires."""
        key = b"x" * 100
        c = cache(FakeToken({}), key=key)
        expected = hmac.digest(key, b"\x00\x00\x00\x01t\x00\x00\x00\x00", "sha256")
        assert expected == c.cache_key("t", ())

    def test_no_audiences_equals_empty_list(self) -> None:
        """No audience context and an empty list give the same key (count 0)."""
        c = cache(FakeToken({}))
        assert c.cache_key("t", None) == c.cache_key("t", ())

    def test_audience_order_matters(self) -> None:
        """The same audiences in another order are another key."""
        c = cache(FakeToken({}))
        assert c.cache_key("t", ("a", "b")) != c.cache_key("t", ("b", "a"))

    def test_random_key_per_instance(self) -> None:
        """Two caches derive different keys for the same token."""
        assert cache(FakeToken({})).cache_key("t", None) != cache(FakeToken({})).cache_key(
            "t", None
        )

    def test_invalid_utf8_tokens_stay_distinct(self) -> None:
        """Tokens carrying undecodable bytes (surrogate escapes) get their own keys."""
        c = cache(FakeToken({}))
        assert c.cache_key("a\udcff", None) != c.cache_key("a\ufffd", None)

    def test_suffix_memo_is_bounded(self) -> None:
        """Encoded audience lists are memoised only up to a bound (they come from requests)."""
        c = cache(FakeToken({}))
        for i in range(200):
            c.cache_key("t", (f"aud{i}",))
        assert len(c._suffixes) <= 64

    @given(
        st.tuples(st.text(max_size=8), st.lists(st.text(max_size=4), max_size=3)),
        st.tuples(st.text(max_size=8), st.lists(st.text(max_size=4), max_size=3)),
    )
    def test_distinct_inputs_never_share_a_key(
        self, a: tuple[str, list[str]], b: tuple[str, list[str]]
    ) -> None:
        """Different (token, audiences) pairs give different keys; equal pairs equal keys."""
        c = _PROPERTY_CACHE
        same = a[0] == b[0] and a[1] == b[1]
        assert same == (c.cache_key(a[0], a[1]) == c.cache_key(b[0], b[1]))


_PROPERTY_CACHE = CachedTokenAuthenticator(FakeToken({}), success_ttl=1)


class TestTTL:
    def test_success_is_cached_until_ttl(self) -> None:
        """A success is served from the cache within its TTL and fetched again after it."""
        fake = FakeToken({"t": user()})
        c = cache(fake, success_ttl=10)
        assert run(c, "t", 100) == run(c, "t", 109.9)
        assert fake.calls == ["t"]
        run(c, "t", 110.0)
        assert fake.calls == ["t", "t"]

    def test_hit_is_pure(self) -> None:
        """A cache hit completes without any effect (no flow layers, no Shared)."""
        fake = FakeToken({"t": user()})
        c = cache(fake)
        run(c, "t")
        assert run_pure(c.token_flow("t", Context(now=101))) is not None

    def test_miss_yields_shared(self) -> None:
        """A miss asks the runner for a Shared effect whose key does not reveal the token."""
        c = cache(FakeToken({"secret-token": user()}))
        effect = next(c.token_flow("secret-token", Context(now=1)))
        assert isinstance(effect, Shared)
        assert b"secret-token" not in effect.key
        assert "secret" not in repr(effect)

    def test_no_opinion_not_cached_with_zero_failure_ttl(self) -> None:
        """With failure TTL 0 (kube-apiserver's outer cache) a no-opinion is never stored."""
        fake = FakeToken({})
        c = cache(fake, failure_ttl=0)
        assert run(c, "t") is None
        assert run(c, "t") is None
        assert fake.calls == ["t", "t"]
        assert len(c) == 0

    def test_no_opinion_cached_for_failure_ttl(self) -> None:
        """With a failure TTL a no-opinion is remembered for that long."""
        fake = FakeToken({})
        c = cache(fake, failure_ttl=5)
        run(c, "t", 100)
        run(c, "t", 104)
        assert fake.calls == ["t"]
        run(c, "t", 105)
        assert fake.calls == ["t", "t"]

    def test_zero_success_ttl_stores_nothing(self) -> None:
        """A success TTL of 0 disables caching of successes."""
        fake = FakeToken({"t": user()})
        c = cache(fake, success_ttl=0, failure_ttl=30)
        run(c, "t")
        run(c, "t")
        assert len(fake.calls) == 2

    def test_success_never_outlives_credential(self) -> None:
        """A response with expires_at is dropped at that time even if the TTL runs longer."""
        resp = Response(UserInfo("a"), expires_at=103.0)
        fake = FakeToken({"t": resp})
        c = cache(fake, success_ttl=60)
        run(c, "t", 100)
        run(c, "t", 102.9)
        assert len(fake.calls) == 1
        run(c, "t", 103.0)
        assert len(fake.calls) == 2

    def test_already_expired_success_is_not_cached(self) -> None:
        """A response whose expires_at is already past is not stored."""
        fake = FakeToken({"t": Response(UserInfo("a"), expires_at=50.0)})
        c = cache(fake)
        run(c, "t", 100)
        run(c, "t", 100)
        assert len(fake.calls) == 2

    def test_audiences_are_cached_separately(self) -> None:
        """One token under two audience lists is two entries with their own answers."""

        def answer(token: str, ctx: Context) -> Response:
            assert ctx.audiences is not None
            return user(ctx.audiences[0])

        c = cache(FakeToken(answer))
        a = run(c, "t", audiences=("audA",))
        b = run(c, "t", audiences=("audB",))
        assert isinstance(a, Response)
        assert isinstance(b, Response)
        assert (a.user.name, b.user.name) == ("audA", "audB")


class TestErrors:
    def test_errors_not_cached_without_cache_errors(self) -> None:
        """cache_errors=False: every call reaches the inner authenticator, even with a TTL."""
        fake = FakeToken({"t": BackendUnavailable("down")})
        c = cache(fake, failure_ttl=60, cache_errors=False)
        for _ in range(2):
            with pytest.raises(BackendUnavailable):
                run(c, "t")
        assert len(fake.calls) == 2

    def test_errors_cached_with_cache_errors(self) -> None:
        """cache_errors=True with a failure TTL: the error is replayed without a call."""
        fake = FakeToken({"t": AuthenticationError("bad")})
        c = cache(fake, failure_ttl=60, cache_errors=True)
        for _ in range(3):
            with pytest.raises(AuthenticationError, match="bad"):
                run(c, "t")
        assert len(fake.calls) == 1

    def test_errors_not_cached_with_zero_failure_ttl(self) -> None:
        """cache_errors=True with failure TTL 0 (kube-apiserver's outer cache) stores nothing."""
        fake = FakeToken({"t": AuthenticationError("bad")})
        c = cache(fake, failure_ttl=0, cache_errors=True)
        for _ in range(2):
            with pytest.raises(AuthenticationError):
                run(c, "t")
        assert len(fake.calls) == 2

    def test_replayed_error_traceback_does_not_grow(self) -> None:
        """Re-raising the cached error object does not accumulate tracebacks."""
        c = cache(FakeToken({"t": AuthenticationError("bad")}), failure_ttl=60, cache_errors=True)
        depths = []
        for _ in range(5):
            try:
                run(c, "t")
            except AuthenticationError as exc:
                tb, depth = exc.__traceback__, 0
                while tb is not None:
                    depth, tb = depth + 1, tb.tb_next
                depths.append(depth)
        assert depths[-1] <= depths[1]


class TestWarningsAndContext:
    def test_inner_gets_private_context(self) -> None:
        """The inner call sees the caller's time and audiences but its own warnings list."""
        fake = FakeToken({"t": user()})
        c = cache(fake)
        caller = Context(now=100, audiences=("a",))
        Authenticator(c).run(c.token_flow("t", caller))
        inner = fake.contexts[0]
        assert (inner.now, inner.audiences) == (100, ("a",))
        assert inner.warnings is not caller.warnings

    def test_warnings_replayed_on_every_success(self) -> None:
        """Warnings recorded by the inner call reach the caller on the miss and on each hit."""

        def answer(token: str, ctx: Context) -> Response:
            ctx.warnings.append("careful")
            return user()

        c = cache(FakeToken(answer))
        for _ in range(2):
            ctx = Context(now=100)
            Authenticator(c).run(c.token_flow("t", ctx))
            assert ctx.warnings == ["careful"]

    def test_warnings_dropped_on_failure(self) -> None:
        """A failing inner call's warnings are not passed on."""

        def answer(token: str, ctx: Context) -> None:
            ctx.warnings.append("w")
            return

        c = cache(FakeToken(answer))
        ctx = Context(now=100)
        assert Authenticator(c).run(c.token_flow("t", ctx)) is None
        assert ctx.warnings == []


class TestBoundsAndStats:
    def test_maxsize_evicts_oldest(self) -> None:
        """The cache never holds more than maxsize entries; the oldest goes first."""
        fake = FakeToken(lambda token, ctx: user(token))
        c = cache(fake, maxsize=3)
        for t in ("a", "b", "c", "d"):
            run(c, t)
        assert len(c) == 3
        run(c, "d")
        run(c, "a")
        assert fake.calls == ["a", "b", "c", "d", "a"]
        assert c.stats.evictions == 2

    def test_maxsize_must_be_positive(self) -> None:
        """A cache that can hold nothing is a configuration mistake."""
        with pytest.raises(ValueError, match="maxsize"):
            cache(FakeToken({}), maxsize=0)

    def test_stats_count_hits_misses_and_fetches(self) -> None:
        """Hits, misses and fetch outcomes are counted; nothing is left in flight."""
        c = cache(FakeToken({"ok": user(), "bad": AuthenticationError("x")}))
        run(c, "ok")
        run(c, "ok")
        run(c, "none")
        with pytest.raises(AuthenticationError):
            run(c, "bad")
        s = c.stats.as_dict()
        assert {k: s[k] for k in ("hits", "misses", "fetch_ok", "fetch_error", "in_flight")} == {
            "hits": 1,
            "misses": 3,
            "fetch_ok": 2,
            "fetch_error": 1,
            "in_flight": 0,
        }
        assert "hits" in repr(c.stats)

    def test_clear_and_repr(self) -> None:
        """clear() forgets everything; the repr shows settings, never tokens."""
        c = cache(FakeToken({"sekret": user()}))
        run(c, "sekret")
        assert len(c) == 1
        c.clear()
        assert len(c) == 0
        assert "sekret" not in repr(c)
        assert "success_ttl=10.0" in repr(c)


class TestSingleFlight:
    def test_threads_share_one_inner_call(self) -> None:
        """Concurrent identical lookups from threads run the inner authenticator once."""
        fake = FakeToken({"t": user()}, sleep=0.3)
        c = cache(fake)
        runner = Authenticator(c, clock=lambda: 100.0)
        gate = threading.Event()
        results: list[object] = []

        def worker() -> None:
            gate.wait()
            results.append(runner.authenticate_token("t"))

        threads = [threading.Thread(target=worker) for _ in range(16)]
        for t in threads:
            t.start()
        gate.set()
        for t in threads:
            t.join()
        assert len(fake.calls) == 1
        assert len(results) == 16
        assert all(r == results[0] for r in results)

    async def test_tasks_share_one_inner_call(self) -> None:
        """Concurrent identical lookups from asyncio tasks run the inner authenticator once."""
        fake = FakeToken({"t": user()}, sleep=0.05)
        c = cache(fake)
        runner = AsyncAuthenticator(c, clock=lambda: 100.0)
        results = await asyncio.gather(*(runner.authenticate_token("t") for _ in range(50)))
        assert len(fake.calls) == 1
        assert all(r == results[0] for r in results)
        assert c.stats.misses == 50

    async def test_tasks_share_errors_without_caching_them(self) -> None:
        """An error from the shared call reaches every waiter and is not stored."""
        fake = FakeToken({"t": BackendUnavailable("down")}, sleep=0.05)
        c = cache(fake, failure_ttl=60, cache_errors=False)
        runner = AsyncAuthenticator(c, clock=lambda: 100.0)
        results = await asyncio.gather(
            *(runner.authenticate_token("t") for _ in range(10)), return_exceptions=True
        )
        assert all(isinstance(r, BackendUnavailable) for r in results)
        assert len(fake.calls) == 1
        with pytest.raises(BackendUnavailable):
            await runner.authenticate_token("t")
        assert len(fake.calls) == 2

    async def test_different_tokens_do_not_share(self) -> None:
        """Different tokens run their own inner calls concurrently."""
        fake = FakeToken(lambda token, ctx: user(token), sleep=0.01)
        c = cache(fake)
        runner = AsyncAuthenticator(c, clock=lambda: 100.0)
        got = await asyncio.gather(*(runner.authenticate_token(f"t{i}") for i in range(5)))
        assert [f"t{i}" for i in range(5)] == [r.user.name for r in got if r is not None]
        assert len(fake.calls) == 5

    def test_second_check_inside_flight_uses_filled_entry(self) -> None:
        """A flight that starts after another filled the entry does not call the inner again."""
        fake = FakeToken({"t": user()})
        c = cache(fake)
        flow: Flow[object] = c.token_flow("t", Context(now=100))
        effect = next(flow)
        assert isinstance(effect, Shared)
        run(c, "t")  # another caller fills the entry meanwhile
        entry = Authenticator(c).run(effect.start())
        assert len(fake.calls) == 1
        assert entry.response is not None


class TestUnexpectedFailure:
    def test_bug_in_inner_becomes_internal_error(self, caplog: pytest.LogCaptureFixture) -> None:
        """A non-authentication exception is logged and reported as Kubernetes' internal error."""
        c = cache(FakeToken({"t": ZeroDivisionError("bug")}))
        with pytest.raises(AuthenticationFailedUnexpectedly) as info:
            run(c, "t")
        assert str(info.value) == "Internal error occurred: authentication failed unexpectedly"
        assert "ZeroDivisionError" in caplog.text
        assert c.stats.fetch_error == 1

    def test_internal_error_is_cached_like_others(self) -> None:
        """With cache_errors and a failure TTL the internal error is cached, as upstream."""
        fake = FakeToken({"t": KeyError("bug")})
        c = cache(fake, failure_ttl=30, cache_errors=True)
        for _ in range(2):
            with pytest.raises(AuthenticationFailedUnexpectedly):
                run(c, "t")
        assert len(fake.calls) == 1


def test_refreshed_entry_moves_to_the_back() -> None:
    """An entry stored again after expiry is the newest, so it is not the next evicted."""
    fake = FakeToken(lambda token, ctx: user(token))
    c = cache(fake, maxsize=2, success_ttl=10)
    run(c, "a", 100)
    run(c, "b", 100)
    run(c, "a", 111)  # expired: fetched and stored again, now the newest
    run(c, "c", 111)  # full: evicts the oldest, which is "b"
    run(c, "a", 112)
    assert fake.calls == ["a", "b", "a", "c"]


def test_audience_with_undecodable_bytes_has_its_own_key() -> None:
    """Audiences carrying surrogate escapes are encoded byte for byte, like tokens."""
    c = cache(FakeToken({}))
    assert c.cache_key("t", ("a\udcff",)) != c.cache_key("t", ("a\ufffd",))


class TestHitPath:
    @given(st.text(max_size=40))
    @example("a\udcff")  # a lone surrogate: bytes that were not UTF-8
    def test_hit_is_stored_under_cache_key(self, token: str) -> None:
        """The hit path's inlined key is cache_key(token, None): a stored answer is found."""
        c = cache(FakeToken(lambda t, ctx: user("u")))
        run(c, token)
        assert list(c._entries) == [c.cache_key(token, None)]
        assert c.token_step(token, Context(now=100)) == user("u")

    def test_hit_with_audiences_uses_their_key(self) -> None:
        """With audiences the key covers them: a hit for one set is a miss for another."""
        c = cache(FakeToken(lambda t, ctx: user("u")))
        run(c, "t", audiences=("a",))
        assert list(c._entries) == [c.cache_key("t", ("a",))]
        assert c.token_step("t", Context(now=100, audiences=("a",))) == user("u")
        assert type(c.token_step("t", Context(now=100, audiences=("b",)))) is Pending

    def test_hit_replays_warnings_and_errors(self) -> None:
        """Entries with warnings or an error still take the replay path on a hit."""

        def warn(token: str, ctx: Context) -> Response | None:
            if token == "bad":
                raise AuthenticationError("no")
            ctx.warnings.append("careful")
            return user(token)

        c = cache(FakeToken(warn), failure_ttl=30, cache_errors=True)
        run(c, "ok")
        with pytest.raises(AuthenticationError):
            run(c, "bad")
        ctx = Context(now=101)
        assert c.token_step("ok", ctx) == user("ok")
        assert ctx.warnings == ["careful"]
        with pytest.raises(AuthenticationError, match="no"):
            c.token_step("bad", Context(now=101))

    def test_eviction_keeps_the_newest_entries_of_a_flood(self) -> None:
        """Well past maxsize, the cache holds exactly the last maxsize tokens."""
        c = cache(FakeToken(lambda t, ctx: user(t)), maxsize=8)
        tokens = [f"t{i}" for i in range(100)]
        for t in tokens:
            run(c, t)
        assert list(c._entries) == [c.cache_key(t, None) for t in tokens[-8:]]
        assert c.stats.evictions == 92
