"""A client certificate forwarded by a TLS-terminating proxy, believed only from that proxy.

nginx sends ``$ssl_client_escaped_cert`` (URL-escaped PEM of the leaf) in a header of your
choice; Envoy sends ``x-forwarded-client-cert`` (``Hash=...;Cert="<escaped PEM>";Chain=...``).
Anyone can send such a header, so it is read only when the TCP peer is one of the declared
proxy addresses; from any other peer it is ignored (no certificate). The proxy must also
overwrite the header on every request (nginx ``proxy_set_header``; Envoy
``forward_client_cert_details: SANITIZE_SET``) so a client cannot smuggle one through it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal
from urllib.parse import unquote_to_bytes

import attrs

from .._types import Headers
from ..exceptions import AuthenticationError, ConfigError
from ._convert import der_from_pem_texts

__all__ = ["TrustedProxyCertificate", "parse_xfcc"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_XFCC: Final = "x-forwarded-client-cert"


def _networks(values: Iterable[str]) -> tuple[_Network, ...]:
    out: list[_Network] = []
    for v in values:
        try:
            out.append(ipaddress.ip_network(v.strip(), strict=False))
        except ValueError:
            raise ConfigError(f"trusted proxy {v!r} is not an IP address or network") from None
    if not out:
        raise ConfigError("a forwarded client certificate needs at least one trusted proxy")
    return tuple(out)


def _lower(value: str) -> str:
    return value.lower()


def parse_xfcc(value: str) -> list[dict[str, str]]:
    """Envoy's ``x-forwarded-client-cert``: one dict (lower-cased keys) per comma element."""
    elements: list[dict[str, str]] = []
    pairs: dict[str, str] = {}
    i, n = 0, len(value)
    while i < n:
        eq = value.find("=", i)
        if eq < 0:
            raise AuthenticationError("malformed x-forwarded-client-cert header")
        key = value[i:eq].strip().lower()
        i = eq + 1
        if i < n and value[i] == '"':
            i += 1
            buf: list[str] = []
            while i < n and value[i] != '"':
                if value[i] == "\\" and i + 1 < n:
                    i += 1
                buf.append(value[i])
                i += 1
            if i >= n:
                raise AuthenticationError("malformed x-forwarded-client-cert header")
            text = "".join(buf)
            i += 1
        else:
            end = min((j for j in (value.find(";", i), value.find(",", i)) if j >= 0), default=n)
            text, i = value[i:end], end
        pairs.setdefault(key, text)
        while i < n and value[i] == " ":
            i += 1
        if i < n:
            if value[i] == ",":
                elements.append(pairs)
                pairs = {}
            i += 1
    elements.append(pairs)
    return elements


@attrs.frozen
class TrustedProxyCertificate:
    """Reads a proxy-forwarded client certificate; use :meth:`nginx` or :meth:`envoy`.

    Call it with an ASGI scope (it is a ``peer_chain`` reader for the middleware), or use
    :meth:`from_environ` under WSGI.
    """

    header: str = attrs.field(converter=_lower)
    format: Literal["nginx", "envoy"]
    trusted_proxies: tuple[_Network, ...] = attrs.field(converter=_networks)

    @classmethod
    def nginx(
        cls, *, trusted_proxies: Iterable[str], header: str = "ssl-client-cert"
    ) -> TrustedProxyCertificate:
        """``proxy_set_header <header> $ssl_client_escaped_cert;`` from these addresses."""
        return cls(header, "nginx", tuple(trusted_proxies))

    @classmethod
    def envoy(
        cls, *, trusted_proxies: Iterable[str], header: str = _XFCC
    ) -> TrustedProxyCertificate:
        """Envoy's ``x-forwarded-client-cert`` (set with ``SANITIZE_SET``) from these addresses."""
        return cls(header, "envoy", tuple(trusted_proxies))

    def trusts(self, peer: str | None) -> bool:
        """Whether ``peer`` (an IP address) is a declared proxy."""
        if not peer:
            return False
        try:
            addr: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
                peer.split("%", 1)[0]
            )
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped  # a dual-stack socket reports 127.0.0.1 as ::ffff:127.0.0.1
        return any(addr in net for net in self.trusted_proxies)

    def from_headers(self, peer: str | None, headers: Headers) -> tuple[bytes, ...]:
        """The forwarded chain (DER, leaf first) if ``peer`` is trusted, else ``()``."""
        if not self.trusts(peer):
            return ()
        return self._from_values(headers.get(self.header, ()))

    def _from_values(self, values: tuple[str, ...]) -> tuple[bytes, ...]:
        if not values or not any(v.strip() for v in values):
            return ()
        if len(values) != 1:
            raise AuthenticationError(f"{len(values)} {self.header} headers from the proxy")
        return self._decode(values[0])

    def __call__(self, scope: Mapping[str, Any]) -> tuple[bytes, ...]:
        client = scope.get("client")
        if not self.trusts(client[0] if client else None):
            return ()
        # Only our one header matters: scan the raw pairs instead of building a Headers map
        # of the whole request (the middleware builds its own).
        name = self.header.encode("latin-1")
        raw = scope.get("headers") or ()
        return self._from_values(tuple(v.decode("latin-1") for n, v in raw if n.lower() == name))

    def from_environ(self, environ: Mapping[str, Any]) -> tuple[bytes, ...]:
        """The same for a WSGI environ (``REMOTE_ADDR`` and ``HTTP_*``)."""
        key = "HTTP_" + self.header.upper().replace("-", "_")
        value = environ.get(key)
        if not value:
            return ()
        return self.from_headers(environ.get("REMOTE_ADDR"), Headers(((self.header, value),)))

    def _decode(self, value: str) -> tuple[bytes, ...]:
        if self.format == "nginx":
            return der_from_pem_texts([unquote_to_bytes(value.strip())], what="proxy")
        elements = parse_xfcc(value)
        if len(elements) != 1:
            # More than one hop: the last one is not necessarily our proxy's (a client without
            # a certificate leaves a forged element last). SANITIZE_SET sends exactly one.
            raise AuthenticationError(f"{len(elements)} elements in {self.header}; expected 1")
        element = elements[0]
        pem = element.get("chain") or element.get("cert")
        if not pem:
            return ()
        return der_from_pem_texts([unquote_to_bytes(pem)], what="proxy")
