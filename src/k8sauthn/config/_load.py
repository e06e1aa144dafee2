"""The only file I/O of the configuration layer: read a file, and re-read it when it changes.

:class:`ReloadingFile` polls lazily: a caller asks for the current value, and at most once per
``interval`` seconds the file's identity (inode, size, mtime, ctime) is compared with the last
one seen. A changed file is read and parsed; if parsing fails the previous value stays in force
and the error is kept in ``last_error`` (and passed to ``on_error``). Kubernetes does the same for
CA bundles (fsnotify plus a 1-minute re-read); polling keeps the core free of threads and works
the same under sync and async callers.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from ..exceptions import ConfigError

__all__ = ["ReloadingFile", "read_bytes", "read_text"]

T = TypeVar("T")

#: The largest configuration file we read (token files, CA bundles, configs): bounded buffers.
MAX_FILE_BYTES = 64 << 20


def read_bytes(path: str | os.PathLike[str], *, what: str = "file") -> bytes:
    """Read a whole configuration file, bounded by :data:`MAX_FILE_BYTES`."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"unable to read {what} {str(path)!r}: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{what} {str(path)!r} is larger than {MAX_FILE_BYTES} bytes")
    return data


def read_text(path: str | os.PathLike[str], *, what: str = "file") -> str:
    """Read a UTF-8 configuration file (see :func:`read_bytes`)."""
    data = read_bytes(path, what=what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {str(path)!r} is not valid UTF-8 (byte {exc.start})") from None


def _identity(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class ReloadingFile(Generic[T]):
    """A parsed file that follows changes on disk, keeping the last good value.

    The first load happens in the constructor and raises on error (a bad file at start-up is a
    configuration error). Later loads never raise.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        parse: Callable[[bytes], T],
        *,
        interval: float = 60.0,
        what: str = "file",
        on_error: Callable[[Exception], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self._parse = parse
        self._interval = interval
        self._what = what
        self._on_error = on_error
        self._clock = clock
        self._lock = threading.Lock()
        self.last_error: Exception | None = None
        self._ident = _identity(self.path)
        self._value: T = parse(read_bytes(self.path, what=what))
        self._next_check = clock() + interval

    @property
    def value(self) -> T:
        """The current value, re-reading the file first if the check interval has passed."""
        if self._clock() >= self._next_check:
            self.check()
        return self._value

    def check(self) -> bool:
        """Re-read the file now if it changed. True when a new value was installed."""
        with self._lock:
            self._next_check = self._clock() + self._interval
            ident = _identity(self.path)
            if ident == self._ident:
                return False
            try:
                value = self._parse(read_bytes(self.path, what=self._what))
            except Exception as exc:
                self.last_error = exc
                if self._on_error is not None:
                    self._on_error(exc)
                return False
            self._ident, self._value, self.last_error = ident, value, None
            return True
