"""Property tests: stripping deletes exactly the credential headers, in the ASGI and WSGI forms."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from k8sauthn.middleware._common import FilterPolicy
from k8sauthn.middleware.asgi import ScopeAuthenticator
from k8sauthn.middleware.wsgi import EnvironAuthenticator

from ._support import FakeChain

CHAIN = FakeChain(strip_headers=("X-Proxy-User",), strip_prefixes=("X-Proxy-Extra-",))
ASGI = ScopeAuthenticator(chain=CHAIN)
WSGI = EnvironAuthenticator(chain=CHAIN)
POLICY = FilterPolicy.from_chain(CHAIN)

_names = st.one_of(
    st.sampled_from(
        [
            "Authorization",
            "authorization",
            "X-Remote-User",
            "x-remote-uid",
            "X-REMOTE-GROUP",
            "X-Remote-Group-1",
            "X-Remote-Extra-",
            "x-remote-extra-scopes",
            "X-Proxy-User",
            "X-Proxy-Extra-a%2Fb",
            "X-Remote-Users",
            "Host",
            "Accept",
        ]
    ),
    st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}", fullmatch=True),
)
_values = st.from_regex(r"[ -~]{0,20}", fullmatch=True)
_headers = st.lists(st.tuples(_names, _values), max_size=12)


@settings(max_examples=60, deadline=None)
@given(_headers)
def test_asgi_strips_exactly_the_credentials(headers: list[tuple[str, str]]) -> None:
    """Every credential header goes, every other header stays, in order (spec §10.4)."""
    raw = [(n.lower().encode(), v.encode()) for n, v in headers]
    kept = ASGI._stripped(raw)
    expected = [(n, v) for n, v in raw if not POLICY.strips(n.decode())]
    assert kept == expected


@settings(max_examples=60, deadline=None)
@given(_headers)
def test_wsgi_strips_exactly_the_credentials(headers: list[tuple[str, str]]) -> None:
    """The environ form drops the same headers (WSGI spells '-' as '_')."""
    environ = {"HTTP_" + n.upper().replace("-", "_"): v for n, v in headers}
    environ["PATH_INFO"] = "/"
    WSGI._strip(environ)
    for name, _ in headers:
        key = "HTTP_" + name.upper().replace("-", "_")
        assert (key in environ) == (not POLICY.strips(name.lower()))
    assert environ["PATH_INFO"] == "/"
