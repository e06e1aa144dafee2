"""The webhook token authenticator: a TokenReview POSTed to a remote service (spec §12).

The flow is one POST (retried per §12.6) followed by pure decoding::

    fetched = yield from call_with_retries(...)      # Fetch effects, Sleep between attempts
    return decide(decode_review(fetched.body, version), ctx.audiences, implicit)

Outcomes (§12.4): accepted; ``authenticated: false`` without ``status.error`` -> no opinion;
with an error -> :class:`AuthenticationError` carrying the webhook's text; an audience mismatch ->
no opinion. Transport failures, non-2xx answers (redirects included), oversized or malformed
bodies and wrong kinds are errors: never "no opinion", never cached.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import attrs

from .._flow import Flow
from .._protocols import TokenAuthenticator
from .._types import Context, Response, UserInfo
from ..exceptions import AuthenticationError, BackendUnavailable, ConfigError
from ..kubeapi import Backoff, KubeAPI, call_with_retries

__all__ = [
    "SUPPORTED_VERSIONS",
    "TokenReviewStatus",
    "WebhookTokenAuthenticator",
    "decode_review",
    "encode_review",
]

SUPPORTED_VERSIONS: Final = ("v1", "v1beta1")
_GROUP: Final = "authentication.k8s.io/"


def _str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def check_version(version: str) -> str:
    """``version`` if kube-apiserver accepts it, else the flag's :class:`ConfigError`."""
    if version not in SUPPORTED_VERSIONS:
        raise ConfigError(
            f'unsupported authentication webhook version "{version}", '
            'supported versions are "v1", "v1beta1"'
        )
    return version


def _go_json_string(text: str) -> str:
    # A token read from a header may hold invalid UTF-8, kept as lone surrogate escapes (see
    # request/bearer.py). Go's json.Marshal sends U+FFFD for each invalid byte; do the same
    # rather than fail to encode (an encode error's text would quote part of the token).
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def encode_review(token: str, audiences: tuple[str, ...] | None, version: str) -> bytes:
    """The TokenReview request body of §12.2 (``spec.audiences`` only when there are some)."""
    spec: dict[str, Any] = {"token": _go_json_string(token)}
    if audiences:
        spec["audiences"] = [_go_json_string(a) for a in audiences]
    doc = {
        "kind": "TokenReview",
        "apiVersion": _GROUP + version,
        "metadata": {"creationTimestamp": None},
        "spec": spec,
        "status": {"user": {}},
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


@attrs.frozen
class TokenReviewStatus:
    """The ``status`` of a TokenReview answer, type-checked."""

    authenticated: bool = False
    user: UserInfo = attrs.field(factory=lambda: UserInfo(""))
    audiences: tuple[str, ...] = ()
    error: str = ""


class _Malformed(ValueError):
    pass


def decode_review(body: bytes, version: str | None = None) -> TokenReviewStatus:
    """Parse a webhook's TokenReview answer; :class:`BackendUnavailable` when malformed.

    ``kind`` and ``apiVersion`` may be omitted (they default to the expected type); when present
    they must name a TokenReview of ``authentication.k8s.io/<version>``, the version that was
    sent (``None``: v1 or v1beta1). client-go decodes the answer with a scheme that holds both
    versions but no conversion between them, so an answer in the other version fails there too.
    """
    accepted = SUPPORTED_VERSIONS if version is None else (version,)
    try:
        doc = json.loads(body)
        if not isinstance(doc, dict):
            raise _Malformed("the body is not a JSON object")
        if doc.get("kind", "TokenReview") not in ("TokenReview", ""):
            raise _Malformed(f"unexpected kind {_short(doc.get('kind'))}")
        api_version = doc.get("apiVersion", "")
        if api_version not in ("", *(_GROUP + v for v in accepted)):
            raise _Malformed(f"unexpected apiVersion {_short(api_version)}")
        status = _obj(doc.get("status"), "status")
        authenticated = status.get("authenticated")
        if authenticated is None:
            authenticated = False
        if not isinstance(authenticated, bool):
            raise _Malformed("status.authenticated must be a boolean")
        user = _obj(status.get("user"), "status.user")
        extra = _obj(user.get("extra"), "status.user.extra")
        return TokenReviewStatus(
            authenticated=authenticated,
            user=UserInfo(
                name=_str(user.get("username"), "status.user.username"),
                uid=_str(user.get("uid"), "status.user.uid"),
                groups=_strs(user.get("groups"), "status.user.groups"),
                extra={k: _strs(v, "status.user.extra") for k, v in extra.items()},
            ),
            audiences=_strs(status.get("audiences"), "status.audiences"),
            error=_str(status.get("error"), "status.error"),
        )
    except (_Malformed, ValueError, RecursionError) as exc:
        reason = str(exc) if isinstance(exc, _Malformed) else "invalid JSON"
        raise BackendUnavailable(f"unable to decode the webhook's TokenReview: {reason}") from None


def _short(value: object) -> str:
    return json.dumps(value)[:64]


def _obj(value: object, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Malformed(f"{path} must be an object")
    return value


def _str(value: object, path: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Malformed(f"{path} must be a string")
    return value


def _strs(value: object, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Malformed(f"{path} must be a list of strings")
    return tuple(value)


def decide(
    status: TokenReviewStatus,
    want: tuple[str, ...] | None,
    implicit_audiences: tuple[str, ...],
) -> Response | None:
    """The §12.4 decision on a decoded answer: a response, ``None``, or raise the webhook error."""
    auds: tuple[str, ...] = ()
    # An empty target list is "no audience context" here (Context docs): Kubernetes never puts
    # an empty list into a request context.
    if want:
        # Audience intersection comes first: a mismatch is no opinion even if the status
        # carries an error (webhook.go checks audiences before "authenticated").
        got = status.audiences or implicit_audiences
        got_set = frozenset(want)
        auds = tuple(a for a in got if a in got_set)
        if not auds:
            return None
    if not status.authenticated:
        if status.error:
            raise AuthenticationError(status.error)
        return None
    return Response(user=status.user, audiences=auds)


@attrs.frozen
class WebhookTokenAuthenticator:
    """Asks a remote TokenReview service about each token (uncached: see ``from_kubeconfig_file``).

    ``api`` says where (its ``base_url`` is POSTed to verbatim) and with which TLS settings and
    credentials; ``implicit_audiences`` are the API audiences used when the webhook's answer names
    none; ``deadline`` bounds all attempts together (the token cache gives the inner call 30 s).
    """

    api: KubeAPI
    version: str = attrs.field(default="v1beta1", validator=lambda _s, _a, v: check_version(v))
    implicit_audiences: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    backoff: Backoff = attrs.field(factory=Backoff)
    deadline: float = 30.0
    rand: Callable[[], float] = attrs.field(default=random.random, repr=False)

    @classmethod
    def from_kubeconfig_file(
        cls,
        path: str | os.PathLike[str],
        *,
        version: str = "v1beta1",
        cache_ttl: float = 120.0,
        implicit_audiences: tuple[str, ...] = (),
        backoff: Backoff | None = None,
        timeout: float = 30.0,
        deadline: float = 30.0,
        max_cache_size: int | None = None,
    ) -> TokenAuthenticator:
        """kube-apiserver's ``--authentication-token-webhook-*`` flags, as one authenticator.

        The result is already wrapped in the token cache with ``cache_errors=False`` and success
        TTL = failure TTL = ``cache_ttl`` (spec §12.7); with ``cache_ttl=0`` nothing is stored
        but concurrent reviews of one token still share one call, as in kube-apiserver.
        """
        from ..config.kubeconfig import load_kubeconfig

        check_version(version)
        kc = load_kubeconfig(path)
        inner = cls(
            KubeAPI(kc.server, tls=kc.tls, headers=kc.headers, timeout=timeout),
            version=version,
            implicit_audiences=implicit_audiences,
            backoff=backoff or Backoff(),
            deadline=deadline,
        )
        return inner.cached(cache_ttl, max_size=max_cache_size)

    def cached(self, ttl: float, *, max_size: int | None = None) -> TokenAuthenticator:
        """This authenticator behind the token cache the way §12.7 / §3.3 configure it.

        kube-apiserver builds the cache even for a TTL of 0: it then stores nothing, but its
        single flight still makes concurrent reviews of one token share one webhook call.
        """
        from ..chain.cache import CachedTokenAuthenticator

        ttl = max(0.0, ttl)

        if max_size is None:
            return CachedTokenAuthenticator(
                self, cache_errors=False, success_ttl=ttl, failure_ttl=ttl
            )
        return CachedTokenAuthenticator(
            self, cache_errors=False, success_ttl=ttl, failure_ttl=ttl, maxsize=max_size
        )

    def token_flow(self, token: str, ctx: Context, /) -> Flow[Response | None]:
        body = encode_review(token, ctx.audiences, self.version)
        fetched = yield from call_with_retries(
            lambda timeout: self.api.fetch("POST", "", body, timeout=timeout),
            start=ctx.now,
            deadline=self.deadline,
            backoff=self.backoff,
            rand=self.rand,
        )
        status = decode_review(fetched.body, self.version)
        return decide(status, ctx.audiences, self.implicit_audiences)
