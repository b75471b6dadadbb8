"""Files a scenario names (traces, length files), parsed once per process while unchanged.

A sweep validates one scenario per run, and every run names the same files: parsing them per
run costs time, and a copy per scenario costs memory. A `FileCache` keeps what a file parsed
to, keyed by the file as it is now (`stamp`: its absolute path, size, modification time and
inode) and the options it was read with, so an edited or replaced file is read again and an
unchanged one is not. (A rewrite to the same size within one tick of the file system's clock
goes unseen, as it does for make.) Cached values are shared by every caller, so the readers
make their arrays read-only.

Only regular files are read, and only up to a size: a device such as /dev/urandom or
/dev/zero never ends, a FIFO blocks until something writes to it, and a file far larger than
any real trace or length list would exhaust memory while it is parsed (`check_regular`).
"""

from __future__ import annotations

import os
import stat as stat_mode
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from sim.errors import InputError

T = TypeVar("T")

# A length file is parsed line by line in Python, at about 30 bytes of memory per byte of
# file in the worst case (2 GB for 64 MiB of two-digit lines, ~10 s); 64 MiB holds over ten
# million token counts, far more than an empirical distribution needs.
MAX_LENGTHS_FILE_BYTES = 64 << 20

# What a path that is not a regular file is, and why it cannot be read as one.
_KINDS = ((stat_mode.S_ISDIR, "a directory"),
          (stat_mode.S_ISCHR, "a character device, which may never end"),
          (stat_mode.S_ISBLK, "a block device"),
          (stat_mode.S_ISFIFO, "a FIFO, which blocks until something writes to it"),
          (stat_mode.S_ISSOCK, "a socket"))


@dataclass(frozen=True)
class FileStamp:
    """A file as it is now: writing to it changes its size or modification time, replacing
    it (a write to a temporary file, then a rename) its inode."""

    path: str  # absolute, not resolved: `..` and links mean what they meant to the caller
    size_bytes: int
    mtime_ns: int
    inode: int


def stamp(path: Path) -> FileStamp | None:
    """The file's stamp; None when it cannot be stat-ed (the reader then says why)."""
    absolute = path.absolute()
    try:
        status = os.stat(absolute)
    except OSError:
        return None
    return FileStamp(str(absolute), status.st_size, status.st_mtime_ns, status.st_ino)


def check_regular(path: Path, key: str, max_bytes: int, what: str) -> None:
    """`InputError` naming `key` unless `path` is a regular file (after links) of at most
    `max_bytes`; `what` names the kind of file for the message ("trace file"). A path that
    cannot be stat-ed passes: the reader then opens it and says why it cannot."""
    try:
        status = os.stat(path)
    except OSError:
        return
    if not stat_mode.S_ISREG(status.st_mode):
        raise InputError(key, str(path), f"a regular {what}, not {file_kind(status.st_mode)}")
    if status.st_size > max_bytes:
        size = size_text(status.st_size)
        if size == size_text(max_bytes):  # rounded to the limit: say by how much it is over
            size = f"{status.st_size:,} bytes"
        raise InputError(key, str(path), f"a {what} of at most {size_text(max_bytes)} (this "
                         f"one: {size})")


def file_kind(mode: int) -> str:
    """What a path that is not a regular file is, in words, from its `st_mode`."""
    return next((name for test, name in _KINDS if test(mode)), "something else")


def size_text(n_bytes: int) -> str:
    """A size as people read it: 3.2 GiB, 64 MiB, 512 bytes."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n_bytes >= size:
            return f"{n_bytes / size:.3g} {unit}"
    return f"{n_bytes:,} bytes"


class FileCache(Generic[T]):
    """The latest `max_entries` parsed files, the least recently used dropped first (a
    scenario that holds one keeps it alive regardless)."""

    def __init__(self, max_entries: int) -> None:
        self._entries: OrderedDict[Hashable, T] = OrderedDict()
        self._max_entries = max_entries
        self._lock = threading.Lock()  # threads sharing a process read a file once

    def get(self, key: Hashable, read: Callable[[], T]) -> T:
        """The value cached under `key`, else `read()`'s, cached unless it raises."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            value = self._entries[key] = read()
            if len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
            return value

    def clear(self) -> None:
        """Forget every entry (the next read of each file parses it again)."""
        with self._lock:
            self._entries.clear()
