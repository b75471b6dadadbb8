"""The plan's figures: GPUs per period per option under the forecast fan, and cost per token
per option across the periods. They read the plan document only."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
           "tab:pink", "tab:gray", "tab:olive", "tab:cyan")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
DODGE = 0.07  # x offset between options' markers, in periods


def _periods(document: dict[str, Any]) -> tuple[np.ndarray, list[str]]:
    names = [p["period"] for p in document["periods"]]
    return np.arange(len(names), dtype=float), names


def _series(document: dict[str, Any], option: int, getter) -> np.ndarray:
    values = []
    for period in document["periods"]:
        value = getter(period["options"][option])
        values.append(np.nan if value is None else value)
    return np.array(values, dtype=float)


def _period_axis(ax, x: np.ndarray, names: list[str]) -> None:
    ax.set_xticks(x, names, rotation=40 if len(names) > 6 else 0,
                  ha="right" if len(names) > 6 else "center")
    ax.set_xlim(x[0] - 0.5, x[-1] + 0.5)
    ax.set_xlabel("period", fontsize=13)


def fleet_figure(document: dict[str, Any]) -> Figure:
    x, names = _periods(document)
    fig = Figure(figsize=(11, 8.5), dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    demand, gpus = fig.subplots(2, 1, sharex=True, height_ratios=(1, 1.5))
    periods = document["periods"]
    band = np.array([[p["peak_rate_band"][k] for k in ("p5", "p50", "p95")] for p in periods])
    demand.fill_between(x, band[:, 0], band[:, 2], color="tab:blue", alpha=0.2, linewidth=0,
                        label="peak, P5–P95 of the forecast")
    demand.plot(x, [p["peak_rate_per_s"] for p in periods], color="tab:blue", marker="o",
                linewidth=2, label="peak (forecast)")
    averages = [p["average_rate_per_s"] for p in periods]
    if all(a is not None for a in averages):
        demand.plot(x, averages, color="tab:blue", linestyle="--", linewidth=1.5,
                    label="average")
    demand.set_ylabel("requests per second", fontsize=13)
    demand.set_ylim(bottom=0)
    demand.legend(fontsize=10, loc="upper left")
    demand.grid(True, alpha=0.3)
    demand.set_title(f"{document['scenario']}: demand forecast and the fewest GPUs meeting "
                     f"the SLO with P ≥ {document['target']['confidence']:.0%}", fontsize=14)

    count = len(document["options"])
    infeasible_seen = False
    for i, option in enumerate(document["options"]):
        colour, marker = COLOURS[i % len(COLOURS)], MARKERS[i % len(MARKERS)]
        y = _series(document, i, lambda e: e["gpus"])
        dodged = x + (i - (count - 1) / 2) * DODGE  # equal counts stay visible side by side
        gpus.plot(dodged, y, color=colour, marker=marker, linewidth=1.8, markersize=6,
                  label=option["option"])
        chosen = np.array([p["recommended"] == option["option"] for p in periods])
        gpus.plot(dodged[chosen], y[chosen], linestyle="none", marker=marker, markersize=13,
                  markerfacecolor="none", markeredgecolor=colour, markeredgewidth=2)
        missing = np.isnan(y)
        if missing.any():
            infeasible_seen = True
            gpus.plot(dodged[missing], np.zeros(missing.sum()), linestyle="none", marker="x",
                      markersize=11, markeredgewidth=2.5, color=colour, clip_on=False)
    gpus.plot([], [], linestyle="none", marker="o", markersize=12, markerfacecolor="none",
              markeredgecolor="black", label="recommended (cheapest feasible)")
    if infeasible_seen:
        gpus.plot([], [], linestyle="none", marker="x", markersize=10, markeredgewidth=2.5,
                  color="black", label="no fleet within max_replicas meets the target")
    gpus.set_ylabel("GPUs", fontsize=13)
    top = np.nanmax([[e["gpus"] or 0 for e in p["options"]] for p in periods])
    gpus.set_ylim(0, max(top, 1) * 1.3)
    gpus.yaxis.set_major_locator(MaxNLocator(integer=True))
    gpus.legend(fontsize=10, loc="best")
    gpus.grid(True, alpha=0.3)
    _period_axis(gpus, x, names)
    for ax in (demand, gpus):
        ax.tick_params(labelsize=11)
    return fig


def cost_figure(document: dict[str, Any]) -> Figure:
    x, names = _periods(document)
    fig = Figure(figsize=(11, 6.5), dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    has_average = False
    for i, option in enumerate(document["options"]):
        colour, marker = COLOURS[i % len(COLOURS)], MARKERS[i % len(MARKERS)]

        def cost(key: str, stat: str):
            return lambda e: (e.get(key) or {}).get(stat)

        p50 = _series(document, i, cost("usd_per_million_tokens", "p50"))
        p95 = _series(document, i, cost("usd_per_million_tokens", "p95"))
        ax.fill_between(x, p50, p95, color=colour, alpha=0.15, linewidth=0)
        ax.plot(x, p50, color=colour, marker=marker, linewidth=2,
                label=f"{option['option']}: at peak, P50 (band to P95)")
        average = _series(document, i, cost("usd_per_million_tokens_average", "p50"))
        if np.isfinite(average).any():
            has_average = True
            ax.plot(x, average, color=colour, marker=marker, linestyle="--", linewidth=1.3,
                    markerfacecolor="none", label=f"{option['option']}: at average load, P50")
    ax.set_ylabel("cost per 1M tokens (USD, blended)", fontsize=13)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"${v:.3g}"))
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    _period_axis(ax, x, names)
    ax.tick_params(labelsize=11)
    what = "at each period's peak" + (" and average load" if has_average else "")
    ax.set_title(f"{document['scenario']}: cost per 1M tokens of the sized fleet, {what}",
                 fontsize=14)
    ax.legend(fontsize=9, loc="best", ncols=2 if has_average else 1)
    return fig
