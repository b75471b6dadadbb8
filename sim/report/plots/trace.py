"""Figures of a trace: its arrival rate over time, and its length histograms with the
fitted models' histograms drawn over them."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from sim.scenario.traces import Trace
from sim.workload.bins import coarser_width_s
from sim.workload.fitlengths import LengthFit, sample_model

MODEL_SAMPLES = 200_000


MAX_BINS = 20_000  # per line: far more than a figure's width in pixels


def arrival_rate_figure(trace: Trace, title: str) -> Figure:
    """Requests per second, averaged over 10 s and over 1 min, against time (a last, partial
    bin is averaged over the time it covers). A trace spanning years gets coarser bins, at
    most MAX_BINS a line, and the legend says which."""
    t = trace.arrival_s
    fig = Figure(figsize=(9, 4), layout="constrained")
    ax = fig.add_subplot()
    for nominal_s, colour, lw in ((10.0, "0.75", 0.8), (60.0, "C0", 1.6)):
        width_s = coarser_width_s(float(t[-1]), nominal_s, MAX_BINS)
        counts = np.bincount(np.floor(t / width_s).astype(np.int64))
        starts_s = np.arange(len(counts)) * width_s
        covered_s = np.minimum(width_s, max(t[-1], width_s) - starts_s)  # the last is partial
        ax.stairs(counts / np.maximum(covered_s, 1e-9), np.append(starts_s, starts_s[-1]
                  + covered_s[-1]) / 60.0, label=f"per {width_s:g} s", color=colour, lw=lw)
    ax.set_title(f"Arrival rate — {title}")
    ax.set_xlabel("time since the first request (min)")
    ax.set_ylabel("requests per second")
    ax.set_ylim(bottom=0)
    ax.legend()
    return fig


def lengths_figure(trace: Trace, fits: dict[str, list[LengthFit]], title: str) -> Figure:
    """Prompt and output length histograms (log-spaced bins) with each fitted model's."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    for i, (role, tokens) in enumerate((("prompt_tokens", trace.prompt_tokens),
                                        ("output_tokens", trace.output_tokens))):
        ax = fig.add_subplot(1, 2, i + 1)
        edges = np.unique(np.rint(np.geomspace(0.5, tokens.max() * 1.05, 60)))
        share, _ = np.histogram(tokens, edges)
        ax.stairs(share / len(tokens), edges, fill=True, color="0.8", label="trace")
        for k, fit in enumerate(fits[role]):
            drawn = sample_model(fit.spec, MODEL_SAMPLES, seed=k)
            model_share, _ = np.histogram(drawn, edges)
            worst = fit.worst_quantile_error
            ax.stairs(model_share / len(drawn), edges, color=f"C{k}", lw=1.4,
                      label=f"{fit.model} (worst p50/p90/p99 error {worst:.0%})")
        ax.set_xscale("log")
        ax.set_title(role.replace("_", " "))
        ax.set_xlabel("tokens (log scale)")
        ax.set_ylabel("share of requests per bin")
        ax.legend(fontsize="small")
    fig.suptitle(f"Length distributions — {title}")
    return fig
