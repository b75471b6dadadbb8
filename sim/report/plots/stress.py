"""The stress figure: SLO attainment minute by minute in each stress case."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from sim.report.plots.plan import COLOURS, MARKERS


def attainment_figure(document: dict[str, Any]) -> Figure:
    fig = Figure(figsize=(11, 6.5), dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    lowest = 1.0
    for i, case in enumerate(document["cases"]):
        y = np.array([np.nan if a is None else a for a in case["attainment_by_minute"]])
        x = np.arange(len(y)) + 0.5
        if np.isfinite(y).any():
            lowest = min(lowest, float(np.nanmin(y)))
        label = (f"{case['case']}: P(SLO met) {case['slo_met_probability']:.0%}, "
                 f"{case['violation_minutes']['p50']:g} min in violation (median)")
        ax.plot(x, y * 100, color=COLOURS[i % len(COLOURS)], marker=MARKERS[i % len(MARKERS)],
                linewidth=1.8, markersize=5, label=label)
    ax.set_ylim(max(0.0, lowest * 100 - 5), 100.5)
    ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("minute of the metrics window (by arrival)", fontsize=13)
    ax.set_ylabel("requests within TTFT and TPOT targets", fontsize=13)
    ax.grid(True, alpha=0.3)
    ax.tick_params(labelsize=11)
    ax.set_title(f"{document['scenario']}: SLO attainment per minute under stress "
                 f"({document['replicas']} replicas, mean of {document['draws']} draws)",
                 fontsize=14)
    ax.legend(fontsize=9, loc="lower left")
    return fig
