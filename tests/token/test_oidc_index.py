"""Several JWT issuers: the issuer index answers exactly as kube-apiserver's union (P2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8sauthn import AuthenticationError, Context, Response, UserInfo, pure, run_pure
from k8sauthn.chain import TokenUnion, token_union
from k8sauthn.config.authentication_reload import AuthenticationConfigFile
from k8sauthn.token._verifier import GOOGLE_ISSUER
from k8sauthn.token.jws import ALGORITHMS
from k8sauthn.token.oidc import JWTAuthenticator, JWTIssuerIndex, jwt_union

from ._jwt import NOW, claims, config, default_keys, ec_key, token

CTX = Context(now=NOW)
URLS = ("https://a.example.com", "https://b.example.com", GOOGLE_ISSUER)


def authn(url: str) -> JWTAuthenticator:
    return JWTAuthenticator.from_config(
        config(issuer=url), signing_algs=ALGORITHMS, keys=default_keys()
    )


MEMBERS = [authn(u) for u in URLS]
UNION = token_union(*MEMBERS, fail_on_error=True)
INDEX = jwt_union(MEMBERS)

TOKENS = [
    *(token(claims(iss=u)) for u in URLS),
    token(claims(iss="accounts.google.com")),  # Google's short form names GOOGLE_ISSUER
    token(claims(iss=URLS[1], exp=int(NOW) - 10)),  # expired
    token(claims(iss=URLS[1], aud="someone-else")),
    token(claims(iss=URLS[0]), key=ec_key(), alg="ES256"),  # a key the issuer does not hold
    token(claims(iss="https://unknown.example.com")),
    token(claims(iss=URLS[0] + "/")),
    token(claims(iss=None)),
    token(b"not json"),
    "not-a-jwt",
    "",
]


def outcome(auth: Any, tok: str) -> tuple[str, object]:
    try:
        return "answer", run_pure(auth.token_flow(tok, CTX))
    except AuthenticationError as exc:
        return type(exc).__name__, str(exc)


def test_index_is_built_for_distinct_jwt_authenticators() -> None:
    """All members JWT authenticators of distinct issuers: an index, one per issuer."""
    assert isinstance(INDEX, JWTIssuerIndex)
    assert INDEX.members == tuple(MEMBERS)
    assert "https://a.example.com" in repr(INDEX)


@pytest.mark.parametrize("tok", TOKENS)
def test_index_answers_as_the_union(tok: str) -> None:
    """Every token gets the union's answer or the union's error, text included."""
    assert outcome(INDEX, tok) == outcome(UNION, tok)


def test_each_issuer_accepts_its_own_tokens() -> None:
    """A token reaches its issuer's authenticator; others' tokens are no opinion there."""
    for url in URLS:
        resp = run_pure(INDEX.token_flow(token(claims(iss=url, sub="kim")), CTX))
        assert resp is not None
        assert resp.user.name == "kim"
    assert run_pure(INDEX.token_flow(token(claims(iss="https://x.example.com")), CTX)) is None


@given(st.text(max_size=30))
def test_arbitrary_tokens_agree(tok: str) -> None:
    """For any text, index and union agree (almost all are no opinion)."""
    assert outcome(INDEX, tok) == outcome(UNION, tok)


class _Other:
    def token_flow(self, token: str, ctx: Context, /) -> Any:
        return pure(Response(UserInfo("other")))


def test_union_kept_when_an_index_would_differ() -> None:
    """Duplicate issuers or a non-JWT member keep the fail-on-error union; one is itself."""
    dup = jwt_union([MEMBERS[0], authn(URLS[0])])
    assert isinstance(dup, TokenUnion)
    assert dup.fail_on_error
    mixed = jwt_union([MEMBERS[0], _Other()])  # type: ignore[list-item]
    assert isinstance(mixed, TokenUnion)
    assert jwt_union([MEMBERS[0]]) is MEMBERS[0]
    with pytest.raises(ValueError, match="distinct"):
        JWTIssuerIndex([MEMBERS[0], authn(URLS[0])])


def test_configuration_file_uses_the_index(tmp_path: Path) -> None:
    """An AuthenticationConfiguration with several issuers is served by the index."""
    import json

    doc = {
        "apiVersion": "apiserver.config.k8s.io/v1beta1",
        "kind": "AuthenticationConfiguration",
        "jwt": [
            {
                "issuer": {"url": u, "audiences": ["k"]},
                "claimMappings": {"username": {"claim": "sub", "prefix": ""}},
            }
            for u in URLS[:2]
        ],
    }
    path = tmp_path / "authn.json"
    path.write_text(json.dumps(doc))
    live = AuthenticationConfigFile(path)
    assert isinstance(live._file.value.jwt, JWTIssuerIndex)
    assert run_pure(live.token_flow("not-a-jwt", CTX)) is None
