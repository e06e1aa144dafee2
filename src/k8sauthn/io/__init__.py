"""The runners: the only place that turns flows into real HTTP (httpx), sleeps and waits.

``Authenticator`` and ``AsyncAuthenticator`` have the same method names, as httpx's ``Client``
and ``AsyncClient`` do.
"""

from ._async import AsyncAuthenticator
from ._common import ClientFactory, default_client_kwargs
from ._sync import Authenticator

__all__ = ["AsyncAuthenticator", "Authenticator", "ClientFactory", "default_client_kwargs"]
