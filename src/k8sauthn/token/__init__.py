"""Token authenticators: a token string in, a response out.

The static token file is re-exported here; bootstrap, webhook and JWT/OIDC authenticators are
imported from their own modules (they pull in heavier dependencies).
"""

from .static import ReloadingStaticTokenAuthenticator, StaticTokenAuthenticator

__all__ = ["ReloadingStaticTokenAuthenticator", "StaticTokenAuthenticator"]
