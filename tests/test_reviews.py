"""Serving TokenReview and building SelfSubjectReview answers (spec §16.1, §16.2)."""

from __future__ import annotations

import json

import pytest

from k8sauthn import AuthenticationError, Context, RequestView, Response, UserInfo, pure, run_pure
from k8sauthn.chain.groups import AuthenticatedGroupAdder
from k8sauthn.chain.union import RequestUnion, TokenUnion
from k8sauthn.request.anonymous import AnonymousAuthenticator
from k8sauthn.request.bearer import BearerAuthenticator
from k8sauthn.reviews import (
    ReviewError,
    handle_token_review,
    parse_token_review,
    self_subject_review,
    status_object,
    token_review_flow,
)

NOW = 1_800_000_000.0


class Tokens:
    """A token authenticator: 'alice' accepted (with audiences 'aud' if any asked), 'bad' errors."""

    def __init__(self, audiences: tuple[str, ...] = ()) -> None:
        self.seen: list[Context] = []
        self.audiences = audiences

    def token_flow(self, token: str, ctx: Context, /):  # type: ignore[no-untyped-def]
        self.seen.append(ctx)
        if token == "bad":
            raise AuthenticationError("token revoked")
        if token == "alice":
            return pure(Response(UserInfo("alice", "1", ("dev",), {"k": ("v",)}), self.audiences))
        return pure(None)


def chain(tokens: Tokens, *, anonymous: bool = True) -> RequestUnion:
    inner = AuthenticatedGroupAdder(RequestUnion([BearerAuthenticator(TokenUnion([tokens]))]))
    members = [inner, AnonymousAuthenticator()] if anonymous else [inner]
    return RequestUnion(members, fail_on_error=True)


def body(token: object = "alice", audiences: object = None, **doc: object) -> bytes:
    spec: dict[str, object] = {"token": token}
    if audiences is not None:
        spec["audiences"] = audiences
    base = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
    return json.dumps({**base, **doc}).encode()


def handle(data: bytes, tokens: Tokens, **kw: object) -> tuple[int, dict]:
    code, out = run_pure(handle_token_review(data, chain(tokens), now=NOW, **kw))  # type: ignore[arg-type]
    return code, json.loads(out)


class TestParse:
    def test_versions_and_defaults(self) -> None:
        """v1 and v1beta1 bodies parse; a missing apiVersion/kind takes the URL's version."""
        assert parse_token_review(body(audiences=["a"])).audiences == ("a",)
        req = parse_token_review(
            b'{"spec":{"token":"t"}}', default_version="authentication.k8s.io/v1beta1"
        )
        assert req.api_version == "authentication.k8s.io/v1beta1"
        assert "'t'" not in repr(req)

    def test_body_version_must_match_the_url(self) -> None:
        """A v1beta1 body on the v1 endpoint is 400 (kube-apiserver's AcceptsGroupVersion)."""
        with pytest.raises(ReviewError) as err:
            parse_token_review(body(apiVersion="authentication.k8s.io/v1beta1"))
        assert (err.value.code, err.value.message) == (
            400,
            "the API version in the data (authentication.k8s.io/v1beta1) does not match the "
            "expected API version (authentication.k8s.io/v1)",
        )
        beta = parse_token_review(
            body(apiVersion="authentication.k8s.io/v1beta1"),
            default_version="authentication.k8s.io/v1beta1",
        )
        assert beta.api_version == "authentication.k8s.io/v1beta1"

    def test_empty_token(self) -> None:
        """An empty or missing token is 400 with Kubernetes' text."""
        for data in (body(""), b'{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1"}'):
            with pytest.raises(ReviewError) as err:
                parse_token_review(data)
            assert (err.value.code, err.value.message) == (
                400,
                "token is required for TokenReview in authentication",
            )

    def test_namespace_not_allowed(self) -> None:
        """A namespaced URL is 400."""
        with pytest.raises(ReviewError, match="namespace is not allowed on this type: ns"):
            parse_token_review(body(), namespace="ns")

    @pytest.mark.parametrize(
        "data",
        [
            b"nope",
            b"[]",
            body(kind="SubjectAccessReview"),
            body(apiVersion="authentication.k8s.io/v2"),
            body(token=5),
            body(audiences="a"),
            body(spec=[]),
        ],
    )
    def test_bad_requests(self, data: bytes) -> None:
        """Undecodable bodies, wrong kinds and wrongly typed fields are 400."""
        with pytest.raises(ReviewError) as err:
            parse_token_review(data)
        assert err.value.code == 400
        assert err.value.status()["reason"] == "BadRequest"


class TestHandle:
    def test_authenticated(self) -> None:
        """A good token answers 201 with the user, including system:authenticated."""
        code, out = handle(body(), Tokens())
        assert code == 201
        assert out["kind"] == "TokenReview"
        assert out["apiVersion"] == "authentication.k8s.io/v1"
        assert out["status"] == {
            "authenticated": True,
            "user": {
                "username": "alice",
                "uid": "1",
                "groups": ["dev", "system:authenticated"],
                "extra": {"k": ["v"]},
            },
        }

    def test_token_not_echoed(self) -> None:
        """The answer's spec.token is present but empty: never the token."""
        _, out = handle(body("alice", ["x"]), Tokens(("x",)))
        assert "alice" not in json.dumps(out["spec"])
        assert out["spec"] == {"token": "", "audiences": ["x"]}
        _, out = handle(body("alice"), Tokens())
        assert out["spec"] == {"token": ""}

    def test_answer_loads_into_the_kubernetes_client_model(self) -> None:
        """The Python kubernetes client deserialises the answer (its spec.token is required)."""
        kubernetes = pytest.importorskip("kubernetes")
        _, out = handle(body("alice", ["x"]), Tokens(("x",)))
        api = kubernetes.client.ApiClient()
        review = api.deserialize(json.dumps(out), "V1TokenReview", "application/json")
        assert review.spec.token == ""
        del out["spec"]["token"]  # what the answer looked like before: the model refuses it
        with pytest.raises(ValueError, match="token"):
            api.deserialize(json.dumps(out), "V1TokenReview", "application/json")
        assert review.status.user.username == "alice"

    def test_error_goes_to_status_error(self) -> None:
        """An authenticator error is status.error, with authenticated absent and an empty user."""
        code, out = handle(body("bad"), Tokens())
        assert code == 201
        assert out["status"] == {"user": {}, "error": "token revoked"}

    def test_unknown_token_is_invalid_bearer_token(self) -> None:
        """An unrecognised token is 'invalid bearer token' (anonymous does not apply)."""
        _, out = handle(body("who"), Tokens())
        assert out["status"]["error"] == "invalid bearer token"

    def test_spec_audiences_are_the_targets(self) -> None:
        """spec.audiences go into the context and come back in status.audiences."""
        tokens = Tokens(("x",))
        _, out = handle(body("alice", ["x", "y"]), tokens, api_audiences=("api",))
        assert tokens.seen[0].audiences == ("x", "y")
        assert out["status"]["audiences"] == ["x"]

    def test_api_audiences_when_spec_has_none(self) -> None:
        """Without spec.audiences the API audiences are the targets."""
        tokens = Tokens(("api",))
        handle(body(), tokens, api_audiences=("api",))
        assert tokens.seen[0].audiences == ("api",)
        handle(body(), tokens)
        assert tokens.seen[1].audiences is None

    def test_audience_mismatch_is_500(self) -> None:
        """An accepted response whose audiences miss the targets fails the call with 500."""
        code, out = handle(body("alice", ["x"]), Tokens(("other",)))
        assert code == 500
        assert out == status_object(500, "Internal error occurred: error validating audiences")
        assert out["reason"] == "InternalError"

    def test_anonymous_fallback_takes_the_target_audiences(self) -> None:
        """A bearer with an extra space falls to anonymous, which carries the targets."""
        code, out = handle(body(" x", ["x"]), Tokens())
        assert code == 201
        assert out["status"]["user"]["username"] == "system:anonymous"
        assert out["status"]["audiences"] == ["x"]

    def test_bad_request_status_body(self) -> None:
        """A 400 carries a Status object."""
        code, out = handle(body(""), Tokens())
        assert code == 400
        assert out["kind"] == "Status"
        assert out["code"] == 400

    def test_flow_uses_synthetic_bearer_request(self) -> None:
        """The chain sees a request whose only header is Authorization: Bearer <token>."""
        seen: list[RequestView] = []

        class Recorder:
            def request_flow(self, request: RequestView, ctx: Context, /):  # type: ignore[no-untyped-def]
                seen.append(request)
                return pure(None)

        review = parse_token_review(body())
        out = run_pure(token_review_flow(Recorder(), review, now=NOW))
        assert out["status"] == {"user": {}}
        assert seen[0].headers.pairs() == (("authorization", "Bearer alice"),)
        assert seen[0].peer_chain == ()


class TestSelfSubjectReview:
    def test_shape(self) -> None:
        """The answer carries userInfo and the creation timestamp."""
        user = UserInfo("jane", "42", ("dev", "system:authenticated"), {"a": ("b",)})
        assert self_subject_review(user, "v1", created=1_784_887_200.9) == {
            "kind": "SelfSubjectReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": "2026-07-24T10:00:00Z"},
            "status": {
                "userInfo": {
                    "username": "jane",
                    "uid": "42",
                    "groups": ["dev", "system:authenticated"],
                    "extra": {"a": ["b"]},
                }
            },
        }

    def test_versions_and_errors(self) -> None:
        """Every served version is accepted; no user and unknown versions are 400."""
        for v in ("authentication.k8s.io/v1beta1", "v1alpha1"):
            assert self_subject_review(UserInfo("x"), v)["metadata"] == {"creationTimestamp": None}
        with pytest.raises(ReviewError, match="no user present on request"):
            self_subject_review(None)
        with pytest.raises(ReviewError, match="unsupported"):
            self_subject_review(UserInfo("x"), "v9")
