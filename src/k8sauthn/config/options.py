"""``AuthenticationOptions``: kube-apiserver's authentication settings as one frozen value.

Field names follow the kube-apiserver flags (``--token-auth-file`` -> ``token_auth_file``).
``config.flags`` fills it from a command line; ``config.build`` turns it into an authenticator
graph in kube-apiserver's order.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

__all__ = ["AuthenticationOptions", "OIDCOptions", "RequestHeaderOptions"]


def _tuple(value: Iterable[str] | str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


@attrs.frozen
class RequestHeaderOptions:
    """The ``--requestheader-*`` flags (spec §10.1); nothing is enabled without a client CA."""

    client_ca_file: str = ""
    allowed_names: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    username_headers: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    uid_headers: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    group_headers: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    extra_headers_prefix: tuple[str, ...] = attrs.field(default=(), converter=_tuple)


@attrs.frozen
class OIDCOptions:
    """The legacy ``--oidc-*`` flags (spec §13.1 B). Defaults are kube-apiserver's."""

    issuer_url: str = ""
    client_id: str = ""
    ca_file: str = ""
    username_claim: str = "sub"
    username_prefix: str = ""
    groups_claim: str = ""
    groups_prefix: str = ""
    signing_algs: tuple[str, ...] = attrs.field(default=("RS256",), converter=_tuple)
    required_claims: tuple[tuple[str, str], ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.issuer_url or self.client_id)


@attrs.frozen
class AuthenticationOptions:
    """Everything that decides the authenticator graph, named after kube-apiserver's flags.

    ``anonymous_auth`` is ``None`` when the flag was not given (it then defaults to true unless
    the authentication config file has an ``anonymous`` section; setting both is an error).
    """

    token_auth_file: str = ""
    client_ca_file: str = ""
    requestheader: RequestHeaderOptions = RequestHeaderOptions()
    enable_bootstrap_token_auth: bool = False
    bootstrap_token_dir: str = ""
    authentication_token_webhook_config_file: str = ""
    authentication_token_webhook_version: str = "v1beta1"
    authentication_token_webhook_cache_ttl: float = 120.0
    oidc: OIDCOptions = OIDCOptions()
    authentication_config: str = ""
    anonymous_auth: bool | None = None
    api_audiences: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    # Not flags in kube-apiserver: the outer token cache TTLs (spec §3.2, §14.1).
    token_success_cache_ttl: float = 10.0
    token_failure_cache_ttl: float = 0.0
    # Beyond Kubernetes: re-read changed files (token file, CA bundles) at most this often.
    reload_interval: float = 60.0
    reload_token_file: bool = False
