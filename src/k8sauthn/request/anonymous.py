"""The anonymous authenticator and its configuration (spec §6).

kube-apiserver always places it last, in a fail-on-error union: any error earlier in the chain
is a 401, never anonymous (``config/build.py`` does that).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import attrs

from .._flow import Flow, pure
from .._types import ALL_UNAUTHENTICATED, ANONYMOUS_USER, Context, RequestView, Response, UserInfo
from ..exceptions import ConfigError, FieldError

__all__ = ["AnonymousAuthenticator", "AnonymousConfig"]


def _paths(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _go_json(value: object) -> str:
    # encoding/json output: compact, UTF-8 kept, and <, >, & escaped as Go does.
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(ch, esc)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


@attrs.frozen
class AnonymousConfig:
    """Whether anonymous requests are allowed, optionally only for some exact URL paths.

    ``conditions`` are paths compared exactly with the request path (no prefixes, no
    normalisation). Empty means every path. Built from ``--anonymous-auth`` (no conditions) or
    from the ``anonymous`` section of an AuthenticationConfiguration file.
    """

    enabled: bool = True
    conditions: tuple[str, ...] = attrs.field(default=(), converter=_paths)

    def errors(self, path: str = "anonymous") -> list[FieldError]:
        """Validation problems, with Kubernetes' field paths and texts."""
        if self.conditions and not self.enabled:
            shown = _go_json([{"Path": p} for p in self.conditions])
            return [
                FieldError(
                    f"{path}.conditions",
                    f"Invalid value: {shown}: enabled should be set to true when conditions "
                    "are defined",
                )
            ]
        return []

    def validate(self) -> AnonymousConfig:
        """Return self, or raise :class:`~k8sauthn.exceptions.ConfigError` listing the errors."""
        errors = self.errors()
        if errors:
            raise ConfigError(errors)
        return self


_ANONYMOUS: UserInfo = UserInfo(ANONYMOUS_USER, groups=(ALL_UNAUTHENTICATED,))
_NO_AUDIENCES: Response = Response(_ANONYMOUS)


class AnonymousAuthenticator:
    """Accepts every request (or those to ``conditions`` paths) as ``system:anonymous``.

    A disabled configuration never accepts anything. The response audiences are the request's
    target audiences, as in Kubernetes.
    """

    __slots__ = ("_enabled", "_paths", "config")

    def __init__(self, config: AnonymousConfig | None = None) -> None:
        self.config = (config or AnonymousConfig()).validate()
        self._enabled = self.config.enabled
        self._paths = frozenset(self.config.conditions)

    def __repr__(self) -> str:
        return f"AnonymousAuthenticator({self.config!r})"

    def request_flow(self, request: RequestView, ctx: Context, /) -> Flow[Response | None]:
        return pure(self.request_step(request, ctx))

    def request_step(self, request: RequestView, ctx: Context, /) -> Response | None:
        if not self._enabled or (self._paths and request.path not in self._paths):
            return None
        if not ctx.audiences:
            return _NO_AUDIENCES
        return Response(_ANONYMOUS, audiences=ctx.audiences)
