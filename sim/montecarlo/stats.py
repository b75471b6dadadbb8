"""From runs to distributions: percentile bands per grid point, and whether R was enough.

Costs of runs that delivered no tokens of a kind have no finite price; they count as +inf,
so a band reaching them is reported as null rather than silently dropping the worst runs.

Convergence is judged on the median blended cost of each point with a distribution-free
interval: for n sorted values x₍₁₎ ≤ … ≤ x₍ₙ₎ the true median lies in [x₍ⱼ₎, x₍ₙ₊₁₋ⱼ₎] with
probability 1 − 2·P(Binomial(n, ½) ≤ j − 1); j is the largest rank that keeps that ≥ 95%.
Below 6 replications no such j exists and the interval is reported as unknown. Its
half-width shrinks like 1/√n, so the replications needed for a ±2% interval are estimated as
n × (half-width % ÷ 2)².

P(SLO met) of a point is the share of its replications that met the SLO, with the Wilson
95% interval (`sim.montecarlo.confidence`: distribution-free, so wide for few
replications: 20 of 20 gives [0.84, 1]). `slo_feasible` stays the point estimate against
`slo_confidence`; the interval says how far to trust it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from sim.montecarlo.confidence import wilson
from sim.montecarlo.design import SweepDesign
from sim.provenance import stamp

PERCENTILES = (5, 25, 50, 75, 95)
CONFIDENCE = 0.95
TARGET_HALF_WIDTH_PCT = 2.0


def band(values: Iterable[float | None]) -> dict[str, float | None]:
    """p5, p25, p50, p75, p95 and mean; missing values count as +inf (no finite price)."""
    x = np.array([math.inf if v is None else v for v in values], dtype=float)
    if x.size == 0:
        return {**{f"p{p}": None for p in PERCENTILES}, "mean": None}
    # 'inverted_cdf' picks observed values, so an infinite run never makes a NaN by interpolating.
    qs = np.percentile(x, PERCENTILES, method="inverted_cdf")
    stats = {f"p{p}": _finite(q) for p, q in zip(PERCENTILES, qs, strict=True)}
    return {**stats, "mean": _finite(x.mean())}


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def median_ci_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int] | None:
    """1-based ranks (j, n + 1 − j) of the order-statistic interval for the median."""
    best = None
    tail = 0.0  # P(Binomial(n, 1/2) ≤ j − 1)
    for j in range(1, n // 2 + 1):
        tail += math.comb(n, j - 1) / 2**n
        if 1.0 - 2.0 * tail < confidence:
            break
        best = (j, n + 1 - j)
    return best


def convergence(values: Sequence[float | None]) -> dict[str, Any]:
    """The 95% interval of the median, its half-width in % of the median, and the verdict."""
    x = np.sort(np.array([math.inf if v is None else v for v in values], dtype=float))
    ranks = median_ci_ranks(len(x))
    median = float(np.median(x)) if len(x) else math.nan
    if ranks is None or not math.isfinite(x[ranks[1] - 1]) or median <= 0:
        return {"metric": "usd_per_million_blended p50", "replications": len(x),
                "ci95": None, "half_width_pct": None, "converged": False,
                "replications_for_2pct": None}
    low, high = float(x[ranks[0] - 1]), float(x[ranks[1] - 1])
    half_pct = (high - low) / 2 / median * 100
    needed = math.ceil(len(x) * (half_pct / TARGET_HALF_WIDTH_PCT) ** 2)
    return {"metric": "usd_per_million_blended p50", "replications": len(x),
            "ci95": [low, high], "half_width_pct": half_pct,
            "converged": half_pct <= TARGET_HALF_WIDTH_PCT,
            "replications_for_2pct": needed if half_pct > TARGET_HALF_WIDTH_PCT else len(x)}


def summarise_point(rows: Sequence[dict[str, Any]], slo_confidence: float) -> dict[str, Any]:
    """One grid point's distributions over its replications."""
    def column(name: str) -> list[Any]:
        return [row[name] for row in rows]

    met = [m for m in column("slo_met") if m is not None]
    share = wilson(sum(met), len(met)) if met else None
    probability = None if share is None else share.probability
    return {
        "runs": len(rows),
        "usd_per_million_tokens": {
            kind: band(column(f"usd_per_million_{kind}"))
            for kind in ("input", "output", "blended", "goodput")
        },
        "energy_j_per_token": band(column("energy_j_per_token"))
        if any(v is not None for v in column("energy_j_per_token")) else None,
        "ttft_p99_s": band(column("ttft_p99_s")),
        "tpot_p99_s": band(column("tpot_p99_s")),
        "busy_fraction": band(column("busy_fraction")),
        "slo_attainment": band(column("slo_attainment")),
        "slo_met_probability": probability,
        "slo_met_probability_ci": None if share is None else share.interval(),
        "slo_feasible": probability is not None and probability >= slo_confidence,
        "convergence": convergence(column("usd_per_million_blended")),
    }


def summarise(design: SweepDesign, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """summary.json: the sweep's set-up, then one entry of distributions per grid point."""
    by_point: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_point.setdefault(row["point"], []).append(row)
    points = []
    for index, (labels, overrides) in enumerate(zip(design.labels, design.overrides, strict=True)):
        entry = summarise_point(by_point.get(index, []), design.slo_confidence)
        points.append({"point": index, **labels, **overrides, **entry})
    return {
        "scenario": design.name,
        "seed": design.seed,
        "replications": design.replications,
        "sampling": design.sampling,
        "runs": len(rows),
        "sweep": {"axis": design.axis, "keys": list(design.label_keys)},
        "slo_confidence": design.slo_confidence,
        "capacity": None if design.capacity is None else design.capacity.to_dict(),
        "uncertainty": design.uncertainty,
        "model_error": design.model_error,
        "notes": design.notes,
        "warnings": _warnings(design, points),
        "points": points,
        **stamp(),
    }


def _warnings(design: SweepDesign, points: list[dict[str, Any]]) -> list[str]:
    loose = [p for p in points if not p["convergence"]["converged"]]
    if not loose:
        return []
    unknown = [p for p in loose if p["convergence"]["half_width_pct"] is None]
    if unknown:
        return [f"convergence: {len(unknown)} of {len(points)} points have too few "
                f"replications ({design.replications}) for a 95% interval of the median cost "
                f"(at least 6 are needed; ±{TARGET_HALF_WIDTH_PCT:g}% usually takes more)"]
    worst = max(loose, key=lambda p: p["convergence"]["half_width_pct"])
    where = ", ".join(f"{k} {worst[k]}" for k in design.label_keys)
    needed = max(p["convergence"]["replications_for_2pct"] for p in loose)
    return [f"convergence: {len(loose)} of {len(points)} points have a 95% interval of the "
            f"median blended cost wider than ±{TARGET_HALF_WIDTH_PCT:g}% (widest "
            f"±{worst['convergence']['half_width_pct']:.1f}% at {where}); about {needed} "
            f"replications would bring every point within ±{TARGET_HALF_WIDTH_PCT:g}%"]
