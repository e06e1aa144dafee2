"""The static token file, ``--token-auth-file`` (spec §8; Kubernetes ``tokenfile.go``).

``token,user,uid[,"group1,group2"[,ignored...]]`` per line, read with Go's CSV rules
(:mod:`k8sauthn.token._gocsv`). Tokens are looked up by their SHA-256 digest: the table never
holds a token in clear, and nothing here ever logs, prints or reprs one.

Beyond Kubernetes (which reads the file once): :meth:`StaticTokenAuthenticator.reloading` follows
changes to the file; a bad new file keeps the previous table and reports the error.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Mapping
from typing import Self

import attrs

from .._flow import Flow, pure
from .._types import Context, Response, UserInfo
from ..config._load import ReloadingFile, read_bytes
from ..exceptions import ConfigError
from ._gocsv import CSVParseError, parse

__all__ = ["ReloadingStaticTokenAuthenticator", "StaticTokenAuthenticator", "token_digest"]

log = logging.getLogger(__name__)

_Table = Mapping[bytes, Response]
# Kubernetes' warnings (tokenfile.go); they name the record, never the token.
_EMPTY_TOKEN = "empty token has been found in token file '%s', record number '%d'"
_DUPLICATE_TOKEN = "duplicate token has been found in token file '%s', record number '%d'"


def token_digest(token: str) -> bytes:
    """The table key of a token: SHA-256 of its bytes (invalid UTF-8 kept as it came)."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def parse_token_file(data: bytes, path: str = "") -> dict[bytes, Response]:
    """The token table of a file's bytes; raises ConfigError with Kubernetes' texts."""
    try:
        records = parse(data)
    except CSVParseError as exc:
        raise ConfigError(str(exc)) from None
    table: dict[bytes, Response] = {}
    number = 0
    for record in records:
        if len(record) < 3:
            raise ConfigError(
                f"token file '{path}' must have at least 3 columns (token, user name, user uid), "
                f"found {len(record)}"
            )
        number += 1
        if not record[0]:
            log.warning(_EMPTY_TOKEN, path, number)
            continue
        digest = token_digest(record[0])
        if digest in table:
            log.warning(_DUPLICATE_TOKEN, path, number)
        # A fourth field is split on commas as it is: no trimming, empty groups kept.
        groups = tuple(record[3].split(",")) if len(record) >= 4 else ()
        table[digest] = Response(UserInfo(record[1], uid=record[2], groups=groups))
    return table


@attrs.frozen
class StaticTokenAuthenticator:
    """Accepts the tokens of a token file; a miss is no opinion. Build with a named constructor."""

    _by_digest: _Table = attrs.field(repr=False, alias="by_digest")

    @classmethod
    def from_csv(cls, data: bytes | str, *, path: str = "") -> Self:
        """From the file's content; ``path`` only appears in error messages."""
        raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
        return cls(by_digest=parse_token_file(raw, path))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Self:
        """Read the file once, as kube-apiserver does."""
        return cls.from_csv(read_bytes(path, what="token file"), path=os.fspath(path))

    @classmethod
    def reloading(
        cls,
        path: str | os.PathLike[str],
        *,
        interval: float = 60.0,
        on_error: Callable[[Exception], None] | None = None,
    ) -> ReloadingStaticTokenAuthenticator:
        """Follow the file: re-read it at most every ``interval`` seconds when it changed."""
        name = os.fspath(path)
        file: ReloadingFile[_Table] = ReloadingFile(
            path,
            lambda data: parse_token_file(data, name),
            interval=interval,
            what="token file",
            on_error=on_error or _log_reload_error,
        )
        return ReloadingStaticTokenAuthenticator(file)

    def __len__(self) -> int:
        return len(self._by_digest)

    def token_flow(self, token: str, ctx: Context, /) -> Flow[Response | None]:
        return pure(self._by_digest.get(token_digest(token)))

    def token_step(self, token: str, ctx: Context, /) -> Response | None:
        return self._by_digest.get(token_digest(token))


def _log_reload_error(exc: Exception) -> None:
    log.error("token file reload failed, keeping the previous tokens: %s", exc)


class ReloadingStaticTokenAuthenticator:
    """A token file re-read when it changes (see :meth:`StaticTokenAuthenticator.reloading`).

    ``last_error`` is the error of the latest failed reload (``None`` after a good one).
    """

    __slots__ = ("_file",)

    def __init__(self, file: ReloadingFile[_Table]) -> None:
        self._file = file

    def __repr__(self) -> str:
        return f"ReloadingStaticTokenAuthenticator(path={str(self._file.path)!r})"

    @property
    def last_error(self) -> Exception | None:
        return self._file.last_error

    def check(self) -> bool:
        """Re-read the file now if it changed; True when a new table was installed."""
        return self._file.check()

    def __len__(self) -> int:
        return len(self._file.value)

    def token_flow(self, token: str, ctx: Context, /) -> Flow[Response | None]:
        return pure(self._file.value.get(token_digest(token)))

    def token_step(self, token: str, ctx: Context, /) -> Response | None:
        return self._file.value.get(token_digest(token))
