"""Bootstrap tokens: ``<id>.<secret>`` checked against ``kube-system`` Secrets (spec §11).

The authenticator asks a :class:`SecretSource` for ``bootstrap-token-<id>`` and applies the
checks of §11.2 in Kubernetes' order. Every failed check is *no opinion*; only a failure of the
source itself (the lister) is an error. The token secret is compared in constant time and never
appears in a log line, a repr or an exception (Kubernetes logs it on some paths; we do not).

Sources live in :mod:`k8sauthn.token.bootstrap_sources`: an in-memory mapping, a directory of
Secret manifests (``--bootstrap-token-dir``), and a live cluster through the Kubernetes API.
"""

from __future__ import annotations

import calendar
import functools
import hmac
import re
from collections.abc import Iterable, Mapping
from typing import Final, Protocol, runtime_checkable

import attrs

from .._flow import Flow
from .._types import BOOTSTRAP_GROUP, BOOTSTRAP_USER_PREFIX, Context, Response, UserInfo

__all__ = [
    "SECRET_NAME_PREFIX",
    "SECRET_TYPE",
    "BootstrapSecret",
    "BootstrapTokenAuthenticator",
    "SecretSource",
    "parse_rfc3339",
]

SECRET_TYPE: Final = "bootstrap.kubernetes.io/token"
SECRET_NAME_PREFIX: Final = "bootstrap-token-"
_TOKEN: Final = re.compile(r"[a-z0-9]{6}\.[a-z0-9]{16}")
_GROUP: Final = re.compile(r"system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]")
# RFC 3339 as Go's time.Parse(time.RFC3339, ...) reads it. When its strict fast path fails Go
# falls back to the layout parser, which is laxer: a one-digit hour, a comma before the
# fractional seconds, zone offsets up to 24:60 ("some people do write offsets of 24 hours").
# Upper-case "T" and "Z" only; years 0000-9999.
_RFC3339: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{1,2}):(\d{2}):(\d{2})(?:[.,](\d+))?(Z|[+-]\d{2}:\d{2})",
    re.ASCII,
)


@attrs.frozen
class BootstrapSecret:
    """What the authenticator reads of a Secret: name, type, data, deletion mark.

    ``data is None`` means the Secret has no ``data`` field at all (a no-opinion case, §11.2
    step 3), which differs from an empty mapping. Values are secret: never shown.
    """

    name: str
    type: str = ""
    data: Mapping[str, bytes] | None = attrs.field(default=None, repr=False)
    deleting: bool = False

    @classmethod
    def for_token(
        cls,
        token_id: str,
        token_secret: str,
        *,
        expiration: str = "",
        extra_groups: Iterable[str] = (),
        usage_authentication: bool = True,
    ) -> BootstrapSecret:
        """A well-formed bootstrap Secret, as ``kubeadm token create`` writes it."""
        data = {"token-id": token_id.encode(), "token-secret": token_secret.encode()}
        if usage_authentication:
            data["usage-bootstrap-authentication"] = b"true"
        if expiration:
            data["expiration"] = expiration.encode()
        groups = ",".join(extra_groups)
        if groups:
            data["auth-extra-groups"] = groups.encode()
        return cls(SECRET_NAME_PREFIX + token_id, SECRET_TYPE, data)


@runtime_checkable
class SecretSource(Protocol):
    """Finds a ``kube-system`` Secret by name: the Secret, ``None`` when absent, or raise.

    Raising (e.g. :class:`~k8sauthn.exceptions.BackendUnavailable`) is the lister error of
    §11.2 step 1 and makes the authenticator fail with that error.
    """

    def secret_flow(self, name: str, ctx: Context, /) -> Flow[BootstrapSecret | None]: ...


def parse_rfc3339(text: str) -> float | None:
    """Seconds since the epoch for an RFC 3339 timestamp, or ``None`` when it does not parse."""
    m = _RFC3339.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction, zone = m.group(7), m.group(8)
    if not (1 <= month <= 12 and 1 <= day <= _days_in(year, month)):
        return None
    if hour > 23 or minute > 59 or second > 59:
        return None
    offset = 0
    if zone != "Z":
        zh, zm = int(zone[1:3]), int(zone[4:6])
        if zh > 24 or zm > 60:
            return None
        offset = (zh * 3600 + zm * 60) * (1 if zone[0] == "+" else -1)
    # Plain arithmetic, not calendar.timegm: Go accepts the year 0000, which datetime refuses.
    days = _days_from_civil(year, month, day)
    seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset
    return seconds + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)


def _days_in(year: int, month: int) -> int:
    if month == 2:
        return 29 if calendar.isleap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar (any year, 0 included)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


# Memoised by value (bytes and strings, immutable), not by Secret identity: a Secret's data is
# a Mapping that could be changed in place, its values cannot. The same few Secrets answer
# every request, so parsing and building the user each time was ~45% of the path (P4).
@functools.lru_cache(maxsize=256)
def _groups(extra: bytes | None) -> tuple[str, ...] | None:
    """``system:bootstrappers`` plus valid extra groups, de-duplicated and sorted (§11.2 step 8)."""
    groups = {BOOTSTRAP_GROUP}
    if extra:
        try:
            pieces = extra.decode("utf-8").split(",")  # no trimming, as Kubernetes
        except UnicodeDecodeError:
            return None
        for piece in pieces:
            if _GROUP.fullmatch(piece) is None:
                return None
            groups.add(piece)
    return tuple(sorted(groups))


@attrs.frozen
class BootstrapTokenAuthenticator:
    """``--enable-bootstrap-token-auth``: ``system:bootstrap:<id>`` for a valid bootstrap token.

    kube-apiserver wraps it in the audience-agnostic wrapper; the chain builder does that.
    """

    source: SecretSource

    def token_flow(self, token: str, ctx: Context, /) -> Flow[Response | None]:
        if _TOKEN.fullmatch(token) is None:
            return None
        token_id, token_secret = token[:6], token[7:]
        secret = yield from self.source.secret_flow(SECRET_NAME_PREFIX + token_id, ctx)
        return check_secret(secret, token_id, token_secret, ctx.now)


def check_secret(
    secret: BootstrapSecret | None, token_id: str, token_secret: str, now: float
) -> Response | None:
    """The checks of §11.2 steps 2-8, in order, on a Secret already looked up."""
    if secret is None or secret.deleting:
        return None
    data = secret.data
    if secret.type != SECRET_TYPE or data is None:
        return None
    if not hmac.compare_digest(data.get("token-secret", b""), token_secret.encode()):
        return None
    if data.get("token-id", b"") != token_id.encode():
        return None
    expiration = data.get("expiration", b"")
    expires_at: float | None = None
    if expiration:
        expires_at = _expiry(expiration)
        if expires_at is None or expires_at - now <= 0:  # unparseable counts as expired
            return None
    if data.get("usage-bootstrap-authentication", b"") != b"true":
        return None
    groups = _groups(data.get("auth-extra-groups"))
    if groups is None:
        return None
    return _response(token_id, groups, expires_at)


@functools.lru_cache(maxsize=256)
def _expiry(expiration: bytes) -> float | None:
    return parse_rfc3339(expiration.decode("utf-8", "replace"))


@functools.lru_cache(maxsize=256)
def _response(token_id: str, groups: tuple[str, ...], expires_at: float | None) -> Response:
    """The (immutable) answer for a valid token; shared by the requests that present it."""
    # expires_at lets the token cache drop the entry when the token expires (docs/parity.md).
    user = UserInfo(name=BOOTSTRAP_USER_PREFIX + token_id, groups=groups)
    return Response(user, expires_at=expires_at)
