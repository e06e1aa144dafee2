"""The chain builder: kube-apiserver's assembly order and anonymous decision (spec §3, §6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from k8sauthn import (
    ALL_AUTHENTICATED,
    ANONYMOUS_USER,
    AuthenticationError,
    ConfigError,
    Context,
    Headers,
    InvalidBearerToken,
    RequestView,
)
from k8sauthn.chain import (
    AudienceAgnosticRequest,
    AudienceAgnosticToken,
    AuthenticatedGroupAdder,
    CachedTokenAuthenticator,
    RequestUnion,
    TokenUnion,
)
from k8sauthn.config import build as build_module
from k8sauthn.config.build import STANDARD_STRIP_HEADERS, Chain, build
from k8sauthn.config.options import AuthenticationOptions, RequestHeaderOptions
from k8sauthn.io import AsyncAuthenticator, Authenticator
from k8sauthn.request import (
    AnonymousAuthenticator,
    AnonymousConfig,
    BearerAuthenticator,
    WebSocketProtocolAuthenticator,
)
from k8sauthn.token import ReloadingStaticTokenAuthenticator, StaticTokenAuthenticator

from .._fakes import FakeRequest, FakeToken, user
from .._pki import Cert


@pytest.fixture
def token_file(tmp_path: Path) -> str:
    path = tmp_path / "tokens.csv"
    path.write_text('alice-token,alice,1,"dev"\n')
    return str(path)


def bearer(token: str) -> RequestView:
    return RequestView(headers=Headers([("Authorization", f"Bearer {token}")]))


def members(chain: Chain) -> list[object]:
    """The request authenticators inside the group adder, in order."""
    root = chain.request
    assert isinstance(root, RequestUnion)
    adder = root.members[0]
    assert isinstance(adder, AuthenticatedGroupAdder)
    inner = adder.inner
    return list(inner.members) if isinstance(inner, RequestUnion) else [inner]


class TestShapes:
    def test_nothing_configured_and_anonymous_off(self) -> None:
        """No authenticator and anonymous disabled: authentication is off."""
        chain = build(AuthenticationOptions(anonymous_auth=False))
        assert (chain.request, chain.token) == (None, None)

    def test_anonymous_alone(self) -> None:
        """Only anonymous (the default): the anonymous authenticator alone, no group adder."""
        chain = build(AuthenticationOptions())
        assert isinstance(chain.request, AnonymousAuthenticator)
        assert chain.anonymous.enabled

    def test_token_file_chain_shape(self, token_file: str) -> None:
        """Token file: fail-on-error union of group adder (bearer, websocket) and anonymous."""
        chain = build(AuthenticationOptions(token_auth_file=token_file))
        root = chain.request
        assert isinstance(root, RequestUnion)
        assert root.fail_on_error
        assert isinstance(root.members[1], AnonymousAuthenticator)
        bearer_auth, ws = members(chain)
        assert isinstance(bearer_auth, BearerAuthenticator)
        assert isinstance(ws, WebSocketProtocolAuthenticator)
        assert bearer_auth.token is ws.token is chain.token  # one shared chain, one cache
        cache = chain.token
        assert isinstance(cache, CachedTokenAuthenticator)
        assert (cache.success_ttl, cache.failure_ttl, cache.cache_errors) == (10.0, 0.0, True)
        assert isinstance(cache.inner, AudienceAgnosticToken)
        assert isinstance(cache.inner.inner, StaticTokenAuthenticator)

    def test_no_anonymous_means_group_adder_root(self, token_file: str) -> None:
        """With anonymous disabled the group adder is the root."""
        chain = build(AuthenticationOptions(token_auth_file=token_file, anonymous_auth=False))
        assert isinstance(chain.request, AuthenticatedGroupAdder)
        assert not chain.anonymous.enabled

    def test_zero_ttls_mean_no_outer_cache(self, token_file: str) -> None:
        """Both outer TTLs 0: the token union is used without a cache."""
        chain = build(
            AuthenticationOptions(
                token_auth_file=token_file, token_success_cache_ttl=0, token_failure_cache_ttl=0
            )
        )
        assert isinstance(chain.token, AudienceAgnosticToken)

    def test_reloading_token_file(self, token_file: str) -> None:
        """reload_token_file follows the file (beyond Kubernetes)."""
        chain = build(AuthenticationOptions(token_auth_file=token_file, reload_token_file=True))
        assert isinstance(chain.token, CachedTokenAuthenticator)
        assert isinstance(chain.token.inner, AudienceAgnosticToken)
        assert isinstance(chain.token.inner.inner, ReloadingStaticTokenAuthenticator)

    def test_bad_token_file_is_a_config_error(self, tmp_path: Path) -> None:
        """A malformed token file fails the build."""
        path = tmp_path / "bad.csv"
        path.write_text("x,y\n")
        with pytest.raises(ConfigError, match="at least 3 columns"):
            build(AuthenticationOptions(token_auth_file=str(path)))


class TestOrder:
    def test_token_chain_order_and_wrapping(
        self, monkeypatch: pytest.MonkeyPatch, token_file: str
    ) -> None:
        """static, bootstrap, JWT (audience-agnostic) then webhook (not wrapped), one union."""
        boot, jwt, hook = FakeToken({}), FakeToken({}), FakeToken({})
        monkeypatch.setattr(build_module, "_bootstrap", lambda o: boot)
        monkeypatch.setattr(build_module, "_authentication_config", lambda o, m=None: (jwt, None))
        monkeypatch.setattr(build_module, "_webhook", lambda o: hook)
        chain = build(AuthenticationOptions(token_auth_file=token_file, api_audiences=("api",)))
        assert isinstance(chain.token, CachedTokenAuthenticator)
        union = chain.token.inner
        assert isinstance(union, TokenUnion)
        assert not union.fail_on_error
        static, b, j, w = union.members
        assert isinstance(static, AudienceAgnosticToken)
        assert isinstance(static.inner, StaticTokenAuthenticator)
        assert isinstance(b, AudienceAgnosticToken)
        assert b.inner is boot
        assert b.implicit == ("api",)
        assert isinstance(j, AudienceAgnosticToken)
        assert j.inner is jwt
        assert w is hook

    def test_request_chain_order_and_wrapping(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """request-header (audience-agnostic), x509 (not wrapped), then bearer and websocket."""
        rh, x509 = FakeRequest(None), FakeRequest(None)
        monkeypatch.setattr(build_module, "_request_header", lambda o: rh)
        monkeypatch.setattr(build_module, "_x509", lambda o, m=None: x509)
        monkeypatch.setattr(build_module, "_webhook", lambda o: FakeToken({}))
        chain = build(AuthenticationOptions(api_audiences=("api",)))
        first, second, third, fourth = members(chain)
        assert isinstance(first, AudienceAgnosticRequest)
        assert first.inner is rh
        assert second is x509
        assert isinstance(third, BearerAuthenticator)
        assert isinstance(fourth, WebSocketProtocolAuthenticator)

    def test_request_only_chain_has_no_token_chain(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """x509 alone: no bearer/websocket members and no token chain."""
        x509 = FakeRequest(user("cert-user"))
        monkeypatch.setattr(build_module, "_x509", lambda o, m=None: x509)
        chain = build(AuthenticationOptions(anonymous_auth=False))
        assert chain.token is None
        assert isinstance(chain.request, AuthenticatedGroupAdder)
        assert chain.request.inner is x509


class TestAnonymousDecision:
    def test_flag_and_config_section_conflict(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """--anonymous-auth set (even to its default) with a config-file section is an error."""
        monkeypatch.setattr(
            build_module, "_authentication_config", lambda o, m=None: (None, AnonymousConfig())
        )
        with pytest.raises(ConfigError) as info:
            build(AuthenticationOptions(anonymous_auth=True))
        assert str(info.value) == (
            "anonymous: Forbidden: --anonymous-auth flag cannot be set when anonymous field is "
            "configured in authentication configuration file"
        )

    def test_config_section_is_used(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The config file's section (with conditions) decides when the flag is unset."""
        section = AnonymousConfig(conditions=("/healthz",))
        monkeypatch.setattr(
            build_module, "_authentication_config", lambda o, m=None: (None, section)
        )
        chain = build(AuthenticationOptions(), always_allow_authorizer=True)
        assert chain.anonymous == section  # AlwaysAllow does not affect the config section
        runner = Authenticator(chain.request)  # type: ignore[arg-type]
        assert runner.authenticate_request(RequestView(path="/healthz")) is not None
        assert runner.authenticate_request(RequestView(path="/api")) is None

    def test_invalid_config_section(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An invalid section from the config file is rejected."""
        bad = AnonymousConfig(enabled=False, conditions=("/x",))
        monkeypatch.setattr(build_module, "_authentication_config", lambda o, m=None: (None, bad))
        with pytest.raises(ConfigError, match="enabled should be set to true"):
            build(AuthenticationOptions())

    def test_always_allow_forces_flag_off(self) -> None:
        """An AlwaysAllow authorizer turns --anonymous-auth off."""
        chain = build(AuthenticationOptions(anonymous_auth=True), always_allow_authorizer=True)
        assert chain.request is None
        assert not chain.anonymous.enabled


class TestBehaviour:
    def test_bearer_token_user_gets_authenticated_group(self, token_file: str) -> None:
        """A good token authenticates with system:authenticated appended."""
        chain = build(AuthenticationOptions(token_auth_file=token_file))
        resp = Authenticator(chain.request).authenticate_request(bearer("alice-token"))  # type: ignore[arg-type]
        assert resp is not None
        assert (resp.user.name, resp.user.groups) == ("alice", ("dev", ALL_AUTHENTICATED))

    def test_bad_token_is_never_anonymous(self, token_file: str) -> None:
        """An unknown bearer token is an error even though anonymous is enabled."""
        chain = build(AuthenticationOptions(token_auth_file=token_file))
        with pytest.raises(InvalidBearerToken):
            Authenticator(chain.request).authenticate_request(bearer("wrong"))  # type: ignore[arg-type]

    async def test_no_credentials_is_anonymous(self, token_file: str) -> None:
        """No credential at all falls through to anonymous, without system:authenticated."""
        chain = build(AuthenticationOptions(token_auth_file=token_file))
        resp = await AsyncAuthenticator(chain.request).authenticate_request(RequestView())  # type: ignore[arg-type]
        assert resp is not None
        assert resp.user.name == ANONYMOUS_USER
        assert ALL_AUTHENTICATED not in resp.user.groups

    def test_api_audiences_reported(self, token_file: str) -> None:
        """With API audiences, a static token answers for them and reports them."""
        chain = build(AuthenticationOptions(token_auth_file=token_file, api_audiences=("api",)))
        runner = Authenticator(chain.request, audiences=chain.api_audiences)  # type: ignore[arg-type]
        resp = runner.authenticate_request(bearer("alice-token"))
        assert resp is not None
        assert resp.audiences == ("api",)
        with pytest.raises(AuthenticationError):
            runner.authenticate_token("alice-token", audiences=["other"])

    def test_errors_from_members_aggregate(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Errors from several token authenticators reach the caller together."""
        monkeypatch.setattr(
            build_module, "_bootstrap", lambda o: FakeToken({"t": AuthenticationError("a")})
        )
        monkeypatch.setattr(
            build_module, "_webhook", lambda o: FakeToken({"t": AuthenticationError("b")})
        )
        chain = build(AuthenticationOptions())
        with pytest.raises(AuthenticationError, match=r"^\[a, b\]$"):
            Authenticator(chain.request).authenticate_request(bearer("t"))  # type: ignore[arg-type]

    def test_context_reaches_token_chain(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The token chain sees the request's time."""
        fake = FakeToken({"t": user()})
        monkeypatch.setattr(build_module, "_webhook", lambda o: fake)
        chain = build(AuthenticationOptions())
        Authenticator(chain.request, clock=lambda: 42.0).authenticate_request(bearer("t"))  # type: ignore[arg-type]
        assert fake.contexts[0].now == 42.0


class TestStripping:
    def test_standard_headers(self) -> None:
        """Authorization and the standard X-Remote-* names are always stripped."""
        chain = build(AuthenticationOptions())
        assert chain.strip_headers == STANDARD_STRIP_HEADERS
        assert chain.strip_prefixes == ("X-Remote-Extra-",)

    def test_configured_request_headers(self, tmp_path: Path, root_ca: Cert) -> None:
        """Configured front-proxy names and prefixes are added when request-header is on."""
        ca_file, _ = root_ca.write(tmp_path, "proxy-ca")
        rh = RequestHeaderOptions(
            client_ca_file=str(ca_file),
            username_headers=("X-Remote-User", "X-Proxy-User"),
            uid_headers=("X-Proxy-Uid",),
            group_headers=("X-Proxy-Group",),
            extra_headers_prefix=("X-Proxy-Extra-", "x-remote-extra-"),
        )
        chain = build(AuthenticationOptions(requestheader=rh, anonymous_auth=False))
        assert (
            *STANDARD_STRIP_HEADERS,
            "X-Proxy-User",
            "X-Proxy-Uid",
            "X-Proxy-Group",
        ) == chain.strip_headers
        assert chain.strip_prefixes == ("X-Remote-Extra-", "X-Proxy-Extra-")

    def test_configured_names_ignored_without_ca(self) -> None:
        """Without a request-header CA the custom names are not stripped (as in Kubernetes)."""
        rh = RequestHeaderOptions(username_headers=("X-Proxy-User",))
        assert "X-Proxy-User" not in build(AuthenticationOptions(requestheader=rh)).strip_headers

    def test_chain_is_a_value(self) -> None:
        """Chain is a frozen value with the API audiences as a tuple."""
        chain = Chain(request=None, api_audiences=["a"])
        assert chain.api_audiences == ("a",)
        with pytest.raises(AttributeError):
            chain.request = None  # type: ignore[misc]


def test_build_reexported_lazily() -> None:
    """k8sauthn.build and k8sauthn.Chain are the builder's."""
    import k8sauthn

    assert k8sauthn.build is build
    assert k8sauthn.Chain is Chain
    with pytest.raises(AttributeError):
        _ = k8sauthn.no_such_name  # type: ignore[attr-defined]
    assert Context  # imported for type clarity
