"""k8sauthn: authenticate Kubernetes-style credentials exactly the way kube-apiserver does.

Data flow: request -> credentials -> authenticators -> union / cache / group adders -> user info
-> middleware / server. See docs/architecture.md.
"""

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
from .exceptions import (
    AuthenticationError,
    BackendUnavailable,
    ChainError,
    ConfigError,
    FieldError,
    InvalidBearerToken,
    K8sAuthnError,
)

__version__ = "0.1.0"

__all__ = [
    "ALL_AUTHENTICATED",
    "ALL_UNAUTHENTICATED",
    "ANONYMOUS_USER",
    "BOOTSTRAP_GROUP",
    "BOOTSTRAP_USER_PREFIX",
    "CREDENTIAL_ID_KEY",
    "AuthenticationError",
    "BackendUnavailable",
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
    "RequestView",
    "Response",
    "Shared",
    "Sleep",
    "TLSConfig",
    "TokenAuthenticator",
    "UserInfo",
    "__version__",
    "pure",
    "run_pure",
]
