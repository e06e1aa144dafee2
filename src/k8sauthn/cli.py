"""The ``k8sauthn`` command: ``serve`` (the reference server), ``demo`` and ``check``.

* ``k8sauthn serve [kube-apiserver flags]`` serves kubectl's SelfSubjectReview, a TokenReview
  webhook, health and metrics over kube-apiserver-style TLS (docs/server.md, docs/flags.md).
* ``k8sauthn demo`` generates a CA, certificates and a token, serves them on 127.0.0.1 and prints
  the kubectl commands that authenticate with each (docs/server.md).
* ``k8sauthn check [flags] --token T | --token-file F | --cert FILE`` runs one credential through
  the configured chain and prints the user as JSON, or why each authenticator declined (exit 1).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from ._types import Headers, RequestView, Response
from .config._load import read_bytes, read_text
from .config._pflag import Flag, HelpRequested
from .config.flags import CHECK_FLAGS, ServeFlags, parse_serve_args
from .exceptions import AuthenticationError, ConfigError

__all__ = ["main"]

log = logging.getLogger("k8sauthn.server")

_USAGE = """\
k8sauthn authenticates Kubernetes credentials exactly as kube-apiserver does.

Usage:
  k8sauthn serve [flags]   serve SelfSubjectReview / TokenReview over TLS with kube-apiserver flags
  k8sauthn demo [flags]    generate certificates and a token, serve them, print kubectl commands
  k8sauthn check [flags]   authenticate one --token / --token-file / --cert and print the user

Run 'k8sauthn <command> --help' for the flags (docs/flags.md has them all).
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``k8sauthn`` console script; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(_USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    handlers: dict[str, Callable[[list[str]], int]] = {
        "serve": serve_command,
        "check": check_command,
        "demo": _demo_command,
    }
    handler = handlers.get(command)
    if handler is None:
        sys.stderr.write(f'Error: unknown command "{command}" for "k8sauthn"\n\n{_USAGE}')
        return 2
    try:
        return handler(rest)
    except HelpRequested:
        sys.stdout.write(command_help(command))
        return 0
    except ConfigError as exc:
        sys.stderr.write(f"Error: {exc}\nRun 'k8sauthn {command} --help' for usage.\n")
        return 1


def command_help(command: str) -> str:
    """The ``--help`` text of a subcommand, from the same flag tables as the parser."""
    from .config.flags import AUTHENTICATION_FLAGS, SERVER_FLAGS, default_text

    if command == "demo":
        from .server.demo import DEMO_HELP

        return DEMO_HELP
    flags: list[Flag] = [*SERVER_FLAGS, *AUTHENTICATION_FLAGS]
    if command == "check":
        flags = [*CHECK_FLAGS, *AUTHENTICATION_FLAGS]
    lines = [f"Usage:\n  k8sauthn {command} [flags]\n\nFlags:"]
    for f in flags:
        default = default_text(f)
        shown = f" (default {default})" if default else ""
        lines.append(f"      --{f.name} {f.kind}{shown}\n            {f.help}")
    return "\n".join(lines) + "\n"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (test runners replace it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging() -> None:
    """Human-readable server logs on stderr, and access-log lines that are pure JSON."""
    root = logging.getLogger("k8sauthn")
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        # Access lines have their own handler below; they still propagate past "k8sauthn".
        handler.addFilter(lambda record: record.name != "k8sauthn.access")
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    access = logging.getLogger("k8sauthn.access")
    if not any(isinstance(h, _StderrHandler) for h in access.handlers):
        plain = _StderrHandler()
        plain.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(plain)


# -- serve ------------------------------------------------------------------------------------
def serve_command(argv: list[str]) -> int:
    """``k8sauthn serve``: parse, build the chain, serve until interrupted."""
    flags = parse_serve_args(argv)
    configure_logging()
    for warning in flags.warnings:
        log.warning("%s", warning)
    asyncio.run(serve_flags(flags))
    return 0


def build_app(flags: ServeFlags) -> Any:
    """The reference app for parsed flags (raises ``ConfigError`` for a bad configuration)."""
    from .config.build import build
    from .server._metrics import Metrics
    from .server.app import ReferenceApp, TokenReviewPolicy

    metrics = Metrics.create()
    chain = build(flags.authentication, metrics=metrics.authentication if metrics else None)
    if chain.request is None:
        log.warning("no authenticator is configured: every request gets 401")
    policy = TokenReviewPolicy(
        flags.server.tokenreview_allowed_users, flags.server.tokenreview_allowed_groups
    )
    return ReferenceApp.from_chain(
        chain,
        tokenreview=policy,
        metrics=metrics,
        access_log_enabled=flags.server.access_log,
    )


def server_certificates(flags: ServeFlags) -> Any:
    """The serving certificate from the flags, or a generated one (kube-apiserver does that)."""
    from .server import tls

    auth, opts = flags.authentication, flags.server
    cas = [p for p in (auth.client_ca_file, auth.requestheader.client_ca_file) if p]
    if opts.tls_cert_file:
        return tls.ServerCertificates(
            opts.tls_cert_file, opts.tls_private_key_file, cas, interval=opts.reload_interval
        )
    from .server._pki import self_signed_server

    log.warning("no --tls-cert-file: serving a self-signed certificate for localhost")
    pair = self_signed_server()
    ca_pems = [read_bytes(p, what="client CA file") for p in cas]
    return tls.ServerCertificates.from_pem(pair.cert_pem, pair.key_pem, ca_pems)


async def serve_flags(
    flags: ServeFlags, *, on_ready: Callable[[tuple[str, int]], None] | None = None
) -> None:
    """Serve until the process is interrupted; ``on_ready`` gets the bound address."""
    from .server import tls

    app = build_app(flags)
    certs = server_certificates(flags)
    host, port = flags.server.bind_address, flags.server.secure_port
    try:
        sock = tls.bind(host, port)
    except OSError as exc:  # kube-apiserver's wording
        raise ConfigError(
            f"failed to create listener: failed to listen on {host}:{port}: {exc.strerror}"
        ) from None

    def announce(address: tuple[str, int]) -> None:
        host, port = address
        shown = f"[{host}]" if ":" in host else host
        sys.stderr.write(f"k8sauthn serve: listening on https://{shown}:{port}\n")
        sys.stderr.flush()
        if on_ready is not None:
            on_ready(address)

    await tls.serve_async(app, certs, sock=sock, on_ready=announce)


# -- check ------------------------------------------------------------------------------------
def check_command(argv: list[str], out: TextIO | None = None) -> int:
    """``k8sauthn check``: 0 and the user as JSON, or 1 and the reasons."""
    from .config.build import build
    from .io import Authenticator
    from .middleware._common import filter_flow

    out = out or sys.stdout
    flags = parse_serve_args(argv, command="k8sauthn check", extra=CHECK_FLAGS)
    for warning in flags.warnings:
        sys.stderr.write(f"Warning: {warning}\n")
    view = _check_view(flags)
    chain = build(flags.authentication)
    if chain.request is None:
        raise ConfigError("no authenticator is configured")
    audiences = tuple(flags.extra["audience"]) or None
    with Authenticator(chain.request, audiences=chain.api_audiences) as authn:
        ctx = authn.context(audiences)
        try:
            resp = authn.run(filter_flow(chain.request, view, ctx))
        except AuthenticationError as exc:
            report: dict[str, Any] = {
                "authenticated": False,
                "error": str(exc),
                "reasons": _reasons(authn, chain.request, view, audiences),
            }
            out.write(json.dumps(report, indent=2) + "\n")
            return 1
    out.write(json.dumps(_accepted(resp), indent=2) + "\n")
    return 0


def _check_view(flags: ServeFlags) -> RequestView:
    from .middleware._common import der_chain_from_pem

    extra = flags.extra
    token: str = extra["token"]
    if extra["token-file"]:
        token = read_text(extra["token-file"], what="token file").strip()
    cert_file: str = extra["cert"]
    if not token and not cert_file:
        raise ConfigError("one of --token, --token-file or --cert is required")
    headers = Headers((("authorization", "Bearer " + token),) if token else ())
    chain: tuple[bytes, ...] = ()
    if cert_file:
        pem = read_text(cert_file, what="certificate file")
        blocks = [b + "-----END CERTIFICATE-----" for b in pem.split("-----END CERTIFICATE-----")]
        try:
            chain = der_chain_from_pem(b for b in blocks if "-----BEGIN CERTIFICATE-----" in b)
        except AuthenticationError:
            raise ConfigError(f"{cert_file}: not a PEM certificate") from None
        if not chain:
            raise ConfigError(f"{cert_file}: no PEM certificate found")
        if extra["key"]:
            _check_key_matches(chain[0], read_bytes(extra["key"], what="key file"))
    return RequestView(headers=headers, peer_chain=chain)


def _check_key_matches(leaf_der: bytes, key_pem: bytes) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise ConfigError("--key: not an unencrypted PEM private key") from None
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    cert_pub = x509.load_der_x509_certificate(leaf_der).public_key().public_bytes(*fmt)
    if key.public_key().public_bytes(*fmt) != cert_pub:
        raise ConfigError("--key does not match --cert")


def _accepted(resp: Response) -> dict[str, Any]:
    out: dict[str, Any] = {"authenticated": True, "user": resp.user.to_dict()}
    if resp.audiences:
        out["audiences"] = list(resp.audiences)
    return out


def _leaves(obj: Any) -> list[Any]:
    """The request-level authenticators of a chain, unwrapped from unions and decorators."""
    members = getattr(obj, "members", None)
    if members is not None:
        return [leaf for m in members for leaf in _leaves(m)]
    inner = getattr(obj, "inner", None)
    if inner is not None and not hasattr(obj, "token"):
        return _leaves(inner)
    return [obj]


def _name(obj: Any) -> str:
    while getattr(obj, "inner", None) is not None and getattr(obj, "members", None) is None:
        obj = obj.inner
    return type(obj).__name__


def _reasons(
    authn: Any, root: Any, view: RequestView, audiences: tuple[str, ...] | None
) -> list[dict[str, str]]:
    """Each authenticator's own verdict, run one by one (the chain stops at the first error)."""
    from .request.bearer import BearerAuthenticator

    out: list[dict[str, str]] = []
    token = _bearer(view)
    for leaf in _leaves(root):
        if isinstance(leaf, BearerAuthenticator):
            if token is not None:
                for member in _token_members(leaf.token):
                    start = functools.partial(member.token_flow, token, authn.context(audiences))
                    out.append(_verdict(authn, _name(member), start))
        elif getattr(leaf, "token", None) is None:  # the WebSocket carrier never applies here
            start = functools.partial(leaf.request_flow, view, authn.context(audiences))
            out.append(_verdict(authn, _name(leaf), start))
    return out


def _verdict(authn: Any, name: str, start: Callable[[], Any]) -> dict[str, str]:
    # Pure authenticators may raise while building their flow: both are inside the try.
    try:
        resp = authn.run(start())
    except AuthenticationError as exc:
        return {"authenticator": name, "result": "error", "reason": str(exc)}
    verdict = "no opinion" if resp is None else f"accepted as {resp.user.name}"
    return {"authenticator": name, "result": verdict}


def _token_members(token_chain: Any) -> list[Any]:
    obj = token_chain
    while getattr(obj, "members", None) is None and getattr(obj, "inner", None) is not None:
        obj = obj.inner
    members = getattr(obj, "members", None)
    return list(members) if members is not None else [obj]


def _bearer(view: RequestView) -> str | None:
    header = view.headers.first("authorization")
    if header is None or not header.startswith("Bearer "):
        return None
    return header[len("Bearer ") :].strip()


def _demo_command(argv: list[str]) -> int:
    from .server.demo import demo_command

    return demo_command(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
