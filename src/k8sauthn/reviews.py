"""Serving TokenReview (be a cluster's authentication webhook) and SelfSubjectReview (spec §16).

``handle_token_review(body, root, now=...)`` is a flow that decodes a TokenReview request,
authenticates its token through any k8sauthn *request* chain as a synthetic
``Authorization: Bearer <token>`` request (so the group adder and the anonymous fallback apply,
as in kube-apiserver's registry), and returns the HTTP status and JSON body to send. Both
runners can drive it; :mod:`k8sauthn.server` exposes it over HTTP.

Beyond Kubernetes: the answer never echoes the token. kube-apiserver returns the whole object,
token included; here ``spec.token`` is always ``""`` (present, because the Python ``kubernetes``
client's ``V1TokenReviewSpec`` model requires the field, and empty, so no secret travels back).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from ._flow import Flow
from ._protocols import RequestAuthenticator
from ._types import Context, Headers, RequestView, Response, UserInfo
from .exceptions import AuthenticationError, K8sAuthnError

__all__ = [
    "ReviewError",
    "TokenReviewRequest",
    "handle_token_review",
    "parse_token_review",
    "self_subject_review",
    "status_object",
    "token_review_flow",
]

GROUP: Final = "authentication.k8s.io"
TOKEN_REVIEW_VERSIONS: Final = (f"{GROUP}/v1", f"{GROUP}/v1beta1")
SELF_SUBJECT_REVIEW_VERSIONS: Final = (f"{GROUP}/v1", f"{GROUP}/v1beta1", f"{GROUP}/v1alpha1")
_REASONS: Final[Mapping[int, str]] = {400: "BadRequest", 401: "Unauthorized", 500: "InternalError"}


class ReviewError(K8sAuthnError):
    """A review that cannot be answered with a status: the HTTP ``code`` and Status message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def status(self) -> dict[str, Any]:
        """The ``Status`` object (spec §16.4) to send with :attr:`code`."""
        return status_object(self.code, self.message)


def status_object(code: int, message: str, reason: str = "") -> dict[str, Any]:
    """A ``v1`` ``Status`` failure object (spec §16.4)."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or _REASONS.get(code, ""),
        "code": code,
    }


@attrs.frozen
class TokenReviewRequest:
    """A decoded TokenReview request: the version to answer in, the token, its audiences."""

    api_version: str
    token: str = attrs.field(repr=False)
    audiences: tuple[str, ...] = ()


def parse_token_review(
    body: bytes, *, default_version: str = f"{GROUP}/v1", namespace: str = ""
) -> TokenReviewRequest:
    """Decode and validate a TokenReview request body; :class:`ReviewError` (400) when invalid.

    ``default_version`` is the version named by the URL, used when the body omits
    ``apiVersion``; ``namespace`` is the URL's namespace, which a TokenReview may not have.
    """
    if namespace:
        raise ReviewError(400, f"namespace is not allowed on this type: {namespace}")
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise ReviewError(400, "the request body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ReviewError(400, "the request body must be a JSON object")
    kind = doc.get("kind") or "TokenReview"
    api_version = doc.get("apiVersion") or default_version
    if kind != "TokenReview" or api_version not in TOKEN_REVIEW_VERSIONS:
        raise ReviewError(
            400,
            f"the object provided is unrecognized (must be of type TokenReview): "
            f"{json.dumps(str(kind))[:80]}, {json.dumps(str(api_version))[:80]}",
        )
    if api_version != default_version:
        # kube-apiserver's create handler (AcceptsGroupVersion): the body's version must be
        # the one the URL names; it never answers a v1beta1 review on the v1 endpoint.
        raise ReviewError(
            400,
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({default_version})",
        )
    spec = doc.get("spec") or {}
    if not isinstance(spec, dict):
        raise ReviewError(400, "spec must be an object")
    token = spec.get("token") or ""
    audiences = spec.get("audiences") or []
    if not isinstance(token, str):
        raise ReviewError(400, "spec.token must be a string")
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise ReviewError(400, "spec.audiences must be a list of strings")
    if not token:
        raise ReviewError(400, "token is required for TokenReview in authentication")
    return TokenReviewRequest(api_version, token, tuple(audiences))


def token_review_flow(
    root: RequestAuthenticator,
    review: TokenReviewRequest,
    *,
    now: float,
    api_audiences: Sequence[str] = (),
) -> Flow[dict[str, Any]]:
    """Authenticate a review's token through ``root``; the TokenReview answer object.

    Raises :class:`ReviewError` (500 ``Internal error occurred: error validating audiences``)
    when target audiences exist and an accepted response's audiences do not intersect them.
    """
    auds = review.audiences or tuple(api_audiences)
    ctx = Context(now=now, audiences=auds or None)
    view = RequestView(headers=Headers((("authorization", "Bearer " + review.token),)))
    resp: Response | None = None
    error = ""
    try:
        resp = yield from root.request_flow(view, ctx)
    except AuthenticationError as exc:
        error = str(exc)
    if auds and resp is not None and not set(auds).intersection(resp.audiences):
        raise ReviewError(500, "Internal error occurred: error validating audiences")
    status: dict[str, Any] = {}
    if resp is not None:
        status["authenticated"] = True
    status["user"] = resp.user.to_dict() if resp is not None else {}
    if resp is not None and resp.audiences:
        status["audiences"] = list(resp.audiences)
    if error:
        status["error"] = error
    # Redacted, never echoed: see the module docstring.
    spec: dict[str, Any] = {"token": ""}
    if review.audiences:
        spec["audiences"] = list(review.audiences)
    return {
        "kind": "TokenReview",
        "apiVersion": review.api_version,
        "metadata": {"creationTimestamp": None},
        "spec": spec,
        "status": status,
    }


def handle_token_review(
    body: bytes,
    root: RequestAuthenticator,
    *,
    now: float,
    api_audiences: Sequence[str] = (),
    default_version: str = f"{GROUP}/v1",
    namespace: str = "",
) -> Flow[tuple[int, bytes]]:
    """The whole endpoint as a flow: request body in, ``(HTTP status, JSON body)`` out.

    Success is 201 Created (the code kube-apiserver answers a ``create`` with); a bad request
    is 400 and the audience check 500, both with a ``Status`` body.
    """
    try:
        review = parse_token_review(body, default_version=default_version, namespace=namespace)
        answer = yield from token_review_flow(root, review, now=now, api_audiences=api_audiences)
    except ReviewError as exc:
        return exc.code, _dump(exc.status())
    return 201, _dump(answer)


def self_subject_review(
    user: UserInfo | None, api_version: str = f"{GROUP}/v1", *, created: float | None = None
) -> dict[str, Any]:
    """The SelfSubjectReview answer for the request's own ``user`` (spec §16.2).

    ``api_version`` may be short (``"v1"``). ``created`` (seconds since the epoch) becomes
    ``metadata.creationTimestamp``. No user raises :class:`ReviewError` 400
    ``no user present on request``.
    """
    if "/" not in api_version:
        api_version = f"{GROUP}/{api_version}"
    if api_version not in SELF_SUBJECT_REVIEW_VERSIONS:
        raise ReviewError(400, f"unsupported SelfSubjectReview version {api_version!r}")
    if user is None:
        raise ReviewError(400, "no user present on request")
    stamp = None if created is None else _rfc3339(int(created))
    return {
        "kind": "SelfSubjectReview",
        "apiVersion": api_version,
        "metadata": {"creationTimestamp": stamp},
        "status": {"userInfo": user.to_dict()},
    }


@functools.lru_cache(maxsize=4)
def _rfc3339(seconds: int) -> str:
    # Every request within one second shares the stamp: format it once.
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dump(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
