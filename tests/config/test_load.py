"""Configuration file reading and ReloadingFile (config/_load.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from k8sauthn import ConfigError
from k8sauthn.config import _load
from k8sauthn.config._load import ReloadingFile, read_bytes, read_text


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def touch(path: Path, text: str, stamp: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(stamp, stamp))


class TestRead:
    def test_read_bytes_and_text(self, tmp_path: Path) -> None:
        """A file is read whole, as bytes or UTF-8 text."""
        p = tmp_path / "f"
        p.write_bytes("h\u00e9".encode())
        assert "h\u00e9".encode() == read_bytes(p)
        assert read_text(p) == "h\u00e9"

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file is a ConfigError naming what and where."""
        with pytest.raises(ConfigError, match=r"unable to read CA file '.*nope': No such file"):
            read_bytes(tmp_path / "nope", what="CA file")

    def test_not_utf8(self, tmp_path: Path) -> None:
        """Invalid UTF-8 is reported with the byte offset."""
        p = tmp_path / "f"
        p.write_bytes(b"ab\xff")
        with pytest.raises(ConfigError, match=r"not valid UTF-8 \(byte 2\)"):
            read_text(p)

    def test_size_bound(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Files over the bound are refused instead of read into memory."""
        monkeypatch.setattr(_load, "MAX_FILE_BYTES", 4)
        p = tmp_path / "f"
        p.write_bytes(b"12345")
        with pytest.raises(ConfigError, match="larger than 4 bytes"):
            read_bytes(p)


class TestReloadingFile:
    def test_initial_error_raises(self, tmp_path: Path) -> None:
        """A bad file at construction raises."""
        p = tmp_path / "f"
        p.write_text("bad")

        def parse(data: bytes) -> int:
            raise ConfigError("nope")

        with pytest.raises(ConfigError):
            ReloadingFile(p, parse)

    def test_polls_at_most_every_interval(self, tmp_path: Path) -> None:
        """A change is noticed only once the interval has passed."""
        p = tmp_path / "f"
        touch(p, "1", 1)
        clock = Clock()
        f = ReloadingFile(p, lambda b: int(b), interval=10, clock=clock)
        touch(p, "2", 2)
        clock.now = 9.9
        assert f.value == 1
        clock.now = 10
        assert f.value == 2

    def test_unchanged_file_is_not_reparsed(self, tmp_path: Path) -> None:
        """Same identity: no re-read, check() reports False."""
        p = tmp_path / "f"
        touch(p, "1", 1)
        calls: list[bytes] = []

        def parse(data: bytes) -> bytes:
            calls.append(data)
            return data

        f = ReloadingFile(p, parse, interval=0)
        assert not f.check()
        assert len(calls) == 1

    def test_bad_reload_keeps_last_good(self, tmp_path: Path) -> None:
        """A new file that fails to parse keeps the old value and records the error."""
        p = tmp_path / "f"
        touch(p, "1", 1)
        seen: list[Exception] = []
        f = ReloadingFile(p, lambda b: int(b), interval=0, on_error=seen.append)
        touch(p, "not a number", 2)
        assert f.value == 1
        assert isinstance(f.last_error, ValueError)
        assert [f.last_error] == seen
        touch(p, "3", 3)
        assert f.check()
        assert (f.value, f.last_error) == (3, None)

    def test_deleted_file_keeps_value(self, tmp_path: Path) -> None:
        """A file that disappears keeps the last value (read error recorded)."""
        p = tmp_path / "f"
        touch(p, "1", 1)
        f = ReloadingFile(p, lambda b: int(b), interval=0)
        p.unlink()
        assert f.value == 1
        assert isinstance(f.last_error, ConfigError)
