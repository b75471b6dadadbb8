"""Numbers for YAML files that people read: a few significant digits, whole numbers bare."""

from __future__ import annotations


def sig(x: float, digits: int = 5) -> float:
    """`x` rounded to `digits` significant digits."""
    return float(f"{x:.{digits}g}")


def bare(x: float) -> float | int:
    """An int when `x` is whole (so YAML shows 60, not 60.0)."""
    return int(x) if float(x).is_integer() else float(x)
