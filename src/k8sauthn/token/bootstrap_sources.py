"""Where bootstrap-token Secrets come from: a mapping, a manifest directory, a live cluster.

* :class:`MappingSecretSource` - Secrets held in memory (tests, embedding applications).
* :class:`DirectorySecretSource` - ``--bootstrap-token-dir``: Secret manifests (YAML or JSON,
  ``data`` in base64 and/or ``stringData``), re-read when a file changes; a file that stops
  parsing keeps its last good Secrets and reports the error.
* :class:`KubernetesSecretSource` - lists ``kube-system`` bootstrap Secrets through the
  Kubernetes API (``Fetch`` effects) and serves that snapshot for ``ttl`` seconds, the way an
  informer's lister serves its cache; concurrent refreshes share one request.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from .._flow import Flow, Shared, pure
from .._types import Context
from ..config._load import read_bytes
from ..exceptions import BackendUnavailable, ConfigError, redact_url
from ..kubeapi import KubeAPI
from .bootstrap import SECRET_TYPE, BootstrapSecret

__all__ = [
    "DirectorySecretSource",
    "KubernetesSecretSource",
    "MappingSecretSource",
    "parse_secret",
    "parse_secret_manifests",
]

NAMESPACE: Final = "kube-system"
_SUFFIXES: Final = (".yaml", ".yml", ".json")
LIST_PATH: Final = (
    f"/api/v1/namespaces/{NAMESPACE}/secrets?fieldSelector=type%3Dbootstrap.kubernetes.io%2Ftoken"
)


def parse_secret(obj: Mapping[str, Any], where: str = "secret") -> BootstrapSecret | None:
    """One Secret object -> :class:`BootstrapSecret`; ``None`` when it is in another namespace.

    ``data`` values are base64 (as the API serves them); ``stringData`` entries are plain text
    and override ``data``, as the API server merges them on write.
    """
    if obj.get("kind", "Secret") != "Secret":
        raise ConfigError(f"{where}: kind must be Secret, not {obj.get('kind')!r}")
    meta = obj.get("metadata") or {}
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        raise ConfigError(f"{where}: metadata.name must be a string")
    if meta.get("namespace", NAMESPACE) != NAMESPACE:
        return None
    raw_data, string_data = obj.get("data"), obj.get("stringData")
    data: dict[str, bytes] | None = None
    if raw_data is not None:
        if not isinstance(raw_data, dict):
            raise ConfigError(f"{where}: data must be a mapping")
        data = {}
        for key, value in raw_data.items():
            try:
                data[str(key)] = base64.b64decode(value or "", validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise ConfigError(f"{where}: data.{key} is not valid base64") from None
    if string_data is not None:
        if not isinstance(string_data, dict) or not all(
            isinstance(v, str) for v in string_data.values()
        ):
            raise ConfigError(f"{where}: stringData must map keys to strings")
        data = {**(data or {}), **{str(k): v.encode() for k, v in string_data.items()}}
    secret_type = obj.get("type", "")
    if not isinstance(secret_type, str):
        raise ConfigError(f"{where}: type must be a string")
    return BootstrapSecret(
        name=meta["name"],
        type=secret_type,
        data=data,
        deleting=bool(meta.get("deletionTimestamp")),
    )


def parse_secret_manifests(data: bytes, where: str = "manifest") -> dict[str, BootstrapSecret]:
    """Every ``kube-system`` Secret in a YAML/JSON document stream (``List`` objects unrolled)."""
    import yaml

    try:
        docs = [d for d in yaml.safe_load_all(data) if d is not None]
    except yaml.YAMLError:
        raise ConfigError(f"{where}: not valid YAML or JSON") from None
    out: dict[str, BootstrapSecret] = {}
    for i, doc in enumerate(_objects(docs, where)):
        secret = parse_secret(doc, f"{where}[{i}]")
        if secret is not None:
            out[secret.name] = secret
    return out


def _objects(docs: list[Any], where: str) -> Iterator[Mapping[str, Any]]:
    for doc in docs:
        if not isinstance(doc, dict):
            raise ConfigError(f"{where}: every document must be a mapping")
        if doc.get("kind") in ("List", "SecretList"):
            items = doc.get("items") or []
            if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
                raise ConfigError(f"{where}: items must be a list of objects")
            yield from items
        else:
            yield doc


@attrs.frozen
class MappingSecretSource:
    """Secrets held in memory, by name."""

    secrets: Mapping[str, BootstrapSecret] = attrs.field(factory=dict, repr=False)

    @classmethod
    def of(cls, *secrets: BootstrapSecret) -> MappingSecretSource:
        return cls({s.name: s for s in secrets})

    def secret_flow(self, name: str, ctx: Context, /) -> Flow[BootstrapSecret | None]:
        return pure(self.secrets.get(name))


class DirectorySecretSource:
    """``--bootstrap-token-dir``: the Secret manifests in a directory, followed on change.

    At most once per ``interval`` seconds the directory is rescanned; only new or changed files
    are parsed. A file that no longer parses keeps its previous Secrets and the error goes to
    ``last_error`` / ``on_error``. The first scan raises :class:`ConfigError` on any problem.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        interval: float = 60.0,
        on_error: Callable[[Exception], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self._interval = interval
        self._on_error = on_error
        self._clock = clock
        self._lock = threading.Lock()
        self._files: dict[str, tuple[tuple[int, int, int], dict[str, BootstrapSecret]]] = {}
        self.last_error: Exception | None = None
        self._secrets: dict[str, BootstrapSecret] = {}
        self._scan(initial=True)
        self._next = clock() + interval

    def __repr__(self) -> str:
        return f"DirectorySecretSource({str(self.path)!r})"

    def secret_flow(self, name: str, ctx: Context, /) -> Flow[BootstrapSecret | None]:
        if self._clock() >= self._next:
            with self._lock:
                if self._clock() >= self._next:
                    self._next = self._clock() + self._interval
                    self._scan(initial=False)
        return pure(self._secrets.get(name))

    def check(self) -> None:
        """Rescan now."""
        with self._lock:
            self._scan(initial=False)

    def _scan(self, *, initial: bool) -> None:
        try:
            entries = sorted(
                e for e in os.listdir(self.path) if e.endswith(_SUFFIXES) and not e.startswith(".")
            )
        except OSError as exc:
            self._fail(ConfigError(f"unable to list {str(self.path)!r}: {exc.strerror}"), initial)
            return
        files: dict[str, tuple[tuple[int, int, int], dict[str, BootstrapSecret]]] = {}
        for entry in entries:
            full = self.path / entry
            try:
                st = full.stat()
            except OSError:
                continue
            ident = (st.st_ino, st.st_size, st.st_mtime_ns)
            known = self._files.get(entry)
            if known is not None and known[0] == ident:
                files[entry] = known
                continue
            try:
                files[entry] = (ident, parse_secret_manifests(read_bytes(full), entry))
            except ConfigError as exc:
                self._fail(exc, initial)
                if known is not None:  # keep the last good Secrets of this file
                    files[entry] = known
        merged: dict[str, BootstrapSecret] = {}
        for _ident, found in files.values():
            merged.update(found)
        self._files, self._secrets = files, merged

    def _fail(self, exc: ConfigError, initial: bool) -> None:
        if initial:
            raise exc
        self.last_error = exc
        if self._on_error is not None:
            self._on_error(exc)


@attrs.frozen
class _Snapshot:
    secrets: Mapping[str, BootstrapSecret]
    fresh_until: float


class KubernetesSecretSource:
    """Bootstrap Secrets listed from a live cluster, refreshed at most every ``ttl`` seconds.

    A refresh that fails while an earlier list is held keeps serving it (an informer's lister
    does the same) and tries again after ``retry`` seconds; with nothing held yet the failure
    is the lister error of §11.2 (the authenticator fails). The service account needs
    ``list`` on ``secrets`` in ``kube-system``.
    """

    def __init__(self, api: KubeAPI, *, ttl: float = 30.0, retry: float = 5.0) -> None:
        self.api = api
        self.ttl = ttl
        self.retry = retry
        self.last_error: Exception | None = None
        self._snapshot: _Snapshot | None = None
        self._key = b"k8sauthn.bootstrap.list:" + secrets.token_bytes(8)

    def __repr__(self) -> str:
        return f"KubernetesSecretSource({redact_url(self.api.base_url)!r}, ttl={self.ttl})"

    def secret_flow(self, name: str, ctx: Context, /) -> Flow[BootstrapSecret | None]:
        snap = self._snapshot
        if snap is None or ctx.now >= snap.fresh_until:
            snap = yield Shared(self._key, lambda: self._refresh(ctx.now))
            assert isinstance(snap, _Snapshot)
        return snap.secrets.get(name)

    def _refresh(self, now: float) -> Flow[_Snapshot]:
        snap = self._snapshot
        if snap is not None and now < snap.fresh_until:  # another flight just refreshed
            return snap
        try:
            doc = yield from self.api.get_json(LIST_PATH, start=now)
            secrets = _from_list(doc)
        except Exception as exc:
            self.last_error = exc
            if snap is None:
                raise
            self._snapshot = _Snapshot(snap.secrets, now + self.retry)
            return self._snapshot
        self.last_error = None
        self._snapshot = _Snapshot(secrets, now + self.ttl)
        return self._snapshot


def _from_list(doc: Any) -> dict[str, BootstrapSecret]:
    if not isinstance(doc, dict) or not isinstance(doc.get("items", []), list):
        raise BackendUnavailable("unexpected answer to the Secret list: not a SecretList")
    out: dict[str, BootstrapSecret] = {}
    for item in doc.get("items") or []:
        if not isinstance(item, dict):
            continue
        try:
            secret = parse_secret(item, "secret")
        except ConfigError:
            continue  # one malformed item must not hide every other token
        if secret is not None and secret.type == SECRET_TYPE:
            out[secret.name] = secret
    return out
