"""Number formats and aligned text tables shared by every command's printed output.

One place for how a missing value, a price or a latency reads, so that `run`, `sweep`,
`plan`, `stress`, `validate`, `trace` and `catalog` print the same number the same way, and
one renderer for their columns so a table is described (titles, alignment, widths), not
padded by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

DASH = "—"  # what a missing (None) value prints as


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
    """One line of cells under `columns` (fixed widths unless `widths` is given)."""
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
    """The title line, then one line per row; every line starts with `indent`."""
    widths = [c.width if c.width is not None
              else max([len(c.title), *(len(cells[i]) for cells in rows)])
              for i, c in enumerate(columns)]
    titles = [c.title for c in columns]
    return [indent + row(columns, cells, gap, widths) for cells in [titles, *rows]]
