"""The flag table of ``k8sauthn serve``: kube-apiserver's names, kinds and defaults.

Help texts are ours. ``config.flags`` parses with it and generates docs/flags.md from it.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._pflag import Flag

__all__ = ["AUTHENTICATION_FLAGS", "CHECK_FLAGS", "IGNORED_FLAGS", "SERVER_FLAGS"]

_S, _B, _L, _D, _I, _M, _IP = "string", "bool", "strings", "duration", "int", "map", "ip"

SERVER_FLAGS: tuple[Flag, ...] = (
    Flag(
        "bind-address",
        _IP,
        "0.0.0.0",
        "Secure serving",
        "The IP address on which to listen for the --secure-port port.",
    ),
    Flag(
        "secure-port",
        _I,
        6443,
        "Secure serving",
        "The port on which to serve HTTPS with authentication. 0 lets the OS pick a free port "
        "(k8sauthn; kube-apiserver refuses 0).",
    ),
    Flag(
        "tls-cert-file",
        _S,
        "",
        "Secure serving",
        "File containing the default x509 serving certificate, followed by any intermediates. "
        "Without it and --tls-private-key-file, a self-signed certificate for localhost is "
        "generated in memory. Reloaded when it changes.",
    ),
    Flag(
        "tls-private-key-file",
        _S,
        "",
        "Secure serving",
        "File containing the default x509 private key matching --tls-cert-file.",
    ),
)

AUTHENTICATION_FLAGS: tuple[Flag, ...] = (
    Flag(
        "anonymous-auth",
        _B,
        True,
        "Authentication",
        "Enables anonymous requests: requests no other authenticator rejects get the user "
        "system:anonymous in group system:unauthenticated. Cannot be set when the "
        "--authentication-config file has an anonymous section.",
    ),
    Flag(
        "api-audiences",
        _L,
        (),
        "Authentication",
        "Identifiers of the API. Tokens must be valid for at least one of them.",
    ),
    Flag(
        "authentication-config",
        _S,
        "",
        "Authentication",
        "File with an AuthenticationConfiguration (JWT authenticators, anonymous). Mutually "
        "exclusive with the --oidc-* flags. Reloaded when it changes.",
    ),
    Flag(
        "authentication-token-webhook-cache-ttl",
        _D,
        120.0,
        "Authentication",
        "The duration to cache responses from the webhook token authenticator.",
    ),
    Flag(
        "authentication-token-webhook-config-file",
        _S,
        "",
        "Authentication",
        "File with webhook configuration for token authentication in kubeconfig format.",
    ),
    Flag(
        "authentication-token-webhook-version",
        _S,
        "v1beta1",
        "Authentication",
        "The API version of the authentication.k8s.io TokenReview to send to and expect from "
        "the webhook (v1 or v1beta1).",
    ),
    Flag(
        "client-ca-file",
        _S,
        "",
        "Authentication",
        "Enables client certificate authentication: a certificate signed by one of these CAs "
        "authenticates as its CommonName, with its Organizations as groups. Reloaded when it "
        "changes.",
    ),
    Flag(
        "enable-bootstrap-token-auth",
        _B,
        False,
        "Authentication",
        "Enables bootstrap tokens (Secrets of type bootstrap.kubernetes.io/token).",
    ),
    Flag(
        "bootstrap-token-dir",
        _S,
        "",
        "Authentication",
        "k8sauthn: a directory of bootstrap-token Secret manifests (YAML or JSON) to read "
        "instead of the kube-system namespace of a cluster.",
    ),
    Flag(
        "oidc-ca-file",
        _S,
        "",
        "Authentication",
        "CA bundle that verifies the OpenID issuer's certificate (default: the system roots).",
    ),
    Flag(
        "oidc-client-id",
        _S,
        "",
        "Authentication",
        "The client ID of the OpenID Connect client; required with --oidc-issuer-url.",
    ),
    Flag(
        "oidc-groups-claim",
        _S,
        "",
        "Authentication",
        "The claim holding the user's groups (a string or a list of strings).",
    ),
    Flag("oidc-groups-prefix", _S, "", "Authentication", "A prefix added to every group."),
    Flag(
        "oidc-issuer-url",
        _S,
        "",
        "Authentication",
        "The https URL of the OpenID issuer; enables OIDC ID-token authentication.",
    ),
    Flag(
        "oidc-required-claim",
        _M,
        (),
        "Authentication",
        "A key=value claim the ID token must carry. Repeat the flag for several claims.",
    ),
    Flag(
        "oidc-signing-algs",
        _L,
        ("RS256",),
        "Authentication",
        "Accepted JOSE signing algorithms: RS256, RS384, RS512, ES256, ES384, ES512, PS256, "
        "PS384, PS512.",
    ),
    Flag("oidc-username-claim", _S, "sub", "Authentication", "The claim used as the user name."),
    Flag(
        "oidc-username-prefix",
        _S,
        "",
        "Authentication",
        "A prefix added to user names. Empty: claims other than 'email' get '<issuer-url>#'. "
        "'-': no prefix.",
    ),
    Flag(
        "requestheader-allowed-names",
        _L,
        (),
        "Authentication",
        "Client certificate common names allowed to set the --requestheader-username-headers. "
        "Empty: any certificate signed by --requestheader-client-ca-file.",
    ),
    Flag(
        "requestheader-client-ca-file",
        _S,
        "",
        "Authentication",
        "CA bundle for the authenticating proxy's client certificate. Nothing in "
        "--requestheader-* is trusted without it.",
    ),
    Flag(
        "requestheader-extra-headers-prefix",
        _L,
        (),
        "Authentication",
        "Header prefixes for user extras (X-Remote-Extra- is suggested).",
    ),
    Flag(
        "requestheader-group-headers",
        _L,
        (),
        "Authentication",
        "Headers holding groups (X-Remote-Group is suggested).",
    ),
    Flag(
        "requestheader-uid-headers",
        _L,
        (),
        "Authentication",
        "Headers holding the UID (X-Remote-Uid is suggested).",
    ),
    Flag(
        "requestheader-username-headers",
        _L,
        (),
        "Authentication",
        "Headers holding the user name, first non-empty wins (X-Remote-User is common).",
    ),
    Flag(
        "token-auth-file",
        _S,
        "",
        "Authentication",
        'A CSV file of static bearer tokens: token,user,uid,"group1,group2".',
    ),
    Flag(
        "token-auth-file-reload",
        _B,
        False,
        "k8sauthn",
        "Re-read --token-auth-file when it changes (kube-apiserver reads it once).",
    ),
    Flag(
        "reload-interval",
        _D,
        60.0,
        "k8sauthn",
        "How often changed files (CA bundles, token file, serving certificate) are re-read.",
    ),
    Flag(
        "tokenreview-allowed-users",
        _L,
        (),
        "k8sauthn",
        "Users allowed to POST TokenReviews. With this and --tokenreview-allowed-groups empty, "
        "any authenticated (non-anonymous) user may.",
    ),
    Flag(
        "tokenreview-allowed-groups",
        _L,
        (),
        "k8sauthn",
        "Groups whose members may POST TokenReviews.",
    ),
    Flag(
        "access-log",
        _B,
        True,
        "k8sauthn",
        "Write one JSON line per request (user, authenticator, status; never a credential).",
    ),
    Flag(
        "config",
        _S,
        "",
        "k8sauthn",
        "A YAML file of these settings keyed by flag name; command-line flags win.",
    ),
)

CHECK_FLAGS: tuple[Flag, ...] = (
    Flag("token", _S, "", "check", "The bearer token to authenticate."),
    Flag("token-file", _S, "", "check", "A file holding the bearer token (safer than --token)."),
    Flag(
        "cert",
        _S,
        "",
        "check",
        "A PEM client certificate, optionally followed by its intermediates.",
    ),
    Flag("audience", _L, (), "check", "Target audiences (default: --api-audiences)."),
    Flag(
        "key",
        _S,
        "",
        "check",
        "The certificate's private key; only checked to match --cert.",
    ),
)

# kube-apiserver flags that do not concern authentication: accepted and ignored with a warning,
# so a cluster's command line works unchanged. Service-account tokens are out of scope.
IGNORED_FLAGS: Mapping[str, str] = {
    **dict.fromkeys(
        (
            "advertise-address",
            "authorization-mode",
            "authorization-config",
            "authorization-policy-file",
            "authorization-webhook-config-file",
            "cert-dir",
            "cloud-provider",
            "egress-selector-config-file",
            "enable-admission-plugins",
            "disable-admission-plugins",
            "encryption-provider-config",
            "etcd-cafile",
            "etcd-certfile",
            "etcd-keyfile",
            "etcd-prefix",
            "etcd-servers",
            "external-hostname",
            "feature-gates",
            "kubelet-certificate-authority",
            "kubelet-client-certificate",
            "kubelet-client-key",
            "kubelet-preferred-address-types",
            "proxy-client-cert-file",
            "proxy-client-key-file",
            "runtime-config",
            "service-account-issuer",
            "service-account-jwks-uri",
            "service-account-key-file",
            "service-account-signing-key-file",
            "service-cluster-ip-range",
            "service-node-port-range",
            "tls-cipher-suites",
            "tls-min-version",
            "audit-log-path",
            "audit-policy-file",
            "v",
            "vmodule",
            "log-file",
        ),
        _S,
    ),
    **dict.fromkeys(
        (
            "allow-privileged",
            "enable-aggregator-routing",
            "profiling",
            "service-account-lookup",
            "enable-priority-and-fairness",
            "logtostderr",
        ),
        _B,
    ),
    **dict.fromkeys(
        (
            "audit-log-maxage",
            "audit-log-maxbackup",
            "audit-log-maxsize",
            "max-requests-inflight",
            "max-mutating-requests-inflight",
            "event-ttl",
        ),
        _S,
    ),
}
