"""HTTP adapters: kube-apiserver's authentication filter as ASGI and WSGI middleware.

``k8sauthn.middleware.asgi`` and ``k8sauthn.middleware.wsgi`` hold the middleware; framework
integrations live in ``k8sauthn.integrations``. Nothing here imports a web framework.
"""

from ._common import (
    FORBIDDEN_BODY,
    UNAUTHORIZED_BODY,
    AudienceMismatch,
    FilterPolicy,
    NotAuthenticated,
    status_body,
)

__all__ = [
    "FORBIDDEN_BODY",
    "UNAUTHORIZED_BODY",
    "AudienceMismatch",
    "FilterPolicy",
    "NotAuthenticated",
    "status_body",
]
