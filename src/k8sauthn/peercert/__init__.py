"""Getting the TLS client certificate chain to the authenticators.

Each adapter returns the presented chain as DER bytes, leaf first (``RequestView.peer_chain``);
none of them verifies anything: that is the X.509 and request-header authenticators' job.

* :func:`tls_extension_chain` reads the ASGI ``tls`` extension of a scope;
* :class:`TLSExtensionH11Protocol` is a uvicorn protocol that fills that extension;
* :class:`TrustedProxyCertificate` reads a certificate forwarded by a TLS-terminating proxy
  (nginx, Envoy) in a header, honoured only from declared proxy addresses;
* :func:`wsgi_peer_chain` reads what a WSGI server (gunicorn, werkzeug, mod_wsgi) exposes.

See docs/peercert.md for the trust decision behind each one.
"""

from ._convert import der_from_pem_texts
from .asgi import tls_extension_chain
from .proxy import TrustedProxyCertificate
from .wsgi import wsgi_peer_chain

__all__ = [
    "TLSExtensionH11Protocol",
    "TrustedProxyCertificate",
    "der_from_pem_texts",
    "tls_extension_chain",
    "wsgi_peer_chain",
]


def __getattr__(name: str) -> object:
    # uvicorn is optional: import the protocol class only when asked for.
    if name == "TLSExtensionH11Protocol":
        from .uvicorn import TLSExtensionH11Protocol

        return TLSExtensionH11Protocol
    raise AttributeError(name)
