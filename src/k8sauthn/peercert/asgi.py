"""The ASGI TLS extension: ``scope["extensions"]["tls"]["client_cert_chain"]``.

Per the ASGI spec the server puts there the PEM strings the client presented, leaf first. Only
the server writes the scope, so this source is as trustworthy as the server's TLS setup.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._convert import der_from_pem_texts

__all__ = ["tls_extension_chain"]


def tls_extension_chain(scope: Mapping[str, Any]) -> tuple[bytes, ...]:
    """The client chain as DER from the ASGI ``tls`` extension; ``()`` when there is none."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    pems = tls.get("client_cert_chain") or ()
    return der_from_pem_texts(pems) if pems else ()
