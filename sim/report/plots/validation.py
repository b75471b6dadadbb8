"""The validation figure: simulated against measured, log-log, one point per comparison.

Points on the diagonal are exact; the shaded band is ±15 % (the issue's target for median
error). Colour is the GPU, so a GPU whose points sit off the band stands out; in the
throughput panel the marker is the engine family, in the latency panel the metric.
Built with `matplotlib.figure.Figure` directly (no pyplot): no global state, safe in threads
and tests, and the caller decides where the PNG goes.
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from sim.validation.breakdown import TARGET_PCT, metric_family
from sim.validation.compare import Comparison

ENGINE_MARKERS = {"TensorRT-LLM": "o", "vLLM": "^", "SGLang": "D", "other": "s"}
LATENCY_MARKERS = {"ttft": "o", "tpot": "s"}
BAND = TARGET_PCT / 100.0
OUTLIER_PCT = 50.0  # points this far off are named on the figure
MAX_LABELS = 6


def validation_figure(comparisons: list[Comparison]) -> Figure:
    """Throughput panel, plus a latency panel when any latency was compared."""
    points = [c for c in comparisons if c.compared and c.kind != "knee"
              and c.measured and c.simulated and c.simulated > 0]
    throughput = [c for c in points if metric_family(c.metric) == "output_tokens_per_s"]
    latency = [c for c in points if metric_family(c.metric) in LATENCY_MARKERS]
    gpus = sorted({c.gpu for c in points})
    colours = dict(zip(gpus, _palette(len(gpus)), strict=True))
    panels = [p for p in (throughput, latency) if p] or [[]]
    fig = Figure(figsize=(5.6 * len(panels), 6.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels, strict=True):
        is_latency = panel is latency and panel is not throughput
        _panel(ax, panel, colours, is_latency)
    handles = [Line2D([], [], marker="o", linestyle="", color=colours[g], label=g) for g in gpus]
    if handles:
        fig.legend(handles=handles, title="GPU (as published)", loc="outside lower center",
                   ncols=len(handles), frameon=False)
    fig.suptitle(f"tokenfactory validate: simulated vs measured ({len(points)} comparisons)")
    return fig


def _panel(ax, panel: list[Comparison], colours: dict[str, tuple], is_latency: bool) -> None:
    if is_latency:
        unit, what = "ms", "latency (TTFT, TPOT)"
        marker_of = {c.id + c.metric: LATENCY_MARKERS[metric_family(c.metric)] for c in panel}
        kinds = {f.upper(): m for f, m in LATENCY_MARKERS.items()
                 if any(metric_family(c.metric) == f for c in panel)}
    else:
        unit, what = "tokens/s", "output throughput"
        marker_of = {c.id + c.metric: ENGINE_MARKERS.get(c.engine, "s") for c in panel}
        kinds = {e: ENGINE_MARKERS[e] for e in sorted({c.engine for c in panel})}
    # Every plotted point has both values (`validation_figure` keeps only those).
    values = [v for c in panel for v in (c.measured, c.simulated) if v is not None]
    lo, hi = (min(values) / 1.6, max(values) * 1.6) if values else (1.0, 10.0)
    line = np.geomspace(lo, hi, 50)
    band = ax.fill_between(line, line * (1 - BAND), line * (1 + BAND), color="0.88",
                           linewidth=0, label=f"±{TARGET_PCT:g} %")
    (identity,) = ax.plot(line, line, color="0.35", linewidth=1.0, label="simulated = measured")
    for c in panel:
        ax.scatter(c.measured, c.simulated, s=34, marker=marker_of[c.id + c.metric],
                   color=colours[c.gpu], edgecolors="black", linewidths=0.4, zorder=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel(f"measured {what} ({unit})")
    ax.set_ylabel(f"simulated {what} ({unit})")
    errors = [abs(_error_pct(c)) for c in panel]
    median = f", median |error| {np.median(errors):.1f} %" if errors else ""
    ax.set_title(f"{what[0].upper()}{what[1:]}: {len(panel)} points{median}", fontsize=10)
    _label_outliers(ax, panel)
    ax.grid(True, which="major", color="0.9", linewidth=0.6)
    marker_handles = [Line2D([], [], marker=m, linestyle="", color="0.5", markeredgecolor="black",
                             label=k) for k, m in kinds.items()]
    ax.legend(handles=[identity, band, *marker_handles], loc="upper left", fontsize=8,
              frameon=True, framealpha=0.9)


def _label_outliers(ax, panel: list[Comparison]) -> None:
    """Name the few points far outside the band (the end of the id: model, GPU, lengths)."""
    far = sorted((c for c in panel if abs(_error_pct(c)) > OUTLIER_PCT),
                 key=lambda c: -abs(_error_pct(c)))[:MAX_LABELS]
    # Labels go into the empty corners (over-predictions top left under the legend,
    # under-predictions bottom right), with a thin line to their point.
    over = [c for c in far if _error_pct(c) > 0]
    under = [c for c in far if _error_pct(c) <= 0]
    for group, x, y0, step, ha in ((over, 0.03, 0.74, -0.055, "left"),
                                   (under, 0.97, 0.04, 0.055, "right")):
        for i, c in enumerate(group):
            label = "/".join(c.id.split("/")[1:]) or c.id
            ax.annotate(f"{label} ({c.error_pct:+.0f} %)", (c.measured, c.simulated),
                        xytext=(x, y0 + i * step), textcoords="axes fraction", ha=ha,
                        va="center", fontsize=7, color="0.15",
                        bbox={"boxstyle": "round,pad=0.2", "facecolor": "white",
                              "edgecolor": "0.8", "alpha": 0.9},
                        arrowprops={"arrowstyle": "-", "color": "0.5", "linewidth": 0.6})


def _error_pct(c: Comparison) -> float:
    """The error of a plotted point: each was compared, with a measured value and a simulated
    one > 0 (`validation_figure`), so it has one."""
    error = c.error_pct
    assert error is not None
    return error


def _palette(n: int) -> list[tuple]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]
