"""Columns of numbers from the raw bytes of a text file, without a Python object per row.

A trace of a million requests is a million lines; reading them one by one (the csv module,
`json.loads`, `float()`) costs seconds and several Python objects per row. Here a file is one
numpy byte array and a column is two arrays of offsets, where each field starts and ends. A
field is parsed by gathering its bytes into a fixed-width numpy bytes array, which numpy
converts to numbers in C. Every parser reports the index of the first field it could not
read, so that the caller can name the line and column.
"""

from __future__ import annotations

import numpy as np

# Zero bytes appended to a file's buffer so that a fixed-width window starting at any field
# stays inside the array; it also bounds the width of one field.
PAD_BYTES = 64


def byte_class(chars: bytes) -> np.ndarray:
    """A 256-entry table: is this byte allowed? (A lookup beats np.isin on big arrays.)"""
    table = np.zeros(256, dtype=bool)
    table[np.frombuffer(chars, dtype=np.uint8)] = True
    return table


_INT_BYTES = byte_class(b"0123456789")
_FLOAT_BYTES = byte_class(b"0123456789.+-eE")
_DATETIME_BYTES = byte_class(b"0123456789-:. T")
MAX_INT_WIDTH = 18  # int64 holds every 18-digit number


def fixed_width(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Each field's bytes as one row of an (n, width) array, zero-padded on the right.

    Gathers through a sliding-window view, so memory is n × width bytes, not an index
    matrix of n × width int64s."""
    widths = ends - starts
    width = int(min(max(int(widths.max(initial=1)), 1), PAD_BYTES))
    windows = np.lib.stride_tricks.sliding_window_view(buf, width)
    rows = windows[starts]
    rows[np.arange(width) >= widths[:, None]] = 0
    return rows


def field_text(buf: np.ndarray, start: int, end: int) -> str:
    """One field as text, for an error message."""
    return bytes(buf[start:end]).decode("utf-8", errors="replace")


def _first(bad: np.ndarray) -> int | None:
    hits = np.flatnonzero(bad)
    return int(hits[0]) if hits.size else None


def _charset_bad(rows: np.ndarray, widths: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Per field: empty, or holding a byte outside `allowed`."""
    inside = np.arange(rows.shape[1]) < widths[:, None]
    return (inside & ~allowed[rows]).any(axis=1) | (widths <= 0)


def _as_strings(rows: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rows).view(f"S{rows.shape[1]}").ravel()


def parse_ints(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray
               ) -> tuple[np.ndarray, int | None]:
    """Non-negative decimal integers (digits only); (values, index of the first bad field)."""
    widths = ends - starts
    if widths.size == 0:
        return np.zeros(0, dtype=np.int64), None
    rows = fixed_width(buf, starts, ends)
    bad = _charset_bad(rows, widths, _INT_BYTES) | (widths > MAX_INT_WIDTH)
    first = _first(bad)
    if first is not None:
        return np.zeros(0, dtype=np.int64), first
    return _as_strings(rows).astype(np.int64), None


def parse_floats(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray
                 ) -> tuple[np.ndarray, int | None]:
    """Decimal numbers such as 12, -3.5 or 1.2e3; (values, index of the first bad field)."""
    widths = ends - starts
    if widths.size == 0:
        return np.zeros(0), None
    rows = fixed_width(buf, starts, ends)
    first = _first(_charset_bad(rows, widths, _FLOAT_BYTES) | (widths >= PAD_BYTES))
    if first is not None:
        return np.zeros(0), first
    strings = _as_strings(rows)
    try:
        return strings.astype(np.float64), None
    except ValueError:  # allowed characters in a bad order ("1.2.3", "e5"): find which
        return np.zeros(0), _first_unconvertible(strings, float)


def parse_datetimes_ns(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray
                       ) -> tuple[np.ndarray, int | None]:
    """`YYYY-MM-DD HH:MM:SS[.fraction]` (or with a `T`), no time zone, as int64 nanoseconds
    since 1970, which hold 1678 to 2262; (values, index of the first bad field)."""
    widths = ends - starts
    if widths.size == 0:
        return np.zeros(0, dtype=np.int64), None
    rows = fixed_width(buf, starts, ends)
    first = _first(_charset_bad(rows, widths, _DATETIME_BYTES) | (widths < 10)
                   | (widths >= PAD_BYTES))
    if first is not None:
        return np.zeros(0, dtype=np.int64), first
    strings = _as_strings(rows)
    try:
        stamps = strings.astype("datetime64[ns]")
    except ValueError:  # out-of-range month, day or hour somewhere
        return np.zeros(0, dtype=np.int64), _first_unconvertible(
            strings, lambda s: np.datetime64(s, "ns"))
    first = _first(np.isnat(stamps))
    if first is None:
        first = _first_wrapped(rows, strings, stamps.view(np.int64))
    if first is not None:
        return np.zeros(0, dtype=np.int64), first
    return stamps.view(np.int64), None


def _first_wrapped(rows: np.ndarray, strings: np.ndarray, ns: np.ndarray) -> int | None:
    """The first field whose date int64 nanoseconds cannot hold (before 1678-09-21 or after
    2262-04-11): numpy wraps those around silently (year 9999 comes out in 1816). A field
    whose year is plainly 1679–2261 is safe; any other is parsed again at whole seconds,
    which hold every year, and compared."""
    four_digits = ((rows[:, :4] >= ord("0")) & (rows[:, :4] <= ord("9"))).all(axis=1)
    year = (rows[:, :4].astype(np.int64) - ord("0")) @ np.array([1000, 100, 10, 1])
    safe = four_digits & (rows[:, 4] == ord("-")) & (year > 1678) & (year < 2262)
    suspect = np.flatnonzero(~safe)
    if suspect.size == 0:
        return None
    seconds = strings[suspect].astype("datetime64[s]").view(np.int64)
    wrapped = _first(np.abs(ns[suspect] // 10**9 - seconds) > 1)
    return None if wrapped is None else int(suspect[wrapped])


def _first_unconvertible(strings: np.ndarray, convert) -> int:
    """Slow path, only taken to report an error: the first field `convert` rejects."""
    for i, text in enumerate(strings.tolist()):
        try:
            convert(text.decode("ascii"))
        except ValueError:
            return i
    raise AssertionError("numpy rejected a column whose every field converts")
