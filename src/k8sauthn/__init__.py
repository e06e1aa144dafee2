"""k8sauthn: authenticate Kubernetes-style credentials exactly the way kube-apiserver does.

Data flow: request -> credentials -> authenticators -> union / cache / group adders -> user info
-> middleware / server. See docs/architecture.md.
"""

from typing import TYPE_CHECKING, Any

from ._flow import Fetch, Fetched, Flow, Shared, Sleep, TLSConfig, pure, run_pure
from ._protocols import RequestAuthenticator, TokenAuthenticator
from ._types import (
    ALL_AUTHENTICATED,
    ALL_UNAUTHENTICATED,
    ANONYMOUS_USER,
    BOOTSTRAP_GROUP,
    BOOTSTRAP_USER_PREFIX,
    CREDENTIAL_ID_KEY,
    Context,
    Headers,
    RequestView,
    Response,
    UserInfo,
)
from .chain import (
    AudienceAgnosticRequest,
    AudienceAgnosticToken,
    AuthenticatedGroupAdder,
    CachedTokenAuthenticator,
    CacheStats,
    RequestGroupAdder,
    RequestUnion,
    TokenGroupAdder,
    TokenUnion,
    request_union,
    token_union,
)
from .exceptions import (
    AuthenticationError,
    BackendUnavailable,
    ChainError,
    ConfigError,
    FieldError,
    InvalidBearerToken,
    K8sAuthnError,
)
from .request import (
    AnonymousAuthenticator,
    AnonymousConfig,
    BearerAuthenticator,
    WebSocketProtocolAuthenticator,
)
from .token import StaticTokenAuthenticator

if TYPE_CHECKING:
    from .config.build import Chain, build

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The chain builder imports every authenticator family (YAML, CEL, HTTP ...): load it only
    # when asked for, so that `import k8sauthn` stays light.
    if name in ("Chain", "build"):
        from .config.build import Chain, build

        return {"Chain": Chain, "build": build}[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ALL_AUTHENTICATED",
    "ALL_UNAUTHENTICATED",
    "ANONYMOUS_USER",
    "BOOTSTRAP_GROUP",
    "BOOTSTRAP_USER_PREFIX",
    "CREDENTIAL_ID_KEY",
    "AnonymousAuthenticator",
    "AnonymousConfig",
    "AudienceAgnosticRequest",
    "AudienceAgnosticToken",
    "AuthenticatedGroupAdder",
    "AuthenticationError",
    "BackendUnavailable",
    "BearerAuthenticator",
    "CacheStats",
    "CachedTokenAuthenticator",
    "Chain",
    "ChainError",
    "ConfigError",
    "Context",
    "Fetch",
    "Fetched",
    "FieldError",
    "Flow",
    "Headers",
    "InvalidBearerToken",
    "K8sAuthnError",
    "RequestAuthenticator",
    "RequestGroupAdder",
    "RequestUnion",
    "RequestView",
    "Response",
    "Shared",
    "Sleep",
    "StaticTokenAuthenticator",
    "TLSConfig",
    "TokenAuthenticator",
    "TokenGroupAdder",
    "TokenUnion",
    "UserInfo",
    "WebSocketProtocolAuthenticator",
    "__version__",
    "build",
    "pure",
    "request_union",
    "run_pure",
    "token_union",
]
