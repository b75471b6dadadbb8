"""Pieces every command shares: one-line argument errors, argument types and the flags
several commands take, output directories and atomic writes, progress bars."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from tqdm import tqdm

from sim.errors import InputError


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse's contract too)
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


def positive_number(noun: str = "number") -> Callable[[str], float]:
    """An argparse type: a finite number > 0, else an error naming the value and the `noun`."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"{text!r} is not a {noun} > 0")
        return value

    return parse


# ---- flags several commands take, worded once ----------------------------------------------

Arguments = argparse._ActionsContainer  # a parser or an argument group: both take flags


def add_output_dir(parser: Arguments, command: str, default_note: str = "") -> None:
    """-o/--output DIR for the commands that fill a directory (default ./NAME-COMMAND)."""
    parser.add_argument("-o", "--output", type=Path, metavar="DIR",
                        help="new or empty directory for the results (default: "
                        f"./NAME-{command}{default_note})")


def add_workers(parser: Arguments, in_process: bool = True) -> None:
    """--workers N: local worker processes (where 1 may mean no pool at all)."""
    note = "; 1 runs in-process" if in_process else ""
    parser.add_argument("--workers", type=positive_int, metavar="N",
                        help=f"local worker processes (default: one per CPU{note})")


def add_seed(parser: Arguments, derived: str = "") -> None:
    """--seed N overriding the scenario's; `derived` says what else follows from it."""
    parser.add_argument("--seed", type=non_negative_int, metavar="N",
                        help="override the scenario's seed" + (f" ({derived})" if derived else ""))


def add_dir_report(parser: Arguments) -> None:
    """--report for the commands that fill a directory: DIR/report.html beside the results."""
    parser.add_argument("--report", action="store_true",
                        help="also write DIR/report.html, the capacity-review report "
                        "(the same as tokenfactory report DIR afterwards)")


def add_quiet(parser: Arguments) -> None:
    """--quiet: for scripts, where only a failure should make a sound."""
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")


# ---- outputs -------------------------------------------------------------------------------


def check_output_path(flag: str, path: Path | None) -> None:
    """Fail before any work when an output could not be written anyway."""
    if path is not None and (path.is_dir() or not path.parent.is_dir()):
        raise InputError(flag, str(path), "a file path in an existing directory")


def output_dir(given: Path | None, raw: dict[str, Any], command: str, hint: str = "") -> Path:
    """-o's directory (default ./NAME-COMMAND), checked to be new or empty."""
    out = given or Path(f"{raw['name']}-{command}")
    check_new_dir(out, hint)
    return out


def check_new_dir(out: Path, hint: str = "") -> None:
    """Refuse before any work rather than mix two runs' files or fail at the end; `hint`
    follows the error (how else to use a directory already written)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError("-o", str(out), "a new or empty directory" + hint)
    if not out.parent.is_dir():
        raise InputError("-o", str(out), "a directory whose parent exists")


def wrote(paths: Iterable[Path]) -> str:
    """The line that ends a command which wrote files: `wrote a, b, c`."""
    return f"wrote {', '.join(str(p) for p in paths)}"


def to_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    """CSV text with a header of `columns`; None cells are empty."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()


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
