"""The token cache: remember what a token authenticator said, keyed by an HMAC (spec §14).

Keys are ``HMAC-SHA256(K, enc(token) || u32be(n) || enc(aud_1) .. enc(aud_n))`` with a random
32-byte ``K`` per cache instance (spec §14.2), so tokens are never stored in clear and keys do not
survive a restart. A miss runs the inner flow through a :class:`~k8sauthn.Shared` effect: the
runner collapses concurrent identical lookups into one inner call (Kubernetes' singleflight).

Differences from Kubernetes, all deliberate (docs/parity.md):

* the cache is bounded (``maxsize``; the oldest entry is evicted first), Kubernetes' is not;
* a cached success never outlives :attr:`~k8sauthn.Response.expires_at` (a JWT's ``exp``);
* there is no 30-second deadline on the shared call: the runner's HTTP timeouts bound it.

The hit path is a plain ``dict`` read without a lock (a single dict operation is atomic under the
GIL); writes and evictions take a lock. The hit path builds no nested flow.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

from .._flow import Flow, Shared
from .._protocols import TokenAuthenticator
from .._types import Context, Response
from ..exceptions import AuthenticationError
from ._step import Pending, Step, step_flow

__all__ = ["AuthenticationFailedUnexpectedly", "CacheStats", "CachedTokenAuthenticator"]

log = logging.getLogger(__name__)

_NO_AUDIENCES: Final = b"\x00\x00\x00\x00"
_MAX_SUFFIXES: Final = 64


class AuthenticationFailedUnexpectedly(AuthenticationError):
    """The cached authenticator raised something other than an authentication error (a bug)."""

    def __init__(self) -> None:
        super().__init__("Internal error occurred: authentication failed unexpectedly")


class CacheStats:
    """Counters a metrics exporter can read (spec §14.5). Updated without a lock: approximate.

    ``hits`` / ``misses`` count lookups (a miss is counted when its shared call finishes);
    ``fetch_ok`` / ``fetch_error`` count inner calls by outcome (``ok`` = no error, even when
    not authenticated); ``in_flight`` is the number of inner calls running now.
    """

    __slots__ = ("evictions", "fetch_error", "fetch_ok", "hits", "in_flight", "misses")

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.fetch_ok = 0
        self.fetch_error = 0
        self.in_flight = 0
        self.evictions = 0

    def as_dict(self) -> dict[str, int]:
        """A snapshot of every counter."""
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self) -> str:
        return f"CacheStats({self.as_dict()!r})"


class _Entry(NamedTuple):
    expires_at: float
    response: Response | None
    error: AuthenticationError | None
    warnings: tuple[str, ...]


def _utf8(value: str) -> bytes:
    try:
        return value.encode()
    except UnicodeEncodeError:  # lone surrogates: bytes that were not UTF-8 (bearer.go_string)
        return value.encode("utf-8", "surrogateescape")


def _enc(value: str) -> bytes:
    raw = _utf8(value)
    return len(raw).to_bytes(4, "big") + raw


def _hmac_pads(key: bytes) -> tuple[Any, Any]:
    """SHA-256 states primed with ``key ^ ipad`` and ``key ^ opad`` (RFC 2104).

    Copying a primed state per lookup computes the same HMAC-SHA256 as :func:`hmac.digest`
    in about 70% of its time (OpenSSL's one-shot HMAC pays a per-call setup): the hit path's
    biggest cost. The tests check both against each other and against Kubernetes' test vector.
    """
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\x00")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    return inner, outer


class CachedTokenAuthenticator:
    """Caches a token authenticator's answers for ``success_ttl`` / ``failure_ttl`` seconds.

    A TTL of 0 disables caching of that outcome. Errors are cached (for ``failure_ttl``) only
    when ``cache_errors`` is true; a :class:`~k8sauthn.exceptions.BackendUnavailable` is an
    error like any other here, as in Kubernetes. ``key`` fixes the HMAC key (tests only).
    """

    def __init__(
        self,
        inner: TokenAuthenticator,
        *,
        success_ttl: float,
        failure_ttl: float = 0.0,
        cache_errors: bool = False,
        maxsize: int = 65536,
        key: bytes | None = None,
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.inner = inner
        self.success_ttl = float(success_ttl)
        self.failure_ttl = float(failure_ttl)
        self.cache_errors = cache_errors
        self.maxsize = maxsize
        self.stats = CacheStats()
        inner_pad, outer_pad = _hmac_pads(key if key is not None else secrets.token_bytes(32))
        self._inner_pad = inner_pad.copy
        self._outer_pad = outer_pad.copy
        # Prefixed to Shared keys so that two caches in one runner never share a flight.
        self._flight_tag = secrets.token_bytes(8)
        # An OrderedDict: popitem(last=False) evicts in O(1), where a dict's next(iter(d)) scans
        # every slot deleted since its last resize (a random-token flood made each miss ~3x dearer).
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._suffixes: dict[tuple[str, ...], bytes] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"CachedTokenAuthenticator({self.inner!r}, success_ttl={self.success_ttl}, "
            f"failure_ttl={self.failure_ttl}, cache_errors={self.cache_errors}, "
            f"maxsize={self.maxsize})"
        )

    def __len__(self) -> int:
        return len(self._entries)

    # -- the key ----------------------------------------------------------------------------
    def cache_key(self, token: str, audiences: Sequence[str] | None) -> bytes:
        """The 32-byte HMAC under which ``token`` for ``audiences`` is cached (spec §14.2)."""
        if not audiences:
            suffix = _NO_AUDIENCES
        else:
            auds = tuple(audiences)
            suffix = self._suffixes.get(auds) or self._suffix(auds)
        try:
            raw = token.encode()
        except UnicodeEncodeError:  # lone surrogates: bytes that were not UTF-8
            raw = token.encode("utf-8", "surrogateescape")
        inner = self._inner_pad()
        inner.update(len(raw).to_bytes(4, "big") + raw + suffix)
        outer = self._outer_pad()
        outer.update(inner.digest())
        key: bytes = outer.digest()
        return key

    def _suffix(self, auds: tuple[str, ...]) -> bytes:
        suffix = len(auds).to_bytes(4, "big") + b"".join(_enc(a) for a in auds)
        if len(self._suffixes) < _MAX_SUFFIXES:  # bounded: audiences come from requests
            self._suffixes[auds] = suffix
        return suffix

    # -- the flow ---------------------------------------------------------------------------
    def token_flow(self, token: str, ctx: Context, /) -> Flow[Response | None]:
        return step_flow(self.token_step, token, ctx)

    def token_step(self, token: str, ctx: Context, /) -> Step:
        """A hit answers here, synchronously; a miss is Pending on the shared inner call."""
        if ctx.audiences:
            key = self.cache_key(token, ctx.audiences)
        else:
            # cache_key without audiences, inlined (one call less on every hit).
            try:
                raw = token.encode()
            except UnicodeEncodeError:
                raw = token.encode("utf-8", "surrogateescape")
            inner = self._inner_pad()
            inner.update(len(raw).to_bytes(4, "big") + raw + _NO_AUDIENCES)
            outer = self._outer_pad()
            outer.update(inner.digest())
            key = outer.digest()
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at > ctx.now:
            self.stats.hits += 1
            if entry.error is None and not entry.warnings:  # _replay's common case, inlined
                return entry.response
            return _replay(entry, ctx)
        return Pending(self._miss(token, ctx, key))

    def _miss(self, token: str, ctx: Context, key: bytes) -> Flow[Response | None]:
        entry: _Entry = yield Shared(self._flight_tag + key, lambda: self._fill(token, ctx, key))
        self.stats.misses += 1
        return _replay(entry, ctx)

    def _fill(self, token: str, ctx: Context, key: bytes) -> Flow[_Entry]:
        # Another flight may have filled the entry while this caller waited to start one.
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at > ctx.now:
            return entry
        # The inner call gets a context of its own: the caller's time and audiences, and a
        # private warnings list that is replayed to every caller on success (spec §14.4).
        inner_ctx = Context(now=ctx.now, audiences=ctx.audiences)
        self.stats.in_flight += 1
        try:
            resp = yield from self.inner.token_flow(token, inner_ctx)
        except Exception as exc:
            if not isinstance(exc, AuthenticationError):
                # Kubernetes turns a panic in the inner authenticator into this error (and then
                # treats it like any other). Only the exception's type is logged: its message or
                # traceback locals could hold the token (e.g. a KeyError(token)).
                log.error(
                    "token authenticator failed unexpectedly: %s.%s",
                    type(exc).__module__,
                    type(exc).__qualname__,
                )
                exc = AuthenticationFailedUnexpectedly()
            self.stats.fetch_error += 1
            entry = _Entry(0.0, None, exc, ())
            if self.cache_errors:
                self._store(key, ctx.now + self.failure_ttl, entry)
            return entry
        finally:
            self.stats.in_flight -= 1
        self.stats.fetch_ok += 1
        if resp is None:
            entry = _Entry(0.0, None, None, ())
            self._store(key, ctx.now + self.failure_ttl, entry)
            return entry
        entry = _Entry(0.0, resp, None, tuple(inner_ctx.warnings))
        expires = ctx.now + self.success_ttl
        if resp.expires_at is not None:
            # Beyond Kubernetes: a cached success never outlives the credential itself.
            expires = min(expires, resp.expires_at)
        self._store(key, expires, entry)
        return entry

    def _store(self, key: bytes, expires_at: float, entry: _Entry) -> None:
        ttl_positive = self.success_ttl > 0 if entry.response is not None else self.failure_ttl > 0
        if not ttl_positive:
            return
        entry = entry._replace(expires_at=expires_at)
        with self._lock:
            entries = self._entries
            # Re-inserting moves a refreshed key to the end: dicts keep insertion order, and
            # eviction takes the oldest insertion, which (one TTL per outcome) expires first.
            if entries.pop(key, None) is None and len(entries) >= self.maxsize:
                entries.popitem(last=False)
                self.stats.evictions += 1
            entries[key] = entry

    def clear(self) -> None:
        """Forget every cached answer."""
        with self._lock:
            self._entries.clear()


def _replay(entry: _Entry, ctx: Context) -> Response | None:
    error = entry.error
    if error is not None:
        # The same exception object serves many callers: drop the traceback it collected so
        # far so that it does not grow with every replay.
        raise error.with_traceback(None)
    if entry.warnings:
        ctx.warnings.extend(entry.warnings)
    return entry.response
