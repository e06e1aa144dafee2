"""Bootstrap-token authentication: format, the §11.2 checks in order, result (spec §11)."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8sauthn import BackendUnavailable, Context, Response, UserInfo, pure, run_pure
from k8sauthn.token.bootstrap import (
    SECRET_TYPE,
    BootstrapSecret,
    BootstrapTokenAuthenticator,
    parse_rfc3339,
)
from k8sauthn.token.bootstrap_sources import MappingSecretSource

ID, SECRET = "abcdef", "0123456789abcdef"
TOKEN = f"{ID}.{SECRET}"
NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
CTX = Context(now=NOW)


def authn(*secrets: BootstrapSecret) -> BootstrapTokenAuthenticator:
    return BootstrapTokenAuthenticator(MappingSecretSource.of(*secrets))


def check(secret: BootstrapSecret | None, token: str = TOKEN, now: float = NOW) -> Response | None:
    auth = authn(secret) if secret is not None else authn()
    return run_pure(auth.token_flow(token, Context(now=now)))


def with_data(**changes: bytes | None) -> BootstrapSecret:
    base = BootstrapSecret.for_token(ID, SECRET)
    data = dict(base.data or {})
    for key, value in changes.items():
        key = key.replace("_", "-")
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return attrs.evolve(base, data=data)


def test_valid_token() -> None:
    """A valid token is user system:bootstrap:<id> in system:bootstrappers, no uid or extra."""
    assert check(BootstrapSecret.for_token(ID, SECRET)) == Response(
        UserInfo("system:bootstrap:abcdef", "", ("system:bootstrappers",))
    )


@pytest.mark.parametrize(
    "token",
    [
        "abcdef.0123456789abcde",
        "abcdef.0123456789abcdef0",
        "ABCDEF.0123456789abcdef",
        "abcdef:0123456789abcdef",
        " abcdef.0123456789abcdef",
        "abcdef.0123456789abcdef\n",
        "abcdéf.0123456789abcdef",
        "",
    ],
)
def test_malformed_tokens_are_no_opinion(token: str) -> None:
    """Anything but [a-z0-9]{6}.[a-z0-9]{16} is no opinion without a lookup."""

    class Exploding:
        def secret_flow(self, name: str, ctx: Context, /):  # type: ignore[no-untyped-def]
            raise AssertionError("looked up")

    auth = BootstrapTokenAuthenticator(Exploding())
    assert run_pure(auth.token_flow(token, CTX)) is None


def test_secret_name_looked_up() -> None:
    """The Secret looked up is bootstrap-token-<id>."""
    asked: list[str] = []

    class Recording:
        def secret_flow(self, name: str, ctx: Context, /):  # type: ignore[no-untyped-def]
            asked.append(name)
            return pure(None)

    assert run_pure(BootstrapTokenAuthenticator(Recording()).token_flow(TOKEN, CTX)) is None
    assert asked == ["bootstrap-token-abcdef"]


def test_lister_error_is_an_error() -> None:
    """A lookup failure other than not-found is passed through as an error."""

    class Failing:
        def secret_flow(self, name: str, ctx: Context, /):  # type: ignore[no-untyped-def]
            raise BackendUnavailable("secrets are down")

    with pytest.raises(BackendUnavailable, match="secrets are down"):
        run_pure(BootstrapTokenAuthenticator(Failing()).token_flow(TOKEN, CTX))


class TestChecks:
    def test_not_found(self) -> None:
        """No Secret is no opinion."""
        assert check(None) is None

    def test_deleting(self) -> None:
        """A Secret being deleted is no opinion."""
        assert check(attrs.evolve(BootstrapSecret.for_token(ID, SECRET), deleting=True)) is None

    @pytest.mark.parametrize("secret_type", ["Opaque", "", SECRET_TYPE.upper()])
    def test_wrong_type(self, secret_type: str) -> None:
        """Only type bootstrap.kubernetes.io/token counts."""
        assert check(attrs.evolve(BootstrapSecret.for_token(ID, SECRET), type=secret_type)) is None

    def test_no_data(self) -> None:
        """A Secret without data is no opinion."""
        assert check(attrs.evolve(BootstrapSecret.for_token(ID, SECRET), data=None)) is None

    def test_wrong_secret(self) -> None:
        """A different token-secret is no opinion (and the secret is never in the result)."""
        assert check(with_data(token_secret=b"ffffffffffffffff")) is None
        assert check(with_data(token_secret=None)) is None

    def test_wrong_token_id(self) -> None:
        """data.token-id must equal the presented id."""
        assert check(with_data(token_id=b"zzzzzz")) is None
        assert check(with_data(token_id=None)) is None

    @pytest.mark.parametrize(
        ("expiration", "valid"),
        [
            (b"2027-01-15T08:00:01Z", True),
            (b"2027-01-15T08:00:00Z", False),
            (b"2027-01-15T07:59:59Z", False),
            (b"2027-01-15T08:00:00.5Z", True),
            (b"2027-01-15T09:00:01+01:00", True),
            (b"2027-01-15T07:00:00-01:00", False),
            (b"2027-01-15 08:00:01Z", False),
            (b"2027-01-15T08:00:01", False),
            (b"tomorrow", False),
            (b"", True),
        ],
    )
    def test_expiration(self, expiration: bytes, valid: bool) -> None:
        """Expiration is RFC 3339 against the context's clock; unparseable means expired."""
        resp = check(with_data(expiration=expiration))
        assert (resp is not None) is valid

    def test_year_zero_expiration_is_expired_not_a_crash(self) -> None:
        """Go parses the year 0000 (long expired); Python's datetime would raise instead."""
        assert check(with_data(expiration=b"0000-01-01T00:00:00Z")) is None

    def test_expiry_is_carried_to_the_cache(self) -> None:
        """An accepted token with an expiration tells the cache when it stops being valid."""
        resp = check(with_data(expiration=b"2027-01-15T09:00:00Z"))
        assert resp is not None
        assert resp.expires_at == NOW + 3600

    @pytest.mark.parametrize("usage", [None, b"false", b"True", b"TRUE", b"true "])
    def test_usage_must_be_exactly_true(self, usage: bytes | None) -> None:
        """usage-bootstrap-authentication must be exactly 'true'."""
        assert check(with_data(usage_bootstrap_authentication=usage)) is None

    def test_extra_groups_deduplicated_and_sorted(self) -> None:
        """Valid extra groups are added, de-duplicated and sorted."""
        groups = (
            b"system:bootstrappers:z,system:bootstrappers:kubeadm:default-node-token,"
            b"system:bootstrappers:z"
        )
        resp = check(with_data(auth_extra_groups=groups))
        assert resp is not None
        assert resp.user.groups == (
            "system:bootstrappers",
            "system:bootstrappers:kubeadm:default-node-token",
            "system:bootstrappers:z",
        )

    @pytest.mark.parametrize(
        "groups",
        [
            b"system:bootstrappers",
            b"system:bootstrappers:",
            b"system:bootstrappers:a,",
            b"system:bootstrappers:a, system:bootstrappers:b",
            b"system:bootstrappers:Upper",
            b"system:bootstrappers:a-",
            b"system:masters",
            b"system:bootstrappers:" + b"a" * 257,
            b"\xff",
        ],
    )
    def test_invalid_extra_group_is_no_opinion(self, groups: bytes) -> None:
        """Any invalid piece (no trimming) makes the whole token no opinion."""
        assert check(with_data(auth_extra_groups=groups)) is None

    def test_longest_valid_group(self) -> None:
        """256 characters after the prefix is the longest valid group."""
        group = b"system:bootstrappers:" + b"a" * 256
        assert check(with_data(auth_extra_groups=group)) is not None

    def test_empty_extra_groups_ignored(self) -> None:
        """An empty auth-extra-groups adds nothing."""
        resp = check(with_data(auth_extra_groups=b""))
        assert resp is not None
        assert resp.user.groups == ("system:bootstrappers",)


def test_secret_never_in_repr() -> None:
    """The token secret is not shown by the Secret or the source."""
    secret = BootstrapSecret.for_token(ID, SECRET)
    assert SECRET not in repr(secret)
    assert SECRET not in repr(MappingSecretSource.of(secret))


class TestRFC3339:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("1970-01-01T00:00:00Z", 0.0),
            ("1970-01-01T01:00:00+01:00", 0.0),
            ("1970-01-01T00:00:00.25Z", 0.25),
            ("1970-01-01T00:00:00,5Z", 0.5),
            ("2024-02-29T00:00:00Z", 1709164800.0),
            # Go's layout parser (time.Parse's fallback) is laxer than RFC 3339:
            ("1970-01-02T1:00:00Z", 90000.0),  # a one-digit hour
            ("1970-01-02T00:00:00+24:00", 0.0),  # offsets up to 24 hours ...
            ("1970-01-01T01:00:00+00:60", 0.0),  # ... and 60 minutes
            ("0000-01-01T00:00:00Z", -62167219200.0),  # year 0 (datetime refuses it)
            ("0000-03-01T00:00:00Z", -62167219200.0 + 60 * 86400),  # year 0 is a leap year
        ],
    )
    def test_valid(self, text: str, expected: float) -> None:
        """Zones and fractional seconds are honoured, with Go's leniencies."""
        assert parse_rfc3339(text) == expected

    @pytest.mark.parametrize(
        "text",
        [
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:60:00Z",
            "2024-01-01T00:00:60Z",
            "2024-01-01T00:00:00+25:00",
            "2024-01-01T00:00:00+01:61",
            "2024-01-01T100:00:00Z",
            "2024-01-01t00:00:00Z",
            "2024-01-01T00:00:00z",
            "2024-1-01T00:00:00Z",
        ],
    )
    def test_invalid(self, text: str) -> None:
        """Out-of-range fields and non-RFC 3339 shapes do not parse."""
        assert parse_rfc3339(text) is None


@given(
    when=st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(9998, 12, 31)),
    offset_minutes=st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
    micros=st.integers(min_value=0, max_value=999_999),
)
def test_rfc3339_agrees_with_datetime(when: dt.datetime, offset_minutes: int, micros: int) -> None:
    """Any RFC 3339 timestamp parses to the instant Python's datetime computes."""
    zone = dt.timezone(dt.timedelta(minutes=offset_minutes))
    stamp = when.replace(microsecond=micros, tzinfo=zone)
    text = stamp.isoformat(timespec="microseconds")
    if offset_minutes == 0:
        text = text.replace("+00:00", "Z")
    parsed = parse_rfc3339(text)
    assert parsed is not None
    assert parsed == pytest.approx(stamp.timestamp(), abs=1e-6)


class TestMemo:
    def test_repeated_token_shares_one_response(self) -> None:
        """The same valid Secret answers with the same (immutable) Response every time."""
        secret = with_data(
            expiration=b"2027-01-16T00:00:00Z", auth_extra_groups=b"system:bootstrappers:w"
        )
        first, second = check(secret), check(secret)
        assert first is second
        assert first is not None
        assert first.user.groups == (
            "system:bootstrappers",
            "system:bootstrappers:w",
        )

    def test_expiry_still_checked_per_request(self) -> None:
        """A memoised expiry does not keep an expired token valid."""
        secret = with_data(expiration=b"2027-01-16T00:00:00Z")
        assert check(secret) is not None
        assert check(secret, now=NOW + 2 * 86400) is None

    def test_changed_data_in_place_is_seen(self) -> None:
        """The memo is keyed by values: a Secret whose data mapping changes answers anew."""
        data = dict(with_data().data or {})
        secret = attrs.evolve(with_data(), data=data)
        assert check(secret) is not None
        data["auth-extra-groups"] = b"not-a-bootstrapper-group"
        assert check(secret) is None
        data["auth-extra-groups"] = b"system:bootstrappers:x"
        resp = check(secret)
        assert resp is not None
        assert "system:bootstrappers:x" in resp.user.groups
        data["token-secret"] = b"ffffffffffffffff"
        assert check(secret) is None
