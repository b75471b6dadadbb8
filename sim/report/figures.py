"""The report's charts, drawn with matplotlib's object API (Agg) at slide size: titles,
axis labels with units, the SLO drawn where it applies, colours told apart by shape too."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from sim.report.analysis import Swing, recommended_option
from sim.report.plan_text import pools_words
from sim.report.plots.sweep import x_axis

BLUE, ORANGE, GREEN, RED, GREY = "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#7f7f7f"
OPTION_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
DOLLARS = FuncFormatter(lambda v, _: f"${v:,.0f}")


def _figure(width: float = 11, height: float = 6, **grid: Any) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(**grid) if grid else fig.add_subplot()


def _log_axis(axis: Any) -> None:
    """Plain numbers on a log axis (20, 50, 100 rather than 2×10¹), more of them when the
    data span less than a decade, so a narrow range still has readable ticks."""
    low, high = axis.get_view_interval()
    narrow = high / max(low, 1e-12) < 10
    axis.set_major_locator(LogLocator(base=10, subs=(1, 1.5, 2, 3, 5, 7) if narrow
                                      else (1, 2, 5)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _style(ax: Any) -> None:
    ax.tick_params(labelsize=12)
    ax.grid(True, alpha=0.3)


def _values(points: list[dict[str, Any]], metric: str, stat: str) -> np.ndarray:
    return np.array([np.nan if p[metric][stat] is None else p[metric][stat] for p in points],
                    dtype=float)


def latency_vs_load(summary: dict[str, Any], slo: dict[str, Any]) -> Figure:
    """TTFT and TPOT p99 across the sweep: median over replications with P5–P95 band."""
    points = summary["points"]
    x, labels, x_label = x_axis(summary)
    fig, axes = _figure(12, 5.5, nrows=1, ncols=2)
    for ax, metric, target, name in ((axes[0], "ttft_p99_s", slo.get("ttft_s"), "TTFT"),
                                     (axes[1], "tpot_p99_s", slo.get("tpot_s"), "TPOT")):
        low, high = _values(points, metric, "p5") * 1e3, _values(points, metric, "p95") * 1e3
        if labels is None:
            ax.fill_between(x, low, high, color=BLUE, alpha=0.2, linewidth=0,
                            label="P5–P95 over replications")
        else:  # separate configurations: bars, no line pretending to join them
            ax.vlines(x, low, high, color=BLUE, alpha=0.4, linewidth=6,
                      label="P5–P95 over replications")
        ax.plot(x, _values(points, metric, "p50") * 1e3, color=BLUE, marker="o", linewidth=2,
                linestyle="-" if labels is None else "none", label="median")
        if target is not None:
            ax.axhline(target * 1e3, color=RED, linestyle="--", linewidth=2,
                       label=f"SLO {target * 1e3:g} ms")
        ax.set_yscale("log")
        _log_axis(ax.yaxis)
        ax.set_title(f"{name} p99 vs load", fontsize=15)
        ax.set_ylabel(f"{name} p99 (ms, log scale)", fontsize=13)
        ax.set_xlabel(x_label if labels is None else "grid point", fontsize=12)
        if labels is not None:
            ax.set_xticks(x, [label.replace("\n", ", ") for label in labels], fontsize=10,
                          rotation=35, ha="right", rotation_mode="anchor")
        _style(ax)
        ax.legend(fontsize=11, loc="upper left")
    return fig


def latency_cdf_sweep(summary: dict[str, Any], rows: list[dict[str, Any]],
                      slo: dict[str, Any]) -> Figure:
    """Across runs: the share of replications whose p99 stays below each value, per point.
    This is the distribution behind P(SLO met), not a per-request CDF."""
    points = summary["points"]
    fig, axes = _figure(12, 5.5, nrows=1, ncols=2)
    colours = [_viridis(i / max(len(points) - 1, 1)) for i in range(len(points))]
    x, labels, _ = x_axis(summary)
    for ax, metric, target, name in ((axes[0], "ttft_p99_s", slo.get("ttft_s"), "TTFT"),
                                     (axes[1], "tpot_p99_s", slo.get("tpot_s"), "TPOT")):
        for i, point in enumerate(points):
            values = np.sort([r[metric] for r in rows
                              if r["point"] == point["point"] and r[metric] is not None])
            if values.size == 0:
                continue
            values = np.concatenate([values[:1], values])  # rise from 0 at the first run
            share = np.arange(values.size) / (values.size - 1)
            label = f"{x[i]:.0%}" if labels is None and summary["sweep"]["axis"] == \
                "utilization" else (labels[i].replace("\n", " ") if labels else f"{x[i]:g}")
            ax.step(values * 1e3, share, where="post", color=colours[i], linewidth=2,
                    label=label)
        if target is not None:
            ax.axvline(target * 1e3, color=RED, linestyle="--", linewidth=2, label="SLO")
        ax.set_xscale("log")
        _log_axis(ax.xaxis)
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{name} p99 across replications", fontsize=15)
        ax.set_xlabel(f"{name} p99 of a run (ms, log scale)", fontsize=13)
        ax.set_ylabel("share of runs at or below", fontsize=13)
        _style(ax)
    axes[1].legend(fontsize=10, loc="lower right", title="load", ncols=2)
    return fig


def _viridis(fraction: float) -> tuple[float, float, float, float]:
    from matplotlib import colormaps

    return colormaps["viridis"](0.9 * fraction)


def latency_cdf_run(run: dict[str, Any]) -> Figure:
    """A run's latency distribution from the percentiles its JSON holds: the JSON carries no
    per-request latencies, so the curve joins (p50, 0.5), (p90, 0.9) and (p99, 0.99)."""
    slo = run["slo"]
    fig, axes = _figure(13, 5, nrows=1, ncols=3)
    for ax, key, target, name in ((axes[0], "ttft", slo.get("ttft_s"), "TTFT"),
                                  (axes[1], "tpot", slo.get("tpot_s"), "TPOT"),
                                  (axes[2], "e2e", None, "end-to-end")):
        stats = run["latency_s"][key]
        pairs = [(stats.get(f"p{q}"), q / 100) for q in (50, 90, 99)]
        pairs = [(v * 1e3, q) for v, q in pairs if v is not None]
        if pairs:
            ax.plot(*zip(*pairs, strict=True), color=BLUE, marker="o", linewidth=2,
                    markersize=8, label="p50, p90, p99")
        if target is not None:
            ax.axvline(target * 1e3, color=RED, linestyle="--", linewidth=2,
                       label=f"SLO {target * 1e3:g} ms")
        ax.axhline(slo.get("percentile", 99) / 100, color=GREY, linestyle=":", linewidth=1)
        ax.set_xscale("log")
        _log_axis(ax.xaxis)
        ax.set_ylim(0.4, 1.0)
        ax.set_title(f"{name} (from percentiles)", fontsize=14)
        ax.set_xlabel(f"{name} latency (ms, log scale)", fontsize=12)
        ax.set_ylabel("share of requests at or below", fontsize=12)
        _style(ax)
        ax.legend(fontsize=10, loc="lower right")
    return fig


def tornado_chart(swings: list[Swing], base_usd: float, where: str) -> Figure:
    """Bars from the P50 cost with each input at its P5 to the cost at its P95."""
    fig, ax = _figure(11, 1.6 + 0.7 * max(len(swings), 1))
    for i, swing in enumerate(reversed(swings)):
        for value, usd, colour in ((swing.low_value, swing.usd_at_low, BLUE),
                                   (swing.high_value, swing.usd_at_high, ORANGE)):
            ax.barh(i, usd - base_usd, left=base_usd, color=colour, height=0.6)
            ax.text(usd, i, f" {value:.4g} ", va="center", fontsize=11,
                    ha="left" if usd >= base_usd else "right")
    line = ax.axvline(base_usd, color="black", linewidth=1.5)
    ax.set_yticks(range(len(swings)), [s.key for s in reversed(swings)], fontsize=12)
    low = min([base_usd, *(min(s.usd_at_low, s.usd_at_high) for s in swings)])
    high = max([base_usd, *(max(s.usd_at_low, s.usd_at_high) for s in swings)])
    pad = (high - low) * 0.25 or base_usd * 0.05
    ax.set_xlim(low - pad, high + pad)
    ax.set_xlabel("P50 blended cost per 1M tokens (USD)", fontsize=13)
    ax.set_title(f"What moves the P50 cost at {where}", fontsize=15)
    _style(ax)
    ax.legend([Patch(color=BLUE), Patch(color=ORANGE), line],
              ["input at its P5 (value at bar end)", "input at its P95",
               f"P50 cost ${base_usd:.4g}"], fontsize=11, loc="upper center",
              bbox_to_anchor=(0.5, -0.16), ncols=3)
    return fig


def waterfall_chart(steps: list[tuple[str, float]], title: str) -> Figure:
    """From what the GPU-hours buy to the cost per 1M tokens: each step's contribution."""
    fig, ax = _figure(11, 5.5)
    total = 0.0
    for i, (label, usd) in enumerate(steps):
        colour = GREY if "idle" in label else BLUE
        ax.bar(i, usd, bottom=total, color=colour, width=0.6)
        text = f"${usd:.3g}" if usd >= 1e-3 else f"${usd:.4f}"  # never a bare "$0"
        ax.text(i, total + usd, text, ha="center", va="bottom", fontsize=11)
        total += usd
    ax.bar(len(steps), total, color=GREEN, width=0.6)
    ax.text(len(steps), total, f"${total:.4g}", ha="center", va="bottom", fontsize=12,
            fontweight="bold")
    labels = [label.replace(", ", ",\n") for label, _ in steps] + ["$/1M tokens\n(blended)"]
    ax.set_xticks(range(len(labels)), labels, fontsize=11)
    ax.set_ylim(0, total * 1.15 if total > 0 else 1)
    ax.set_ylabel("USD per 1M tokens", fontsize=13)
    ax.set_title(title, fontsize=15)
    _style(ax)
    return fig


def fleet_plan_chart(plan: dict[str, Any]) -> Figure:
    """The recommended fleet per period (GPUs, and the forecast peak where plan.json has it)
    and its monthly cost."""
    periods = plan["periods"]
    names = [str(p["period"]) for p in periods]
    none: dict[str, Any] = {"option": "no feasible option", "gpus": 0, "replicas": 0,
                            "usd_per_month": 0.0}
    chosen = [recommended_option(p) or none for p in periods]
    x = np.arange(len(periods))
    fig, (top, bottom) = _figure(11, 7.5, nrows=2, ncols=1, sharex=True)
    top.bar(x, [o["gpus"] for o in chosen], color=BLUE, width=0.6, label="GPUs (recommended)")
    for i, option in enumerate(chosen):
        top.text(i, option["gpus"] / 2, f"{option['gpus']} × {option['option']}\n"
                 f"({option.get('split') or pools_words(option.get('pools')) or option['replicas']}"
                 " replicas)", ha="center",
                 va="center", fontsize=11, color="white", fontweight="bold")
    top.set_ylim(0, max(1, *(o["gpus"] for o in chosen)) * 1.35)
    top.set_ylabel("GPUs", fontsize=13)
    top.set_title("Fleet per period: recommended option", fontsize=15)
    rates = [p.get("peak_rate_per_s") for p in periods]
    if any(r is not None for r in rates):
        twin = top.twinx()
        twin.plot(x, [np.nan if r is None else r for r in rates], color=ORANGE, marker="D",
                  linewidth=2, label="forecast peak (req/s)")
        twin.set_ylabel("forecast peak arrival rate (req/s)", fontsize=12)
        twin.set_ylim(0, max(r for r in rates if r is not None) * 1.35)
        twin.legend(fontsize=11, loc="upper right")
    top.legend(fontsize=11, loc="upper left")
    _style(top)
    bottom.bar(x, [o["usd_per_month"] for o in chosen], color=GREEN, width=0.6)
    for i, option in enumerate(chosen):
        bottom.text(i, option["usd_per_month"], f"${option['usd_per_month']:,.0f}",
                    ha="center", va="bottom", fontsize=11)
    bottom.set_ylim(0, max(1.0, *(o["usd_per_month"] for o in chosen)) * 1.2)
    bottom.set_ylabel("USD per month", fontsize=13)
    bottom.yaxis.set_major_formatter(DOLLARS)
    bottom.set_xticks(x, names, fontsize=12)
    bottom.set_xlabel("period", fontsize=13)
    _style(bottom)
    return fig


def option_chart(plan: dict[str, Any], confidence: float | None) -> Figure:
    """Every option's monthly cost per period; hatched outlines mark options that miss the
    required P(SLO met)."""
    periods = plan["periods"]
    options = list(dict.fromkeys(o["option"] for p in periods for o in p["options"]))
    x = np.arange(len(periods))
    width = 0.8 / len(options)
    fig, ax = _figure(11, 6)
    for k, name in enumerate(options):
        for i, period in enumerate(periods):
            option = next((o for o in period["options"] if o["option"] == name), None)
            if option is None or option["usd_per_month"] is None:  # absent, or not feasible
                continue
            short = confidence is not None and option["slo_met_probability"] < confidence
            xpos = x[i] - 0.4 + width * (k + 0.5)
            ax.bar(xpos, option["usd_per_month"], width=width * 0.9,
                   color="white" if short else OPTION_COLOURS[k % len(OPTION_COLOURS)],
                   edgecolor=OPTION_COLOURS[k % len(OPTION_COLOURS)], linewidth=2,
                   hatch="xx" if short else None,
                   label=name if i == 0 else None)
            ax.text(xpos, option["usd_per_month"], f"{option['slo_met_probability']:.0%}",
                    ha="center", va="bottom", fontsize=10)
    top = max([1.0, *(o["usd_per_month"] for p in periods for o in p["options"]
                      if o["usd_per_month"] is not None)])
    ax.set_ylim(0, top * 1.18)
    ax.set_xticks(x, [str(p["period"]) for p in periods], fontsize=12)
    ax.set_xlabel("period (label over each bar: P(SLO met))", fontsize=13)
    ax.set_ylabel("USD per month", fontsize=13)
    ax.yaxis.set_major_formatter(DOLLARS)
    note = "" if confidence is None else \
        f"; white, cross-hatched = P(SLO met) below {confidence:.0%}"
    ax.set_title(f"Options compared{note}", fontsize=15)
    _style(ax)
    ax.legend(fontsize=11, loc="upper left", title="option")
    return fig
