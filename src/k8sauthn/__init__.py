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
    from .config.authentication import AuthenticationConfiguration, load_authentication_config
    from .config.build import Chain, build
    from .config.options import AuthenticationOptions
    from .delegating import DelegatingAuthenticator
    from .request.requestheader import RequestHeaderAuthenticator
    from .request.x509 import CertificateRejected, ClientCertAuthenticator
    from .token.bootstrap import BootstrapTokenAuthenticator
    from .token.oidc import InvalidJWT, JWTAuthenticator
    from .token.webhook import WebhookTokenAuthenticator

__version__ = "0.1.0"


# Names loaded on first use: each pulls in a heavier family (x509 parsing, YAML, CEL, HTTP), and
# `import k8sauthn` must stay light (tests/test_public_api.py checks it).
_LAZY: dict[str, str] = {
    "AuthenticationConfiguration": ".config.authentication",
    "AuthenticationOptions": ".config.options",
    "BootstrapTokenAuthenticator": ".token.bootstrap",
    "CertificateRejected": ".request.x509",
    "Chain": ".config.build",
    "ClientCertAuthenticator": ".request.x509",
    "DelegatingAuthenticator": ".delegating",
    "InvalidJWT": ".token.oidc",
    "JWTAuthenticator": ".token.oidc",
    "RequestHeaderAuthenticator": ".request.requestheader",
    "WebhookTokenAuthenticator": ".token.webhook",
    "build": ".config.build",
    "load_authentication_config": ".config.authentication",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


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
    "AuthenticationConfiguration",
    "AuthenticationError",
    "AuthenticationOptions",
    "BackendUnavailable",
    "BearerAuthenticator",
    "BootstrapTokenAuthenticator",
    "CacheStats",
    "CachedTokenAuthenticator",
    "CertificateRejected",
    "Chain",
    "ChainError",
    "ClientCertAuthenticator",
    "ConfigError",
    "Context",
    "DelegatingAuthenticator",
    "Fetch",
    "Fetched",
    "FieldError",
    "Flow",
    "Headers",
    "InvalidBearerToken",
    "InvalidJWT",
    "JWTAuthenticator",
    "K8sAuthnError",
    "RequestAuthenticator",
    "RequestGroupAdder",
    "RequestHeaderAuthenticator",
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
    "WebhookTokenAuthenticator",
    "__version__",
    "build",
    "load_authentication_config",
    "pure",
    "request_union",
    "run_pure",
    "token_union",
]
