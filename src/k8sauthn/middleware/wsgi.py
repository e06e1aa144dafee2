"""A WSGI authentication middleware over the synchronous runner.

::

    app.wsgi_app = AuthenticationMiddleware(app.wsgi_app, chain=build(options))

On success the accepted :class:`~k8sauthn.Response` is in ``environ["k8sauthn.user"]`` (and the
user name in ``REMOTE_USER`` when asked), and the credential headers are gone from the environ
(spec §10.4). On failure the client gets 401 with kube-apiserver's Status body.

WSGI servers fold repeated headers into one comma-joined value, so "the first ``Authorization``
header" of spec §7.1 is the whole folded value here: two bearer headers make an invalid token
(401), never the first one silently.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, MutableMapping
from types import TracebackType
from typing import Any, Final, Protocol, TypeAlias

from .._types import Context, Headers, RequestView, Response
from ..chain._step import Pending, RequestStep
from ..exceptions import AuthenticationError
from ..io import Authenticator, ClientFactory
from ..peercert import wsgi_peer_chain
from ._common import (
    UNAUTHORIZED_BODY,
    ChainLike,
    FilterSetup,
    NotAuthenticated,
    accepted,
    log_failure,
    warning_header,
    without_token_protocol,
)

__all__ = [
    "USER_KEY",
    "WARNINGS_KEY",
    "AuthenticationMiddleware",
    "EnvironAuthenticator",
    "PeerChainReader",
    "WSGIApp",
    "environ_headers",
    "environ_path",
]

Environ: TypeAlias = MutableMapping[str, Any]
_ExcInfo: TypeAlias = tuple[type[BaseException], BaseException, TracebackType | None]


class StartResponse(Protocol):
    def __call__(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: _ExcInfo | None = ...,
        /,
    ) -> Callable[[bytes], object]: ...


WSGIApp: TypeAlias = Callable[[Environ, StartResponse], Iterable[bytes]]
PeerChainReader: TypeAlias = Callable[[Environ], tuple[bytes, ...]]

USER_KEY: Final = "k8sauthn.user"
WARNINGS_KEY: Final = "k8sauthn.warnings"
_PROTOCOL_KEY: Final = "HTTP_SEC_WEBSOCKET_PROTOCOL"
_CGI_HEADERS: Final = frozenset({"content-type", "content-length"})


def environ_headers(environ: Environ) -> Headers:
    """The request headers of a WSGI environ (``HTTP_X_Y`` -> ``x-y``), in environ order."""
    pairs = [
        (key[5:].replace("_", "-"), value)
        for key, value in environ.items()
        if key.startswith("HTTP_") and isinstance(value, str)
    ]
    for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
        if environ.get(key):
            pairs.append((name, environ[key]))
    return Headers(pairs)


def environ_path(environ: Environ) -> str:
    """``SCRIPT_NAME + PATH_INFO`` as text (PEP 3333 carries the bytes as latin-1)."""
    raw = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    return raw.encode("latin-1").decode("utf-8", "surrogateescape") or "/"


class _EnvironHeaders(Headers):
    """The environ's headers, read key by key: the whole map is built only when one needs it.

    A cached bearer token reads a single header, so ``first`` looks its CGI key up directly;
    any other use builds the map of :func:`environ_headers` on first access (``__getattr__`` is
    only consulted for the unset ``_map`` / ``_pairs`` slots).
    """

    __slots__ = ("_environ",)

    def __init__(self, environ: Environ) -> None:  # no super(): built lazily
        self._environ = environ

    def __getattr__(self, name: str) -> Any:
        if name not in ("_map", "_pairs"):
            raise AttributeError(name)
        full = environ_headers(self._environ)
        self._map, self._pairs = full._map, full._pairs
        return getattr(full, name)

    def first(self, name: str) -> str | None:
        key = name.lower()
        if "_" in key or key in _CGI_HEADERS or not key.isascii():
            return super().first(name)  # names with no single HTTP_ key: the exact slow path
        value = self._environ.get("HTTP_" + key.upper().replace("-", "_"))
        return value if isinstance(value, str) else None


class EnvironAuthenticator:
    """Authenticates a WSGI environ; shared by the middleware, Flask and Django integrations.

    Takes a ready ``authenticator`` (:class:`~k8sauthn.io.Authenticator`) or a built ``chain``;
    ``peer_chain`` reads client certificates from the environ (default:
    ``k8sauthn.peercert.wsgi_peer_chain``: gunicorn's TLS socket, or ``SSL_CLIENT_CERT`` from
    werkzeug and mod_wsgi; pass ``TrustedProxyCertificate`` behind a TLS-terminating proxy).
    ``remote_user`` also sets ``REMOTE_USER`` to the accepted user name.
    """

    def __init__(
        self,
        *,
        authenticator: Authenticator | None = None,
        chain: ChainLike | None = None,
        skip_paths: Iterable[str] = (),
        strip_headers: Iterable[str] = (),
        strip_prefixes: Iterable[str] = (),
        www_authenticate: str | None = "Bearer",
        peer_chain: PeerChainReader = wsgi_peer_chain,
        remote_user: bool = False,
        client_factory: ClientFactory | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        setup = FilterSetup.create(
            authenticator,
            chain,
            lambda root, audiences: Authenticator(
                root, client_factory=client_factory, clock=clock, audiences=audiences
            ),
            skip_paths=skip_paths,
            strip_headers=strip_headers,
            strip_prefixes=strip_prefixes,
            www_authenticate=www_authenticate,
        )
        self.authenticator = setup.authenticator
        self.policy = setup.policy
        self._step: RequestStep | None = setup.step
        self.remote_user = remote_user
        self._peer_chain = peer_chain
        self._has_skips = bool(self.policy.skip_paths or self.policy.skip_prefixes)

    def skips(self, environ: Environ) -> bool:
        """Whether this request bypasses authentication (a skipped path, or no chain at all)."""
        return self._step is None or (self._has_skips and self.policy.skips(environ_path(environ)))

    def view(self, environ: Environ) -> RequestView:
        """The :class:`~k8sauthn.RequestView` the chain sees for this environ."""
        return RequestView(
            headers=_EnvironHeaders(environ),
            peer_chain=self._peer_chain(environ),
            path=environ_path(environ),
        )

    def context(self) -> Context:
        """A fresh context for one request: now, and the API audiences."""
        authn = self.authenticator
        return authn.context() if authn is not None else Context(now=time.time())

    def authenticate(self, environ: Environ, ctx: Context | None = None) -> Response:
        """Accept the request or raise :class:`~k8sauthn.exceptions.AuthenticationError`.

        On success the credential headers are deleted from ``environ``, the response is stored in
        ``environ["k8sauthn.user"]`` and warnings in ``environ["k8sauthn.warnings"]``. Pass your
        own ``ctx`` to read the warnings recorded before a rejection.
        """
        step, authn = self._step, self.authenticator
        if step is None or authn is None:
            raise NotAuthenticated()
        if ctx is None:
            ctx = authn.context()
        outcome = step(self.view(environ), ctx)
        if type(outcome) is Pending:
            outcome = authn.run(outcome.flow)
        resp = accepted(outcome, ctx)  # type: ignore[arg-type]  # Pending has just been run
        self._strip(environ)
        environ[USER_KEY] = resp
        environ[WARNINGS_KEY] = tuple(ctx.warnings)
        if self.remote_user and resp.user.name:
            environ["REMOTE_USER"] = resp.user.name
        return resp

    def _strip(self, environ: Environ) -> None:
        policy = self.policy
        # WSGI turns "-" into "_": a header named x_remote_user is stripped too (over-stripping
        # a credential look-alike is the safe direction).
        for key in [k for k in environ if k.startswith("HTTP_")]:
            if policy.strips(key[5:].replace("_", "-").lower()):
                del environ[key]
        protocols = environ.get(_PROTOCOL_KEY)
        if isinstance(protocols, str):
            rest = without_token_protocol([protocols])
            if rest is None:
                del environ[_PROTOCOL_KEY]
            else:
                environ[_PROTOCOL_KEY] = rest

    def failure_headers(
        self, body: bytes = UNAUTHORIZED_BODY, warnings: Iterable[str] = ()
    ) -> list[tuple[str, str]]:
        """Headers of a Status failure response carrying ``body`` (and the warnings, if any)."""
        return [
            *self.policy.failure_headers(),
            ("content-length", str(len(body))),
            *(("Warning", warning_header(w)) for w in warnings),
        ]

    def close(self) -> None:
        """Close the runner's HTTP clients (webhook, OIDC discovery)."""
        if self.authenticator is not None:
            self.authenticator.close()


class AuthenticationMiddleware:
    """WSGI middleware running kube-apiserver's authentication filter (spec §15).

    Takes the keyword arguments of :class:`EnvironAuthenticator`.
    """

    def __init__(self, app: WSGIApp, /, **kwargs: Any) -> None:
        self.app = app
        self.auth = EnvironAuthenticator(**kwargs)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if self.auth.skips(environ):
            return self.app(environ, start_response)
        ctx = self.auth.context()
        try:
            self.auth.authenticate(environ, ctx)
        except AuthenticationError as exc:
            log_failure(exc)
            # kube-apiserver's warning recorder wraps the filter: a 401 carries warnings too.
            start_response("401 Unauthorized", self.auth.failure_headers(warnings=ctx.warnings))
            return [UNAUTHORIZED_BODY]
        warnings = environ[WARNINGS_KEY]
        if warnings:
            return self.app(environ, _with_warnings(start_response, warnings))
        return self.app(environ, start_response)

    def close(self) -> None:
        """Close the runner's HTTP clients."""
        self.auth.close()


def _with_warnings(start_response: StartResponse, warnings: tuple[str, ...]) -> StartResponse:
    extra = [("Warning", warning_header(w)) for w in warnings]

    def starter(
        status: str, headers: list[tuple[str, str]], exc_info: _ExcInfo | None = None, /
    ) -> Callable[[bytes], object]:
        return start_response(status, [*headers, *extra], exc_info)

    return starter
