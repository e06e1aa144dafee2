"""kube-apiserver's authentication and serving flags, parsed the way Go's pflag parses them.

``parse_serve_args(argv)`` returns :class:`ServeFlags`: an
:class:`~k8sauthn.config.options.AuthenticationOptions`, a :class:`ServerOptions`, and which flags
were given explicitly (kube-apiserver's "flags set" tracking, which decides the ``--oidc-*`` and
``--anonymous-auth`` exclusivity rules). The syntax is pflag's (``_pflag.py``): ``--flag=value``
or ``--flag value``, bare ``--bool``, comma lists for string slices, repeatable
``--oidc-required-claim key=value``, Go durations, ``_`` accepted for ``-`` in names.

``--config FILE`` holds the same settings as YAML, keyed by flag name; flags on the command line
override the file. The flag table (``_flag_table.py``) is also the source of ``docs/flags.md``
(:func:`flags_markdown`), so the reference cannot drift from the parser.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ..exceptions import ConfigError
from . import _load
from ._flag_table import AUTHENTICATION_FLAGS, CHECK_FLAGS, IGNORED_FLAGS, SERVER_FLAGS
from ._pflag import Flag, FlagError, FlagSet, parse_value
from .options import AuthenticationOptions, OIDCOptions, RequestHeaderOptions

__all__ = [
    "AUTHENTICATION_FLAGS",
    "CHECK_FLAGS",
    "SERVER_FLAGS",
    "FlagError",
    "ServeFlags",
    "ServerOptions",
    "default_text",
    "flags_markdown",
    "parse_serve_args",
]

_S, _B, _L, _D, _I, _M = "string", "bool", "strings", "duration", "int", "map"


@attrs.frozen
class ServerOptions:
    """How ``k8sauthn serve`` listens, and who may use its TokenReview endpoint."""

    bind_address: str = "0.0.0.0"
    secure_port: int = 6443
    tls_cert_file: str = ""
    tls_private_key_file: str = ""
    tokenreview_allowed_users: tuple[str, ...] = ()
    tokenreview_allowed_groups: tuple[str, ...] = ()
    access_log: bool = True
    reload_interval: float = 60.0


@attrs.frozen
class ServeFlags:
    """A parsed command line: options, the flags given explicitly, and warnings to print."""

    authentication: AuthenticationOptions
    server: ServerOptions
    explicit: frozenset[str]
    warnings: tuple[str, ...] = ()
    extra: Mapping[str, Any] = attrs.field(factory=dict)


def _flagset(extra: Sequence[Flag]) -> FlagSet:
    return FlagSet((*SERVER_FLAGS, *AUTHENTICATION_FLAGS, *extra), ignored=IGNORED_FLAGS)


def parse_serve_args(
    argv: Sequence[str], *, command: str = "k8sauthn serve", extra: Sequence[Flag] = ()
) -> ServeFlags:
    """Parse and validate a command line; raises :class:`FlagError` / ``ConfigError``."""
    fs = _flagset(extra)
    cli = fs.parse(argv)
    if cli.positional:
        args = "[" + " ".join(f'"{a}"' for a in cli.positional) + "]"
        raise FlagError(f'"{command}" does not take any arguments, got {args}')
    values, explicit, warnings = dict(cli.values), set(cli.explicit), list(cli.warnings)
    config_file = values.get("config", "")
    if config_file:
        from_file = _read_config_file(fs, config_file)
        for name, value in from_file.items():
            if name not in cli.explicit:
                values[name] = value
                explicit.add(name)
    return _build(values, frozenset(explicit), warnings, extra)


def _read_config_file(fs: FlagSet, path: str) -> dict[str, Any]:
    import yaml  # lazily: a runtime dependency only the config loaders need

    text = _load.read_text(path, what="config file")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--config {path}: invalid YAML: {exc}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"--config {path}: must be a mapping of flag names to values")
    out: dict[str, Any] = {}
    errors: list[str] = []
    for key, raw in doc.items():
        name = str(key).replace("_", "-")
        flag = fs.lookup(name)
        if flag is None or name == "config":
            errors.append(f"--config {path}: unknown setting {str(key)!r}")
            continue
        try:
            out[name] = _from_yaml(flag, raw)
        except FlagError as exc:
            errors.append(f"--config {path}: {name}: {exc}")
    if errors:
        raise ConfigError(errors)
    return out


def _from_yaml(flag: Flag, raw: Any) -> Any:
    """A YAML value for ``flag``: native YAML types, or the flag's own string syntax."""
    if flag.kind == _L and isinstance(raw, list):
        return tuple(str(v) for v in raw)
    if flag.kind == _M and isinstance(raw, dict):
        return tuple((str(k).strip(), str(v).strip()) for k, v in raw.items())
    if flag.kind == _M and isinstance(raw, list):
        pairs: list[tuple[str, str]] = []
        for item in raw:
            pairs.extend(parse_value(flag, str(item)))
        return tuple(pairs)
    if flag.kind == _B and isinstance(raw, bool):
        return raw
    if flag.kind == _I and isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if flag.kind == _D and isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)  # plain numbers are seconds
    if isinstance(raw, dict | list) or raw is None:
        raise FlagError(f"unexpected value of type {type(raw).__name__}")
    text = str(raw).lower() if isinstance(raw, bool) else str(raw)
    return parse_value(flag, text)


def _build(
    v: Mapping[str, Any],
    explicit: frozenset[str],
    warnings: list[str],
    extra: Sequence[Flag],
) -> ServeFlags:
    errors: list[str] = []
    oidc_set = any(n.startswith("oidc-") for n in explicit)
    # kube-apiserver BuiltInAuthenticationOptions.validateOIDCOptions.
    if not v["authentication-config"]:
        if oidc_set and not (v["oidc-issuer-url"] and v["oidc-client-id"]):
            errors.append(
                "oidc-issuer-url and oidc-client-id must be specified together when any oidc-* "
                "flags are set"
            )
    elif oidc_set:
        errors.append("authentication-config file and oidc-* flags are mutually exclusive")
    rh_options = RequestHeaderOptions(
        client_ca_file=v["requestheader-client-ca-file"],
        allowed_names=v["requestheader-allowed-names"],
        username_headers=v["requestheader-username-headers"],
        uid_headers=v["requestheader-uid-headers"],
        group_headers=v["requestheader-group-headers"],
        extra_headers_prefix=v["requestheader-extra-headers-prefix"],
    )
    errors += _requestheader_problems(rh_options, v["client-ca-file"], warnings)
    port = v["secure-port"]
    if not 0 <= port <= 65535:
        errors.append(f"--secure-port {port} must be between 0 and 65535, inclusive")
    if bool(v["tls-cert-file"]) != bool(v["tls-private-key-file"]):
        errors.append("missing filename for serving cert")
    if errors:
        raise ConfigError(errors)

    auth = AuthenticationOptions(
        token_auth_file=v["token-auth-file"],
        client_ca_file=v["client-ca-file"],
        requestheader=rh_options,
        enable_bootstrap_token_auth=v["enable-bootstrap-token-auth"],
        bootstrap_token_dir=v["bootstrap-token-dir"],
        authentication_token_webhook_config_file=v["authentication-token-webhook-config-file"],
        authentication_token_webhook_version=v["authentication-token-webhook-version"],
        authentication_token_webhook_cache_ttl=v["authentication-token-webhook-cache-ttl"],
        oidc=OIDCOptions(
            issuer_url=v["oidc-issuer-url"],
            client_id=v["oidc-client-id"],
            ca_file=v["oidc-ca-file"],
            username_claim=v["oidc-username-claim"],
            username_prefix=v["oidc-username-prefix"],
            groups_claim=v["oidc-groups-claim"],
            groups_prefix=v["oidc-groups-prefix"],
            signing_algs=v["oidc-signing-algs"],
            required_claims=_dedupe_pairs(v["oidc-required-claim"]),
        ),
        authentication_config=v["authentication-config"],
        anonymous_auth=v["anonymous-auth"] if "anonymous-auth" in explicit else None,
        api_audiences=v["api-audiences"],
        reload_interval=v["reload-interval"],
        reload_token_file=v["token-auth-file-reload"],
    )
    server = ServerOptions(
        bind_address=v["bind-address"],
        secure_port=port,
        tls_cert_file=v["tls-cert-file"],
        tls_private_key_file=v["tls-private-key-file"],
        tokenreview_allowed_users=v["tokenreview-allowed-users"],
        tokenreview_allowed_groups=v["tokenreview-allowed-groups"],
        access_log=v["access-log"],
        reload_interval=v["reload-interval"],
    )
    return ServeFlags(
        auth, server, explicit, tuple(warnings), extra={f.name: v[f.name] for f in extra}
    )


def _requestheader_problems(
    options: RequestHeaderOptions, client_ca_file: str, warnings: list[str]
) -> list[str]:
    """kube-apiserver's ``--requestheader-*`` checks (spec §10.1): errors, and warnings added."""
    from ..request.requestheader import (
        OVERLAPPING_CAS,
        check_ca_files_overlap,
        validate_options,
    )

    errors: list[str] = []
    try:
        warnings.extend(validate_options(options))
    except ConfigError as exc:
        errors += [str(e) for e in exc.errors]
    try:
        check_ca_files_overlap(client_ca_file, options.client_ca_file, options.allowed_names)
    except ConfigError as exc:
        # Go skips the check when a bundle cannot be read; loading it reports that later.
        if str(exc) == OVERLAPPING_CAS:
            errors.append(OVERLAPPING_CAS)
    return errors


def _dedupe_pairs(pairs: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    # A Go map: a repeated key keeps its last value.
    out: dict[str, str] = {}
    for k, val in pairs:
        out[k] = val
    return tuple(out.items())


def default_text(flag: Flag) -> str:
    """A flag's default as pflag prints it (``2m0s``, ``[RS256]``, ``true``)."""
    d = flag.default
    if flag.kind == _B:
        return "true" if d else "false"
    if flag.kind == _D:
        return _go_duration(float(d))
    if flag.kind in (_L, _M):
        return "[" + ",".join(d) + "]" if d else ""
    return str(d)


def _go_duration(seconds: float) -> str:
    # Go's Duration.String for whole seconds, enough for our defaults ("2m0s", "1m0s", "10s").
    whole = int(seconds)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m}m{s}s"
    if m:
        return f"{m}m{s}s"
    return f"{s}s"


def flags_markdown() -> str:
    """``docs/flags.md``: the flag reference, generated from the tables above."""
    lines = [
        "# `k8sauthn serve` flags",
        "",
        "<!-- Generated by k8sauthn.config.flags.flags_markdown(); "
        "tests/config/test_flags.py fails when this file drifts. -->",
        "",
        "Syntax is kube-apiserver's (Go pflag): `--flag=value` or `--flag value`, a bare `--flag` "
        "sets a boolean to true (`--flag=false` to clear it), string lists are comma-separated "
        "and may be repeated, durations are Go durations (`2m`, `10s`, `1h30m`), `_` may be "
        "used for `-`. `--config FILE` holds the same settings as YAML keyed by flag name "
        "(lists as YAML lists, `oidc-required-claim` as a mapping); command-line flags win.",
        "",
    ]
    groups: dict[str, list[Flag]] = {}
    for flag in (*SERVER_FLAGS, *AUTHENTICATION_FLAGS):
        groups.setdefault(flag.group, []).append(flag)
    for group, flags in groups.items():
        lines += [f"## {group}", "", "| flag | type | default | meaning |", "|---|---|---|---|"]
        for f in sorted(flags, key=lambda f: f.name):
            default = default_text(f)
            cell = f"`{default}`" if default else ""
            lines.append(f"| `--{f.name}` | {f.kind} | {cell} | {f.help} |")
        lines.append("")
    lines += [
        "## `k8sauthn check` only",
        "",
        "| flag | type | meaning |",
        "|---|---|---|",
        *(f"| `--{f.name}` | {f.kind} | {f.help} |" for f in CHECK_FLAGS),
        "",
        "## Accepted and ignored",
        "",
        "These kube-apiserver flags do not concern authentication. They are accepted, so a "
        "cluster's command line works unchanged, and ignored with a warning:",
        "",
        ", ".join(f"`--{n}`" for n in sorted(IGNORED_FLAGS)) + ".",
        "",
    ]
    return "\n".join(lines)
