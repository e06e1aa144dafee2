"""The authenticating proxy: ``X-Remote-*`` headers behind a verified proxy certificate (§10).

A front proxy authenticates the user itself and passes the result in headers. Headers are
trivially forged, so they are believed only on a connection whose TLS client certificate
verifies against the request-header CA (and, if configured, carries an allowed CN). There is
no constructor that skips this: :meth:`RequestHeaderAuthenticator.behind_proxy` needs the CA.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Final, Self
from urllib.parse import unquote_to_bytes

import attrs
from cryptography import x509
from cryptography.hazmat.primitives.hashes import SHA256

from .._flow import Flow, pure
from .._types import Context, Headers, RequestView, Response, UserInfo
from ..config._gourl import go_quote
from ..config._load import ReloadingFile, read_bytes
from ..config.options import RequestHeaderOptions
from ..exceptions import AuthenticationError, ConfigError
from ._trust import CABundle, Fixed, Revocation, Source
from ._verify import ChainVerifier, VerificationFailed, common_name
from .x509 import CertificateRejected, revocation_source

__all__ = [
    "DEFAULT_EXTRA_PREFIXES",
    "DEFAULT_GROUP_HEADERS",
    "DEFAULT_UID_HEADERS",
    "DEFAULT_USERNAME_HEADERS",
    "OVERLAPPING_CAS",
    "HeaderNames",
    "RequestHeaderAuthenticator",
    "check_ca_files_overlap",
    "check_ca_overlap",
    "path_unescape",
    "read_user",
    "validate_options",
]

_SHA256: Final = SHA256()

DEFAULT_USERNAME_HEADERS: Final = ("X-Remote-User",)
DEFAULT_UID_HEADERS: Final = ("X-Remote-Uid",)
DEFAULT_GROUP_HEADERS: Final = ("X-Remote-Group",)
DEFAULT_EXTRA_PREFIXES: Final = ("X-Remote-Extra-",)

_ESCAPE: Final = re.compile(rb"%([0-9A-Fa-f]{2})")


def _names(values: Iterable[str]) -> tuple[str, ...]:
    # Kubernetes' NewRequestHeaderAuthenticator trims each name; an empty one is an error.
    out: list[str] = []
    for raw in values:
        name = raw.strip()
        if not name:
            raise ConfigError(f"empty header {go_quote(raw)}")  # Go's %q
        out.append(name.lower())
    return tuple(out)


@attrs.frozen
class HeaderNames:
    """The configured header names (lower-cased, trimmed) the header reader looks at."""

    username: tuple[str, ...] = attrs.field(default=(), converter=_names)
    uid: tuple[str, ...] = attrs.field(default=(), converter=_names)
    group: tuple[str, ...] = attrs.field(default=(), converter=_names)
    extra_prefixes: tuple[str, ...] = attrs.field(default=(), converter=_names)

    @property
    def strip_headers(self) -> tuple[str, ...]:
        """Every name the filter deletes after a successful authentication (spec §10.3 step 5)."""
        return (*self.username, *self.uid, *self.group)


def path_unescape(text: str) -> str:
    """Go's ``url.PathUnescape``: ``%XX`` decoded, ``+`` kept; a bad escape returns ``text``."""
    if "%" not in text:
        return text
    raw = text.encode("latin-1", "replace")
    if raw.count(b"%") != len(_ESCAPE.findall(raw)):
        return text  # a malformed escape: Kubernetes keeps the key as it was
    return unquote_to_bytes(raw).decode("utf-8", "replace")


def _first_non_empty(headers: Headers, names: tuple[str, ...]) -> str:
    for name in names:
        value = headers.first(name)
        if value:
            return value
    return ""


def read_user(headers: Headers, names: HeaderNames) -> UserInfo | None:
    """Kubernetes' header reader (spec §10.3); ``None`` when no username header is set.

    It trusts the headers completely: only call it for a request whose proxy was verified.
    """
    name = _first_non_empty(headers, names.username)
    if not name:
        return None
    groups = [v for g in names.group for v in headers.get(g, ()) if v]
    extra: dict[str, list[str]] = {}
    for prefix in names.extra_prefixes:
        for header, values in headers.items():
            if header.startswith(prefix):
                # Lower-case first, then decode: "%4A" becomes "J" (as Kubernetes does).
                extra.setdefault(path_unescape(header[len(prefix) :]), []).extend(values)
    return UserInfo(name, _first_non_empty(headers, names.uid), groups, extra)


def _proxy_name(chain: list[x509.Certificate]) -> str:
    return common_name(chain[0].subject)


class RequestHeaderAuthenticator:
    """Believes ``X-Remote-*`` headers only from a proxy with a verified client certificate.

    Outcomes (spec §10.2): no peer certificate or no CA in force -> no opinion; the proxy
    certificate does not verify -> :class:`~k8sauthn.request.x509.CertificateRejected` (Go's
    raw x509 text); its CN is not allowed -> ``AuthenticationError``; otherwise the header
    reader decides (no username header -> no opinion). The proxy is never the user.
    """

    def __init__(
        self,
        verifier: ChainVerifier[str],
        allowed_names: Source[Collection[str]],
        names: HeaderNames,
    ) -> None:
        # Not for direct use: build with behind_proxy() or from_options(). Every path here
        # goes through ``verifier``, so headers are never read without a verified certificate.
        self._verifier = verifier
        self._allowed = allowed_names
        self.names = names

    @classmethod
    def behind_proxy(
        cls,
        *,
        proxy_ca: CABundle | bytes | Source[CABundle | None],
        allowed_names: Iterable[str] | Source[Collection[str]] = (),
        username_headers: Sequence[str] = DEFAULT_USERNAME_HEADERS,
        uid_headers: Sequence[str] = (),
        group_headers: Sequence[str] = DEFAULT_GROUP_HEADERS,
        extra_headers_prefix: Sequence[str] = DEFAULT_EXTRA_PREFIXES,
        revocation: Source[Revocation] | None = None,
        cache_size: int = 1024,
    ) -> Self:
        """Trust the headers of a proxy whose certificate chains to ``proxy_ca``.

        ``proxy_ca`` is a PEM bundle, a :class:`CABundle`, or a source of them (a reloading
        file, the ConfigMap).
        ``allowed_names`` lists the proxy certificate CNs accepted (exact, case-sensitive);
        empty means any certificate the CA verifies, so keep this CA for proxies only. It may
        be a source too (the ConfigMap's list, which Kubernetes also follows as it changes).
        """
        if isinstance(proxy_ca, bytes):
            proxy_ca = CABundle.from_pem(proxy_ca, name="request-header")
        source: Source[CABundle | None] = (
            Fixed(proxy_ca) if isinstance(proxy_ca, CABundle) else proxy_ca
        )
        names = HeaderNames(username_headers, uid_headers, group_headers, extra_headers_prefix)
        verifier = ChainVerifier(source, _proxy_name, revocation=revocation, cache_size=cache_size)
        # A list of names is fixed; a source (no __iter__) is asked on every request.
        allowed = (
            Fixed(frozenset(allowed_names))
            if isinstance(allowed_names, Iterable)
            else allowed_names
        )
        return cls(verifier, allowed, names)

    @classmethod
    def from_options(
        cls,
        options: RequestHeaderOptions,
        *,
        reload_interval: float = 60.0,
        crl_file: str | os.PathLike[str] | None = None,
        denied: Revocation | None = None,
        on_reload_error: Callable[[Exception], None] | None = None,
    ) -> Self | None:
        """From the ``--requestheader-*`` flags; ``None`` when no client CA file is set.

        The CA file is re-read when it changes (a broken new file keeps the old bundle).
        """
        if not options.client_ca_file:
            return None
        name = f"request-header::{options.client_ca_file}"
        ca = ReloadingFile(
            options.client_ca_file,
            lambda data: CABundle.from_pem(data, name=name),
            interval=reload_interval,
            what="request-header client CA file",
            on_error=on_reload_error,
        )
        return cls.behind_proxy(
            proxy_ca=ca,
            allowed_names=options.allowed_names,
            username_headers=options.username_headers,
            uid_headers=options.uid_headers,
            group_headers=options.group_headers,
            extra_headers_prefix=options.extra_headers_prefix,
            revocation=revocation_source(crl_file, denied, reload_interval, on_reload_error),
        )

    @property
    def strip_headers(self) -> tuple[str, ...]:
        """Header names the HTTP filter removes after a successful authentication."""
        return self.names.strip_headers

    @property
    def strip_prefixes(self) -> tuple[str, ...]:
        """Header-name prefixes the HTTP filter removes after a successful authentication."""
        return self.names.extra_prefixes

    def request_flow(self, request: RequestView, ctx: Context, /) -> Flow[Response | None]:
        return pure(self.authenticate(request, ctx.now))

    def request_step(self, request: RequestView, ctx: Context, /) -> Response | None:
        """The synchronous step (:mod:`k8sauthn.chain._step`): no effect is ever needed."""
        if not request.peer_chain:  # the common case in a chain: no client certificate
            return None
        return self.authenticate(request, ctx.now)

    def authenticate(self, request: RequestView, now: float) -> Response | None:
        """The synchronous core of :meth:`request_flow`."""
        if not request.peer_chain:
            return None
        bundle = self._verifier.current_bundle()
        if bundle is None or not bundle.certs:
            return None
        try:
            cn = self._verifier.verify(request.peer_chain, now, bundle)
        except VerificationFailed as exc:
            raise CertificateRejected(exc.reason, reason=exc.reason, detail=exc.detail) from None
        allowed = self._allowed.value
        if allowed and cn not in allowed:
            raise AuthenticationError(f"x509: subject with cn={cn} is not in the allowed list")
        user = read_user(request.headers, self.names)
        return None if user is None else Response(user)


_STANDARD_WARNINGS: Final = (
    ("username_headers", "username-headers", "X-Remote-User", "header"),
    ("group_headers", "group-headers", "X-Remote-Group", "header"),
    ("extra_headers_prefix", "extra-headers-prefix", "X-Remote-Extra-", "header prefix"),
)
OVERLAPPING_CAS: Final = (
    "--requestheader-client-ca-file and --client-ca-file contain overlapping certificates; "
    "--requestheader-allowed-names must be specified to ensure regular client certificates "
    "cannot set authenticating proxy headers for arbitrary users"
)


def validate_options(
    options: RequestHeaderOptions, *, uid_headers_enabled: bool = True
) -> list[str]:
    """Kubernetes' ``--requestheader-*`` validation (spec §10.1).

    Raises ``ConfigError`` listing every error; returns the warnings (missing standard names).
    ``uid_headers_enabled`` is the ``RemoteRequestHeaderUID`` feature gate (on by default).
    """
    # Kubernetes' order (RequestHeaderAuthenticationOptions.Validate): the four lists, then the
    # UID headers, whose blank-entry check runs only when the feature gate is on.
    errors = [
        f'empty value in "{flag}"'
        for flag, values in (
            ("requestheader-username-headers", options.username_headers),
            ("requestheader-group-headers", options.group_headers),
            ("requestheader-extra-headers-prefix", options.extra_headers_prefix),
            ("requestheader-allowed-names", options.allowed_names),
        )
        if any(not v.strip() for v in values)
    ]
    if not uid_headers_enabled:
        if options.uid_headers:
            errors.append(
                '--requestheader-uid-headers requires the "RemoteRequestHeaderUID" feature '
                "to be enabled"
            )
    else:
        if any(not v.strip() for v in options.uid_headers):
            errors.append('empty value in "requestheader-uid-headers"')
        if options.uid_headers and not any(
            h.lower() == "x-remote-uid" for h in options.uid_headers
        ):
            errors.append(
                "--requestheader-uid-headers is set without specifying the standard X-Remote-Uid "
                "header - API aggregation will not work"
            )
    if errors:
        raise ConfigError(errors)
    warnings: list[str] = []
    for attr, flag, standard, what in _STANDARD_WARNINGS:
        values = getattr(options, attr)
        if values and not any(v.lower() == standard.lower() for v in values):
            warnings.append(
                f"--requestheader-{flag} is set without specifying the standard {standard} "
                f"{what} - API aggregation will not work"
            )
    return warnings


def check_ca_overlap(
    client_ca: CABundle | bytes, requestheader_ca: CABundle | bytes, allowed_names: Sequence[str]
) -> None:
    """ConfigError when both CA bundles share a certificate and no allowed names are set.

    Otherwise any ordinary client certificate could act as the proxy and name any user.
    """
    if allowed_names:
        return
    a = client_ca if isinstance(client_ca, CABundle) else CABundle.from_pem(client_ca)
    b = (
        requestheader_ca
        if isinstance(requestheader_ca, CABundle)
        else CABundle.from_pem(requestheader_ca)
    )
    if {c.fingerprint(_SHA256) for c in a.certs} & {c.fingerprint(_SHA256) for c in b.certs}:
        raise ConfigError(OVERLAPPING_CAS)


def check_ca_files_overlap(
    client_ca_file: str, requestheader_ca_file: str, allowed_names: Sequence[str]
) -> None:
    """:func:`check_ca_overlap` for the two flag values (skipped when either is empty)."""
    if not client_ca_file or not requestheader_ca_file or allowed_names:
        return
    check_ca_overlap(
        CABundle.from_pem(read_bytes(client_ca_file, what="client CA file")),
        CABundle.from_pem(read_bytes(requestheader_ca_file, what="request-header CA file")),
        allowed_names,
    )
