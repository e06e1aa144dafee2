"""The adapters' lazily decoded headers answer exactly as ``Headers`` would."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from k8sauthn import Headers
from k8sauthn.middleware.asgi import _ScopeHeaders
from k8sauthn.middleware.wsgi import _EnvironHeaders, environ_headers

_names = st.one_of(
    st.sampled_from(
        ["Authorization", "authorization", "AUTHORIZATION", "Upgrade", "x-remote-user"]
    ),
    st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,12}", fullmatch=True),
)
_values = st.from_regex(r"[ -~\x80-\xff]{0,12}", fullmatch=True)
_pairs = st.lists(st.tuples(_names, _values), max_size=8)
_asked = [
    "authorization",
    "Authorization",
    "upgrade",
    "x-remote-user",
    "x_remote_user",
    "\u212a",
    "caf\u00e9",
]


@settings(max_examples=80, deadline=None)
@given(_pairs)
def test_scope_headers_match_headers(pairs: list[tuple[str, str]]) -> None:
    """first(), lookups, iteration and pairs equal Headers.from_raw on the same bytes."""
    raw = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in pairs]
    lazy, full = _ScopeHeaders(raw), Headers.from_raw(raw)
    for name in [*_asked, *(n for n, _ in pairs)]:
        assert lazy.first(name) == full.first(name)
    assert dict(lazy) == dict(full)
    assert lazy.pairs() == full.pairs()
    assert lazy.get("authorization") == full.get("authorization")


@settings(max_examples=80, deadline=None)
@given(_pairs)
def test_environ_headers_match_headers(pairs: list[tuple[str, str]]) -> None:
    """The environ view answers first() like the fully built environ_headers map."""
    environ: dict[str, Any] = {"HTTP_" + n.upper().replace("-", "_"): v for n, v in pairs}
    environ.update(CONTENT_TYPE="text/plain", PATH_INFO="/", **{"wsgi.input": object()})
    lazy, full = _EnvironHeaders(environ), environ_headers(environ)
    for name in [*_asked, "content-type", "Content-Length", *(n for n, _ in pairs)]:
        assert lazy.first(name) == full.first(name)
    assert dict(lazy) == dict(full)


def test_lazy_headers_hide_values_in_repr() -> None:
    """The lazy forms keep Headers' repr: names only, never a credential."""
    raw = [(b"authorization", b"Bearer s3cret")]
    assert "s3cret" not in repr(_ScopeHeaders(raw))
    assert "s3cret" not in repr(_EnvironHeaders({"HTTP_AUTHORIZATION": "Bearer s3cret"}))
    assert "authorization" in repr(_ScopeHeaders(raw))


def test_unknown_attributes_still_raise() -> None:
    """Only the two lazily built slots are synthesised; anything else is an AttributeError."""
    lazy = _ScopeHeaders([])
    assert not hasattr(lazy, "nope")
    assert not hasattr(_EnvironHeaders({}), "nope")
