"""The value types every authenticator speaks: users, responses, contexts and request views.

All of them are frozen attrs classes. ``extra`` keys are stored as given; the authenticators that
must lowercase them (request-header, the HTTP filter) do so themselves, as Kubernetes does.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from typing import Final, TypeVar, overload

import attrs

_T = TypeVar("_T")

__all__ = [
    "ALL_AUTHENTICATED",
    "ALL_UNAUTHENTICATED",
    "ANONYMOUS_USER",
    "BOOTSTRAP_GROUP",
    "BOOTSTRAP_USER_PREFIX",
    "CREDENTIAL_ID_KEY",
    "Context",
    "Headers",
    "RequestView",
    "Response",
    "UserInfo",
]

ANONYMOUS_USER: Final = "system:anonymous"
ALL_UNAUTHENTICATED: Final = "system:unauthenticated"
ALL_AUTHENTICATED: Final = "system:authenticated"
SYSTEM_PRIVILEGED_GROUP: Final = "system:masters"
NODES_GROUP: Final = "system:nodes"
MONITORING_GROUP: Final = "system:monitoring"
API_SERVER_USER: Final = "system:apiserver"
KUBE_PROXY: Final = "system:kube-proxy"
KUBE_CONTROLLER_MANAGER: Final = "system:kube-controller-manager"
KUBE_SCHEDULER: Final = "system:kube-scheduler"
CREDENTIAL_ID_KEY: Final = "authentication.kubernetes.io/credential-id"
BOOTSTRAP_USER_PREFIX: Final = "system:bootstrap:"
BOOTSTRAP_GROUP: Final = "system:bootstrappers"


def _freeze_extra(value: Mapping[str, Iterable[str]] | None) -> Mapping[str, tuple[str, ...]]:
    if not value:
        return _EMPTY_EXTRA
    return {k: tuple(v) for k, v in value.items()}


_EMPTY_EXTRA: Final[Mapping[str, tuple[str, ...]]] = {}


def _str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    # A typed converter: mypy's attrs plugin cannot type the init argument of converter=tuple.
    return tuple(value)


@attrs.frozen
class UserInfo:
    """Who a credential belongs to (``user.Info`` in Kubernetes).

    ``groups`` keeps order and duplicates; ``extra`` maps a key to an ordered tuple of values.
    """

    name: str
    uid: str = ""
    groups: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    extra: Mapping[str, tuple[str, ...]] = attrs.field(
        default=_EMPTY_EXTRA, converter=_freeze_extra, hash=False
    )

    def to_dict(self) -> dict[str, object]:
        """The ``userInfo`` / ``status.user`` JSON shape; empty fields omitted (``omitempty``)."""
        out: dict[str, object] = {"username": self.name} if self.name else {}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


@attrs.frozen
class Response:
    """An accepted credential: the user and the audiences it was validated for.

    ``expires_at`` (seconds since the epoch) is set by authenticators whose credential carries its
    own expiry (a JWT's ``exp``): the token cache never serves the response past it. Kubernetes'
    cache is not expiry-aware; ours is (see docs/parity.md).
    """

    user: UserInfo
    audiences: tuple[str, ...] = ()
    expires_at: float | None = None


class Context:
    """Per-request inputs of a flow: the time and the target audiences.

    ``audiences is None`` means the request carries no audience context at all, which differs
    from an empty tuple only for the audience-agnostic wrapper (spec §2.1). ``warnings`` collects
    the response warnings an authenticator records (e.g. the bearer extra-space warning).

    Treat it as immutable: flows read ``now`` and ``audiences`` and only ever append to
    ``warnings``. It is a plain slotted class rather than a frozen attrs class because one is
    built per request and the cached-token budget cannot afford the ~0.4 us a frozen ``__init__``
    costs (docs/performance.md).
    """

    __slots__ = ("audiences", "now", "warnings")

    def __init__(
        self,
        now: float,
        audiences: tuple[str, ...] | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        self.now = now
        self.audiences = audiences
        self.warnings: list[str] = [] if warnings is None else warnings

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Context):
            return NotImplemented
        return self.now == other.now and self.audiences == other.audiences

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Context(now={self.now!r}, audiences={self.audiences!r})"


class Headers(Mapping[str, tuple[str, ...]]):
    """Immutable, case-insensitive, multi-valued HTTP headers in arrival order.

    Keys are lower-cased names; a value is the tuple of every value sent under that name, so
    ``headers.first("authorization")`` is Go's ``Header.Get``.
    """

    __slots__ = ("_map", "_pairs")

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        grouped: dict[str, list[str]] = {}
        kept: list[tuple[str, str]] = []
        for name, value in pairs:
            lname = name.lower()
            kept.append((lname, value))
            grouped.setdefault(lname, []).append(value)
        self._pairs: tuple[tuple[str, str], ...] = tuple(kept)
        self._map: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in grouped.items()}

    @classmethod
    def from_raw(cls, raw: Iterable[tuple[bytes, bytes]]) -> Headers:
        """From ASGI/h11 byte pairs; names and values are decoded as latin-1, as HTTP/1.1 is."""
        return cls((n.decode("latin-1"), v.decode("latin-1")) for n, v in raw)

    def __getitem__(self, name: str) -> tuple[str, ...]:
        return self._map[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    # The Mapping mixins go through __getitem__ (and an ABC view) per item; the dict's own
    # methods are several times faster, and every header reader uses them (P8).
    def __contains__(self, name: object) -> bool:
        m = self._map
        return name in m or name.lower() in m  # type: ignore[attr-defined]

    @overload
    def get(self, name: str, /) -> tuple[str, ...] | None: ...
    @overload
    def get(self, name: str, /, default: tuple[str, ...] | _T) -> tuple[str, ...] | _T: ...
    def get(self, name: str, /, default: object = None) -> object:
        """The values sent under ``name`` (case-insensitive), or ``default``."""
        return self._map.get(name.lower(), default)

    def keys(self) -> KeysView[str]:
        return self._map.keys()

    def values(self) -> ValuesView[tuple[str, ...]]:
        return self._map.values()

    def items(self) -> ItemsView[str, tuple[str, ...]]:
        return self._map.items()

    def first(self, name: str) -> str | None:
        """The first value sent under ``name`` (case-insensitive), or None."""
        # Keys are lower-case: a name given in lower case (the usual call) needs no lower().
        values = self._map.get(name) or self._map.get(name.lower())
        return values[0] if values else None

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """Every (lower-cased name, value) pair, in arrival order."""
        return self._pairs

    def without(self, names: Iterable[str], prefixes: Iterable[str] = ()) -> Headers:
        """A copy without the named headers and those starting with a prefix (case-insensitive)."""
        drop = {n.lower() for n in names}
        pre = tuple(p.lower() for p in prefixes)
        return Headers(
            (n, v) for n, v in self._pairs if n not in drop and not (pre and n.startswith(pre))
        )

    def __repr__(self) -> str:
        # Header values may hold credentials: show names only.
        return f"Headers({sorted(self._map)!r})"


_NO_HEADERS: Final = Headers()


@attrs.frozen
class RequestView:
    """What an adapter extracts from an HTTP request for the request authenticators.

    ``peer_chain`` is the DER of each certificate the TLS client presented, leaf first, exactly
    as the TLS layer handed it over (not verified yet). ``path`` is the decoded URL path (Go's
    ``URL.Path``), which anonymous path conditions compare against.
    """

    headers: Headers = _NO_HEADERS
    peer_chain: tuple[bytes, ...] = ()
    path: str = "/"
