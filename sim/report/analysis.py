"""Numbers a report derives from result files without re-running anything: the sweep point
to recommend, how much each uncertain input moves the cost (tornado), and the steps from a
GPU-hour's price to the cost per 1M tokens (waterfall)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.validation.mapping import is_number

OWNERSHIP_ITEMS = ("rental", "capex", "maintenance")  # paid per hour whether busy or idle


def recommended_point(summary: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The cheapest point (median blended cost) whose P(SLO met) reaches the sweep's
    confidence, and True; when none does, the point most likely to meet the SLO, and False."""
    points = summary["points"]
    feasible = [p for p in points if p["slo_feasible"]
                and p["usd_per_million_tokens"]["blended"]["p50"] is not None]
    if feasible:
        return min(feasible, key=lambda p: p["usd_per_million_tokens"]["blended"]["p50"]), True
    return max(points, key=lambda p: (p["slo_met_probability"] or 0.0,
                                      -(p["usd_per_million_tokens"]["blended"]["p50"]
                                        or math.inf))), False


def median_run(rows: list[dict[str, Any]], point: int) -> dict[str, Any] | None:
    """The run of a point whose blended cost is that point's median (the lower middle one
    for an even count, as summary.json's percentiles pick observed values)."""
    runs = sorted((r for r in rows if r["point"] == point
                   and r["usd_per_million_blended"] is not None),
                  key=lambda r: r["usd_per_million_blended"])
    return runs[(len(runs) - 1) // 2] if runs else None


@dataclass(frozen=True)
class Swing:
    """The P50 cost when one input sits at its P5 and at its P95 sampled value."""

    key: str
    low_value: float
    high_value: float
    usd_at_low: float
    usd_at_high: float

    @property
    def width_usd(self) -> float:
        return abs(self.usd_at_high - self.usd_at_low)


def tornado(rows: list[dict[str, Any]], keys: list[str], base_usd: float) -> list[Swing]:
    """Regress log blended cost on each sampled input alone, with a fixed effect per sweep
    point (so the grid's own effect is taken out; common random numbers make the inputs
    vary only between replications), and turn the slope into the cost at the input's P5 and
    P95, scaled to `base_usd`. Widest swing first; inputs drawn from a choice of names
    have no slope and are left out."""
    usable = [r for r in rows if r["usd_per_million_blended"]]
    points = np.array([r["point"] for r in usable])
    y = np.log([r["usd_per_million_blended"] for r in usable])
    swings = []
    for key in keys:
        if not all(is_number(r[key]) for r in usable):
            continue  # a choice among names has no slope: the tornado leaves it out
        x = np.array([r[key] for r in usable], dtype=float)
        xc, yc = x.copy(), y.copy()
        for p in np.unique(points):
            at = points == p
            xc[at] -= x[at].mean()
            yc[at] -= y[at].mean()
        spread = float(xc @ xc)
        if spread <= 0:
            continue
        slope = float(xc @ yc) / spread
        q5, q50, q95 = np.percentile(x, [5, 50, 95])
        swings.append(Swing(key, float(q5), float(q95), base_usd * math.exp(slope * (q5 - q50)),
                            base_usd * math.exp(slope * (q95 - q50))))
    return sorted(swings, key=lambda s: s.width_usd, reverse=True)


def used_fraction(utilization: dict[str, Any]) -> float:
    """The share of the paid GPU capacity the delivered tokens used (`capacity_used_fraction`,
    at most 1), the waterfall's split; the busy fraction for result files older than that
    key, where it is all there is (and says little: continuous batching keeps GPUs busy at
    any load)."""
    used = utilization.get("capacity_used_fraction")
    return min(float(used), 1.0) if is_number(used) else float(utilization["busy_fraction"])


def waterfall(by_item: dict[str, float | None], used_fraction: float,
              blended_usd: float) -> list[tuple[str, float]]:
    """The blended $/1M split by what was paid for: ownership (rental or capex and
    maintenance) of the capacity the tokens used and of the idle capacity (the headroom),
    then power and hosting. The steps add up to `blended_usd`, because every item is charged
    to the delivered tokens in proportion to its share of the GPU-hour; the used-capacity
    step is what ownership would cost per token on a fleet kept full."""
    items = {k: v for k, v in by_item.items() if v}
    hour_usd = sum(items.values())
    if hour_usd <= 0:
        return []
    per_million = {k: v / hour_usd * blended_usd for k, v in items.items()}
    owned = sum(per_million.get(k, 0.0) for k in OWNERSHIP_ITEMS)
    name = "rental" if "rental" in items else "capex + maintenance"
    steps = [(f"{name}, capacity used", owned * used_fraction),
             (f"{name}, idle capacity (headroom)", owned * (1 - used_fraction))]
    steps += [(k, v) for k, v in per_million.items() if k not in OWNERSHIP_ITEMS]
    return steps


def recommended_option(period: dict[str, Any]) -> dict[str, Any] | None:
    """A plan period's recommended option (the cheapest priced one if plan.json names none;
    None when no option met the target in that period, so none has a price)."""
    by_name = {o["option"]: o for o in period["options"]}
    if period.get("recommended") in by_name:
        return by_name[period["recommended"]]
    priced = [o for o in period["options"] if o["usd_per_month"] is not None]
    return min(priced, key=lambda o: o["usd_per_month"], default=None)
