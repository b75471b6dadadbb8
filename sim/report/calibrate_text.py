"""What `tokenfactory calibrate fit` prints: how well the fitted profile reproduces the
measurements, one line per operator and one for composed steps (text only; the CLI decides
where it goes)."""

from __future__ import annotations

from typing import Any

from sim.report.text import printable


def format_fit_errors(fit_error: dict[str, Any]) -> str:
    return "\n".join(
        f"{printable(op):<14} MAPE {e['mape_pct']:6.2f}%  median {e['median_pct']:6.2f}%  "
        f"worst {e['worst_pct']:6.2f}%  ({e['points']} points, {e['method']})"
        for op, e in fit_error.items())
