"""``--authentication-config`` as a live token authenticator that follows the file (spec §13.11).

:class:`AuthenticationConfigFile` reads, decodes and validates the file, builds one JWT
authenticator per ``jwt[]`` entry and combines them in a fail-on-error union. When the file
changes (polled lazily through :class:`~k8sauthn.config._load.ReloadingFile`), a valid new file
replaces the whole union in one assignment; an unreadable, undecodable or invalid file -- or one
whose ``anonymous`` section differs from the first file's -- keeps the previous authenticators and
records the error (``last_error``, ``on_error``, ``failures``). Identical content is not rebuilt,
and content that failed to decode or validate is not tried again (kube-apiserver tracks it and
stops retrying); an unreadable file or a failed build is retried at every poll.

Unlike kube-apiserver we do not wait for the new issuers' discovery before swapping: our JWT
authenticators discover lazily on the first token (see docs/authentication-config.md).
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import attrs

from .._flow import Flow
from .._protocols import TokenAuthenticator
from .._types import Context, Response
from ..chain.union import token_union
from ..exceptions import ConfigError, FieldError
from ..request.anonymous import AnonymousConfig
from ._authentication_decode import decode_authentication_config
from ._load import ReloadingFile
from .authentication import ALL_SIGNING_ALGORITHMS, AuthenticationConfiguration
from .authentication import JWTAuthenticatorConfig as JWTConfig
from .authentication_validation import validate_authentication_config

if TYPE_CHECKING:
    from ..token.jwks import JWTMetrics

__all__ = ["AuthenticationConfigFile", "build_jwt_authenticator", "config_hash"]

#: Builds one runtime authenticator from one validated ``jwt[]`` entry.
Builder = Callable[[JWTConfig], TokenAuthenticator]


def build_jwt_authenticator(
    cfg: JWTConfig, *, metrics: JWTMetrics | None = None
) -> TokenAuthenticator:
    """The default builder: :class:`k8sauthn.token.oidc.JWTAuthenticator` with all nine algs."""
    from ..token.oidc import JWTAuthenticator

    return JWTAuthenticator.from_config(cfg, signing_algs=ALL_SIGNING_ALGORITHMS, metrics=metrics)


def config_hash(data: bytes) -> str:
    """``sha256:<hex>`` of the raw file, the ``last_config_info`` metric's label (spec §18)."""
    return "sha256:" + hashlib.sha256(data).hexdigest() if data else ""


def _combine(members: list[TokenAuthenticator]) -> TokenAuthenticator:
    """kube-apiserver's fail-on-error union, or its equivalent issuer index (P2)."""
    # Only JWTAuthenticators are indexed, and if none was built the module is not loaded
    # (a custom builder need not pull in the OIDC dependencies).
    oidc = sys.modules.get("k8sauthn.token.oidc")
    if oidc is not None and len(members) > 1:
        combined: TokenAuthenticator = oidc.jwt_union(members)
        return combined
    return token_union(*members, fail_on_error=True)


class _StillRejected(Exception):
    """The file still holds content that was already rejected: no new attempt, no new metric."""

    def __init__(self, original: Exception) -> None:
        super().__init__(str(original))
        self.original = original


@attrs.frozen
class _Loaded:
    config: AuthenticationConfiguration
    jwt: TokenAuthenticator
    data: bytes = attrs.field(repr=False)


class AuthenticationConfigFile:
    """The JWT part of an ``--authentication-config`` file, reloaded when the file changes.

    It is a :class:`~k8sauthn.TokenAuthenticator` itself (the current union); ``anonymous`` is
    the file's ``anonymous`` section, fixed at start-up. The first load raises
    :class:`~k8sauthn.exceptions.ConfigError`; later loads never raise. ``on_reload`` receives
    ``"success"`` or ``"failure"`` for every reload attempt of a changed file (the
    ``automatic_reloads_total{status}`` metric); ``on_error`` receives each failure's error.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        disallowed_issuers: Iterable[str] = (),
        build: Builder = build_jwt_authenticator,
        interval: float = 60.0,
        on_error: Callable[[Exception], None] | None = None,
        on_reload: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._disallowed = tuple(disallowed_issuers)
        self._build = build
        self._on_error = on_error
        self._on_reload = on_reload
        self._initial_anonymous: AnonymousConfig | None = None
        self._current: _Loaded | None = None
        #: SHA-256 of the content that last failed to decode or validate, and why.
        self._rejected: tuple[bytes, ConfigError] | None = None
        #: Reload counters for the ``automatic_reloads_total{status}`` metric.
        self.successes = 0
        self.failures = 0
        self._file = ReloadingFile(
            path,
            self._parse,
            interval=interval,
            what="authentication configuration file",
            on_error=self._failed,
            clock=clock,
        )
        self._current = self._file.value
        self._initial_anonymous = self._current.config.anonymous

    def __repr__(self) -> str:
        return f"AuthenticationConfigFile({str(self._file.path)!r})"

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, _StillRejected):
            return
        self.failures += 1
        if self._on_error is not None:
            self._on_error(exc)
        if self._on_reload is not None:
            self._on_reload("failure")

    def _parse(self, data: bytes) -> _Loaded:
        current = self._current
        if current is not None and data == current.data:
            return current  # identical content: keep the built authenticators
        digest = hashlib.sha256(data).digest()
        if self._rejected is not None and self._rejected[0] == digest:
            raise _StillRejected(self._rejected[1])
        try:
            config = decode_authentication_config(data)
            errors = validate_authentication_config(config, disallowed_issuers=self._disallowed)
            if current is not None and config.anonymous != self._initial_anonymous:
                errors.append(
                    FieldError("anonymous", "Forbidden: changed from initial configuration file")
                )
            if errors:
                raise ConfigError(errors)
        except ConfigError as exc:
            self._rejected = (digest, exc)  # "not ... valid and never will be" (kube-apiserver)
            raise
        members = [self._build(jwt) for jwt in config.jwt]
        loaded = _Loaded(config, _combine(members), data)
        self._current = loaded
        if current is not None:
            self.successes += 1
            if self._on_reload is not None:
                self._on_reload("success")
        return loaded

    @property
    def config(self) -> AuthenticationConfiguration:
        """The configuration in force (re-checking the file if the interval has passed)."""
        return self._file.value.config

    @property
    def anonymous(self) -> AnonymousConfig | None:
        """The ``anonymous`` section of the first file (it cannot change on reload)."""
        return self._initial_anonymous

    @property
    def last_error(self) -> Exception | None:
        """Why the latest changed file was not installed, or None."""
        error = self._file.last_error
        return error.original if isinstance(error, _StillRejected) else error

    @property
    def hash(self) -> str:
        """``sha256:<hex>`` of the file content in force."""
        return config_hash(self._file.value.data)

    def check(self) -> bool:
        """Re-read the file now if it changed; True when a new configuration was installed."""
        return self._file.check()

    def token_flow(self, token: str, ctx: Context, /) -> Flow[Response | None]:
        # One attribute read picks the whole union: a reload swaps it atomically.
        return self._file.value.jwt.token_flow(token, ctx)
