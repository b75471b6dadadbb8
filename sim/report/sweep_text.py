"""What `tokenfactory sweep` prints: one line per point with the medians over its
replications, P(SLO met) with its 95% interval and the P5–P95 band of cost (text only; the
CLI decides where it goes). The scenario's name is shown `printable`; the table does it for
the swept keys and values."""

from __future__ import annotations

from typing import Any

from sim.montecarlo.design import SweepDesign
from sim.report.plan_text import interval_text
from sim.report.text import DASH, Column, ms, or_dash, printable, table, usd

SHORT_TITLES = {"workload.arrival.rate_per_s": "req/s"}
METRIC_TITLES = ("$/1M blended", "P5–P95", "$/1M goodput", "TTFT p99 ms", "TPOT p99 ms",
                 "P(SLO met)", "P(SLO) CI95", "median CI95")


def format_table(design: SweepDesign, summary: dict[str, Any]) -> str:
    """One line per point: medians over the replications, with the P5–P95 band of cost."""
    keys = [*design.label_keys, *(k for k in design.overrides[0] if k not in design.labels[0])]
    cells = []
    for p in summary["points"]:
        cost = p["usd_per_million_tokens"]
        conv = p["convergence"]["half_width_pct"]
        cells.append([
            *(f"{p[k]:.4g}" if isinstance(p[k], float) else str(p[k]) for k in keys),
            usd(cost["blended"]["p50"]),
            f"{usd(cost['blended']['p5'])}–{usd(cost['blended']['p95'])}",
            usd(cost["goodput"]["p50"]),
            ms(p["ttft_p99_s"]["p50"], 0),
            ms(p["tpot_p99_s"]["p50"], 0),
            or_dash(p["slo_met_probability"], ".0%"),
            interval_text(p.get("slo_met_probability_ci")),
            DASH if conv is None else f"±{conv:.1f}%",
        ])
    columns = [Column(title) for title in (*(SHORT_TITLES.get(k, k) for k in keys),
                                           *METRIC_TITLES)]
    lines = [f"sweep {printable(str(summary['scenario']))}: {len(summary['points'])} points × "
             f"{summary['replications']} replications = {summary['runs']} runs "
             f"(seed {summary['seed']}, {summary['sampling']} sampling); medians over "
             "replications", ""]
    return "\n".join([*lines, *table(columns, cells)])
