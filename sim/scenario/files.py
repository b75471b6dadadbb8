"""Files a scenario names (traces, length files), parsed once per process while unchanged.

A sweep validates one scenario per run, and every run names the same files: parsing them per
run costs time, and a copy per scenario costs memory. A `FileCache` keeps what a file parsed
to, keyed by the file as it is now (`stamp`: its absolute path, size, modification time and
inode) and the options it was read with, so an edited or replaced file is read again and an
unchanged one is not. (A rewrite to the same size within one tick of the file system's clock
goes unseen, as it does for make.) Cached values are shared by every caller, so the readers
make their arrays read-only.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


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
