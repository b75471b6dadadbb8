"""Reserved against on-demand capacity: how many GPUs to reserve for the whole forecast.

A reserved GPU costs its price every hour of every period; an on-demand GPU only while it is
needed. With demand d(t) GPUs over the forecast (each period's sized fleet, following the
within-day shape when one is given: ⌈replicas × rate(t)/peak⌉ × tp; held all period
otherwise), reserving R GPUs costs

    R × reserved × hours  +  on_demand × ∫ max(d(t) − R, 0) dt,

a convex function of R. Its minimum is where one more reserved GPU stops paying: the R-th
GPU is worth reserving while demand needs it for more than reserved ÷ on_demand of the time
— the break-even utilisation. R is found by evaluating every integer from 0 to the peak
demand (a few hundred at most), which is exact and needs no argument about ties.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sim.metrics.cost import HOURS_PER_YEAR

HOURS_PER_MONTH = HOURS_PER_YEAR / 12.0  # each period is a month of 730 hours


@dataclass(frozen=True)
class MixResult:
    reserved_gpus: int
    usd_total: float
    usd_all_on_demand: float
    usd_all_reserved: float
    break_even_utilization: float  # reserved ÷ on-demand price

    def to_dict(self) -> dict[str, float | int]:
        saving = (1.0 - self.usd_total / self.usd_all_on_demand) * 100.0 \
            if self.usd_all_on_demand > 0 else 0.0
        return {"reserved_gpus": self.reserved_gpus, "usd_total": self.usd_total,
                "usd_all_on_demand": self.usd_all_on_demand,
                "usd_all_reserved": self.usd_all_reserved,
                "saving_vs_on_demand_pct": saving,
                "break_even_utilization": self.break_even_utilization}


def demand_gpus(replicas: Sequence[int], gpus_per_replica: int,
                day_fractions: np.ndarray) -> np.ndarray:
    """GPUs needed per period (rows) at each moment of the day (columns)."""
    n = np.asarray(replicas, dtype=float)[:, None]
    return np.ceil(n * day_fractions[None, :] - 1e-9) * gpus_per_replica


def usd_for(reserved_gpus: int, demand: np.ndarray, reserved_usd: float,
            on_demand_usd: float) -> float:
    """Cost over the forecast of reserving this many GPUs and renting the rest on demand."""
    periods = demand.shape[0]
    burst = np.clip(demand - reserved_gpus, 0, None).mean(axis=1).sum()
    return HOURS_PER_MONTH * (reserved_gpus * reserved_usd * periods + on_demand_usd * burst)


def best_mix(demand: np.ndarray, reserved_usd: float, on_demand_usd: float) -> MixResult:
    peak = int(math.ceil(demand.max())) if demand.size else 0
    costs = [usd_for(r, demand, reserved_usd, on_demand_usd) for r in range(peak + 1)]
    best = int(np.argmin(costs))
    ratio = reserved_usd / on_demand_usd if on_demand_usd > 0 else math.inf
    return MixResult(best, costs[best], costs[0], costs[peak], ratio)
