"""The error tree. No message ever contains a token, a key or a password.

::

    K8sAuthnError
    ├── AuthenticationError          a credential was examined and rejected -> 401
    │   ├── InvalidBearerToken       a presented token no authenticator accepted
    │   ├── ChainError               several members of a union failed (.errors)
    │   └── BackendUnavailable       webhook / discovery / JWKS unreachable; never cached
    └── ConfigError (ValueError)     bad configuration; .errors lists every FieldError

``str(error)`` is the text Kubernetes would put in ``TokenReview.status.error``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit, urlunsplit

import attrs

__all__ = [
    "AuthenticationError",
    "BackendUnavailable",
    "ChainError",
    "ConfigError",
    "FieldError",
    "InvalidBearerToken",
    "K8sAuthnError",
    "aggregate",
    "redact_url",
]


def redact_url(url: str) -> str:
    """``url`` without user-info and with any query string replaced by ``?...``.

    Used wherever a URL reaches a repr, a log line or an error: a URL may carry a password
    (``https://user:pw@host``) or a token in its query.
    """
    if "@" not in url and "?" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    netloc = parts.netloc.rpartition("@")[2]
    query = "..." if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


class K8sAuthnError(Exception):
    """Base class of every error this library raises."""


class AuthenticationError(K8sAuthnError):
    """A credential was examined and rejected, or could not be checked: never anonymous."""


class InvalidBearerToken(AuthenticationError):
    """A bearer token was presented and no token authenticator had an opinion on it."""

    def __init__(self) -> None:
        super().__init__("invalid bearer token")


class BackendUnavailable(AuthenticationError):
    """A remote backend (webhook, discovery, JWKS, claims source) could not be reached or read.

    ``url`` is stored redacted (no user-info, no query string): a configured URL may carry a
    password, and a distributed-claims endpoint comes from the token itself.
    ``time`` is the runner's clock when a transport failure happened (``None`` when unknown):
    flows cannot read the clock, and a retry loop needs it to keep its overall deadline.
    """

    def __init__(self, message: str, *, url: str = "", time: float | None = None) -> None:
        super().__init__(message)
        self.url = redact_url(url)
        self.time = time


class ChainError(AuthenticationError):
    """Several authenticators failed; ``errors`` keeps each one (Kubernetes' aggregate error)."""

    def __init__(self, errors: Sequence[BaseException]) -> None:
        self.errors: tuple[BaseException, ...] = tuple(errors)
        super().__init__(_aggregate_text(self.errors))


def _flatten(errors: Iterable[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for e in errors:
        if isinstance(e, ChainError):
            out.extend(_flatten(e.errors))
        else:
            out.append(e)
    return out


def _aggregate_text(errors: Sequence[BaseException]) -> str:
    # apimachinery NewAggregate: flatten, de-duplicate texts (first kept), bare when one remains.
    texts = list(dict.fromkeys(str(e) for e in _flatten(errors)))
    if len(texts) == 1:
        return texts[0]
    return "[" + ", ".join(texts) + "]"


def aggregate(errors: Sequence[BaseException]) -> BaseException | None:
    """``None`` for no errors, the error itself for one, else a :class:`ChainError`."""
    if not errors:
        return None
    if len(errors) == 1:
        return errors[0]
    return ChainError(errors)


@attrs.frozen
class FieldError:
    """One configuration problem at a field path, formatted like Kubernetes' ``field.Error``."""

    path: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.detail}" if self.path else self.detail


class ConfigError(K8sAuthnError, ValueError):
    """Configuration that cannot be used; ``errors`` lists every problem found."""

    def __init__(self, errors: Sequence[FieldError | str] | str) -> None:
        if isinstance(errors, str):
            errors = [errors]
        self.errors: tuple[FieldError, ...] = tuple(
            e if isinstance(e, FieldError) else FieldError("", e) for e in errors
        )
        texts = [str(e) for e in self.errors]
        super().__init__(texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]")
