"""The sweep chart: cost per 1M tokens across the sweep's points, with percentile bands and
the points where the SLO holds with the required confidence shaded as feasible."""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

BAND_COLOUR = "tab:blue"
GOODPUT_COLOUR = "tab:orange"
FEASIBLE_COLOUR = "tab:green"


def chart_name(summary: dict[str, Any]) -> str:
    return "cost_vs_utilization.png" if summary["sweep"]["axis"] == "utilization" \
        else "cost_by_grid_point.png"


def x_axis(summary: dict[str, Any]) -> tuple[np.ndarray, list[str] | None, str]:
    """x positions, tick labels (None: a numeric axis) and the axis label."""
    points, keys = summary["points"], summary["sweep"]["keys"]
    if summary["sweep"]["axis"] == "utilization":
        capacity = summary["capacity"]["requests_per_s"]
        return (np.array([p["utilization"] for p in points]), None,
                f"utilisation (arrival rate ÷ saturation throughput of {capacity:.3g} req/s)")
    values = [p[keys[0]] for p in points]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if len(keys) == 1 and numeric:
        return np.array(values, dtype=float), None, keys[0]
    labels = ["\n".join(f"{k.rsplit('.', 1)[-1]}={p[k]}" for k in keys) for p in points]
    return np.arange(len(points), dtype=float), labels, "grid point"


def _band(points: list[dict[str, Any]], kind: str, stat: str) -> np.ndarray:
    return np.array([np.nan if p["usd_per_million_tokens"][kind][stat] is None
                     else p["usd_per_million_tokens"][kind][stat] for p in points])


def cost_figure(summary: dict[str, Any]) -> Figure:
    points = summary["points"]
    x, tick_labels, x_label = x_axis(summary)
    fig = Figure(figsize=(11, 6.5), dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    median = _band(points, "blended", "p50")
    if tick_labels is None:
        _draw_curves(ax, x, points)
    else:  # separate configurations: bars per point, no lines pretending to join them
        _draw_bars(ax, x, points)
    feasible = np.array([p["slo_feasible"] for p in points])
    _shade_feasible(ax, x, feasible, summary["slo_confidence"])
    if not feasible.all():
        ax.plot(x[~feasible], median[~feasible], linestyle="none", marker="X", markersize=13,
                color="firebrick", label="SLO not met with that confidence", zorder=5)
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=_label_steps(ax.get_ylim())))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"${v:.3g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel("cost per 1M tokens (USD, log scale)", fontsize=14)
    ax.set_xlabel(x_label, fontsize=14)
    if tick_labels is not None:
        crowded = len(tick_labels) > 6
        ax.set_xticks(x, tick_labels, fontsize=10 if crowded else 12,
                      rotation=30 if crowded else 0, ha="right" if crowded else "center")
    ax.tick_params(labelsize=12)
    ax.grid(True, which="major", alpha=0.3)
    sampled = ", ".join(summary["uncertainty"]) or "none"
    ax.set_title(f"{summary['scenario']}: cost per 1M tokens, {summary['replications']} "
                 "replications per point", fontsize=16, pad=30)
    ax.text(0.5, 1.015, textwrap.shorten(f"uncertain inputs ({summary['sampling']}): "
                                         f"{sampled}", width=120, placeholder=" …"),
            transform=ax.transAxes, ha="center", va="bottom", fontsize=11, color="dimgray")
    ax.legend(fontsize=11, loc="best")
    return fig


def _draw_curves(ax: Any, x: np.ndarray, points: list[dict[str, Any]]) -> None:
    ax.fill_between(x, _band(points, "blended", "p5"), _band(points, "blended", "p95"),
                    color=BAND_COLOUR, alpha=0.18, linewidth=0, label="blended, P5–P95")
    ax.fill_between(x, _band(points, "blended", "p25"), _band(points, "blended", "p75"),
                    color=BAND_COLOUR, alpha=0.35, linewidth=0, label="blended, P25–P75")
    ax.plot(x, _band(points, "blended", "p50"), color=BAND_COLOUR, marker="o", linewidth=2.2,
            label="blended, median")
    ax.plot(x, _band(points, "goodput", "p50"), color=GOODPUT_COLOUR, linestyle="--",
            marker="s", linewidth=1.8, label="goodput (tokens within SLO), median")


def _draw_bars(ax: Any, x: np.ndarray, points: list[dict[str, Any]]) -> None:
    median = _band(points, "blended", "p50")
    for low, high, width, alpha, label in (("p5", "p95", 3, 0.45, "blended, P5–P95"),
                                           ("p25", "p75", 9, 0.8, "blended, P25–P75")):
        ax.vlines(x, _band(points, "blended", low), _band(points, "blended", high),
                  color=BAND_COLOUR, linewidth=width, alpha=alpha, label=label)
    ax.plot(x, median, linestyle="none", marker="o", markersize=9, color=BAND_COLOUR,
            markeredgecolor="white", label="blended, median")
    ax.plot(x + 0.12, _band(points, "goodput", "p50"), linestyle="none", marker="s",
            markersize=8, color=GOODPUT_COLOUR, label="goodput (tokens within SLO), median")


def _label_steps(limits: tuple[float, float]) -> tuple[float, ...]:
    """Where to label a log axis within each power of ten: more steps for a narrow range,
    so a chart spanning less than a decade still has several readable prices."""
    decades = np.log10(limits[1] / limits[0])
    if decades <= 1.5:
        return (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)
    return (1.0, 2.0, 5.0) if decades <= 3 else (1.0,)


def _shade_feasible(ax: Any, x: np.ndarray, feasible: np.ndarray, confidence: float) -> None:
    """Shade each run of neighbouring feasible points, out to halfway to the next point."""
    order = np.argsort(x)
    xs, ok = x[order], feasible[order]
    gaps = np.diff(xs) / 2 if len(xs) > 1 else np.array([0.05])
    left = xs - np.concatenate([[gaps[0]], gaps])
    right = xs + np.concatenate([gaps, [gaps[-1]]])
    label: str | None = f"SLO-feasible: P(SLO met) ≥ {confidence:.0%}"
    for i in np.flatnonzero(ok):
        ax.axvspan(left[i], right[i], color=FEASIBLE_COLOUR, alpha=0.12, linewidth=0,
                   label=label)
        label = None
    if ok.any():
        return
    ax.text(0.02, 0.04, f"no point meets the SLO with P ≥ {confidence:.0%}",
            transform=ax.transAxes, fontsize=12, color="firebrick")
