"""Go's ``net/url.Parse`` and ``%q``, as far as issuer-URL validation can tell them apart.

kube-apiserver reports a URL that Go cannot parse with Go's own error text (spec §13.3, e.g.
``parse "https://x:bad": invalid port ":bad" after host``) and then looks at the parsed scheme,
userinfo, raw query and fragment. ``urllib.parse`` accepts and splits differently, so the few
rules that matter are written out here, following ``net/url/url.go``.
"""

from __future__ import annotations

import re
from typing import Final

import attrs

__all__ = ["GoURL", "go_quote", "parse_url", "redacted"]

_SIMPLE_ESCAPES: Final = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote``: double quotes, Go escapes, non-printable runes as \\x/\\u/\\U."""
    out = ['"']
    for ch in text:
        if ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


@attrs.frozen
class GoURL:
    """The parts of a parsed URL that validation looks at."""

    scheme: str
    has_user: bool
    host: str
    raw_query: str
    fragment: str


class _URLError(ValueError):
    pass


_HOST_OK: Final = frozenset("-_.~!$&'()*+,;=:[]<>\"")
_PORT: Final = re.compile(r"(?::[0-9]*)?")
_USERINFO_OK: Final = frozenset("-._:~!$&'()*+,;=%@")


def _unescape(s: str, *, host: bool) -> None:
    i = 0
    while i < len(s):
        c = s[i]
        if c == "%":
            hexpart = s[i + 1 : i + 3]
            if len(hexpart) < 2 or not all(h in "0123456789abcdefABCDEF" for h in hexpart):
                raise _URLError(f"invalid URL escape {go_quote(s[i : i + 3])}")
            i += 3
            continue
        if host and ord(c) < 0x80 and not (c.isalnum() or c in _HOST_OK):
            raise _URLError(f"invalid character {go_quote(c)} in host name")
        i += 1


def _scheme(raw: str) -> tuple[str, str]:
    for i, c in enumerate(raw):
        if c.isascii() and c.isalpha():
            continue
        if c.isascii() and (c.isdigit() or c in "+-."):
            if i == 0:
                return "", raw
            continue
        if c == ":":
            if i == 0:
                raise _URLError("missing protocol scheme")
            return raw[:i], raw[i + 1 :]
        return "", raw
    return "", raw


def _host(authority: str) -> str:
    if authority.startswith("["):
        end = authority.rfind("]")
        if end < 0:
            raise _URLError("missing ']' in host")
        port = authority[end + 1 :]
    else:
        colon = authority.rfind(":")
        port = authority[colon:] if colon >= 0 else ""
    if not _PORT.fullmatch(port):
        raise _URLError(f"invalid port {go_quote(port)} after host")
    _unescape(authority, host=True)
    return authority


def _parse(raw: str) -> GoURL:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise _URLError("net/url: invalid control character in URL")
    scheme, rest = _scheme(raw)
    scheme = scheme.lower()
    if rest.endswith("?") and rest.count("?") == 1:
        rest, query = rest[:-1], ""
    else:
        rest, _, query = rest.partition("?")
    if not rest.startswith("/"):
        if scheme:
            return GoURL(scheme, False, "", query, "")  # opaque: "https:foo"
        if ":" in rest.partition("/")[0]:
            raise _URLError("first path segment in URL cannot contain colon")
    has_user, host = False, ""
    if (scheme or not rest.startswith("///")) and rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        rest = slash + path
        at = authority.rfind("@")
        host = _host(authority[at + 1 :])
        if at >= 0:
            userinfo = authority[:at]
            if not all(c.isalnum() or c in _USERINFO_OK for c in userinfo if c.isascii()):
                raise _URLError("net/url: invalid userinfo")
            _unescape(userinfo, host=False)
            has_user = True
    _unescape(rest, host=False)
    return GoURL(scheme, has_user, host, query, "")


def parse_url(raw: str) -> GoURL:
    """Parse like Go's ``url.Parse``; ValueError carries Go's text (``parse "<url>": ...``)."""
    base, hash_, frag = raw.partition("#")
    try:
        parsed = _parse(base)
    except _URLError as exc:
        raise ValueError(f"parse {go_quote(base)}: {exc}") from None
    if hash_:
        try:
            _unescape(frag, host=False)
        except _URLError as exc:
            raise ValueError(f"parse {go_quote(raw)}: {exc}") from None
    return attrs.evolve(parsed, fragment=frag)


def redacted(raw: str) -> str:
    """``raw`` with the password of its userinfo replaced by ``xxxxx`` (Go's ``URL.Redacted``).

    Kubernetes echoes a rejected URL verbatim; we never put a password in an error message.
    """
    scheme_end = raw.find("://")
    if scheme_end < 0:
        return raw
    start = scheme_end + 3
    end = len(raw)
    for stop in "/?#":
        at = raw.find(stop, start)
        if at >= 0:
            end = min(end, at)
    authority = raw[start:end]
    at = authority.rfind("@")
    if at < 0 or ":" not in authority[:at]:
        return raw
    user = authority[: authority.index(":")]
    return f"{raw[:start]}{user}:xxxxx@{authority[at + 1 :]}{raw[end:]}"
