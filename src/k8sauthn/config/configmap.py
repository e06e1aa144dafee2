"""The ``kube-system/extension-apiserver-authentication`` ConfigMap (spec §10.5).

kube-apiserver publishes its client CA and front-proxy settings there for extension API
servers. :func:`parse_configmap` reads a ConfigMap (YAML or JSON, e.g. from
``kubectl get cm -n kube-system extension-apiserver-authentication -o yaml``) into an
:class:`ExtensionAuthentication`; :func:`load_configmap` re-reads the file as it changes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any, Final, Generic, TypeVar

import attrs

from ..exceptions import ConfigError, FieldError
from ..request._trust import CABundle
from ..request.requestheader import RequestHeaderAuthenticator
from ..request.x509 import ClientCertAuthenticator
from ._load import ReloadingFile
from .options import RequestHeaderOptions

__all__ = [
    "CONFIGMAP_NAME",
    "CONFIGMAP_NAMESPACE",
    "ExtensionAuthentication",
    "authenticators_from_configmap",
    "client_ca_source",
    "load_configmap",
    "parse_configmap",
    "requestheader_ca_source",
]

CONFIGMAP_NAME: Final = "extension-apiserver-authentication"
CONFIGMAP_NAMESPACE: Final = "kube-system"

_LIST_KEYS: Final = (
    ("requestheader-username-headers", "username_headers"),
    ("requestheader-uid-headers", "uid_headers"),
    ("requestheader-group-headers", "group_headers"),
    ("requestheader-extra-headers-prefix", "extra_headers_prefix"),
    ("requestheader-allowed-names", "allowed_names"),
)

T = TypeVar("T")


@attrs.frozen(eq=False)
class ExtensionAuthentication:
    """What the ConfigMap says: the two CA bundles and the request-header settings.

    ``client_ca`` / ``requestheader_ca`` are ``None`` when the key is absent or empty; the
    header lists are empty tuples then (Kubernetes' "nil list").
    """

    client_ca: CABundle | None = None
    requestheader_ca: CABundle | None = None
    username_headers: tuple[str, ...] = ()
    uid_headers: tuple[str, ...] = ()
    group_headers: tuple[str, ...] = ()
    extra_headers_prefix: tuple[str, ...] = ()
    allowed_names: tuple[str, ...] = ()

    def requestheader_options(self, client_ca_file: str = "") -> RequestHeaderOptions:
        """The settings as :class:`RequestHeaderOptions` (the CA stays here, not in a file)."""
        return RequestHeaderOptions(
            client_ca_file=client_ca_file,
            allowed_names=self.allowed_names,
            username_headers=self.username_headers,
            uid_headers=self.uid_headers,
            group_headers=self.group_headers,
            extra_headers_prefix=self.extra_headers_prefix,
        )


def _string_list(data: Mapping[str, Any], key: str, errors: list[FieldError]) -> tuple[str, ...]:
    raw = data.get(key)
    if raw is None or raw == "":
        return ()
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.append(FieldError(f"data.{key}", "must be a JSON array of strings"))
        return ()
    return tuple(value)


def _bundle(data: Mapping[str, Any], key: str, errors: list[FieldError]) -> CABundle | None:
    raw = data.get(key)
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        errors.append(FieldError(f"data.{key}", "must be a PEM string"))
        return None
    try:
        return CABundle.from_pem(raw.encode("utf-8"), name=key)
    except ConfigError as exc:
        errors.extend(FieldError(f"data.{key}", e.detail) for e in exc.errors)
        return None


def parse_configmap(content: bytes | str) -> ExtensionAuthentication:
    """Parse a ConfigMap document (YAML or JSON). Every problem is reported in one ConfigError."""
    import yaml  # lazily: only the config loaders need PyYAML

    try:
        doc = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        raise ConfigError(f"unable to parse ConfigMap: {exc}") from None
    except RecursionError:
        raise ConfigError("unable to parse ConfigMap: document nested too deeply") from None
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        raise ConfigError(f"unable to parse ConfigMap: {exc}") from None
    if not isinstance(doc, Mapping):
        raise ConfigError("a ConfigMap must be a mapping")
    kind = doc.get("kind")
    if kind is not None and kind != "ConfigMap":
        raise ConfigError([FieldError("kind", f"must be ConfigMap, not {kind!r}")])
    data = doc.get("data") or {}
    if not isinstance(data, Mapping):
        raise ConfigError([FieldError("data", "must be a mapping of strings")])
    errors: list[FieldError] = []
    client_ca = _bundle(data, "client-ca-file", errors)
    requestheader_ca = _bundle(data, "requestheader-client-ca-file", errors)
    lists = {attr: _string_list(data, key, errors) for key, attr in _LIST_KEYS}
    if errors:
        raise ConfigError(errors)
    return ExtensionAuthentication(client_ca, requestheader_ca, **lists)


class _Projection(Generic[T]):
    """A read-only view of one part of a reloading value (a ``Source`` for the verifiers)."""

    def __init__(self, parent: ReloadingFile[ExtensionAuthentication], pick: Callable[..., T]):
        self._parent = parent
        self._pick = pick

    @property
    def value(self) -> T:
        return self._pick(self._parent.value)


def load_configmap(
    path: str | os.PathLike[str],
    *,
    reload_interval: float = 60.0,
    on_error: Callable[[Exception], None] | None = None,
) -> ReloadingFile[ExtensionAuthentication]:
    """The ConfigMap file, re-read when it changes; a bad new version keeps the previous values
    (as Kubernetes' consumers do)."""
    return ReloadingFile(
        path,
        parse_configmap,
        interval=reload_interval,
        what="extension-apiserver-authentication ConfigMap",
        on_error=on_error,
    )


def client_ca_source(cm: ReloadingFile[ExtensionAuthentication]) -> _Projection[CABundle | None]:
    """The ``client-ca-file`` bundle as a source for ``ClientCertAuthenticator.from_source``."""
    return _Projection(cm, lambda v: v.client_ca)


def requestheader_ca_source(
    cm: ReloadingFile[ExtensionAuthentication],
) -> _Projection[CABundle | None]:
    """The ``requestheader-client-ca-file`` bundle as a source for ``behind_proxy(proxy_ca=)``."""
    return _Projection(cm, lambda v: v.requestheader_ca)


def authenticators_from_configmap(
    cm: ReloadingFile[ExtensionAuthentication],
) -> tuple[RequestHeaderAuthenticator | None, ClientCertAuthenticator | None]:
    """The request-header and X.509 authenticators a delegated server builds (spec §3.3).

    Both follow CA changes in the file, and so do the proxy's allowed names (a trust decision:
    Kubernetes' request-header controller follows them too); the header names are read once,
    now. Either is ``None`` when its CA key is absent at start-up.
    """
    current = cm.value
    rh = None
    if current.requestheader_ca is not None:
        rh = RequestHeaderAuthenticator.behind_proxy(
            proxy_ca=requestheader_ca_source(cm),
            allowed_names=_Projection(cm, lambda v: v.allowed_names),
            username_headers=current.username_headers,
            uid_headers=current.uid_headers,
            group_headers=current.group_headers,
            extra_headers_prefix=current.extra_headers_prefix,
        )
    x5 = None
    if current.client_ca is not None:
        x5 = ClientCertAuthenticator.from_source(client_ca_source(cm))
    return rh, x5
