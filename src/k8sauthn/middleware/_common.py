"""What every HTTP adapter shares: the filter flow, the Status bodies, and credential stripping.

This is kube-apiserver's authentication filter (spec §15, ``WithAuthentication``) without the I/O:
run the request chain, turn "no opinion" into a rejection, apply the final audience check (§2.4),
and tell the adapter which credential headers to delete once a user is accepted (§10.4). The ASGI
and WSGI adapters, and the framework integrations, are thin shells around it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Final, Generic, Protocol, TypeVar

import attrs

from .._flow import Flow
from .._protocols import RequestAuthenticator, TokenAuthenticator
from .._types import ALL_UNAUTHENTICATED, ANONYMOUS_USER, Context, RequestView, Response
from ..chain._step import RequestStep, request_stepper
from ..exceptions import AuthenticationError
from ..peercert import der_from_pem_texts

__all__ = [
    "DEFAULT_STRIP_HEADERS",
    "DEFAULT_STRIP_PREFIXES",
    "FORBIDDEN_BODY",
    "STATUS_CONTENT_TYPE",
    "UNAUTHORIZED_BODY",
    "WEBSOCKET_TOKEN_PREFIX",
    "AudienceMismatch",
    "ChainLike",
    "FilterPolicy",
    "NotAuthenticated",
    "accepted",
    "der_chain_from_pem",
    "filter_flow",
    "is_anonymous",
    "log",
    "log_failure",
    "status_body",
    "warning_header",
    "without_token_protocol",
]

log: Final = logging.getLogger("k8sauthn.middleware")

# Spec §10.4: deleted after *any* successful authentication, whichever authenticator accepted.
DEFAULT_STRIP_HEADERS: Final = ("authorization", "x-remote-user", "x-remote-uid", "x-remote-group")
DEFAULT_STRIP_PREFIXES: Final = ("x-remote-extra-",)
# Spec §7.2: the WebSocket subprotocol entry that carries a bearer token.
WEBSOCKET_TOKEN_PREFIX: Final = "base64url.bearer.authorization.k8s.io."
STATUS_CONTENT_TYPE: Final = "application/json"
_DOT_SEGMENTS: Final = frozenset({".", ".."})


def status_body(code: int, reason: str, message: str) -> bytes:
    """A ``meta/v1`` Status failure body, byte for byte as kube-apiserver writes it (spec §16.4).

    Go's ``json.Encoder`` emits the struct fields in declaration order and ends with a newline.
    """
    obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


# Spec §15 step 3: the error text is only logged, never returned.
UNAUTHORIZED_BODY: Final = status_body(401, "Unauthorized", "Unauthorized")
FORBIDDEN_BODY: Final = status_body(403, "Forbidden", "Forbidden")


class NotAuthenticated(AuthenticationError):
    """No authenticator had an opinion on the request (and anonymous access is off)."""

    def __init__(self) -> None:
        super().__init__("no authenticator accepted the request")


class AudienceMismatch(AuthenticationError):
    """The chain accepted a credential that is not valid for this server's audiences (§2.4).

    ``audiences`` are the credential's (the response's), ``accepted`` the server's API audiences,
    in the order of kube-apiserver's log line (``filters/authentication.go``).
    """

    def __init__(self, audiences: Sequence[str], accepted: Sequence[str]) -> None:
        # Go: fmt.Errorf("unable to match the audience: %v , accepted: %v", resp.Audiences, api)
        got, api = " ".join(audiences), " ".join(accepted)
        super().__init__(f"unable to match the audience: [{got}] , accepted: [{api}]")
        self.audiences = tuple(audiences)
        self.accepted = tuple(accepted)


def accepted(resp: Response | None, ctx: Context) -> Response:
    """The filter's verdict on the chain's answer: the response, or a raise (spec §15 steps 3-4).

    No opinion is :class:`NotAuthenticated`; a response whose audiences miss the API audiences
    (``ctx.audiences``, which the runners fill with them) is :class:`AudienceMismatch` (§2.4).
    """
    if resp is None:
        raise NotAuthenticated()
    api = ctx.audiences
    if api and resp.audiences and not set(api).intersection(resp.audiences):
        raise AudienceMismatch(resp.audiences, api)
    return resp


def filter_flow(root: RequestAuthenticator, view: RequestView, ctx: Context) -> Flow[Response]:
    """Run the chain as the HTTP filter does: an accepted, audience-checked response or a raise.

    The adapters take the synchronous path instead (``chain._step``); this flow serves callers
    that hold a runner only (``k8sauthn.server``, the CLI).
    """
    return accepted((yield from root.request_flow(view, ctx)), ctx)


_LOG_TEXT_LIMIT: Final = 1024


def log_text(exc: BaseException) -> str:
    """An error text safe for one log line: control characters escaped, length bounded.

    Error texts never carry credentials, but some come from remote servers (a webhook's
    ``status.error``, a Kubernetes API Status message): a newline must not forge a log line.
    """
    text = str(exc)
    if not text.isprintable():
        text = text.encode("unicode_escape").decode("ascii")
    if len(text) > _LOG_TEXT_LIMIT:
        text = text[:_LOG_TEXT_LIMIT] + "..."
    return text


def log_failure(exc: AuthenticationError) -> None:
    """Log a rejection as kube-apiserver does (§15 step 3); error texts never carry credentials."""
    if isinstance(exc, NotAuthenticated):
        log.debug("Unable to authenticate the request: %s", log_text(exc))
    else:
        log.info("Unable to authenticate the request: %s", log_text(exc))


def is_anonymous(resp: Response) -> bool:
    """The anonymous test kube-apiserver uses for HTTP/2 ``Connection: close`` (spec §15 step 5)."""
    return resp.user.name == ANONYMOUS_USER or ALL_UNAUTHENTICATED in resp.user.groups


_GO_ESCAPES: Final = {
    '"': '\\"',
    "\\": "\\\\",
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def _go_quote_char(ch: str) -> str:
    if ch in _GO_ESCAPES:
        return _GO_ESCAPES[ch]
    code = ord(ch)
    if 0x20 <= code < 0x7F:
        return ch
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def warning_header(text: str) -> str:
    """A ``Warning`` value as kube-apiserver sends its warnings: ``299 - "text"``.

    The text is quoted like Go's ``strconv.QuoteToASCII``: no control character can break out
    of the header, and the value stays ASCII (WSGI header values must be latin-1).
    """
    return '299 - "' + "".join(map(_go_quote_char, text)) + '"'


def der_chain_from_pem(pems: Iterable[str | bytes]) -> tuple[bytes, ...]:
    """DER of each PEM certificate, leaf first; a malformed entry is a rejection, not "no cert".

    Dropping a bad entry would shift an intermediate into the leaf position, and treating the
    whole chain as absent could hand out anonymous access: failing closed is the only safe choice.
    (Used by ``k8sauthn.server`` and the CLI; the adapters read through ``k8sauthn.peercert``.)
    """
    return der_from_pem_texts(pems)


class ChainLike(Protocol):
    """What the adapters read from ``k8sauthn.config.build.Chain`` (structural, so no import)."""

    @property
    def request(self) -> RequestAuthenticator | None: ...
    @property
    def token(self) -> TokenAuthenticator | None: ...
    @property
    def api_audiences(self) -> tuple[str, ...]: ...
    @property
    def strip_headers(self) -> Iterable[str]: ...
    @property
    def strip_prefixes(self) -> Iterable[str]: ...


class _Runner(Protocol):
    @property
    def root(self) -> object: ...


_R = TypeVar("_R", bound=_Runner)


@attrs.frozen
class FilterSetup(Generic[_R]):
    """What both adapters derive from their arguments: the runner, the policy and the step."""

    authenticator: _R | None
    policy: FilterPolicy
    step: RequestStep | None

    @classmethod
    def create(
        cls,
        authenticator: _R | None,
        chain: ChainLike | None,
        make_runner: Callable[[RequestAuthenticator, tuple[str, ...]], _R],
        *,
        skip_paths: Iterable[str],
        strip_headers: Iterable[str],
        strip_prefixes: Iterable[str],
        www_authenticate: str | None,
    ) -> FilterSetup[_R]:
        """From a ready runner, or from a built chain (its runner, audiences and strip lists)."""
        if (authenticator is None) == (chain is None):
            raise TypeError("pass exactly one of authenticator= or chain=")
        if chain is not None:
            strip_headers = (*chain.strip_headers, *strip_headers)
            strip_prefixes = (*chain.strip_prefixes, *strip_prefixes)
            if chain.request is not None:
                authenticator = make_runner(chain.request, chain.api_audiences)
        policy = FilterPolicy.create(
            strip_headers=strip_headers,
            strip_prefixes=strip_prefixes,
            skip_paths=skip_paths,
            www_authenticate=www_authenticate,
        )
        root = authenticator.root if authenticator is not None else None
        if root is not None and not isinstance(root, RequestAuthenticator):
            raise TypeError("the authenticator's root must be a request authenticator")
        # The chain's synchronous step: a cached token is answered without building a flow.
        step = None if root is None else request_stepper(root)
        if root is None:
            # Spec §15 step 1: with nothing configured the filter is a no-op.
            log.warning("no authenticator is configured: requests pass unauthenticated")
        return cls(authenticator, policy, step)


def _lower_tuple(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip().lower() for v in values if v.strip()))


@attrs.frozen
class FilterPolicy:
    """How an adapter treats requests around the chain: what to strip, what to skip, what to say.

    Build it with :meth:`create`, which always keeps the spec §10.4 defaults in the strip lists.

    * ``strip_headers`` / ``strip_prefixes``: deleted (case-insensitively) once a user is accepted;
      nothing is stripped on failure (§10.4). The WebSocket token subprotocol entry is always
      removed too, so the application never sees a credential.
    * ``skip_paths``: request paths that bypass authentication entirely (no user, nothing
      stripped). An entry ending in ``*`` is a prefix (never matching a path with ``.`` or ``..``
      segments). Paths are compared after percent-decoding, as the router sees them.
    * ``www_authenticate``: the ``WWW-Authenticate`` value sent with a 401; kube-apiserver sends
      none, so ``None`` restores exact parity.
    """

    strip_headers: frozenset[str] = frozenset(DEFAULT_STRIP_HEADERS)
    strip_prefixes: tuple[str, ...] = DEFAULT_STRIP_PREFIXES
    skip_paths: frozenset[str] = frozenset()
    skip_prefixes: tuple[str, ...] = ()
    www_authenticate: str | None = "Bearer"

    @classmethod
    def create(
        cls,
        *,
        strip_headers: Iterable[str] = (),
        strip_prefixes: Iterable[str] = (),
        skip_paths: Iterable[str] = (),
        www_authenticate: str | None = "Bearer",
    ) -> FilterPolicy:
        """A policy whose strip lists are the spec defaults plus the given names and prefixes."""
        paths = tuple(skip_paths)
        return cls(
            strip_headers=frozenset(_lower_tuple((*DEFAULT_STRIP_HEADERS, *strip_headers))),
            strip_prefixes=_lower_tuple((*DEFAULT_STRIP_PREFIXES, *strip_prefixes)),
            skip_paths=frozenset(p for p in paths if not p.endswith("*")),
            skip_prefixes=tuple(p[:-1] for p in paths if p.endswith("*")),
            www_authenticate=www_authenticate,
        )

    @classmethod
    def from_chain(
        cls,
        chain: ChainLike,
        *,
        skip_paths: Iterable[str] = (),
        www_authenticate: str | None = "Bearer",
    ) -> FilterPolicy:
        """The policy for a built chain: its configured request-header names are stripped too."""
        return cls.create(
            strip_headers=chain.strip_headers,
            strip_prefixes=chain.strip_prefixes,
            skip_paths=skip_paths,
            www_authenticate=www_authenticate,
        )

    def skips(self, path: str) -> bool:
        """Whether ``path`` bypasses authentication.

        A prefix never skips a path with ``.`` or ``..`` segments: ``/static/../admin`` starts
        with ``/static/``, but an application that normalises paths would serve ``/admin``.
        """
        if path in self.skip_paths:
            return True
        return (
            bool(self.skip_prefixes)
            and path.startswith(self.skip_prefixes)
            and not _DOT_SEGMENTS.intersection(path.replace("\\", "/").split("/"))
        )

    def strips(self, lname: str) -> bool:
        """Whether the lower-cased header ``lname`` is a credential to delete after success."""
        return lname in self.strip_headers or lname.startswith(self.strip_prefixes)

    def failure_headers(self) -> list[tuple[str, str]]:
        """Headers of a 401/403 Status response (kube-apiserver also sends ``nosniff``)."""
        out = [("content-type", STATUS_CONTENT_TYPE), ("x-content-type-options", "nosniff")]
        if self.www_authenticate:
            out.append(("www-authenticate", self.www_authenticate))
        return out


def without_token_protocol(values: Iterable[str]) -> str | None:
    """``Sec-WebSocket-Protocol`` with the bearer-token entry removed (spec §7.2), or None if empty.

    kube-apiserver replaces the header by the remaining protocols joined with ``,``.
    """
    kept = [
        p
        for v in values
        for p in (s.strip() for s in v.split(","))
        if p and not p.startswith(WEBSOCKET_TOKEN_PREFIX)
    ]
    return ",".join(kept) if kept else None
