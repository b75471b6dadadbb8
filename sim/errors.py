"""The one error type for bad input.

Every problem with a scenario, a data file or a command-line flag is reported as an
`InputError` that names where the problem is (a key path, or a file and line), the value
found there and what would have been accepted. The CLI turns it into one line on stderr
and exit status 2; library users can catch it.

The value is shown as its `repr`, cut to `SHOWN_CHARS` characters (a long string in its
middle, so a path keeps its file name). The bad value can be anything a file held (a list of
ten million numbers, an alias bomb expanded, a megabyte string), so the text is built piece
by piece and stops once it is long enough: showing a value costs the same whatever its size,
and never calls `repr` on a whole container or a string of more than 10,000 characters.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any


class _Missing:
    """The value of a key that was not given (one object, also across processes)."""

    def __reduce__(self) -> str:
        return "MISSING"  # unpickles as this module's MISSING


MISSING = _Missing()

SHOWN_CHARS = 80  # longer reprs are cut to SHOWN_CHARS - 3 characters and "..."
_WHOLE_REPR_CHARS = 10_000  # strings up to this long have their repr built whole
_INT_BITS_SHOWN = 200  # bigger integers (over ~60 digits) are shown by their size
_BRACKETS: dict[type, tuple[str, str]] = {
    list: ("[", "]"), tuple: ("(", ")"), dict: ("{", "}"), set: ("{", "}"),
    frozenset: ("frozenset({", "})")}
_CONTAINERS = tuple(_BRACKETS)


class InputError(ValueError):
    """Bad input: `where` (key path or file:line), the offending value, what is accepted."""

    def __init__(self, where: str, value: Any, expected: str) -> None:
        self.where = where
        self.value = value
        self.expected = expected
        shown = "missing" if value is MISSING else show(value)
        super().__init__(f"{where}: {shown} — expected {expected}")

    def __reduce__(self) -> tuple[type[InputError], tuple[str, Any, str]]:
        # Rebuilt from its three parts, so one raised in a worker process reaches the CLI as
        # itself (exit 2 and its line), not as a broken worker.
        return (InputError, (self.where, self.value, self.expected))


def show(value: Any) -> str:
    """`repr(value)`, cut to SHOWN_CHARS (a long string in its middle, keeping its end); a
    cut container says how many items it has. For any
    message that quotes a value from input (in place of `{value!r}`), at bounded cost."""
    text = _bounded_repr(value, SHOWN_CHARS + 1)
    if len(text) <= SHOWN_CHARS:
        return text
    if type(value) is str:
        # Cut in the middle: the end of a long string (a path's file name) says most. The
        # end is taken from the whole repr while that is cheap, so quotes read as repr reads
        # them; from the string's last characters when it is huge.
        half = (SHOWN_CHARS - 3) // 2
        ending = repr(value) if len(value) <= _WHOLE_REPR_CHARS else repr(value[-SHOWN_CHARS:])
        return text[:SHOWN_CHARS - 3 - half] + "..." + ending[-half:]
    cut = text[:SHOWN_CHARS - 3] + "..."
    if type(value) in _CONTAINERS:
        cut += f" ({len(value):,} {'keys' if type(value) is dict else 'items'})"
    return cut


def _bounded_repr(value: Any, limit: int) -> str:
    """The first `limit` characters of `repr(value)` (all of it when shorter), built from
    pieces so that only what is shown is ever rendered."""
    parts: list[str] = []
    length = 0
    for piece in _pieces(value, limit, set()):
        parts.append(piece)
        length += len(piece)
        if length >= limit:
            break
    return "".join(parts)[:limit]


def _pieces(value: Any, limit: int, active: set[int]) -> Iterator[str]:
    """`repr(value)` as a stream of pieces, exact for the built-in types a data file can
    hold; `active` holds the containers being shown, so a cycle reads `[...]` as in repr."""
    kind = type(value)
    if kind is str:
        yield _str_repr(value, limit)
    elif kind is int:
        yield _int_repr(value)
    elif kind in _CONTAINERS:
        if id(value) in active:
            yield "{...}" if kind is dict else "[...]" if kind is list else "(...)"
            return
        active.add(id(value))
        try:
            yield from _container_pieces(value, limit, active)
        finally:
            active.discard(id(value))
    else:
        try:
            yield repr(value)
        except Exception:  # a value that cannot show itself still gets its message out
            yield f"<{kind.__name__}>"


def _container_pieces(value: Any, limit: int, active: set[int]) -> Iterator[str]:
    kind = type(value)
    if kind in (set, frozenset) and not value:
        yield f"{kind.__name__}()"
        return
    opening, closing = _BRACKETS[kind]
    yield opening
    if kind is dict:
        for index, (key, item) in enumerate(value.items()):
            if index:
                yield ", "
            yield from _pieces(key, limit, active)
            yield ": "
            yield from _pieces(item, limit, active)
    else:
        for index, item in enumerate(value):
            if index:
                yield ", "
            yield from _pieces(item, limit, active)
    if kind is tuple and len(value) == 1:
        yield ","
    yield closing


def _str_repr(text: str, limit: int) -> str:
    """`repr(text)`, or for a long string its first `limit` or more characters: the repr of
    a prefix, quoted the way Python quotes the whole string."""
    if len(text) <= limit:
        return repr(text)
    # repr uses double quotes only when the string holds a ' and no "; a prefix may not.
    quote = '"' if "'" in text and '"' not in text else "'"
    shown = repr(text[:limit])
    if shown[0] == quote:
        return shown
    body = shown[1:-1]  # the prefix has no ' (quote "), or has ' and no " (quote ')
    return quote + (body.replace("'", "\\'") if quote == "'" else body) + quote


def _int_repr(number: int) -> str:
    """An integer, or for one too long to read its size in digits (Python refuses to turn
    integers of more than a few thousand digits into text at all)."""
    if number.bit_length() <= _INT_BITS_SHOWN:
        return repr(number)
    digits = int(number.bit_length() * math.log10(2)) + 1
    return f"<{'a negative' if number < 0 else 'an'} integer of about {digits:,} digits>"
