"""X.509 rows: client certificates (2- and 3-level chains, and a repeat) and request-header.

The input is what the TLS layer hands over: the DER of each presented certificate, leaf first.
The floor is the least work from that DER to a verified chain: parse it and call a
``cryptography`` client verifier built once beforehand (with the extension policy Kubernetes'
certificate shapes need, design.md example 13).
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store

from _fixtures import TMP, hmac_dict_floor, need
from _harness import Case, Pair, Settings
from k8sauthn import Context, Headers, RequestView, run_pure

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests._pki import Cert


@functools.cache
def pki() -> dict[str, Cert]:
    """A client CA with an intermediate, leaves under each, and a front-proxy CA + client."""
    root = Cert.new_ca("bench-client-ca")
    inter = root.intermediate("bench-intermediate")
    proxy_ca = Cert.new_ca("bench-front-proxy-ca")
    return {
        "root": root,
        "inter": inter,
        "leaf2": root.issue(_name("alice", "team-a")),
        "leaf3": inter.issue(_name("bob", "team-b")),
        "proxy_ca": proxy_ca,
        "proxy": proxy_ca.issue("front-proxy-client"),
    }


def _name(cn: str, org: str) -> x509.Name:
    from tests._pki import name

    return name(cn, orgs=(org,))


def ca_file(stem: str, *certs: Cert) -> Path:
    path = TMP / f"{stem}.crt"
    path.write_bytes(b"".join(c.pem for c in certs))
    return path


def floor_verifier(*roots: Cert) -> Callable[[Sequence[bytes]], object]:
    """Parse DER and verify with a prebuilt ``cryptography`` client verifier."""
    ee = (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
        .may_be_present(x509.AuthorityKeyIdentifier, Criticality.AGNOSTIC, None)
    )
    verifier = (
        PolicyBuilder()
        .store(Store([r.cert for r in roots]))
        .time(dt.datetime.now(dt.UTC))
        .extension_policies(ee_policy=ee, ca_policy=ExtensionPolicy.webpki_defaults_ca())
        .build_client_verifier()
    )
    load = x509.load_der_x509_certificate

    def verify(chain: Sequence[bytes]) -> object:
        return verifier.verify(load(chain[0]), [load(d) for d in chain[1:]])

    return verify


def client_cert_authenticator(*, cache: bool) -> object:
    """``ClientCertAuthenticator`` for the bench client CA, with or without its chain cache."""
    mod = need("k8sauthn.request.x509")
    trust = need("k8sauthn.request._trust")
    cls = mod.ClientCertAuthenticator
    if cache:
        return cls.from_ca_file(str(ca_file("client-ca", pki()["root"])))
    bundle = trust.CABundle.from_pem(pki()["root"].pem, name="bench-client-ca")
    # A cache of size 0 keeps nothing: every call verifies the chain afresh.
    return cls.from_source(trust.Fixed(bundle), cache_size=0)


def _expect(resp: object, name: str) -> None:
    user = getattr(resp, "user", None)
    if getattr(user, "name", None) != name:
        raise AssertionError(f"expected user {name!r}, got {resp!r}")


def _x509_pair(leaf: str, *, cache: bool) -> Callable[[Settings], Pair]:
    def make(settings: Settings) -> Pair:
        p = pki()
        chain = (p[leaf].der,) + ((p["inter"].der,) if leaf == "leaf3" else ())
        auth = client_cert_authenticator(cache=cache)
        view = RequestView(peer_chain=chain)
        flow = auth.request_flow  # type: ignore[attr-defined]
        ctx = Context(now=_now())
        name = "alice" if leaf == "leaf2" else "bob"

        def path() -> object:
            return run_pure(flow(view, ctx))

        if cache:
            return Pair(path, hmac_dict_floor(), check=lambda: _expect(path(), name))
        verify = floor_verifier(p["root"])
        return Pair(path, lambda: verify(chain), check=lambda: _expect(path(), name))

    return make


def _now() -> float:
    return dt.datetime.now(dt.UTC).timestamp()


def _request_header_pair(*, cache: bool) -> Callable[[Settings], Pair]:
    def make(settings: Settings) -> Pair:
        """Proxy certificate verified, then X-Remote-User/Group/Extra read (spec §10)."""
        mod = need("k8sauthn.request.requestheader")
        trust = need("k8sauthn.request._trust")
        p = pki()
        auth = mod.RequestHeaderAuthenticator.behind_proxy(
            proxy_ca=trust.CABundle.from_pem(p["proxy_ca"].pem, name="bench-front-proxy-ca"),
            allowed_names=("front-proxy-client",),
            username_headers=("X-Remote-User",),
            group_headers=("X-Remote-Group",),
            extra_headers_prefix=("X-Remote-Extra-",),
            cache_size=1024 if cache else 0,
        )
        view = RequestView(
            headers=Headers(
                (
                    ("x-remote-user", "carol"),
                    ("x-remote-group", "team-c"),
                    ("x-remote-group", "team-d"),
                    ("x-remote-extra-scopes", "read"),
                )
            ),
            peer_chain=(p["proxy"].der,),
        )
        ctx = Context(now=_now())
        flow = auth.request_flow
        chain = view.peer_chain

        def path() -> object:
            return run_pure(flow(view, ctx))

        if cache:
            return Pair(path, hmac_dict_floor(), check=lambda: _expect(path(), "carol"))
        verify = floor_verifier(p["proxy_ca"])
        return Pair(path, lambda: verify(chain), check=lambda: _expect(path(), "carol"))

    return make


CASES = [
    Case(
        "X.509 client cert, 2-level chain (verification cache off)",
        "prebuilt cryptography client verifier",
        "ratio",
        1.5,
        pair=_x509_pair("leaf2", cache=False),
    ),
    Case(
        "X.509 client cert, 3-level chain (verification cache off)",
        "prebuilt cryptography client verifier",
        "ratio",
        1.5,
        pair=_x509_pair("leaf3", cache=False),
    ),
    Case(
        "X.509 client cert, repeat of the same certificate (3-level, cached)",
        "HMAC-SHA256 + dict hit",
        "ratio",
        2.0,
        pair=_x509_pair("leaf3", cache=True),
    ),
    Case(
        "request-header (proxy cert + X-Remote-* headers, verification cache off)",
        "X.509 floor of the proxy cert",
        "ratio",
        1.5,
        pair=_request_header_pair(cache=False),
    ),
    Case(
        "request-header, same proxy cert again (verification cached, the default)",
        "HMAC-SHA256 + dict hit",
        "study",
        None,
        pair=_request_header_pair(cache=True),
        group="study",
    ),
]
