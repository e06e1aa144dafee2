"""Strict decoding of an ``AuthenticationConfiguration`` file, as kube-apiserver's codec does it.

YAML or JSON; ``apiVersion`` and ``kind`` mandatory and registered; unknown fields and duplicated
keys rejected; field names case-sensitive; ``null`` leaves a field at its zero value (a ``null``
prefix stays "absent"). Errors imitate Go's texts (``strict decoding error: unknown field
"jwt[0].issuer.foo"``, ``json: cannot unmarshal string into Go struct field ...``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from ..exceptions import ConfigError
from ..request.anonymous import AnonymousConfig
from .authentication import (
    AuthenticationConfiguration,
    ClaimMappings,
    ClaimOrExpression,
    ClaimValidationRule,
    ExtraMapping,
    Issuer,
    JWTAuthenticatorConfig,
    PrefixedClaimOrExpression,
    UserValidationRule,
)

__all__ = ["API_VERSIONS", "KIND", "decode_authentication_config"]

GROUP: Final = "apiserver.config.k8s.io"
API_VERSIONS: Final = tuple(f"{GROUP}/{v}" for v in ("v1", "v1beta1", "v1alpha1"))
KIND: Final = "AuthenticationConfiguration"
#: More alias uses than this in one YAML document are refused.
MAX_YAML_ALIASES: Final = 1000


class _Decoder:
    """Walks the decoded document against the schema, collecting every problem."""

    def __init__(self) -> None:
        self.unknown: list[str] = []
        self.type_errors: list[str] = []

    def _type_error(self, value: Any, struct: str, field_path: str, go_type: str) -> None:
        self.type_errors.append(
            f"json: cannot unmarshal {_json_kind(value)} into Go struct field "
            f"{struct}.{field_path} of type {go_type}"
        )

    def obj(
        self, value: Any, path: str, fields: tuple[str, ...], struct: str, tpath: str
    ) -> dict[str, Any] | None:
        """Check an object: a dict whose keys are all known. Returns None for null / wrong type."""
        if value is None:
            return None
        if not isinstance(value, dict):
            self._type_error(value, struct, tpath or struct, f"apiserver.{struct}")
            return None
        for key in value:
            if key not in fields:
                shown = f"{path}.{key}" if path else str(key)
                self.unknown.append(f'unknown field "{shown}"')
        return value

    def string(self, obj: Mapping[str, Any], key: str, struct: str, tpath: str) -> str:
        value = obj.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            self._type_error(value, struct, _join(tpath, key), "string")
            return ""
        return value

    def optional_string(
        self, obj: Mapping[str, Any], key: str, struct: str, tpath: str
    ) -> str | None:
        value = obj.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self._type_error(value, struct, _join(tpath, key), "string")
            return None
        return value

    def boolean(self, obj: Mapping[str, Any], key: str, struct: str, tpath: str) -> bool:
        value = obj.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            self._type_error(value, struct, _join(tpath, key), "bool")
            return False
        return value

    def items(
        self, obj: Mapping[str, Any], key: str, struct: str, tpath: str, go: str
    ) -> list[Any]:
        value = obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self._type_error(value, struct, _join(tpath, key), go)
            return []
        return value

    def strings(self, obj: Mapping[str, Any], key: str, struct: str, tpath: str) -> tuple[str, ...]:
        out: list[str] = []
        for item in self.items(obj, key, struct, tpath, "[]string"):
            if item is None:
                out.append("")
            elif isinstance(item, str):
                out.append(item)
            else:
                self._type_error(item, struct, _join(tpath, key), "string")
        return tuple(out)

    def each(
        self,
        obj: Mapping[str, Any],
        key: str,
        path: str,
        tpath: str,
        struct: str,
        element: Callable[[Any, str, str], Any],
        element_type: str,
    ) -> tuple[Any, ...]:
        go = f"[]apiserver.{element_type}"
        return tuple(
            element(item, f"{_join(path, key)}[{i}]", _join(tpath, key))
            for i, item in enumerate(self.items(obj, key, struct, tpath, go))
        )


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _decode(doc: dict[str, Any]) -> tuple[AuthenticationConfiguration, _Decoder]:
    d = _Decoder()

    def issuer(v: Any, path: str, tpath: str) -> Issuer:
        s = "Issuer"
        o = d.obj(v, path, _ISSUER, s, tpath) or {}
        return Issuer(
            url=d.string(o, "url", s, tpath),
            discovery_url=d.string(o, "discoveryURL", s, tpath),
            certificate_authority=d.string(o, "certificateAuthority", s, tpath),
            audiences=d.strings(o, "audiences", s, tpath),
            audience_match_policy=d.string(o, "audienceMatchPolicy", s, tpath),
            egress_selector_type=d.string(o, "egressSelectorType", s, tpath),
        )

    def claim_rule(v: Any, path: str, tpath: str) -> ClaimValidationRule:
        s = "ClaimValidationRule"
        o = d.obj(v, path, _CLAIM_RULE, s, tpath) or {}
        return ClaimValidationRule(
            claim=d.string(o, "claim", s, tpath),
            required_value=d.string(o, "requiredValue", s, tpath),
            expression=d.string(o, "expression", s, tpath),
            message=d.string(o, "message", s, tpath),
        )

    def prefixed(v: Any, path: str, tpath: str) -> PrefixedClaimOrExpression:
        s = "PrefixedClaimOrExpression"
        o = d.obj(v, path, _PREFIXED, s, tpath) or {}
        return PrefixedClaimOrExpression(
            claim=d.string(o, "claim", s, tpath),
            prefix=d.optional_string(o, "prefix", s, tpath),
            expression=d.string(o, "expression", s, tpath),
        )

    def extra(v: Any, path: str, tpath: str) -> ExtraMapping:
        s = "ExtraMapping"
        o = d.obj(v, path, _EXTRA, s, tpath) or {}
        return ExtraMapping(
            key=d.string(o, "key", s, tpath),
            value_expression=d.string(o, "valueExpression", s, tpath),
        )

    def mappings(v: Any, path: str, tpath: str) -> ClaimMappings:
        s = "ClaimMappings"
        o = d.obj(v, path, _MAPPINGS, s, tpath) or {}
        uid = d.obj(o.get("uid"), _join(path, "uid"), _UID, s, _join(tpath, "uid")) or {}
        return ClaimMappings(
            username=prefixed(o.get("username"), _join(path, "username"), _join(tpath, "username")),
            groups=prefixed(o.get("groups"), _join(path, "groups"), _join(tpath, "groups")),
            uid=ClaimOrExpression(
                claim=d.string(uid, "claim", s, _join(tpath, "uid")),
                expression=d.string(uid, "expression", s, _join(tpath, "uid")),
            ),
            extra=d.each(o, "extra", path, tpath, s, extra, "ExtraMapping"),
        )

    def user_rule(v: Any, path: str, tpath: str) -> UserValidationRule:
        s = "UserValidationRule"
        o = d.obj(v, path, _USER_RULE, s, tpath) or {}
        return UserValidationRule(
            expression=d.string(o, "expression", s, tpath),
            message=d.string(o, "message", s, tpath),
        )

    def jwt_authenticator(v: Any, path: str, tpath: str) -> JWTAuthenticatorConfig:
        s = "JWTAuthenticator"
        o = d.obj(v, path, _JWT, s, tpath) or {}
        return JWTAuthenticatorConfig(
            issuer=issuer(o.get("issuer"), _join(path, "issuer"), _join(tpath, "issuer")),
            claim_validation_rules=d.each(
                o, "claimValidationRules", path, tpath, s, claim_rule, "ClaimValidationRule"
            ),
            claim_mappings=mappings(
                o.get("claimMappings"), _join(path, "claimMappings"), _join(tpath, "claimMappings")
            ),
            user_validation_rules=d.each(
                o, "userValidationRules", path, tpath, s, user_rule, "UserValidationRule"
            ),
        )

    def condition(v: Any, path: str, tpath: str) -> str:
        s = "AnonymousAuthCondition"
        o = d.obj(v, path, ("path",), s, tpath) or {}
        return d.string(o, "path", s, tpath)

    def anonymous(v: Any) -> AnonymousConfig | None:
        s = "AnonymousAuthConfig"
        if v is None:
            return None
        o = d.obj(v, "anonymous", _ANONYMOUS, s, "anonymous")
        if o is None:
            return None
        return AnonymousConfig(
            enabled=d.boolean(o, "enabled", s, "anonymous"),
            conditions=d.each(
                o, "conditions", "anonymous", "anonymous", s, condition, "AnonymousAuthCondition"
            ),
        )

    s = "AuthenticationConfiguration"
    top = d.obj(doc, "", _TOP, s, "") or {}
    jwt = d.each(top, "jwt", "", "", s, jwt_authenticator, "JWTAuthenticator")
    return AuthenticationConfiguration(jwt=jwt, anonymous=anonymous(top.get("anonymous"))), d


_TOP: Final = ("apiVersion", "kind", "jwt", "anonymous")
_JWT: Final = ("issuer", "claimValidationRules", "claimMappings", "userValidationRules")
_ISSUER: Final = (
    "url",
    "discoveryURL",
    "certificateAuthority",
    "audiences",
    "audienceMatchPolicy",
    "egressSelectorType",
)
_CLAIM_RULE: Final = ("claim", "requiredValue", "expression", "message")
_PREFIXED: Final = ("claim", "prefix", "expression")
_UID: Final = ("claim", "expression")
_MAPPINGS: Final = ("username", "groups", "uid", "extra")
_EXTRA: Final = ("key", "valueExpression")
_USER_RULE: Final = ("expression", "message")
_ANONYMOUS: Final = ("enabled", "conditions")


# --- YAML / JSON ----------------------------------------------------------------------------------


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ConfigError(f'strict decoding error: duplicate field "{key}"')
        out[key] = value
    return out


def _load_yaml(text: str) -> Any:
    import yaml

    class StrictLoader(yaml.SafeLoader):
        """SafeLoader that rejects duplicate keys (PyYAML silently keeps the last one)."""

        aliases = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            # Bound alias use (go-yaml refuses "excessive aliasing" too): a small file must
            # not expand into a huge document for the decoder to walk.
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > MAX_YAML_ALIASES:
                    raise ConfigError(
                        "error converting YAML to JSON: yaml: document contains excessive aliasing"
                    )
            return super().compose_node(parent, index)

    def construct_mapping(loader: StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = json.dumps(key) if key is not None else "null"  # Go's YAML->JSON keys
            if key in out:
                raise ConfigError(
                    "error converting YAML to JSON: yaml: unmarshal errors:\n"
                    f'  line {key_node.start_mark.line + 1}: key "{key}" already set in map'
                )
            out[key] = loader.construct_object(value_node, deep=True)
        return out

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    # Go's YAML->JSON keeps timestamps as strings; so do we.
    StrictLoader.add_constructor(
        "tag:yaml.org,2002:timestamp",
        lambda loader, node: loader.construct_scalar(node),  # type: ignore[arg-type]
    )
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"error converting YAML to JSON: yaml: {exc}") from None
    except ConfigError:
        raise
    except (ValueError, RecursionError) as exc:
        # An integer beyond Python's digit limit, or nesting beyond the interpreter's: still a
        # configuration error, never a stray exception from the loader.
        raise ConfigError(f"error converting YAML to JSON: {_bounded_reason(exc)}") from None


def _bounded_reason(exc: Exception) -> str:
    return "document nested too deeply" if isinstance(exc, RecursionError) else str(exc)


def _abbreviated(text: str) -> str:
    text = text.strip()
    return text if len(text) <= 100 else text[:100] + "..."


def decode_authentication_config(data: bytes) -> AuthenticationConfiguration:
    """Decode (not validate) a configuration file; ConfigError on any decoding problem."""
    if not data:
        raise ConfigError("empty config data")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config data is not valid UTF-8 (byte {exc.start})") from None
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text, object_pairs_hook=_json_pairs)
        except ConfigError:
            raise
        except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
            raise ConfigError(f"couldn't decode JSON: {_bounded_reason(exc)}") from None
    else:
        doc = _load_yaml(text)
    if not isinstance(doc, dict):
        raise ConfigError(f"couldn't get version/kind; json parse error: {_abbreviated(text)}")
    kind, version = doc.get("kind"), doc.get("apiVersion")
    if not kind or not isinstance(kind, str):
        raise ConfigError(f"Object 'Kind' is missing in '{_abbreviated(text)}'")
    if not version or not isinstance(version, str):
        raise ConfigError(f"Object 'apiVersion' is missing in '{_abbreviated(text)}'")
    if kind != KIND or version not in API_VERSIONS:
        raise ConfigError(
            f'no kind "{kind}" is registered for version "{version}" in scheme "k8sauthn"'
        )
    config, decoder = _decode(doc)
    if decoder.type_errors:
        raise ConfigError(decoder.type_errors)
    if decoder.unknown:
        raise ConfigError("strict decoding error: " + ", ".join(decoder.unknown))
    return config
