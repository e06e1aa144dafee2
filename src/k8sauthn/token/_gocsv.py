"""A reader for CSV exactly as Go's ``encoding/csv`` reads it with its defaults (spec §8.1, §19.1).

Python's :mod:`csv` is more lenient (bare quotes, text after a closing quote) and differs on
blank lines, so the token file gets its own reader. It works on bytes, as Go does: columns in
error messages are 1-based byte offsets, and fields are decoded as UTF-8 with invalid bytes kept
(``surrogateescape``) so that no two different byte strings become the same text.

Rules reproduced: separator ``,``; variable field counts; a field starting with ``"`` is quoted,
``""`` inside it is a quote, and it may span lines; ``"`` inside an unquoted field is an error;
nothing but ``,`` or the line end may follow a closing quote; spaces are kept; ``\\r\\n`` is
read as ``\\n`` and a final ``\\r`` is dropped; empty lines are skipped; there are no comments.
"""

from __future__ import annotations

from typing import Final

__all__ = ["BARE_QUOTE", "QUOTE", "CSVParseError", "parse"]

BARE_QUOTE: Final = 'bare " in non-quoted-field'
QUOTE: Final = 'extraneous or missing " in quoted-field'
_QUOTE: Final = 0x22


class CSVParseError(ValueError):
    """Go's ``csv.ParseError``, with its exact text."""

    def __init__(self, start_line: int, line: int, column: int, reason: str) -> None:
        self.start_line, self.line, self.column, self.reason = start_line, line, column, reason
        if start_line != line:
            text = (
                f"record on line {start_line}; parse error on line {line}, "
                f"column {column}: {reason}"
            )
        else:
            text = f"parse error on line {line}, column {column}: {reason}"
        super().__init__(text)


class _Lines:
    """Go's ``Reader.readLine``: one line with its ``\\n``; ``None`` at the end."""

    __slots__ = ("data", "number", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.number = 0  # counts every read, the one that hits the end included (as Go does)

    def read(self) -> bytes | None:
        self.number += 1
        data, start = self.data, self.pos
        if start >= len(data):
            return None
        end = data.find(b"\n", start)
        if end < 0:
            self.pos = len(data)
            line = data[start:]
            return line[:-1] if line.endswith(b"\r") else line
        self.pos = end + 1
        line = data[start : end + 1]
        return line[:-2] + b"\n" if line.endswith(b"\r\n") else line


def _strip_nl(b: bytes) -> bytes:
    return b[:-1] if b.endswith(b"\n") else b


def _record(lines: _Lines) -> list[bytes] | None:
    line = lines.read()
    while line is not None and line in (b"", b"\n"):
        line = lines.read()
    if line is None:
        return None
    start_line = pos_line = lines.number
    col = 1
    fields: list[bytes] = []
    while True:
        if not line or line[0] != _QUOTE:
            i = line.find(b",")
            field = line[:i] if i >= 0 else _strip_nl(line)
            j = field.find(b'"')
            if j >= 0:
                raise CSVParseError(start_line, lines.number, col + j, BARE_QUOTE)
            fields.append(field)
            if i < 0:
                return fields
            line = line[i + 1 :]
            col += i + 1
            continue
        # A quoted field.
        buf = bytearray()
        line = line[1:]
        col += 1
        while True:
            i = line.find(b'"')
            if i >= 0:
                buf += line[:i]
                line = line[i + 1 :]
                col += i + 1
                nxt = line[:1]
                if nxt == b'"':
                    buf += b'"'
                    line = line[1:]
                    col += 1
                    continue
                if nxt == b",":
                    line = line[1:]
                    col += 1
                    fields.append(bytes(buf))
                    break
                if line in (b"", b"\n"):
                    fields.append(bytes(buf))
                    return fields
                raise CSVParseError(start_line, lines.number, col - 1, QUOTE)
            if line:
                buf += line
                col += len(line)
                nxt_line = lines.read()
                line = b"" if nxt_line is None else nxt_line
                if line:
                    pos_line += 1
                    col = 1
                continue
            # The input ended inside the quotes.
            raise CSVParseError(start_line, pos_line, col, QUOTE)


def parse(data: bytes) -> list[list[str]]:
    """Every record of ``data``; raises :class:`CSVParseError` at the first bad one."""
    lines = _Lines(data)
    records: list[list[str]] = []
    while (record := _record(lines)) is not None:
        records.append([f.decode("utf-8", "surrogateescape") for f in record])
    return records
