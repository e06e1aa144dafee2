"""WSGI servers: the client certificate from the environ.

* gunicorn (``--certfile/--keyfile --ca-certs --cert-reqs 1``) puts the TLS socket in
  ``environ["gunicorn.socket"]``; the leaf (and on 3.13+ the chain) is read from it.
* werkzeug's TLS server and Apache mod_ssl + mod_wsgi (``SSLOptions +ExportCertData``) set
  ``SSL_CLIENT_CERT`` and ``SSL_CLIENT_CERT_CHAIN_<n>`` (PEM).

These keys are set by the server, never from request headers (those are ``HTTP_*``).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

from ._convert import der_from_pem_texts, peer_chain_der

__all__ = ["wsgi_peer_chain"]


def wsgi_peer_chain(environ: Mapping[str, Any]) -> tuple[bytes, ...]:
    """The client chain, DER, leaf first, from whatever the WSGI server exposes; or ``()``."""
    sock = environ.get("gunicorn.socket")
    if isinstance(sock, ssl.SSLSocket):
        chain = peer_chain_der(sock)
        if chain:
            return chain
    leaf = environ.get("SSL_CLIENT_CERT")
    if not leaf:
        return ()
    pems = [leaf]
    i = 0
    while extra := environ.get(f"SSL_CLIENT_CERT_CHAIN_{i}"):
        pems.append(extra)
        i += 1
    return der_from_pem_texts(pems, what="WSGI server")
