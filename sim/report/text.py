"""Number formats and aligned text tables shared by every command's printed output.

One place for how a missing value, a price or a latency reads, so that `run`, `sweep`,
`plan`, `stress`, `validate`, `trace` and `catalog` print the same number the same way, and
one renderer for their columns so a table is described (titles, alignment, widths), not
padded by hand.

Text from scenarios and data files (names, keys, file names) reaches the terminal through
these functions, and a terminal acts on the control characters in what it prints: ESC [2J
clears the screen, OSC 52 writes the clipboard, a newline fakes a line of output. So every
user string is passed through `printable` on its way into printed text, and the table
renderer does it for every cell.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

DASH = "—"  # what a missing (None) value prints as

# What a terminal may act on or a reader may be misled by: the C0 controls (ESC, BEL, CR,
# newline, backspace …), DEL, the C1 controls (U+009B is a one-character CSI on some
# terminals), the Unicode line and paragraph separators and the bidirectional overrides and
# isolates, which reorder what is shown.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}  # as Python writes them


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str, keep: str = "") -> str:
    """`text` with every control character shown as an escape (ESC as \\x1b, a newline as
    \\n), so that user text printed to a terminal is shown, never obeyed, and stays on its
    line. Printable text is returned unchanged, and the result is printable: applying it
    twice changes nothing. Characters in `keep` (a tab in a code block) are left as
    they are."""
    if _CONTROL.search(text) is None:
        return text
    if keep:
        return _CONTROL.sub(lambda m: m.group() if m.group() in keep else _escaped(m), text)
    return _CONTROL.sub(_escaped, text)


def printable_strings(mapping: dict[str, Any]) -> dict[str, Any]:
    """A copy of `mapping` with its string values `printable` (for formatters that take
    several names from one mapping of a result)."""
    return {k: printable(v) if isinstance(v, str) else v for k, v in mapping.items()}


def or_dash(value: float | int | None, spec: str = "") -> str:
    """`format(value, spec)`, or a dash for a value that is not there."""
    return DASH if value is None else format(value, spec)


def usd(value: float | None, digits: int = 4) -> str:
    """Dollars with thousands separators: $1,234.5678 (a dash when missing)."""
    return DASH if value is None else f"${value:,.{digits}f}"


def ms(value_s: float | None, digits: int = 1) -> str:
    """Seconds shown as milliseconds, without the unit (the column title carries it)."""
    return DASH if value_s is None else f"{value_s * 1e3:,.{digits}f}"


def short_number(value: float | None) -> str:
    """A measured quantity of any size in a few characters: 12,345 | 42.5 | 3.14 | 0.0123."""
    if value is None:
        return DASH
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


@dataclass(frozen=True)
class Column:
    """One column of a text table.

    width None: as wide as its title and widest cell. A number: exactly that many characters,
    a longer cell running over (as an f-string width does); 0 leaves the cells unpadded, for
    a last column of free text. gap: spaces before the column, None for the table's own.
    """

    title: str
    align: Literal["<", ">"] = ">"
    width: int | None = None
    gap: int | None = None


def row(columns: Sequence[Column], cells: Sequence[str], gap: int = 2,
        widths: Sequence[int] | None = None) -> str:
    """One line of cells under `columns` (fixed widths unless `widths` is given); cells are
    shown `printable`."""
    cells = [printable(cell) for cell in cells]
    if widths is None:
        widths = [c.width or 0 for c in columns]
    parts = []
    for i, (column, cell, width) in enumerate(zip(columns, cells, widths, strict=True)):
        space = 0 if i == 0 else (gap if column.gap is None else column.gap)
        padded = cell.ljust(width) if column.align == "<" else cell.rjust(width)
        parts.append(" " * space + padded)
    return "".join(parts)


def table(columns: Sequence[Column], rows: Sequence[Sequence[str]], gap: int = 2,
          indent: str = "") -> list[str]:
    """The title line, then one line per row; every line starts with `indent`. Cells and
    titles are measured as they will be shown (`printable`)."""
    rows = [[printable(cell) for cell in cells] for cells in rows]
    widths = [c.width if c.width is not None
              else max([len(printable(c.title)), *(len(cells[i]) for cells in rows)])
              for i, c in enumerate(columns)]
    titles = [printable(c.title) for c in columns]
    return [indent + row(columns, cells, gap, widths) for cells in [titles, *rows]]


def layout_words(d: dict[str, Any]) -> str:
    """A replica's layout from a result's `fleet` block or a scenario's `deployment` (keys
    absent in older files read as 1): `TP8`, or `TP1 × DP8 attention, EP8` beyond plain
    tensor parallelism."""
    tp, dp = d.get("tensor_parallel", 1), d.get("data_parallel_attention", 1)
    ep = d.get("expert_parallel", 1)
    words = f"TP{tp}" + (f" × DP{dp} attention" if dp != 1 else "")
    return words + (f", EP{ep}" if ep != 1 else "")


def plain_tp(d: dict[str, Any]) -> bool:
    """The layout is tensor parallelism alone (no attention data parallelism, no EP)."""
    return d.get("data_parallel_attention", 1) == 1 and d.get("expert_parallel", 1) == 1
