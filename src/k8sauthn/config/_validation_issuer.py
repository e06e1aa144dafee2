"""Field-error constructors and the issuer checks of an ``AuthenticationConfiguration``.

Split from :mod:`k8sauthn.config.authentication_validation` (spec §13.3, "Issuer URL",
"Discovery URL", "Audiences", "Certificate authority", "Egress selector"); the texts are
Kubernetes' ``field.Error`` texts.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..exceptions import ConfigError, FieldError
from ._gourl import go_quote, parse_url, redacted
from .authentication import Issuer

# --- field.Error constructors (k8s.io/apimachinery/pkg/util/validation/field) -------------------


def child(path: str, *names: str) -> str:
    for name in names:
        path = f"{path}.{name}" if path else name
    return path


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def field_required(path: str, detail: str = "") -> FieldError:
    return FieldError(path, f"Required value: {detail}" if detail else "Required value")


def field_invalid(path: str, value: str, detail: str) -> FieldError:
    return FieldError(path, f"Invalid value: {go_quote(value)}: {detail}")


def field_duplicate(path: str, value: str) -> FieldError:
    return FieldError(path, f"Duplicate value: {go_quote(value)}")


# --- issuer ---------------------------------------------------------------------------------------


def url_errors(raw: str, path: str, disallowed: Iterable[str] | None) -> list[FieldError]:
    errs: list[FieldError] = []
    url = redacted(raw)
    if disallowed is not None and raw in disallowed:
        listed = "[" + " ".join(sorted(set(disallowed))) + "]"
        errs.append(
            field_invalid(path, url, f"URL must not overlap with disallowed issuers: {listed}")
        )
    try:
        parsed = parse_url(raw)
    except ValueError as exc:
        errs.append(field_invalid(path, url, str(exc)))
        return errs
    if parsed.scheme != "https":
        errs.append(field_invalid(path, url, "URL scheme must be https"))
    if parsed.has_user:
        errs.append(field_invalid(path, url, "URL must not contain a username or password"))
    if parsed.raw_query:
        errs.append(field_invalid(path, url, "URL must not contain a query"))
    if parsed.fragment:
        errs.append(field_invalid(path, url, "URL must not contain a fragment"))
    return errs


def issuer_errors(issuer: Issuer, path: str, disallowed: tuple[str, ...]) -> list[FieldError]:
    errs: list[FieldError] = []
    url_path = child(path, "url")
    if not issuer.url:
        errs.append(field_required(url_path))
    else:
        errs += url_errors(issuer.url, url_path, disallowed)

    if issuer.discovery_url:
        d_path = child(path, "discoveryURL")
        if issuer.url and issuer.url.rstrip("/") == issuer.discovery_url.rstrip("/"):
            errs.append(
                field_invalid(
                    d_path,
                    redacted(issuer.discovery_url),
                    "discoveryURL must be different from URL",
                )
            )
        errs += url_errors(issuer.discovery_url, d_path, None)

    errs += audience_errors(issuer, path)

    if issuer.certificate_authority:
        errs += ca_errors(issuer.certificate_authority, child(path, "certificateAuthority"))

    if issuer.egress_selector_type and issuer.egress_selector_type not in (
        "controlplane",
        "cluster",
    ):
        errs.append(
            field_invalid(
                child(path, "egressSelectorType"),
                issuer.egress_selector_type,
                "egress selector must be either controlplane or cluster",
            )
        )
    return errs


def audience_errors(issuer: Issuer, path: str) -> list[FieldError]:
    a_path = child(path, "audiences")
    policy_path = child(path, "audienceMatchPolicy")
    audiences, policy = issuer.audiences, issuer.audience_match_policy
    if not audiences:
        # Kubernetes formats the full path into the detail: "at least one jwt[0].issuer.audiences".
        return [field_required(a_path, f"at least one {a_path} is required")]
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, audience in enumerate(audiences):
        if not audience:
            errs.append(field_required(index(a_path, i)))
        if audience in seen:
            errs.append(field_duplicate(index(a_path, i), audience))
        seen.add(audience)
    if len(audiences) > 1 and policy != "MatchAny":
        errs.append(
            field_invalid(
                policy_path, policy, "audienceMatchPolicy must be MatchAny for multiple audiences"
            )
        )
    if len(audiences) == 1 and policy not in ("", "MatchAny"):
        errs.append(
            field_invalid(
                policy_path,
                policy,
                "audienceMatchPolicy must be empty or MatchAny for single audience",
            )
        )
    return errs


def ca_errors(pem: str, path: str) -> list[FieldError]:
    from ..request._pem import parse_certificates

    try:
        parse_certificates(pem.encode("utf-8", "surrogateescape"))
    except ConfigError as exc:
        return [field_invalid(path, "<omitted>", str(exc))]
    return []
