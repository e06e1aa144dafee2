"""A small parser with Go pflag's syntax and error texts, for kube-apiserver-compatible CLIs.

Rules reproduced (spf13/pflag ``flag.go``, k8s ``cliflag``):

* ``--name=value`` and ``--name value``; a bool takes no separate value (``--b false`` leaves
  ``false`` as a positional argument), only ``--b=false``;
* ``--`` ends the flags; a lone ``-`` and anything not starting with ``-`` is positional
  (interspersed); ``-h``/``--help`` ask for help;
* ``_`` in a name reads as ``-`` (``cliflag.WordSepNormalizeFunc``);
* string slices are one CSV record per occurrence: the first occurrence replaces the default,
  later ones append; ``--x=`` is the empty list;
* ``key=value`` maps (``MapStringStringNoSplit``): one pair per occurrence, key and value trimmed;
* durations are Go's ``time.ParseDuration``; ints ``strconv.ParseInt(s, 0, 64)``; bools
  ``strconv.ParseBool``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from ..exceptions import ConfigError

__all__ = [
    "Flag",
    "FlagError",
    "FlagSet",
    "HelpRequested",
    "Parsed",
    "parse_duration",
    "parse_value",
]


class FlagError(ConfigError):
    """A command line pflag would refuse; the text is pflag's."""


class HelpRequested(Exception):
    """``-h`` / ``--help`` was given."""


@attrs.frozen
class Flag:
    """One flag: name (without dashes), kind, default, documentation group and help text."""

    name: str
    kind: str  # string | bool | strings | duration | int | map | ip
    default: Any
    group: str
    help: str


@attrs.frozen
class Parsed:
    values: Mapping[str, Any]
    explicit: frozenset[str]
    positional: tuple[str, ...]
    warnings: tuple[str, ...]


_TRUE: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE: Final = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_UNITS: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,
    "\u03bcs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART: Final = re.compile(r"([0-9]*(?:\.[0-9]*)?)([^0-9.]*)")


def parse_duration(text: str) -> float:
    """Go's ``time.ParseDuration`` in seconds (``"2m"`` -> 120.0); raises ``ValueError``."""
    orig, s = text, text
    sign = 1.0
    if s[:1] in ("-", "+"):
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f'time: invalid duration "{orig}"')
    total = 0.0
    while s:
        m = _DURATION_PART.match(s)
        assert m is not None
        number, unit = m.group(1), m.group(2)
        if number in ("", "."):
            raise ValueError(f'time: invalid duration "{orig}"')
        if not unit:
            raise ValueError(f'time: missing unit in duration "{orig}"')
        if unit not in _UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{orig}"')
        total += float(number) * _UNITS[unit]
        s = s[m.end() :]
    return sign * total


def _parse_int(text: str) -> int:
    s = text.replace("_", "") if re.match(r"^[+-]?0[xXoObB]", text) else text
    try:
        if re.fullmatch(r"[+-]?0[0-7]+", s):
            return int(s, 8)  # Go's base-0 rule: a leading 0 means octal
        return int(s, 0)
    except ValueError:
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax') from None


def _read_csv(text: str) -> tuple[str, ...]:
    """One record of Go's ``encoding/csv`` (pflag ``readAsCSV``), enough for flag values."""
    if text == "":
        return ()
    fields: list[str] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == '"':
            buf: list[str] = []
            i += 1
            while True:
                j = text.find('"', i)
                if j < 0:
                    raise ValueError('extraneous or missing " in quoted-field')
                buf.append(text[i:j])
                if j + 1 < n and text[j + 1] == '"':
                    buf.append('"')
                    i = j + 2
                    continue
                i = j + 1
                break
            if i < n and text[i] != ",":
                raise ValueError('extraneous or missing " in quoted-field')
            fields.append("".join(buf))
        else:
            j = text.find(",", i)
            field = text[i:] if j < 0 else text[i:j]
            if '"' in field:
                raise ValueError('bare " in non-quoted-field')
            fields.append(field)
            i = n if j < 0 else j
        if i >= n:
            return tuple(fields)
        i += 1  # the comma
        if i == n:
            fields.append("")
            return tuple(fields)


def parse_value(flag: Flag, text: str) -> Any:
    """``text`` converted for ``flag``; raises :class:`FlagError` with pflag's wording."""
    try:
        return _convert(flag.kind, text)
    except ValueError as exc:
        raise FlagError(f'invalid argument "{text}" for "--{flag.name}" flag: {exc}') from None


def _convert(kind: str, text: str) -> Any:
    if kind == "string":
        return text
    if kind == "bool":
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')
    if kind == "strings":
        return _read_csv(text)
    if kind == "duration":
        return parse_duration(text)
    if kind == "int":
        return _parse_int(text)
    if kind == "ip":
        try:
            ipaddress.ip_address(text)
        except ValueError:
            raise ValueError(f'failed to parse IP: "{text}"') from None
        return text
    if kind == "map":
        key, sep, value = text.partition("=")
        if not sep:
            raise ValueError("malformed pair, expect string=string")
        return ((key.strip(), value.strip()),)
    raise AssertionError(f"unknown flag kind {kind}")  # pragma: no cover


class FlagSet:
    """A set of flags, plus names accepted and ignored (with a warning)."""

    def __init__(self, flags: Sequence[Flag], *, ignored: Mapping[str, str] = {}) -> None:
        self._flags = {f.name: f for f in flags}
        self._ignored = dict(ignored)

    def lookup(self, name: str) -> Flag | None:
        return self._flags.get(name.replace("_", "-"))

    def defaults(self) -> dict[str, Any]:
        return {f.name: f.default for f in self._flags.values()}

    def parse(self, argv: Sequence[str]) -> Parsed:
        values = self.defaults()
        explicit: set[str] = set()
        positional: list[str] = []
        warnings: list[str] = []
        args = list(argv)
        i = 0
        while i < len(args):
            arg = args[i]
            i += 1
            if arg == "--":
                positional.extend(args[i:])
                break
            if not arg.startswith("-") or arg == "-":
                positional.append(arg)
                continue
            if not arg.startswith("--"):
                short = arg[1:2]
                if short == "h":
                    raise HelpRequested
                if short == "v" and "v" in self._ignored:  # klog's -v=2, as in kube-apiserver
                    if "=" not in arg and len(arg) == 2 and i < len(args):
                        i += 1
                    warnings.append("ignoring -v: not an authentication flag")
                    continue
                raise FlagError(f"unknown shorthand flag: '{short}' in {arg}")
            body = arg[2:]
            if not body or body.startswith(("-", "=")):
                raise FlagError(f"bad flag syntax: {arg}")
            raw_name, has_value, value = body.partition("=")
            name = raw_name.replace("_", "-")
            if name == "help":
                raise HelpRequested
            flag = self._flags.get(name)
            kind = flag.kind if flag is not None else self._ignored.get(name)
            if kind is None:
                raise FlagError(f"unknown flag: --{raw_name}")
            if not has_value:
                if kind == "bool":
                    value = "true"
                elif i < len(args):
                    value = args[i]
                    i += 1
                else:
                    raise FlagError(f"flag needs an argument: --{raw_name}")
            if flag is None:
                warnings.append(f"ignoring --{name}: not an authentication flag")
                continue
            parsed = parse_value(flag, value)
            if flag.kind in ("strings", "map") and name in explicit:
                parsed = (*values[name], *parsed)
            values[name] = parsed
            explicit.add(name)
        return Parsed(values, frozenset(explicit), tuple(positional), tuple(warnings))
