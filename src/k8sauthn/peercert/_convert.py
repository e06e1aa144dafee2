"""PEM text <-> DER, failing closed: a malformed certificate is a rejection, never "no cert"."""

from __future__ import annotations

import ssl
from collections.abc import Iterable

from ..exceptions import AuthenticationError
from ..request._pem import pem_blocks

__all__ = ["der_from_pem_texts", "peer_chain_der"]


def der_from_pem_texts(
    pems: Iterable[str | bytes], *, what: str = "TLS layer"
) -> tuple[bytes, ...]:
    """DER of every ``CERTIFICATE`` in ``pems`` (each item may hold several), leaf first.

    An item that is not empty but holds no certificate raises ``AuthenticationError``: dropping
    it could shift an intermediate into the leaf position.
    """
    out: list[bytes] = []
    for pem in pems:
        data = pem.encode("latin-1", "replace") if isinstance(pem, str) else pem
        if not data.strip():
            continue
        certs = [der for kind, der in pem_blocks(data) if kind == "CERTIFICATE"]
        if not certs:
            raise AuthenticationError(f"malformed client certificate from the {what}")
        out.extend(certs)
    return tuple(out)


def peer_chain_der(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> tuple[bytes, ...]:
    """The certificates the peer presented, DER, leaf first (only the leaf before 3.13)."""
    get_chain = getattr(ssl_object, "get_unverified_chain", None)
    if get_chain is not None:  # pragma: no cover - Python 3.13+
        # 3.13's SSLObject/SSLSocket return DER bytes, leaf first, as the peer sent them.
        try:
            chain = get_chain() or ()
        except AttributeError:
            # CPython 3.13.0 raises here when the peer sent no certificate (a None slot in the
            # chain); the leaf check below then finds none either.
            chain = ()
        der = tuple(c for c in chain if isinstance(c, bytes))
        if der:
            return der
    leaf = ssl_object.getpeercert(binary_form=True)
    return (leaf,) if leaf else ()
