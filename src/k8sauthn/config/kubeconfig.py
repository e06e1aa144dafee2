"""Webhook kubeconfig files -> :class:`KubeconfigClient` (URL, TLS settings, auth headers).

kube-apiserver reads ``--authentication-token-webhook-config-file`` with client-go's
``clientcmd``: only the *current context* counts; its cluster gives the URL (used verbatim) and
the TLS trust, its user the client credentials (spec §12.1, §16.3). We support the parts a
webhook client uses: ``server``, ``certificate-authority`` / ``-data``,
``insecure-skip-tls-verify``, ``tls-server-name``, ``client-certificate`` / ``-data``,
``client-key`` / ``-data``, ``token`` / ``tokenFile`` and ``username`` / ``password``.
Exec and auth-provider plugins and ``proxy-url`` are refused with a :class:`ConfigError`
rather than silently ignored.

Relative file paths are resolved against the kubeconfig's own directory, as client-go does.
Error texts follow client-go's ``invalid configuration: ...`` wording. No secret (key, token,
password) ever appears in a repr or an error message.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .._flow import TLSConfig
from ..exceptions import ConfigError, redact_url
from ._load import read_bytes

__all__ = ["KubeconfigClient", "load_kubeconfig", "parse_kubeconfig"]

_NO_CONFIG = "no configuration has been provided"
_UNSUPPORTED_USER_KEYS = ("exec", "auth-provider", "as", "as-groups", "as-uid", "as-user-extra")


@attrs.frozen
class KubeconfigClient:
    """What a kubeconfig's current context says about reaching one server.

    ``headers`` may carry ``Authorization`` (a bearer token or basic credentials): never shown.
    """

    server: str = attrs.field(repr=lambda url: repr(redact_url(url)))
    tls: TLSConfig | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    cluster_name: str = ""
    user_name: str = ""


def load_kubeconfig(path: str | os.PathLike[str]) -> KubeconfigClient:
    """Read and resolve a kubeconfig file (YAML or JSON); see :func:`parse_kubeconfig`."""
    data = read_bytes(path, what="kubeconfig")
    return parse_kubeconfig(data, base_dir=Path(path).parent)


def parse_kubeconfig(
    data: bytes | str, *, base_dir: str | os.PathLike[str] = "."
) -> KubeconfigClient:
    """Resolve a kubeconfig document's current context into a :class:`KubeconfigClient`.

    Raises :class:`ConfigError` with client-go's texts for a missing context, an empty server,
    unreadable files and conflicting settings; every problem found is reported at once.
    """
    doc = _load_document(data)
    current = _string(doc, "current-context", "current-context")
    if not current:
        raise ConfigError(f"invalid configuration: {_NO_CONFIG}")
    contexts = _named(doc, "contexts", "context")
    if current not in contexts:
        raise ConfigError(
            f"invalid configuration: context was not found for specified context: {current}"
        )
    context = contexts[current]
    cluster_name = _string(context, "cluster", f"contexts[{current}].cluster")
    user_name = _string(context, "user", f"contexts[{current}].user")
    cluster = _named(doc, "clusters", "cluster").get(cluster_name, {})
    # A context naming a missing user is not a load error in client-go: the calls simply carry
    # no credentials (spec §12.1), and the server decides.
    user = _named(doc, "users", "user").get(user_name, {})

    errors: list[str] = []
    base = Path(base_dir)
    server = _string(cluster, "server", "cluster.server")
    if not server:
        errors.append(
            f'no server found for cluster "{cluster_name}"'
            if cluster
            else "cluster has no server defined"
        )
    ca = _pem(cluster, "certificate-authority", cluster_name, base, errors)
    insecure = cluster.get("insecure-skip-tls-verify", False)
    if not isinstance(insecure, bool):
        raise ConfigError("invalid configuration: insecure-skip-tls-verify must be a boolean")
    if insecure and ca:
        errors.append("specifying a root certificates file with the insecure flag is not allowed")
    if cluster.get("proxy-url"):
        errors.append(f"proxy-url is not supported for cluster {cluster_name!r}; inject a client")
    server_name = _string(cluster, "tls-server-name", "cluster.tls-server-name")

    cert = _pem(user, "client-certificate", user_name, base, errors, what="client-cert")
    key = _pem(user, "client-key", user_name, base, errors, what="client-key")
    if cert and not key:
        errors.append(
            f"client-key-data or client-key must be specified for {user_name} to use the "
            "clientCert authentication method."
        )
    if key and not cert:
        errors.append(
            f"client-cert-data or client-cert must be specified for {user_name} to use the "
            "clientCert authentication method."
        )
    for unsupported in _UNSUPPORTED_USER_KEYS:
        if user.get(unsupported):
            errors.append(f"{unsupported} is not supported for user {user_name!r}")
    headers = _auth_headers(user, user_name, base, errors)
    if errors:
        text = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
        raise ConfigError(f"invalid configuration: {text}")

    _check_tls_material(ca, cert, key)
    tls = None
    if ca or cert or insecure or server_name:
        tls = TLSConfig(
            ca_pem=ca,
            client_cert_pem=cert,
            client_key_pem=key,
            insecure_skip_verify=insecure,
            server_name=server_name,
        )
    return KubeconfigClient(
        server=server, tls=tls, headers=headers, cluster_name=cluster_name, user_name=user_name
    )


# -- helpers ------------------------------------------------------------------------------------
def _load_document(data: bytes | str) -> Mapping[str, Any]:
    import yaml  # lazily: only kubeconfig users pay for it

    try:
        doc = yaml.safe_load(data)  # YAML is a superset of JSON: both formats load here
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"invalid kubeconfig: not valid YAML or JSON{where}") from None
    if doc is None:
        raise ConfigError(f"invalid configuration: {_NO_CONFIG}")
    if not isinstance(doc, dict):
        raise ConfigError("invalid kubeconfig: the document must be a mapping")
    kind = doc.get("kind")
    if kind not in (None, "", "Config"):
        raise ConfigError(f"invalid kubeconfig: kind must be Config, not {kind!r}")
    return doc


def _string(obj: Mapping[str, Any], key: str, path: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigError(f"invalid kubeconfig: {path} must be a string")
    return value


def _named(doc: Mapping[str, Any], key: str, inner: str) -> dict[str, Mapping[str, Any]]:
    items = doc.get(key) or []
    if not isinstance(items, list):
        raise ConfigError(f"invalid kubeconfig: {key} must be a list")
    out: dict[str, Mapping[str, Any]] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ConfigError(f"invalid kubeconfig: {key}[{i}] must have a string name")
        body = item.get(inner) or {}
        if not isinstance(body, dict):
            raise ConfigError(f"invalid kubeconfig: {key}[{i}].{inner} must be a mapping")
        if item["name"] in out:  # client-go's conversion refuses duplicate names too
            raise ConfigError(f'invalid kubeconfig: duplicate name "{item["name"]}" in {key}')
        out[item["name"]] = body
    return out


def _pem(
    obj: Mapping[str, Any],
    key: str,
    owner: str,
    base: Path,
    errors: list[str],
    *,
    what: str | None = None,
) -> bytes:
    """``<key>-data`` (base64 in YAML) or the file ``<key>``; the data wins, both is an error."""
    what = what or key
    data_value = obj.get(f"{key}-data")
    path_value = obj.get(key)
    if data_value and path_value:
        errors.append(
            f"{what}-data and {what} are both specified for {owner}. {what}-data will override."
        )
    if data_value:
        if not isinstance(data_value, str):
            errors.append(f"{key}-data for {owner} must be a base64 string")
            return b""
        try:
            return base64.b64decode(data_value, validate=True)
        except (binascii.Error, ValueError):
            errors.append(f"{key}-data for {owner} is not valid base64")
            return b""
    if path_value:
        if not isinstance(path_value, str):
            errors.append(f"{key} for {owner} must be a file path")
            return b""
        resolved = base / path_value
        try:
            return read_bytes(resolved, what=what)
        except ConfigError:
            reason = _open_error(resolved)
            errors.append(f"unable to read {what} {path_value} for {owner} due to {reason}")
    return b""


def _check_tls_material(ca: bytes, cert: bytes, key: bytes) -> None:
    """Fail at load time, as client-go does when it builds the transport, not on first use.

    Otherwise a bad bundle would surface as an ``ssl`` error on every request. The texts are
    Go's (client-go ``rootCertPool``, ``crypto/tls.X509KeyPair``); no key material is quoted.
    """
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    if ca:
        try:
            x509.load_pem_x509_certificates(ca)
        except ValueError:
            raise ConfigError(
                "unable to load root certificates: unable to parse bytes as PEM block"
            ) from None
    if not cert:
        return
    try:
        leaf = x509.load_pem_x509_certificates(cert)[0]
    except ValueError:
        raise ConfigError("tls: failed to find any PEM data in certificate input") from None
    try:
        private = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError("tls: failed to parse private key") from None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if leaf.public_key().public_bytes(*spki) != private.public_key().public_bytes(*spki):
        raise ConfigError("tls: private key does not match public key")


def _open_error(path: Path) -> str:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        return f"open {path}: {(exc.strerror or 'error').lower()}"
    return f"open {path}: file too large"


def _auth_headers(
    user: Mapping[str, Any], user_name: str, base: Path, errors: list[str]
) -> dict[str, str]:
    token = user.get("token") or ""
    token_file = user.get("tokenFile") or ""
    username, password = user.get("username") or "", user.get("password") or ""
    for key, value in (("token", token), ("tokenFile", token_file), ("username", username)):
        if not isinstance(value, str):
            errors.append(f"{key} for user {user_name!r} must be a string")
            return {}
    if not isinstance(password, str):
        errors.append(f"password for user {user_name!r} must be a string")
        return {}
    if not token and token_file:
        try:
            token = read_bytes(base / token_file, what="tokenFile").decode().strip()
        except (ConfigError, UnicodeDecodeError):
            errors.append(f"unable to read tokenFile {token_file} for {user_name}")
            return {}
    if token and (username or password):
        errors.append(
            f"more than one authentication method found for {user_name}; found "
            "[token basicAuth], only one is allowed"
        )
        return {}
    if token:
        return {"Authorization": "Bearer " + token}
    if username or password:
        pair = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        return {"Authorization": "Basic " + pair}
    return {}
