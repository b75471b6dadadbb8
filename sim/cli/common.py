"""Pieces every command shares: one-line argument errors, argument types and the flags
several commands take, output directories and atomic writes, progress bars."""

from __future__ import annotations

import argparse
import csv
import errno
import io
import json
import math
import os
import shutil
import stat
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, NoReturn

from tqdm import tqdm

from sim.errors import InputError
from sim.report.text import printable


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse's contract too)
        # argparse quotes the arguments it refuses: shown, never obeyed, by the terminal.
        sys.stderr.write(printable(f"{self.prog}: error: {message} (see {self.prog} --help)")
                         + "\n")
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


def add_work_limits(parser: Arguments, per_run: int, total: int | None = None) -> None:
    """--max-requests (and, for commands of many runs, --max-total-requests): the up-front
    bound on the work a command may start (sim.runner.budget), which a bigger machine can
    raise. The defaults come from the command, which knows its budget module."""
    parser.add_argument("--max-requests", type=positive_int, metavar="N", default=per_run,
                        help=f"refuse a run expected to simulate more than N requests "
                        f"(default {per_run:,}: about 10 GB and minutes of work)")
    if total is not None:
        parser.add_argument("--max-total-requests", type=positive_int, metavar="N",
                            default=total, help=f"refuse when all runs together are expected "
                            f"to simulate more than N requests (default {total:,})")


def add_dir_report(parser: Arguments) -> None:
    """--report for the commands that fill a directory: DIR/report.html beside the results."""
    parser.add_argument("--report", action="store_true",
                        help="also write DIR/report.html, the capacity-review report "
                        "(the same as tokenfactory report DIR afterwards)")


def add_quiet(parser: Arguments) -> None:
    """--quiet: for scripts, where only a failure should make a sound."""
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")


# ---- outputs -------------------------------------------------------------------------------
#
# Every output is checked before any work (the directory exists and can be written, by
# creating and removing a file there rather than trusting permission bits; the name fits
# NAME_MAX and the path PATH_MAX; the file system has room for what is cheap to estimate),
# and written whole or not at all: each file to a temporary file beside it with the mode the
# umask gives, renamed into place only once every file of the command is staged. A refusal
# of the file system on the way (a full disk, a read-only mount) is bad input like any other:
# one line naming the flag, the path and the system's reason, and nothing left behind.

KiB, MiB = 1024, 1024**2
SMALL_FILE_BYTES = 64 * KiB  # a result JSON, a workload or profile YAML
FIGURE_BYTES = 1 * MiB  # a PNG figure, with room to spare
INNER_NAME_BYTES = 64  # the longest name written inside an output directory, temp included
_PROBE_PREFIX = ".tokenfactory-probe-"


def check_output_path(flag: str, path: Path | None,
                      expected_bytes: int = SMALL_FILE_BYTES) -> None:
    """Fail before any work when the output file `path` could not be written anyway: a
    directory or device where the file should go, a missing or unwritable directory, a name
    or path too long for the file system, or too little room for `expected_bytes`."""
    if path is None:
        return
    directory = path.parent
    _check_lengths(flag, path, directory, extra=0)
    _check_directory(flag, path, directory, "a file path in an existing directory")
    kind = _kind(flag, path, follow=True)
    if kind == "directory":
        raise InputError(flag, str(path), "a file path in an existing directory, not a "
                         "directory")
    if kind not in (None, "file"):
        raise InputError(flag, str(path), f"a regular file or a new name (it is {kind})")
    _check_writable(flag, path, directory)
    check_free_space(flag, path, directory, expected_bytes)


def output_dir(given: Path | None, raw: dict[str, Any], command: str, hint: str = "",
               expected_bytes: int = 4 * FIGURE_BYTES) -> Path:
    """-o's directory (default ./NAME-COMMAND), checked to be new or empty and writable."""
    out = given or Path(f"{raw.get('name', command)}-{command}")
    check_new_dir(out, hint, expected_bytes=expected_bytes)
    return out


def check_new_dir(out: Path, hint: str = "", flag: str = "-o",
                  expected_bytes: int = 4 * FIGURE_BYTES) -> None:
    """Refuse before any work rather than mix two runs' files or fail at the end; `hint`
    follows the error (how else to use a directory already written)."""
    _check_lengths(flag, out, out.parent, extra=1 + INNER_NAME_BYTES)
    kind = _kind(flag, out, follow=True)
    if kind is None:
        _check_directory(flag, out, out.parent, "a directory whose parent exists")
        where = out.parent
    elif kind != "directory" or not _is_empty(flag, out):
        raise InputError(flag, str(out), "a new or empty directory" + hint)
    else:
        where = out
    _check_writable(flag, out, where)
    check_free_space(flag, out, where, expected_bytes)


def check_writable_dir(flag: str, directory: Path, expected_bytes: int = 0,
                       create: bool = False) -> None:
    """An existing directory new files can be written into (as --resume's directory); with
    `create`, also a new name in an existing directory (one the command will make)."""
    _check_lengths(flag, directory, directory.parent, extra=1 + INNER_NAME_BYTES)
    kind = _kind(flag, directory, follow=True)
    if kind is None and create:
        _check_directory(flag, directory, directory.parent,
                         "a directory, or a new one in an existing directory")
        where = directory.parent
    elif kind != "directory":
        raise InputError(flag, str(directory), "a directory, or a new one in an existing "
                         "directory" if create else "an existing directory")
    else:
        where = directory
    _check_writable(flag, directory, where)
    check_free_space(flag, directory, where, expected_bytes)


def check_free_space(flag: str, shown: Path, directory: Path, expected_bytes: int) -> None:
    """Refuse when the file system holding `directory` has less room than `expected_bytes`
    (an estimate of what the command will write; 0 skips the check)."""
    if expected_bytes <= 0:
        return
    try:
        free = shutil.disk_usage(directory).free
    except (OSError, ValueError):
        return  # the checks before this one judged the directory; no figure, no refusal
    if free < expected_bytes:
        raise InputError(flag, str(shown), f"a file system with room for the output (about "
                         f"{_bytes(expected_bytes)} to write, {_bytes(free)} free under "
                         f"{directory})")


def _bytes(n: int) -> str:
    return f"{n / MiB:,.1f} MiB" if n >= MiB else f"{n:,} bytes"


def _pathconf(directory: Path, name: str, default: int) -> int:
    try:
        return int(os.pathconf(directory, name))
    except (OSError, ValueError):
        return default


def _check_lengths(flag: str, path: Path, directory: Path, extra: int) -> None:
    """The name within NAME_MAX bytes and the path (plus `extra` bytes that will be joined to
    it, for a directory's files) within PATH_MAX, as the file system states them."""
    name = len(os.fsencode(path.name))
    name_max = _pathconf(directory, "PC_NAME_MAX", 255)
    if name > name_max:
        raise InputError(flag, str(path), f"a name of at most {name_max} bytes (this one has "
                         f"{name})")
    path_max = _pathconf(directory, "PC_PATH_MAX", 4096)
    length = len(os.fsencode(os.path.abspath(path))) + extra
    if length >= path_max:
        raise InputError(flag, str(path), f"a path shorter than {path_max} bytes (PATH_MAX; "
                         f"this one needs {length})")


def _kind(flag: str, path: Path, follow: bool) -> str | None:
    """What is at `path`: None (nothing), 'file', 'directory' or another kind's words."""
    try:
        mode = os.stat(path, follow_symlinks=follow).st_mode
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError(flag, str(path), f"a path that can be looked up ({_reason(exc)})") \
            from None
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    for test, name in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _check_directory(flag: str, path: Path, directory: Path, expected: str) -> None:
    kind = _kind(flag, directory, follow=True)
    if kind != "directory":
        note = "" if kind is None else f" ({directory} is {'a file' if kind == 'file' else kind})"
        raise InputError(flag, str(path), expected + note)


def _is_empty(flag: str, directory: Path) -> bool:
    try:
        with os.scandir(directory) as entries:
            return next(entries, None) is None
    except OSError as exc:
        raise InputError(flag, str(directory), f"a directory that can be read "
                         f"({_reason(exc)})") from None


def _check_writable(flag: str, path: Path, directory: Path) -> None:
    """Whether files can be created in `directory`, found out by creating and removing one:
    the only honest test. Permission bits (os.access) say nothing for root, and nothing of a
    read-only mount, /proc or /sys, which refuse whatever the bits say; the probe's own
    error carries the system's reason (permission denied, read-only file system, ...)."""
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=_PROBE_PREFIX)
    except (OSError, ValueError) as exc:
        raise InputError(flag, str(path), f"a writable location (creating a file in "
                         f"{directory} fails: {_reason(exc)})") from None
    os.close(fd)
    Path(probe).unlink(missing_ok=True)


def _reason(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)) or \
        type(exc).__name__


def write_error(flag: str, path: Path, exc: OSError) -> InputError:
    """An OSError while writing an output, as the one-line error: the flag, the path and the
    system's reason (nothing was left there: the caller removed its temporary files)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        expected = "room on its file system to write it"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        expected = "a writable location"
    elif exc.errno == errno.ENAMETOOLONG:
        expected = "a shorter path"
    else:
        expected = "a location it can be written to"
    return InputError(flag, str(path), f"{expected} ({_reason(exc)}; nothing was written)")


class Outputs:
    """The files one command writes, whole or not at all: each is staged (a temporary file
    beside it) as it is produced, and all are renamed into place by `commit`, in the order
    staged; a failure before that removes every staged file and every directory this set
    created, so a full disk part-way through leaves nothing that looks like a result."""

    def __init__(self, flag: str) -> None:
        self.flag = flag
        self.staged: list[tuple[Path, Path, str]] = []  # (temporary, final, flag)
        self.made: list[Path] = []
        self.done: list[Path] = []

    def directory(self, path: Path, flag: str | None = None) -> Path:
        """Create `path` unless it exists (it was checked to be new or empty)."""
        try:
            path.mkdir()
            self.made.append(path)
        except FileExistsError:
            if not path.is_dir():
                raise InputError(flag or self.flag, str(path), "a directory") from None
        except OSError as exc:
            raise write_error(flag or self.flag, path, exc) from None
        return path

    def bytes(self, path: Path, data: bytes, flag: str | None = None) -> Path:
        from sim.montecarlo.files import stage  # here: it loads the sweep layer

        try:
            self.staged.append((stage(path, data), path, flag or self.flag))
        except OSError as exc:
            raise write_error(flag or self.flag, path, exc) from None
        return path

    def text(self, path: Path, text: str, flag: str | None = None) -> Path:
        return self.bytes(path, text.encode("utf-8"), flag)

    def json(self, path: Path, data: dict[str, Any], flag: str | None = None) -> Path:
        return self.text(path, json_text(data), flag)

    def commit(self) -> list[Path]:
        """Rename every staged file into place; the paths, in the order staged."""
        while self.staged:
            tmp, path, flag = self.staged[0]
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise write_error(flag, path, exc) from None
            self.staged.pop(0)
            self.done.append(path)
        return self.done

    def discard(self) -> None:
        """Remove what this set wrote: staged files, files already renamed (a commit that
        failed part-way), and the directories it created, innermost first."""
        for tmp, _, _ in self.staged:
            tmp.unlink(missing_ok=True)
        for path in self.done:
            path.unlink(missing_ok=True)
        for path in reversed(self.made):
            with suppress(OSError):
                path.rmdir()
        self.staged, self.done, self.made = [], [], []


@contextmanager
def outputs(flag: str) -> Iterator[Outputs]:
    """An `Outputs` set committed when the block ends, discarded if it raises."""
    staged = Outputs(flag)
    try:
        yield staged
        staged.commit()
    except BaseException:
        staged.discard()
        raise


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


def json_text(data: dict[str, Any]) -> str:
    """A result file's JSON text: indented, NaN and infinity as null."""
    return json.dumps(finite(data), indent=2, allow_nan=False) + "\n"


def write_json(path: Path, data: dict[str, Any], flag: str = "output") -> None:
    write_text(path, json_text(data), flag)


def write_text(path: Path, text: str, flag: str = "output") -> None:
    """Write whole or not at all (see `Outputs`); a refusal names `flag` and the path."""
    write_bytes(path, text.encode("utf-8"), flag)


def write_bytes(path: Path, data: bytes, flag: str = "output") -> None:
    """`write_text` for binary outputs such as PNG figures."""
    with outputs(flag) as staged:
        staged.bytes(path, data)


@contextmanager
def one_line_warnings(quiet: bool) -> Iterator[None]:
    """Show each warning raised below the CLI (through `warnings`) as one line on stderr,
    or none with --quiet."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = printable(" ".join(str(message).split()))  # a warning may quote a file name
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
