"""The webhook token authenticator's flow, request body and decision procedure (spec §12)."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from k8sauthn import (
    AuthenticationError,
    BackendUnavailable,
    ConfigError,
    Context,
    Fetch,
    Fetched,
    Response,
    Shared,
    Sleep,
    UserInfo,
)
from k8sauthn.chain.cache import CachedTokenAuthenticator
from k8sauthn.kubeapi import APIStatusError, Backoff, KubeAPI
from k8sauthn.token.webhook import (
    WebhookTokenAuthenticator,
    check_version,
    decide,
    decode_review,
    encode_review,
)

from ._drive import drive

URL = "https://authn.example/authenticate?x=1"
NOW = 1_800_000_000.0
TOKEN = "s3cret-token"


def ctx(audiences: tuple[str, ...] | None = None) -> Context:
    return Context(now=NOW, audiences=audiences)


def review(status: dict[str, object], version: str = "v1beta1") -> bytes:
    doc = {"apiVersion": f"authentication.k8s.io/{version}", "kind": "TokenReview"}
    return json.dumps({**doc, "status": status}).encode()


def ok(status: dict[str, object], code: int = 200, **kw: object) -> Fetched:
    return Fetched(code, {}, review(status), NOW, **kw)  # type: ignore[arg-type]


def hook(**kw: object) -> WebhookTokenAuthenticator:
    kw.setdefault("rand", lambda: 0.0)
    return WebhookTokenAuthenticator(KubeAPI(URL, headers={"Authorization": "Bearer hook"}), **kw)  # type: ignore[arg-type]


ALICE = {"authenticated": True, "user": {"username": "alice", "uid": "42", "groups": ["dev"]}}


class TestRequest:
    def test_posts_review_to_the_exact_url(self) -> None:
        """The flow POSTs JSON to the configured URL verbatim, with the kubeconfig credentials."""
        flow = hook().token_flow(TOKEN, ctx())
        fetch = next(flow)
        assert isinstance(fetch, Fetch)
        assert (fetch.method, fetch.url) == ("POST", URL)
        assert fetch.headers["Content-Type"] == "application/json"
        assert fetch.headers["Authorization"] == "Bearer hook"

    def test_body_v1beta1_without_audiences(self) -> None:
        """The body is a v1beta1 TokenReview carrying the token and no spec.audiences."""
        doc = json.loads(encode_review(TOKEN, None, "v1beta1"))
        assert doc == {
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1beta1",
            "metadata": {"creationTimestamp": None},
            "spec": {"token": TOKEN},
            "status": {"user": {}},
        }

    def test_body_v1_with_audiences(self) -> None:
        """With v1 configured and target audiences, both show up in the request."""
        fetch = next(hook(version="v1").token_flow(TOKEN, ctx(("b", "a"))))
        doc = json.loads(fetch.body)
        assert doc["apiVersion"] == "authentication.k8s.io/v1"
        assert doc["spec"] == {"token": TOKEN, "audiences": ["b", "a"]}

    def test_token_not_in_repr(self) -> None:
        """Neither the Fetch nor the authenticator shows the token or the credentials."""
        fetch = next(hook().token_flow(TOKEN, ctx()))
        assert TOKEN not in repr(fetch)
        assert "Bearer hook" not in repr(hook())

    def test_unsupported_version(self) -> None:
        """An unknown version fails with kube-apiserver's text."""
        with pytest.raises(ConfigError) as err:
            check_version("v2")
        assert str(err.value) == (
            'unsupported authentication webhook version "v2", '
            'supported versions are "v1", "v1beta1"'
        )
        with pytest.raises(ConfigError):
            hook(version="v1alpha1")


class TestDecision:
    def test_accepts_with_user_fields(self) -> None:
        """An authenticated review yields the user with uid, groups and extra."""
        status = {
            "authenticated": True,
            "user": {"username": "jane", "uid": "7", "groups": ["a", "b"], "extra": {"k": ["1"]}},
        }
        resp, _ = drive(hook().token_flow(TOKEN, ctx()), [ok(status)])
        assert resp == Response(UserInfo("jane", "7", ("a", "b"), {"k": ("1",)}))

    def test_unauthenticated_is_no_opinion(self) -> None:
        """authenticated=false without an error is no opinion; the user data is ignored."""
        status = {"authenticated": False, "user": {"username": "ignored"}}
        assert drive(hook().token_flow(TOKEN, ctx()), [ok(status)])[0] is None

    def test_denial_with_error_is_an_error(self) -> None:
        """authenticated=false with status.error raises that text verbatim."""
        with pytest.raises(AuthenticationError) as err:
            drive(hook().token_flow(TOKEN, ctx()), [ok({"error": "token revoked"})])
        assert str(err.value) == "token revoked"

    def test_empty_username_is_accepted(self) -> None:
        """An empty username is not rejected (spec §12.4 step 3)."""
        resp, _ = drive(hook().token_flow(TOKEN, ctx()), [ok({"authenticated": True})])
        assert resp == Response(UserInfo(""))

    def test_audiences_intersection_follows_the_answer_order(self) -> None:
        """The accepted audiences are want ∩ status.audiences, in the answer's order."""
        status = {**ALICE, "audiences": ["c", "b", "a"]}
        resp, _ = drive(hook().token_flow(TOKEN, ctx(("a", "b"))), [ok(status)])
        assert resp.audiences == ("b", "a")

    def test_implicit_audiences_when_answer_has_none(self) -> None:
        """Without status.audiences the server's API audiences stand in."""
        resp, _ = drive(
            hook(implicit_audiences=("api",)).token_flow(TOKEN, ctx(("api",))), [ok(ALICE)]
        )
        assert resp.audiences == ("api",)

    def test_audience_mismatch_beats_error(self) -> None:
        """No common audience is no opinion even when the status carries an error."""
        status = {"authenticated": False, "error": "boom", "audiences": ["other"]}
        assert drive(hook().token_flow(TOKEN, ctx(("mine",))), [ok(status)])[0] is None
        assert decide(decode_review(review(ALICE)), ("mine",), ()) is None

    def test_no_audience_context_gives_no_audiences(self) -> None:
        """Without target audiences the response carries none, whatever the answer says."""
        for empty in (None, ()):
            flow = hook().token_flow(TOKEN, ctx(empty))
            resp, _ = drive(flow, [ok({**ALICE, "audiences": ["x"]})])
            assert resp.audiences == ()

    def test_answer_must_be_in_the_version_sent(self) -> None:
        """An answer in the version sent (or without kind/apiVersion) is read; the other is not.

        client-go has no conversion between the two external versions, so kube-apiserver fails
        to decode a v1 answer to a v1beta1 request.
        """
        assert decode_review(review(ALICE, "v1"), "v1").user.name == "alice"
        assert decode_review(b'{"status":{"authenticated":true}}', "v1beta1").authenticated
        assert decode_review(review(ALICE, "v1")).authenticated  # no version: either
        with pytest.raises(BackendUnavailable, match="unexpected apiVersion"):
            decode_review(review(ALICE, "v1"), "v1beta1")
        with pytest.raises(BackendUnavailable, match="unexpected apiVersion"):
            drive(hook(version="v1").token_flow(TOKEN, ctx()), [ok(ALICE)])


MALFORMED = [
    b"not json",
    b"[]",
    b'{"kind":"Status","status":{"authenticated":true}}',
    b'{"apiVersion":"v1","status":{"authenticated":true}}',
    b'{"status":{"authenticated":"true"}}',
    b'{"status":[]}',
    b'{"status":{"authenticated":true,"user":{"groups":"admin"}}}',
    b'{"status":{"authenticated":true,"user":{"username":7}}}',
    b'{"status":{"authenticated":true,"user":{"extra":{"k":"v"}}}}',
    b'{"status":{"authenticated":true,"audiences":[1]}}',
    b"[" * 100_000,
]


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_answers_are_errors(body: bytes) -> None:
    """A 200 whose body is not a valid TokenReview is an error, not a user or no opinion."""
    with pytest.raises(BackendUnavailable, match="unable to decode"):
        drive(hook().token_flow(TOKEN, ctx()), [Fetched(200, {}, body, NOW)])


class TestHTTPErrors:
    @pytest.mark.parametrize(
        ("code", "body", "text"),
        [
            (404, b"", "the server could not find the requested resource"),
            (401, b"", "the server has asked for the client to provide credentials"),
            (400, b"x", "the server rejected our request for an unknown reason"),
            (403, b"go away", "go away"),
            (
                501,
                b"nope",
                'an error on the server ("nope") has prevented the request from succeeding',
            ),
            (
                302,
                b"",
                "the server responded with the status code 302 but did not return more information",
            ),
        ],
    )
    def test_non_2xx_texts(self, code: int, body: bytes, text: str) -> None:
        """Non-2xx answers (a redirect too) are errors with client-go's texts."""
        flow = hook(backoff=Backoff(steps=1)).token_flow(TOKEN, ctx())
        with pytest.raises(APIStatusError) as err:
            drive(flow, [Fetched(code, {"location": "https://evil/"}, body, NOW)])
        assert str(err.value) == text
        assert err.value.code == code

    def test_status_body_message_is_used(self) -> None:
        """A Status object in the error body gives the message and reason."""
        status = {"kind": "Status", "apiVersion": "v1", "message": "no way", "reason": "Forbidden"}
        flow = hook().token_flow(TOKEN, ctx())
        with pytest.raises(APIStatusError) as err:
            drive(flow, [Fetched(403, {}, json.dumps(status).encode(), NOW)])
        assert (str(err.value), err.value.reason) == ("no way", "Forbidden")

    def test_error_text_is_bounded(self) -> None:
        """A huge error body does not become a huge error message."""
        flow = hook(backoff=Backoff(steps=1)).token_flow(TOKEN, ctx())
        with pytest.raises(APIStatusError) as err:
            drive(flow, [Fetched(500, {}, b"x" * 100_000, NOW)])
        assert len(str(err.value)) < 1200


def fail(code: int, headers: dict[str, str] | None = None) -> Fetched:
    return Fetched(code, headers or {}, b"", NOW)


def sleeps(effects: list[object]) -> list[float]:
    return [e.seconds for e in effects if isinstance(e, Sleep)]


class TestRetries:
    def test_five_attempts_with_exponential_sleeps(self) -> None:
        """A persistent 500 is tried 5 times, sleeping 0.5 s x 1.5^n between attempts."""
        with pytest.raises(APIStatusError) as err:
            drive(hook().token_flow(TOKEN, ctx()), [fail(500)] * 5)
        assert err.value.code == 500
        _, effects = drive_ok(hook(), [fail(500)] * 4 + [ok(ALICE)])
        assert sleeps(effects) == [0.5, 0.75, 1.125, 1.6875]

    def test_jitter_lengthens_up_to_twenty_percent(self) -> None:
        """Jitter adds rand() x 20 % to each sleep."""
        _, effects = drive_ok(hook(rand=lambda: 1.0), [fail(500), ok(ALICE)])
        assert sleeps(effects) == [pytest.approx(0.6)]

    @pytest.mark.parametrize("code", [429, 500, 502, 504])
    def test_retried_codes(self, code: int) -> None:
        """429, 504 and other 5xx (InternalError) are retried."""
        resp, _ = drive_ok(hook(), [fail(code), ok(ALICE)])
        assert resp.user.name == "alice"

    @pytest.mark.parametrize("code", [400, 401, 403, 404, 503])
    def test_not_retried_codes(self, code: int) -> None:
        """4xx and a plain 503 fail at once."""
        with pytest.raises(APIStatusError):
            drive(hook().token_flow(TOKEN, ctx()), [fail(code)])

    def test_503_with_retry_after_is_retried_after_that_delay(self) -> None:
        """A Retry-After header makes a 503 retriable and lengthens the sleep."""
        _, effects = drive_ok(hook(), [fail(503, {"retry-after": "2"}), ok(ALICE)])
        assert sleeps(effects) == [2.0]

    def test_status_reason_server_timeout_is_retried(self) -> None:
        """A Status body with reason ServerTimeout suggests a client delay: retried."""
        body = json.dumps({"kind": "Status", "apiVersion": "v1", "reason": "ServerTimeout"})
        resp, _ = drive_ok(hook(), [Fetched(409, {}, body.encode(), NOW), ok(ALICE)])
        assert resp is not None

    def test_connection_reset_is_retried_refused_is_not(self) -> None:
        """A reset (or closed) connection is retried; refused, timed out or other reads are not."""
        reset = BackendUnavailable(f'Post "{URL}": connection reset by peer')
        assert drive_ok(hook(), [reset, ok(ALICE)])[0] is not None
        closed = BackendUnavailable(f'Post "{URL}": RemoteProtocolError')
        assert drive_ok(hook(), [closed, ok(ALICE)])[0] is not None
        for kind in ("ConnectError", "timed out", "ReadError", "WriteError"):
            with pytest.raises(BackendUnavailable):
                drive(hook().token_flow(TOKEN, ctx()), [BackendUnavailable(f'Post "x": {kind}')])

    def test_transport_failure_time_counts_against_the_deadline(self) -> None:
        """A reset stamped past the deadline by the runner ends the retries (no 30 s x 5)."""
        late_reset = BackendUnavailable('Post "x": connection reset by peer', time=NOW + 29.9)
        with pytest.raises(BackendUnavailable) as err:
            drive(hook(deadline=30.0).token_flow(TOKEN, ctx()), [late_reset])
        assert err.value is late_reset  # the webhook's own error, not a deadline error

    def test_transport_failure_time_shrinks_the_next_timeout(self) -> None:
        """After a stamped reset the next attempt gets only what is left of the deadline."""
        flow = hook(deadline=10.0).token_flow(TOKEN, ctx())
        assert next(flow).timeout == 10.0
        reset = BackendUnavailable('Post "x": connection reset by peer', time=NOW + 8.0)
        assert flow.throw(reset) == Sleep(0.5)
        assert flow.send(None).timeout == pytest.approx(1.5)

    def test_206_is_success_207_is_an_error(self) -> None:
        """client-go reads 200..206 as success; any other 2xx is a status error."""
        assert drive_ok(hook(), [ok(ALICE, code=206)])[0] is not None
        with pytest.raises(APIStatusError, match="status code 207"):
            drive(hook().token_flow(TOKEN, ctx()), [ok(ALICE, code=207)])

    def test_deadline_stops_retries(self) -> None:
        """No retry starts when its sleep would end past the overall deadline."""
        late = Fetched(500, {}, b"", NOW + 9.8)
        with pytest.raises(APIStatusError):
            drive(hook(deadline=10.0).token_flow(TOKEN, ctx()), [late])

    def test_attempt_timeout_shrinks_to_the_deadline(self) -> None:
        """Each attempt's timeout is capped by what is left of the deadline."""
        flow = hook(deadline=2.0).token_flow(TOKEN, ctx())
        first = next(flow)
        assert first.timeout == 2.0
        assert flow.send(Fetched(500, {}, b"", NOW + 1.0)) == Sleep(0.5)
        assert next(flow).timeout == pytest.approx(0.5)

    def test_zero_steps_is_a_config_error(self) -> None:
        """The backoff needs at least one attempt, with Kubernetes' text."""
        with pytest.raises(ConfigError, match="must be greater than 0, but is: 0"):
            Backoff(steps=0)


def drive_ok(
    auth: WebhookTokenAuthenticator, answers: list[object]
) -> tuple[Response, list[object]]:
    return drive(auth.token_flow(TOKEN, ctx()), answers)  # type: ignore[arg-type]


class TestKubeconfigConstructor:
    def write(self, tmp_path: Path) -> Path:
        path = tmp_path / "hook.yaml"
        path.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
            "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:1/hook'}}]\n"
            "users: [{name: u, user: {token: abc}}]\n"
            "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
        )
        return path

    def test_wrapped_in_the_webhook_cache(self, tmp_path: Path) -> None:
        """from_kubeconfig_file wraps the webhook in a cache: one TTL, errors not cached."""
        auth = WebhookTokenAuthenticator.from_kubeconfig_file(self.write(tmp_path), cache_ttl=60)
        assert isinstance(auth, CachedTokenAuthenticator)
        assert (auth.success_ttl, auth.failure_ttl, auth.cache_errors) == (60.0, 60.0, False)
        inner = auth.inner
        assert isinstance(inner, WebhookTokenAuthenticator)
        assert inner.api.base_url == "https://127.0.0.1:1/hook"
        assert inner.version == "v1beta1"

    def test_zero_ttl_stores_nothing_but_still_shares_flights(self, tmp_path: Path) -> None:
        """cache_ttl=0 keeps the cache (single flight) with both TTLs 0, as kube-apiserver does."""
        auth = WebhookTokenAuthenticator.from_kubeconfig_file(
            self.write(tmp_path), cache_ttl=0, version="v1", max_cache_size=10
        )
        assert isinstance(auth, CachedTokenAuthenticator)
        assert (auth.success_ttl, auth.failure_ttl, auth.cache_errors) == (0.0, 0.0, False)
        answer = Fetched(200, {}, review(ALICE, "v1"), NOW)
        for _ in range(2):  # nothing stored: each lookup asks the webhook again
            _, effects = drive(auth.token_flow(TOKEN, ctx()), [answer])
            assert any(isinstance(e, Shared) for e in effects)
        sized = WebhookTokenAuthenticator.from_kubeconfig_file(
            self.write(tmp_path), max_cache_size=3
        )
        assert isinstance(sized, CachedTokenAuthenticator)
        assert sized.maxsize == 3
        with pytest.raises(ConfigError, match="unsupported"):
            WebhookTokenAuthenticator.from_kubeconfig_file(tmp_path / "missing", version="v9")


class TestCaching:
    def cached(self) -> CachedTokenAuthenticator:
        auth = hook(backoff=Backoff(steps=1)).cached(120.0)
        assert isinstance(auth, CachedTokenAuthenticator)
        return auth

    def test_success_and_denial_cached_errors_not(self) -> None:
        """Successes and plain denials are served from cache; errors ask again."""
        auth = self.cached()
        drive(auth.token_flow("a", ctx()), [ok(ALICE)])
        assert drive(auth.token_flow("a", ctx()), [])[0].user.name == "alice"
        assert drive(auth.token_flow("d", ctx()), [ok({"authenticated": False})])[0] is None
        assert drive(auth.token_flow("d", ctx()), [])[0] is None
        for _ in range(2):
            with pytest.raises(AuthenticationError):
                drive(auth.token_flow("e", ctx()), [ok({"error": "bad"})])
            with pytest.raises(BackendUnavailable):
                drive(auth.token_flow("f", ctx()), [fail(500)])

    def test_entry_expires_after_ttl(self) -> None:
        """After the TTL the webhook is asked again."""
        auth = self.cached()
        drive(auth.token_flow("a", ctx()), [ok(ALICE)])
        later = Context(now=NOW + 121)
        assert drive(auth.token_flow("a", later), [ok({"authenticated": False})])[0] is None


def test_build_from_options(tmp_path: Path) -> None:
    """The options' webhook flags build the cached webhook into the token chain."""
    from k8sauthn.config.build import build
    from k8sauthn.config.options import AuthenticationOptions

    path = TestKubeconfigConstructor().write(tmp_path)
    options = AuthenticationOptions(
        authentication_token_webhook_config_file=str(path),
        authentication_token_webhook_version="v1",
        authentication_token_webhook_cache_ttl=30.0,
        api_audiences=("api",),
    )
    chain = build(options)
    assert chain.token is not None
    flow = chain.token.token_flow(TOKEN, ctx(("api",)))
    answer = Fetched(200, {}, review({**ALICE, "audiences": ["api"]}, "v1"), NOW)
    resp, effects = drive(flow, [answer])
    assert resp.user.name == "alice"
    (fetch,) = [e for e in effects if isinstance(e, Fetch)]
    assert json.loads(fetch.body)["apiVersion"] == "authentication.k8s.io/v1"
    with pytest.raises(ConfigError, match="unsupported"):
        build(attrs.evolve(options, authentication_token_webhook_version="v3"))


def test_invalid_utf8_token_is_sent_as_replacement_characters() -> None:
    """Invalid UTF-8 in a token is sent as U+FFFD, like Go's json.Marshal, not an error."""
    import json as _json

    from k8sauthn.token.webhook import encode_review

    body = encode_review("ab\udc80c", ("aud\udcff",), "v1")
    doc = _json.loads(body)
    assert doc["spec"]["token"] == "ab\ufffdc"
    assert doc["spec"]["audiences"] == ["aud\ufffd"]
