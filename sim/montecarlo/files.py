"""A sweep directory: runs.csv (one row per run) and sweep.json (what the rows came from).

runs.csv is written as runs finish, one flushed line each, so an interrupted sweep keeps
every run it completed; `--resume` reads the complete lines back (a half-written last line
is dropped), runs only the missing ones, and the final file is rewritten sorted by run index,
so it is the same file whether the sweep ran in one go or in pieces, on one worker or many.

What `--resume` reads is checked before anything is kept: sweep.json's keys and types, and
every complete line of runs.csv against the design the scenario makes now (its run index in
range and not seen before, its point, replication, seed, swept and sampled values those of
that run, its metric cells numbers). A file another sweep wrote, or one edited or damaged,
is refused naming the file, the line and the column, rather than mixed into this sweep.

Cells: empty for "no value", `true`/`false`, numbers as Python's shortest round-trip repr
(so a value read back is the very float that was written), names as they are, and
structured grid values (a mapping, a list) as JSON.

The module also holds the file primitives every result file goes through (the CLI's
writers and the report's reader use them too; they live here, the lowest layer that writes
a result): `stage` and `write_whole`, a temporary file given the mode the umask says and
renamed into place, and `read_regular`, which reads a bounded regular file and never
follows a symbolic link.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any, NoReturn

from sim.errors import InputError
from sim.montecarlo.capacity import Capacity
from sim.montecarlo.design import RunSpec, SweepDesign
from sim.montecarlo.execute import ITEM_COLUMNS, METRICS
from sim.provenance import FORMAT_VERSION
from sim.scenario.files import file_kind, size_text

RUNS_CSV = "runs.csv"
MANIFEST_JSON = "sweep.json"
SUMMARY_JSON = "summary.json"

MAX_MANIFEST_BYTES = 64 * 1024**2  # far above any sweep.json; a bound on what is read
MIN_RUNS_CSV_CAP = 64 * 1024**2
RUNS_CSV_BYTES_PER_RUN = 64 * 1024  # a generous bound on one row (grid values may be JSON)
METRIC_COLUMNS = (*METRICS, *ITEM_COLUMNS)
BOOLEAN_METRICS = ("slo_met",)


# ---- files written whole, read without following links --------------------------------------


def file_mode() -> int:
    """The mode a new file gets from open(2) under the current umask (0o666 less it).

    `tempfile.mkstemp` creates 0600 whatever the umask, so a file written through a temporary
    file gets this mode before the rename. The umask is read from /proc/self/status where the
    kernel reports it: the portable way (set it to read it back) changes it for an instant in
    every thread, and the plan command writes while its threads may still be creating files.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _temp_prefix(name: str, name_max: int = 255) -> str:
    """`.NAME.` for the temporary file, shortened when NAME is near the name-length limit
    (mkstemp adds 8 random characters and the suffix)."""
    prefix = f".{name}."
    return prefix if len(os.fsencode(prefix)) + 12 <= name_max else ".tokenfactory."


def stage(path: Path, data: bytes) -> Path:
    """`data` in a temporary file beside `path`, with the mode the umask gives: the first
    half of an atomic write (`os.replace(staged, path)` is the second). On any failure the
    temporary file is removed and the error (an OSError for the file system's refusals, such
    as a full disk) propagates."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path.name), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), file_mode())
            handle.write(data)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def write_whole(path: Path, data: bytes) -> None:
    """Write whole or not at all: a temporary file in the same directory, then renamed over
    `path`; on a failure `path` is untouched and no temporary file is left."""
    tmp = stage(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_regular(path: Path, limit: int, what: str, flag: str | None = None) -> bytes:
    """The bytes of `path`, which must be a regular file of at most `limit` bytes reached
    without a symbolic link as its last component (O_NOFOLLOW): a result folder is often
    shared, and a link in it must not pull another file (/etc/passwd, a device that never
    ends) into what is read and embedded. Opened non-blocking, so a FIFO cannot hang the
    read. Refusals are InputErrors naming the path (after `flag`, when the path came from
    one) and what was found there; `what` says what was wanted."""
    where = f"{flag}: {path}" if flag else str(path)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InputError(where, "no such file", what) from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK) and path.is_symlink():
            raise InputError(where, "a symbolic link", f"{what}: a regular file (links in "
                             "result folders are never followed)") from None
        raise InputError(where, exc.strerror, what) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(where, file_kind(info.st_mode), f"{what}: a regular file")
        if info.st_size > limit:
            raise InputError(where, f"{info.st_size:,} bytes", f"{what} of at most "
                             f"{size_text(limit)}")
        chunks, size = [], 0
        while size <= limit:  # a file may grow while it is read: never past the limit
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise InputError(where, f"over {size - 1:,} bytes", f"{what} of at most "
                             f"{size_text(limit)}")
        return b"".join(chunks)
    except OSError as exc:
        raise InputError(where, exc.strerror, what) from None
    finally:
        os.close(fd)


def json_object(data: bytes, path: Path, flag: str | None = None) -> dict[str, Any]:
    """A JSON object from `data` (read from `path`); refusals name the path (after `flag`)."""
    where = f"{flag}: {path}" if flag else str(path)
    try:
        value = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(where, "not UTF-8 text", "a UTF-8 JSON file") from None
    except RecursionError:
        raise InputError(where, "nested too deep", "a JSON file") from None
    except ValueError as exc:
        raise InputError(where, str(exc), "a readable JSON file") from None
    if not isinstance(value, dict):
        raise InputError(where, type(value).__name__, "a JSON object at the top level")
    return value


# ---- runs.csv and sweep.json ---------------------------------------------------------------


def columns(design: SweepDesign) -> list[str]:
    labels = design.labels[0]
    point_keys = [*design.label_keys, *(k for k in design.overrides[0] if k not in labels)]
    return ["run", "point", "replication", "seed", *point_keys, *design.sampled_keys, *METRICS,
            *ITEM_COLUMNS]


def manifest(design: SweepDesign) -> dict[str, Any]:
    """What sweep.json records: enough to check a resume and to replay any row."""
    return {
        "scenario": design.name,
        "fingerprint": design.fingerprint,
        "seed": design.seed,
        "replications": design.replications,
        "capacity": None if design.capacity is None else design.capacity.to_dict(),
        "columns": columns(design),
        "override_columns": list(design.override_keys),
    }


def read_manifest(directory: Path, flag: str) -> dict[str, Any]:
    """sweep.json, every key --resume and --replay use checked (its capacity as a
    `Capacity`); a damaged or foreign file is refused naming the key."""
    path = directory / MANIFEST_JSON
    what = f"a directory written by tokenfactory sweep (with a readable {MANIFEST_JSON})"
    data = json_object(read_regular(path, MAX_MANIFEST_BYTES, what, flag), path, flag)
    check = _Checker(path)
    version = data.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION or isinstance(version, bool):
        check.fail("format_version", version, f"{FORMAT_VERSION}, the format this version "
                   "writes (re-run the sweep with this version)")
    check.text(data, "scenario")
    fingerprint = check.text(data, "fingerprint")
    if not re.fullmatch(r"[0-9a-f]{64}", fingerprint):
        check.fail("fingerprint", fingerprint, "64 hexadecimal digits (a SHA-256)")
    check.integer(data, "seed", 0)
    check.integer(data, "replications", 1)
    names = check.text_list(data, "columns")
    if len(set(names)) != len(names) or names[:1] != ["run"]:
        check.fail("columns", names, "distinct column names, `run` first")
    overrides = check.text_list(data, "override_columns")
    stray = [name for name in overrides if name not in names]
    if stray:
        check.fail("override_columns", stray[0], "names among `columns`")
    data["capacity"] = _capacity(data, check)
    return data


def _capacity(data: Mapping[str, Any], check: _Checker) -> Capacity | None:
    if "capacity" not in data:
        check.fail("capacity", "missing", "a saturation measurement, or null for a grid sweep")
    capacity = data["capacity"]
    if capacity is None:
        return None
    if not isinstance(capacity, dict):
        check.fail("capacity", capacity, "a mapping, or null for a grid sweep")
    if capacity.get("method", "saturation run") != "saturation run":
        check.fail("capacity.method", capacity.get("method"), "'saturation run'")
    extra = set(capacity) - {"method", "requests_per_s", "input_tokens_per_s",
                             "output_tokens_per_s", "probe_rate_per_s", "window_s", "seed"}
    if extra:
        check.fail(f"capacity.{sorted(extra)[0]}", capacity[sorted(extra)[0]],
                   "only the keys of a saturation measurement")
    values: dict[str, Any] = {}
    for key in ("requests_per_s", "probe_rate_per_s", "window_s"):
        values[key] = check.number(capacity, key, positive=True, prefix="capacity.")
    for key in ("input_tokens_per_s", "output_tokens_per_s"):
        values[key] = check.number(capacity, key, positive=False, prefix="capacity.")
    values["seed"] = check.integer(capacity, "seed", 0, prefix="capacity.")
    return Capacity(**values)


class _Checker:
    """Type checks of sweep.json's keys, each refusal naming the file and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, value: Any, expected: str) -> NoReturn:
        raise InputError(f"{self.path}: {key}", value, expected)

    def _get(self, data: Mapping[str, Any], key: str, prefix: str) -> Any:
        if key not in data:
            self.fail(prefix + key, "missing", "present (sweep.json as tokenfactory sweep "
                      "writes it)")
        return data[key]

    def text(self, data: Mapping[str, Any], key: str) -> str:
        value = self._get(data, key, "")
        if not isinstance(value, str):
            self.fail(key, value, "a string")
        return value

    def text_list(self, data: Mapping[str, Any], key: str) -> list[str]:
        value = self._get(data, key, "")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, value, "a list of column names")
        return value

    def integer(self, data: Mapping[str, Any], key: str, minimum: int,
                prefix: str = "") -> int:
        value = self._get(data, key, prefix)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(prefix + key, value, f"an integer ≥ {minimum}")
        return value

    def number(self, data: Mapping[str, Any], key: str, positive: bool, prefix: str) -> float:
        value = self._get(data, key, prefix)
        ok = isinstance(value, int | float) and not isinstance(value, bool) \
            and math.isfinite(value) and (value > 0 if positive else value >= 0)
        if not ok:
            self.fail(prefix + key, value, "a finite number " + ("> 0" if positive else "≥ 0"))
        return float(value)


def cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)  # numbers as repr, booleans as true/false, mappings as JSON


def parse_cell(text: str) -> Any:
    """runs.csv cells: empty is None, numbers and booleans as JSON, anything else text."""
    if text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def metric_cell_ok(name: str, text: str) -> bool:
    """Whether `text` is a cell the sweep could have written in metric column `name`: empty,
    `true`/`false` for the SLO verdict, else a finite number (never NaN, which is written
    empty, nor a name)."""
    if text == "":
        return True
    if name in BOOLEAN_METRICS:
        return text in ("true", "false")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value)


def labelled_row(spec: RunSpec, labels: Mapping[str, Any], metrics: Mapping[str, Any],
                 header: Sequence[str]) -> list[str]:
    """A run's row: its place, seed, point labels (e.g. utilization), values and metrics."""
    known = {"run": spec.index, "point": spec.point, "replication": spec.replication,
             "seed": spec.seed, **labels, **spec.values, **metrics}
    return [cell(known.get(name)) for name in header]


def _line(cells: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


class RunsFile:
    """runs.csv, appended to as runs finish.

    `design` is the sweep the rows belong to: on resume each complete line read back must be
    one of its runs, exactly as that run's row starts (index, point, replication, seed, the
    values it set), with metric cells the sweep could have written."""

    def __init__(self, path: Path, design: SweepDesign, resume: bool) -> None:
        self.path = path
        self.header = columns(design)
        self.design = design
        self.rows: dict[int, list[str]] = self._complete_rows() if resume else {}
        self._rewrite(sorted(self.rows.items()))  # drops a half-written last line
        self.handle = path.open("a", encoding="utf-8", newline="")

    def _complete_rows(self) -> dict[int, list[str]]:
        limit = max(MIN_RUNS_CSV_CAP, len(self.design.runs) * RUNS_CSV_BYTES_PER_RUN)
        data = read_regular(self.path, limit, f"a {RUNS_CSV} written by tokenfactory sweep",
                            "--resume")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise InputError(f"{self.path}:{line}", "not UTF-8 text",
                             f"a {RUNS_CSV} written by tokenfactory sweep") from None
        complete = text[: text.rfind("\n") + 1]  # a line without its newline is unfinished
        reader = csv.reader(io.StringIO(complete))
        try:
            lines = [(reader.line_num, row) for row in reader]
        except csv.Error as exc:
            raise InputError(f"{self.path}:{reader.line_num}", str(exc),
                             f"a {RUNS_CSV} written by tokenfactory sweep") from None
        if not lines:
            return {}
        if lines[0][1] != self.header:
            raise InputError(f"{self.path}:1", _first_difference(lines[0][1], self.header),
                             f"a {RUNS_CSV} with the columns this sweep writes (it was made by "
                             "a different sweep)")
        identity = len(self.header) - len(METRIC_COLUMNS)
        rows: dict[int, list[str]] = {}
        for number, row in lines[1:]:
            self._check(number, row, identity, rows)
            rows[int(row[0])] = row
        return rows

    def _check(self, number: int, row: list[str], identity: int,
               seen: Mapping[int, list[str]]) -> None:
        """One line read back: refused (naming line and column) unless it is a row of this
        design's run that no earlier line held."""
        where = f"{self.path}:{number}"
        if len(row) != len(self.header):
            raise InputError(where, f"{len(row)} cells", f"{len(self.header)} cells, one per "
                             "column of the header")
        index = row[0]
        if not (index.isascii() and index.isdigit()) or int(index) >= len(self.design.runs):
            raise InputError(f"{where}: run", index, f"a run index from 0 to "
                             f"{len(self.design.runs) - 1} (this sweep's runs)")
        if int(index) in seen:
            raise InputError(f"{where}: run", index, "each run once (an earlier line holds "
                             "this run too)")
        spec = self.design.runs[int(index)]
        expected = labelled_row(spec, self.design.labels[spec.point], {}, self.header)
        for name, found, wanted in zip(self.header[:identity], row, expected, strict=False):
            if found != wanted:
                raise InputError(f"{where}: {name}", found, f"{wanted!r}, run {index}'s value "
                                 "in this sweep (the line is from another sweep, or edited)")
        for name, found in zip(self.header[identity:], row[identity:], strict=True):
            if not metric_cell_ok(name, found):
                kind = "true, false or empty" if name in BOOLEAN_METRICS \
                    else "a finite number or empty"
                raise InputError(f"{where}: {name}", found, kind)

    def append(self, cells: list[str]) -> None:
        self.rows[int(cells[0])] = cells
        self.handle.write(_line(cells))
        self.handle.flush()

    def close(self) -> None:
        """Close the file; a failure to write its buffer (the disk filled) is not raised
        again here, where the caller is already reporting the first."""
        with suppress(OSError):
            self.handle.close()

    def finish(self) -> list[list[str]]:
        """Close, and rewrite the file sorted by run index; the rows, in that order."""
        self.handle.close()
        ordered = sorted(self.rows.items())
        self._rewrite(ordered)
        return [cells for _, cells in ordered]

    def _rewrite(self, ordered: list[tuple[int, list[str]]]) -> None:
        text = "".join(_line(cells) for cells in [self.header, *(c for _, c in ordered)])
        write_whole(self.path, text.encode("utf-8"))


def _first_difference(found: Sequence[str], wanted: Sequence[str]) -> str:
    """The first header cell that differs from the columns this sweep writes."""
    for have, want in zip(found, wanted, strict=False):
        if have != want:
            return have
    return f"{len(found)} columns (this sweep writes {len(wanted)})"


def parsed(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """Rows as {column: value} with numbers, booleans and nulls restored."""
    return [{name: parse_cell(text) for name, text in zip(header, row, strict=True)}
            for row in rows]


def read_run(csv_path: Path, run_index: int, flag: str) -> dict[str, str]:
    """One row of runs.csv, by its run index, as {column: cell text}; a line with more or
    fewer cells than the header, or without a seed, is refused rather than half-read."""
    try:
        with csv_path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            for row in reader:
                if row.get("run") != str(run_index):
                    continue
                seed = row.get("seed")
                if None in row or None in row.values() or seed is None \
                        or not (seed.isascii() and seed.isdigit()):
                    raise InputError(f"{csv_path}:{reader.line_num}", row.get("run"),
                                     "a complete row of a runs.csv written by tokenfactory "
                                     "sweep (one cell per column, a seed)")
                return row
    except (OSError, UnicodeDecodeError, csv.Error):
        raise InputError(flag, str(csv_path), "a readable runs.csv written by "
                         "tokenfactory sweep") from None
    raise InputError(flag, f"{csv_path}:{run_index}", "a run index present in that runs.csv")
