"""``Authorization: Bearer <token>`` extraction (spec §7.1, Kubernetes ``bearertoken.go``).

Header values arrive as latin-1 text (the bytes of the HTTP message); Go works on those bytes
as a UTF-8 string. :func:`go_string` turns a header value into the same text Go would see, so
that a token with non-ASCII characters compares equal to the one in a token file, and invalid
UTF-8 stays distinct (kept as lone surrogates, ``surrogateescape``) instead of being replaced.
"""

from __future__ import annotations

from typing import Final

from .._flow import Flow
from .._protocols import TokenAuthenticator
from .._types import Context, RequestView, Response
from ..chain._step import Pending, Step, step_flow, token_stepper
from ..exceptions import InvalidBearerToken

__all__ = [
    "EXTRA_SPACE_WARNING",
    "BearerAuthenticator",
    "go_string",
    "go_trim_space",
    "require_answer",
]

EXTRA_SPACE_WARNING: Final = (
    "the provided Authorization header contains extra space before the bearer token, and is ignored"
)

# Go's unicode.IsSpace: ASCII space characters, NEL, NBSP and the Unicode White_Space set.
# Python's str.strip() would also remove U+001C..U+001F, which Go keeps.
_GO_SPACE: Final = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)
_ASCII_SPACE: Final = "\t\n\v\f\r "
_COMMON_PREFIXES: Final = ("Bearer ", "bearer ")


def go_string(value: str) -> str:
    """The text Go sees for a header value decoded as latin-1 (see the module docstring)."""
    if value.isascii():
        return value
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:  # already real text (built by hand, not from the wire)
        return value
    return raw.decode("utf-8", "surrogateescape")


def go_trim_space(value: str) -> str:
    """Go's ``strings.TrimSpace``."""
    return value.strip(_ASCII_SPACE if value.isascii() else _GO_SPACE)


class BearerAuthenticator:
    """Reads a bearer token from the first ``Authorization`` header and checks it with ``token``.

    A presented token that no token authenticator recognises is an error
    (:class:`~k8sauthn.exceptions.InvalidBearerToken`), so it blocks the anonymous fallback.
    On success the HTTP filter strips the header (``Chain.strip_headers``).
    """

    __slots__ = ("_step", "token")

    def __init__(self, token: TokenAuthenticator) -> None:
        self.token = token
        self._step = token_stepper(token)

    def __repr__(self) -> str:
        return f"BearerAuthenticator({self.token!r})"

    def request_flow(self, request: RequestView, ctx: Context, /) -> Flow[Response | None]:
        return step_flow(self.request_step, request, ctx)

    def request_step(self, request: RequestView, ctx: Context, /) -> Step:
        header = request.headers.first("authorization")
        if header is None:
            return None
        # The common shape, "Bearer <token>" in ASCII with no other space and nothing to trim,
        # gives the same token as the general rules below, for less work.
        # (In ASCII every character that TrimSpace removes sorts before "!".)
        if header.isascii() and header.startswith(_COMMON_PREFIXES):
            token = header[7:]
            if token[-1:] > " " and " " not in token:
                outcome = self._step(token, ctx)
                if outcome is None:
                    raise InvalidBearerToken()
                if type(outcome) is Pending:
                    return Pending(_required(outcome.flow))
                return outcome
        auth = go_trim_space(go_string(header))
        if not auth:
            return None
        # Split on single ASCII spaces into at most three parts; tabs are not separators.
        parts = auth.split(" ", 2)
        if len(parts) < 2 or parts[0].lower() != "bearer":
            return None
        token = parts[1]
        if not token:
            if len(parts) == 3:  # "Bearer  tok": a space before the token
                ctx.warnings.append(EXTRA_SPACE_WARNING)
            return None
        return require_answer(self._step(token, ctx))


def require_answer(outcome: Step) -> Step:
    """A presented token must be recognised: no opinion becomes ``invalid bearer token``."""
    if outcome is None:
        raise InvalidBearerToken()
    if type(outcome) is Pending:
        return Pending(_required(outcome.flow))
    return outcome


def _required(flow: Flow[Response | None]) -> Flow[Response | None]:
    resp = yield from flow
    if resp is None:
        raise InvalidBearerToken()
    return resp
