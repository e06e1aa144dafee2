"""Decorators that combine and wrap authenticators: unions, the token cache, group adders and
the audience-agnostic wrapper. Each one is itself an authenticator (spec §2, §4, §5, §14).
"""

from .audiences import (
    AudienceAgnosticRequest,
    AudienceAgnosticToken,
    AudiencesReturned,
    has_audience,
    intersect,
)
from .cache import AuthenticationFailedUnexpectedly, CachedTokenAuthenticator, CacheStats
from .groups import AuthenticatedGroupAdder, RequestGroupAdder, TokenGroupAdder
from .union import RequestUnion, TokenUnion, request_union, token_union

__all__ = [
    "AudienceAgnosticRequest",
    "AudienceAgnosticToken",
    "AudiencesReturned",
    "AuthenticatedGroupAdder",
    "AuthenticationFailedUnexpectedly",
    "CacheStats",
    "CachedTokenAuthenticator",
    "RequestGroupAdder",
    "RequestUnion",
    "TokenGroupAdder",
    "TokenUnion",
    "has_audience",
    "intersect",
    "request_union",
    "token_union",
]
