"""Request traces: read a production trace file into arrays of arrival times and lengths.

Formats (`FORMATS`; `auto` decides from the file):

* `azure` — Azure LLM inference traces (CSV): `TIMESTAMP` as `YYYY-MM-DD HH:MM:SS.fffffff`,
  `ContextTokens`, `GeneratedTokens`.
* `mooncake` — Mooncake / Kimi JSON lines: `timestamp` in ms, `input_length`,
  `output_length`, and `hash_ids` where a line has it: the prompt's prefix-block ids, one per
  `MOONCAKE_BLOCK_TOKENS` tokens (any other key is ignored).
* `burstgpt` — BurstGPT CSV: `Timestamp` in s, `Request tokens`, `Response tokens`.
* `csv` — any CSV with a header: columns named by `columns`, times in `timestamp_unit`.

`auto` picks `mooncake` for a file that starts with `{` (or ends in .jsonl/.json), `azure` or
`burstgpt` for a CSV header holding their columns, and `csv` otherwise.

Rules every format shares: times become seconds after the trace's first request; a negative
or non-numeric timestamp, a non-integer token count, a missing column or an empty file is an
`InputError` naming the file, line and column, and so is a timestamp more than
`MAX_SPAN_YEARS` from the others (one absurd time, say year 9999 or 1e300 ms, would stretch
every per-second count over the span); a device, FIFO or a file over `MAX_TRACE_BYTES` is
refused before it is read; out-of-order rows are sorted (stably) with a
`TraceWarning`; rows with 0 prompt or 0 output tokens (failed requests, as BurstGPT logs
them) are dropped with a `TraceWarning`, since a request needs at least one of each.

Files are parsed as numpy byte arrays (`sim.scenario.textcolumns`): a million CSV rows take
well under a second and no Python object per row. JSON lines are not parsed as JSON: each key
is found by its quoted name and the number after its colon is read, so a line that holds a
key's quoted name twice (say, inside a string) is reported rather than guessed at. A list
of block ids is read the same way: the bytes between the key's `[` and the next `]`, which
must be integers ≥ 0 separated by commas.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from sim.errors import InputError
from sim.scenario import files
from sim.scenario import textcolumns as tc
from sim.scenario.base import MAX_TOKEN_COUNT


class TraceWarning(UserWarning):
    """A trace was usable but not as written (rows re-ordered or dropped)."""


# Tokens per `hash_ids` block of a Mooncake trace (kvcache-ai/Mooncake, FAST25-release; Qin
# et al., FAST 2025): "512 tokens a block" says the README of ../shared/data/traces, which
# checked len(hash_ids) = ceil(input_length / 512) on every row of the conversation and
# synthetic traces; the two samples of the upstream FAST25-release README agree (14 ids for
# 6,955 tokens, 13 for 6,472).
MOONCAKE_BLOCK_TOKENS = 512


@dataclass(frozen=True, eq=False)
class Trace:
    """A trace file's requests, sorted by arrival; times are seconds after the first one.
    Read from a file, the arrays are read-only: every scenario replaying it shares them."""

    arrival_s: np.ndarray  # float64
    prompt_tokens: np.ndarray  # int64 ≥ 1
    output_tokens: np.ndarray  # int64 ≥ 1
    source: str  # the file, for messages
    format: str  # the format it was read as
    # Prefix-block ids (Mooncake `hash_ids`) as rows of one flat array: request i's are
    # hash_ids[hash_offsets[i]:hash_offsets[i + 1]], each `block_tokens` tokens of its prompt
    # in turn. None for a format without them.
    hash_ids: np.ndarray | None = None  # int64 ≥ 0
    hash_offsets: np.ndarray | None = None  # int64, one more than requests
    block_tokens: int = MOONCAKE_BLOCK_TOKENS

    def __eq__(self, other: object) -> bool:  # arrays compare whole, so scenarios can too
        if not isinstance(other, Trace):
            return NotImplemented
        columns = ("arrival_s", "prompt_tokens", "output_tokens", "hash_ids", "hash_offsets")
        return ((self.source, self.format, self.block_tokens)
                == (other.source, other.format, other.block_tokens)) and all(
            _same(getattr(self, c), getattr(other, c)) for c in columns)
    # Defining __eq__ leaves the class unhashable (__hash__ None): it holds arrays.


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return a is b or (a is not None and b is not None and np.array_equal(a, b))


def take_rows(values: np.ndarray, offsets: np.ndarray, index: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Rows `index` (in that order, repeats allowed) of rows stored flat: row i is
    values[offsets[i]:offsets[i + 1]]; the rows taken, stored the same way."""
    lengths = (offsets[1:] - offsets[:-1])[index]
    taken = np.zeros(len(index) + 1, dtype=np.int64)
    np.cumsum(lengths, out=taken[1:])
    source = np.repeat(offsets[:-1][index] - taken[:-1], lengths) + np.arange(taken[-1])
    return values[source], taken


@dataclass(frozen=True)
class TraceFile:
    """How a trace was read: the file, as it was then, and the reading options. All another
    process needs to read the same requests again (`requests_for`); it compares by path and
    options, not by the stamp, since scenarios compare by content."""

    path: str  # absolute
    fmt: str
    columns: tuple[tuple[str, str], ...]  # role → header name, sorted by role
    timestamp_unit: str | None
    source: str  # the name the requests carry (the path as the scenario gave it)
    stamp: files.FileStamp = field(compare=False)  # the file when it was read

    @property
    def cache_key(self) -> tuple[object, ...]:
        """What the parse depends on: the file as it is and the options; not the name,
        which is swapped in afterwards."""
        return (self.stamp, self.fmt, self.columns, self.timestamp_unit)


@dataclass(frozen=True)
class _Parsed:
    """A parse as cached: the requests, and the warnings it gave without the file's name
    (repeated, under the caller's name for the file, whenever it is asked for again)."""

    trace: Trace
    notes: tuple[str, ...]


TRACE_CACHE_ENTRIES = 8  # distinct traces kept parsed per process (a sweep uses one)
_PARSED: files.FileCache[_Parsed] = files.FileCache(TRACE_CACHE_ENTRIES)


@dataclass(frozen=True)
class Layout:
    """Where a format keeps the three things a replay needs."""

    lines: str  # "csv" (a header, then comma-separated fields) or "jsonl" (one object a line)
    timestamp: str
    prompt_tokens: str
    output_tokens: str
    timestamp_unit: str  # s | ms | us | datetime
    block_ids: str | None = None  # jsonl: the key of a line's prefix-block ids, where it has one


FORMATS: dict[str, Layout] = {
    "azure": Layout("csv", "TIMESTAMP", "ContextTokens", "GeneratedTokens", "datetime"),
    "mooncake": Layout("jsonl", "timestamp", "input_length", "output_length", "ms",
                       "hash_ids"),
    "burstgpt": Layout("csv", "Timestamp", "Request tokens", "Response tokens", "s"),
    "csv": Layout("csv", "timestamp", "prompt_tokens", "output_tokens", "s"),
}
UNIT_DIVISOR = {"s": 1.0, "ms": 1e3, "us": 1e6}  # trace units per second
TRACE_FORMATS = ("auto", *FORMATS)  # what `workload.trace.format` and --format accept
TIMESTAMP_UNITS = (*UNIT_DIVISOR, "datetime")
ROLES = ("timestamp", "prompt_tokens", "output_tokens")
_JSON_VALUE_END = tc.byte_class(b",} \t\r]")
JSON_NUMBER_BYTES = 32  # longer than any number a trace holds
SNIFF_BYTES = 65_536  # enough for any header line
# Parsing takes about 8 bytes of memory per byte of file, so 1 GiB (some 25 M requests, more
# than one run may simulate: sim.runner.budget) parses in about 8 GB.
MAX_TRACE_BYTES = 1 << 30
MAX_SPAN_YEARS = 10  # the longest a trace may last, first request to last
SECONDS_PER_YEAR = 365.25 * 86_400


def read_trace(path: Path, fmt: str = "auto", columns: Mapping[str, str] | None = None,
               timestamp_unit: str | None = None, key: str = "trace") -> Trace:
    """Read a trace file; `key` names the setting that pointed at it, for a missing file.
    An unchanged file is parsed once per process; its arrays are read-only, being shared."""
    return read_trace_file(path, fmt, columns, timestamp_unit, key)[0]


def read_trace_file(path: Path, fmt: str = "auto", columns: Mapping[str, str] | None = None,
                    timestamp_unit: str | None = None, key: str = "trace"
                    ) -> tuple[Trace, TraceFile | None]:
    """`read_trace`, and how the trace was read (None when the file cannot be stat-ed, as
    it may be that the parse, reading it anyway, raises the error that says why). Warnings
    are given on every call, cached or not, as if the file were read again."""
    name = str(path)
    options = (fmt, tuple(sorted(dict(columns or {}).items())), timestamp_unit)
    stamp = files.stamp(path)
    if stamp is None:
        file = None
        parsed = _parse(path, fmt, columns, timestamp_unit, key)
    else:
        file = TraceFile(stamp.path, *options, name, stamp)
        parsed = _PARSED.get(file.cache_key,
                             lambda: _parse(path, fmt, columns, timestamp_unit, key))
    for note in parsed.notes:
        warnings.warn(f"{name}: {note}", TraceWarning, stacklevel=2)
    return _named(parsed.trace, name), file


def requests_for(file: TraceFile, key: str = "workload.trace.path") -> Trace:
    """The requests `file` describes, for a scenario unpickled in another process: from this
    process's cache, parsing the file at most once. `InputError` naming `key` when the file
    is gone or has changed since it was read (the run would replay other requests)."""
    stamp = files.stamp(Path(file.path))
    if stamp is None:
        raise InputError(key, file.path, "an existing trace file (it was there when the "
                         "scenario was loaded)")
    if stamp != file.stamp:
        raise InputError(key, file.path, "the trace file as it was when the scenario was "
                         "loaded (it has changed since: load the scenario again)")
    parsed = _PARSED.get(file.cache_key, lambda: _parse(
        Path(file.path), file.fmt, dict(file.columns), file.timestamp_unit, key))
    return _named(parsed.trace, file.source)  # its warnings were given where it was loaded


def clear_cache() -> None:
    """Forget every parsed trace: the next read of each file parses it again."""
    _PARSED.clear()


def _named(trace: Trace, name: str) -> Trace:
    """The cached requests under the caller's name for the file (arrays shared)."""
    return trace if trace.source == name else replace(trace, source=name)


def _parse(path: Path, fmt: str, columns: Mapping[str, str] | None,
           timestamp_unit: str | None, key: str) -> _Parsed:
    """Parse the file (no cache): its requests, read-only, and its warnings' texts."""
    buf, size = _read_padded(path, key)
    name = str(path)
    if size == 0 or buf[:size].max() <= ord(" "):  # nothing but blanks (a max makes no copy)
        raise InputError(name, "empty file", "a trace with at least one request")
    guessed = fmt == "auto" and not (columns or timestamp_unit)
    if fmt == "auto":
        fmt = sniff(path, bytes(buf[: min(size, SNIFF_BYTES)])) if guessed else "csv"
    layout = FORMATS[fmt]
    if columns or timestamp_unit:
        given = dict(columns or {})
        layout = replace(layout, **{r: given.get(r, getattr(layout, r)) for r in ROLES},
                         timestamp_unit=timestamp_unit or layout.timestamp_unit)
    lines = _Lines(buf, size)
    if layout.lines == "csv":
        fields = _csv_fields(buf, lines, layout, name, guessed)
    else:
        fields = _jsonl_fields(buf, lines, layout, name)
    notes: list[str] = []
    trace = _assemble(buf, fields, layout, name, fmt, notes)
    for array in (trace.arrival_s, trace.prompt_tokens, trace.output_tokens, trace.hash_ids,
                  trace.hash_offsets):
        if array is not None:
            array.flags.writeable = False  # shared by every scenario that replays the file
    return _Parsed(trace, tuple(notes))


def sniff(path: Path, data: bytes) -> str:
    """The format of a file from its first bytes, header and extension."""
    if data.lstrip()[:1] == b"{" or path.suffix.lower() in (".jsonl", ".json"):
        return "mooncake"
    header = set(_header_names(data.lstrip(b"\r\n").split(b"\n", 1)[0]))
    for fmt in ("azure", "burstgpt"):
        layout = FORMATS[fmt]
        if {layout.timestamp, layout.prompt_tokens, layout.output_tokens} <= header:
            return fmt
    return "csv"


def _read_padded(path: Path, key: str) -> tuple[np.ndarray, int]:
    """The file's bytes, read straight into a numpy array followed by PAD_BYTES zeros (one
    copy of the file in memory), and the file's size. A UTF-8 byte-order mark is blanked."""
    files.check_regular(path, key, MAX_TRACE_BYTES, "trace file")
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            buf = np.zeros(size + tc.PAD_BYTES, dtype=np.uint8)
            size = handle.readinto(buf.data[:size])
    except FileNotFoundError:
        raise InputError(key, str(path), "an existing trace file") from None
    except OSError as exc:
        raise InputError(key, str(path), f"a readable trace file ({exc.strerror})") from None
    if bytes(buf[:3]) == b"\xef\xbb\xbf":
        buf[:3] = ord(" ")  # fields and lines are trimmed of spaces anyway
    return buf, size


def _header_names(line: bytes) -> list[str]:
    text = line.rstrip(b"\r").decode("utf-8", errors="replace")
    return [name.strip().strip('"').strip() for name in text.split(",")]


class _Lines:
    """Start and end offsets of every line (without its newline or a trailing CR)."""

    def __init__(self, buf: np.ndarray, size: int) -> None:
        newlines = np.flatnonzero(buf[:size] == ord("\n"))
        self.starts = np.concatenate(([0], newlines + 1))
        self.ends = np.concatenate((newlines, [size]))
        has_cr = (self.ends > self.starts) & (buf[np.maximum(self.ends - 1, 0)] == ord("\r"))
        self.ends = self.ends - has_cr
        self.nonempty = np.flatnonzero(self.ends > self.starts)  # line indices, 0-based

    def of(self, offsets: np.ndarray) -> np.ndarray:
        """The line index holding each byte offset."""
        return np.searchsorted(self.starts, offsets, side="right") - 1


@dataclass(frozen=True)
class _Fields:
    """Per request: its 1-based line number and the byte span of each role's field."""

    line: np.ndarray
    spans: dict[str, tuple[np.ndarray, np.ndarray]]
    names: dict[str, str]  # role → column or key name, for messages
    blocks: tuple[np.ndarray, np.ndarray] | None = None  # (ids, offsets) per request


def _csv_fields(buf: np.ndarray, lines: _Lines, layout: Layout, name: str, guessed: bool
                ) -> _Fields:
    if lines.nonempty.size < 2:
        raise InputError(name, "no requests", "a header line and at least one request line")
    header_line = lines.nonempty[0]
    header = _header_names(bytes(buf[lines.starts[header_line]:lines.ends[header_line]]))
    wanted = {role: getattr(layout, role) for role in ROLES}
    for role, column in wanted.items():
        if column not in header:
            expected = (_known_headers() if guessed else
                        f"a header with a column named {column!r} ({role})")
            raise InputError(f"{name}:{header_line + 1}", ",".join(header), expected
                             + "; name your columns with trace.columns (or --columns)")
    rows = lines.nonempty[1:]
    ncols = len(header)
    commas = np.flatnonzero(buf[: lines.ends[-1]] == ord(","))
    comma_line = lines.of(commas)
    per_line = np.bincount(comma_line, minlength=len(lines.starts))
    wrong = np.flatnonzero(per_line[rows] != ncols - 1)
    if wrong.size:
        i = rows[wrong[0]]
        raise InputError(f"{name}:{i + 1}", tc.field_text(buf, lines.starts[i], lines.ends[i]),
                         f"{ncols} comma-separated fields, like the header (quoted commas are "
                         "not supported)")
    # Every request line has exactly ncols − 1 commas (blank lines have none), so the commas
    # after the header reshape into a table.
    table = commas[comma_line > header_line].reshape(len(rows), ncols - 1)
    spans = {}
    for role, column in wanted.items():
        k = header.index(column)
        starts = lines.starts[rows] if k == 0 else table[:, k - 1] + 1
        ends = lines.ends[rows] if k == ncols - 1 else table[:, k]
        spans[role] = _trim(buf, starts, ends)
    return _Fields(rows + 1, spans, wanted)


def _known_headers() -> str:
    known = "; ".join(f"{fmt}: {', '.join(getattr(layout, r) for r in ROLES)}"
                      for fmt, layout in FORMATS.items() if layout.lines == "csv")
    return f"a header with the columns of a known CSV trace format ({known})"


def _jsonl_fields(buf: np.ndarray, lines: _Lines, layout: Layout, name: str) -> _Fields:
    rows = lines.nonempty
    starts, ends = _trim(buf, lines.starts[rows], lines.ends[rows])
    bad = np.flatnonzero((buf[starts] != ord("{")) | (buf[ends - 1] != ord("}")))
    if bad.size:
        i = rows[bad[0]]
        raise InputError(f"{name}:{i + 1}", tc.field_text(buf, lines.starts[i], lines.ends[i]),
                         "one JSON object per line")
    wanted = {role: getattr(layout, role) for role in ROLES}
    quotes = np.flatnonzero(buf[: lines.ends[-1]] == ord('"'))
    spans = {}
    for role, key in wanted.items():
        hits = _starting(buf, quotes, f'"{key}"'.encode())
        count = np.bincount(lines.of(hits), minlength=len(lines.starts))[rows]
        wrong = np.flatnonzero(count != 1)
        if wrong.size:
            i = rows[wrong[0]]
            problem = "no such key" if count[wrong[0]] == 0 else "the key more than once"
            raise InputError(f"{name}:{i + 1}:{key}", problem,
                             f"a {key!r} key on every line ({role})")
        colon = _skip_spaces(buf, hits + len(key) + 2)
        not_colon = np.flatnonzero(buf[colon] != ord(":"))
        if not_colon.size:
            i = rows[not_colon[0]]
            raise InputError(f"{name}:{i + 1}:{key}",
                             tc.field_text(buf, lines.starts[i], lines.ends[i]),
                             f'"{key}": followed by a number')
        value = _skip_spaces(buf, colon + 1)
        window = np.lib.stride_tricks.sliding_window_view(buf, JSON_NUMBER_BYTES)[value]
        is_end = _JSON_VALUE_END[window]
        # No end in sight: longer than any number, so give it a width the parsers reject.
        spans[role] = (value, value + np.where(is_end.any(axis=1), is_end.argmax(axis=1),
                                               tc.PAD_BYTES))
    blocks = None if layout.block_ids is None else _id_lists(buf, lines, quotes,
                                                             layout.block_ids, name)
    return _Fields(rows + 1, spans, wanted, blocks)


_DIGIT = tc.byte_class(b"0123456789")
_LIST_BYTES = tc.byte_class(b"0123456789, \t")
SHOWN_LIST_BYTES = 40  # of a malformed list, its first bytes are shown


def _id_lists(buf: np.ndarray, lines: _Lines, quotes: np.ndarray, key: str, name: str
              ) -> tuple[np.ndarray, np.ndarray] | None:
    """Each request line's list of integers under `key` (empty where a line lacks the key),
    as (flat values, offsets); None when no line has it. A list that is not integers ≥ 0
    between commas, from its `[` to the next `]` on its line, is an `InputError` naming the
    file, line and key."""
    rows = lines.nonempty
    hits = _starting(buf, quotes, f'"{key}"'.encode())
    if hits.size == 0:
        return None
    row = np.searchsorted(rows, lines.of(hits))  # the request each hit is on
    line_end = lines.ends[rows[row]]
    colon = _skip_spaces(buf, hits + len(key) + 2)
    opens = _skip_spaces(buf, colon + 1)
    brackets = np.flatnonzero(buf[: lines.ends[-1]] == ord("]"))
    closes = np.append(brackets, lines.ends[-1])[np.searchsorted(brackets, opens)]

    def fail(index: int, end: int, expected: str) -> InputError:
        start = int(min(opens[index], end))  # a list's beginning: where it went wrong, often
        text = tc.field_text(buf, start, min(end, start + SHOWN_LIST_BYTES))
        cut = "…" if end > start + SHOWN_LIST_BYTES else ""
        return InputError(f"{name}:{rows[row[index]] + 1}:{key}", text + cut, expected)

    twice = np.flatnonzero(np.diff(row) == 0)
    if twice.size:
        i = int(twice[0])
        raise fail(i, int(line_end[i]), f"a {key!r} key at most once on a line")
    expected = f'"{key}": [integers ≥ 0, comma-separated]'
    unopened = np.flatnonzero((buf[colon] != ord(":")) | (buf[opens] != ord("["))
                              | (closes >= line_end))
    if unopened.size:
        i = int(unopened[0])
        raise fail(i, int(line_end[i]), expected)
    # The bytes inside each list, after its `[` and before its `]`: +1 at a start, −1 at an
    # end, summed (lists do not overlap, each being on its own line).
    edge = np.zeros(len(buf), dtype=np.int8)
    edge[opens + 1] += 1
    edge[closes] -= 1
    inside = np.cumsum(edge, dtype=np.int8).astype(bool)
    digit = inside & _DIGIT[buf]
    number_start = digit & ~np.r_[False, digit[:-1]]
    starts = np.flatnonzero(number_start)
    ends = np.flatnonzero(digit & ~np.r_[digit[1:], False]) + 1
    # A list's numbers and commas, in order, alternate from a number to a number.
    marks = np.flatnonzero(number_start | (inside & (buf == ord(","))))
    is_number = number_start[marks]
    owner = np.searchsorted(opens, marks) - 1
    first = np.r_[True, owner[1:] != owner[:-1]]
    last = np.r_[owner[1:] != owner[:-1], True]
    misplaced = ((first | last) & ~is_number) | (~first & (is_number == np.r_[False,
                                                                             is_number[:-1]]))
    values, bad = tc.parse_ints(buf, starts, ends)
    culprits = np.concatenate((np.flatnonzero(inside & ~_LIST_BYTES[buf])[:1],
                               marks[misplaced][:1], starts[[] if bad is None else [bad]]))
    if culprits.size:
        i = int(np.searchsorted(opens, culprits.min()) - 1)
        raise fail(i, int(closes[i]) + 1, expected)
    per_request = np.bincount(row[np.searchsorted(opens, starts) - 1], minlength=len(rows))
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(per_request, out=offsets[1:])
    return values, offsets


def _starting(buf: np.ndarray, candidates: np.ndarray, pattern: bytes) -> np.ndarray:
    """Those of the `candidates` offsets where `pattern` starts (checked byte by byte)."""
    hits = candidates
    for j, byte in enumerate(pattern):
        hits = hits[buf[hits + j] == byte]
    return hits


def _skip_spaces(buf: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    offsets = offsets.copy()
    while True:
        space = (buf[offsets] == ord(" ")) | (buf[offsets] == ord("\t"))
        if not space.any():
            return offsets
        offsets += space


def _trim(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray]:
    """Drop spaces around each field."""
    starts, ends = starts.copy(), ends.copy()
    while (lead := (starts < ends) & (buf[starts] == ord(" "))).any():
        starts += lead
    while (trail := (ends > starts) & (buf[ends - 1] == ord(" "))).any():
        ends -= trail
    return starts, ends


def _span_outlier(stamps: np.ndarray, per_s: float) -> tuple[int, float] | None:
    """When the timestamps (`per_s` of them a second) span more than MAX_SPAN_YEARS: the
    index of the extreme farther from the median, the one to blame, and the span in years
    (computed in floats: int64 nanoseconds 600 years apart overflow a subtraction)."""
    lo, hi = float(stamps.min()), float(stamps.max())
    span_years = (hi - lo) / per_s / SECONDS_PER_YEAR
    if span_years <= MAX_SPAN_YEARS:
        return None
    middle = float(np.median(stamps))
    index = int(np.argmax(stamps) if hi - middle >= middle - lo else np.argmin(stamps))
    return index, span_years


def _assemble(buf: np.ndarray, fields: _Fields, layout: Layout, name: str, fmt: str,
              notes: list[str]) -> Trace:
    """The requests, sorted and without empty ones; what was changed goes to `notes`."""
    def fail(role: str, index: int, expected: str) -> InputError:
        start, end = (int(a[index]) for a in fields.spans[role])
        return InputError(f"{name}:{fields.line[index]}:{fields.names[role]}",
                          tc.field_text(buf, start, end), expected)

    tokens = {}
    for role in ("prompt_tokens", "output_tokens"):
        values, bad = tc.parse_ints(buf, *fields.spans[role])
        if bad is None:
            over = np.flatnonzero(values > MAX_TOKEN_COUNT)
            bad = int(over[0]) if over.size else None
        if bad is not None:
            raise fail(role, bad, f"a token count: an integer from 0 to {MAX_TOKEN_COUNT:,}")
        tokens[role] = values

    unit = layout.timestamp_unit
    if unit == "datetime":
        stamps, bad = tc.parse_datetimes_ns(buf, *fields.spans["timestamp"])
        if bad is not None:
            raise fail("timestamp", bad, "a date and time from 1678 to 2262: YYYY-MM-DD "
                       "HH:MM:SS[.fraction], no time zone")
        per_s = 1e9
    else:
        stamps, bad = tc.parse_floats(buf, *fields.spans["timestamp"])
        if bad is None:
            negative = np.flatnonzero(~(stamps >= 0) | ~np.isfinite(stamps))
            bad = int(negative[0]) if negative.size else None
        if bad is not None:
            raise fail("timestamp", bad, f"a time ≥ 0 in {unit} (a number)")
        per_s = UNIT_DIVISOR[unit]
    outlier = _span_outlier(stamps, per_s)
    if outlier is not None:
        index, span_years = outlier
        raise fail("timestamp", index, f"a time within {MAX_SPAN_YEARS} years of the trace's "
                   f"other requests (with this one it would span {span_years:.3g} years)")
    arrival_s = (stamps - stamps.min()) / per_s

    line = fields.line
    blocks = fields.blocks
    back = np.flatnonzero(np.diff(arrival_s) < 0)
    if back.size:
        notes.append(f"timestamps are not in order (the first going back in time at line "
                     f"{line[back[0] + 1]}, {back.size:,} in all); replaying them sorted by "
                     "time")
        order = np.argsort(arrival_s, kind="stable")
        arrival_s, line = arrival_s[order], line[order]
        tokens = {role: values[order] for role, values in tokens.items()}
        if blocks is not None:
            blocks = take_rows(*blocks, order)
    empty = (tokens["prompt_tokens"] == 0) | (tokens["output_tokens"] == 0)
    if empty.any():
        dropped = np.flatnonzero(empty)
        notes.append(f"left out {dropped.size:,} of {len(empty):,} requests, those with 0 "
                     f"prompt or 0 output tokens (the first at line {line[dropped[0]]}): a "
                     "request needs at least one of each")
        keep = ~empty
        if not keep.any():
            raise InputError(name, "no request with tokens",
                             "at least one request with prompt and output tokens ≥ 1")
        arrival_s = arrival_s[keep] - arrival_s[keep][0]
        tokens = {role: values[keep] for role, values in tokens.items()}
        if blocks is not None:
            blocks = take_rows(*blocks, np.flatnonzero(keep))
    ids, offsets = (None, None) if blocks is None else blocks
    return Trace(arrival_s, tokens["prompt_tokens"], tokens["output_tokens"], name, fmt, ids,
                 offsets)
