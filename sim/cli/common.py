"""Pieces every command shares: one-line argument errors, atomic output, progress bars."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tqdm import tqdm

from sim.errors import InputError


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse's contract too)
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer ≥ `minimum`, else an error naming the value."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer ≥ {minimum}")
        return value

    return parse


non_negative_int = int_at_least(0)
positive_int = int_at_least(1)


def check_output_path(flag: str, path: Path | None) -> None:
    """Fail before any work when an output could not be written anyway."""
    if path is not None and (path.is_dir() or not path.parent.is_dir()):
        raise InputError(flag, str(path), "a file path in an existing directory")


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_text(path, json.dumps(finite(data), indent=2, allow_nan=False) + "\n")


def write_text(path: Path, text: str) -> None:
    """Write whole or not at all: a temporary file in the same directory, then a rename."""
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: Path, data: bytes) -> None:
    """`write_text` for binary outputs such as PNG figures."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def one_line_warnings(quiet: bool) -> Iterator[None]:
    """Show each warning raised below the CLI (through `warnings`) as one line on stderr,
    or none with --quiet."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split())
        sys.stderr.write(f"tokenfactory: warning: {text}\n")

    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
        warnings.showwarning = show
        yield


def finite(value: Any) -> Any:
    """JSON has no NaN or infinity; such numbers become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


@contextmanager
def progress_bar(desc: str, unit: str, quiet: bool) -> Iterator:
    """A tqdm bar on stderr (shown only on a terminal) and a callback (done, total) for it."""
    with tqdm(total=1, unit=unit, desc=desc, disable=True if quiet else None, file=sys.stderr,
              leave=False) as bar:

        def update(done: int, total: int | None) -> None:  # None: total unknown
            bar.total = total
            bar.n = done
            bar.refresh()

        yield update
