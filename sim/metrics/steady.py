"""Where a run's steady state begins: the MSER-5 truncation rule.

Every run starts with an empty fleet, so its first minutes deliver less than the fleet does
once batches have filled (with long outputs, for several end-to-end times). Metrics taken
from the start are biased; a fixed warm-up is either too short for long outputs or wastes
a short run. MSER (the marginal standard error rule, White 1997, "An effective truncation
heuristic for bias reduction in simulation output", Simulation 69(6)) chooses the number d
of leading observations to drop that minimises the standard error of the mean of the rest,

    MSER(d) = Σ_{j > d} (z_j − z̄_d)² / (m − d)²,      z̄_d the mean of z_{d+1} … z_m,

which trades the bias a transient adds against the variance lost with the observations.
MSER-5 (White, Cobb and Spratt 2000, "A comparison of five steady-state truncation
heuristics for simulation", Proc. Winter Simulation Conference) applies it to the means of
batches of 5 observations, which smooths the series enough for the minimum to be stable.
As usual, d is searched over the first half of the series only: a minimum beyond it means
the series never settled (an overloaded fleet's growing queue), and `Truncation.settled`
says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BATCH = 5  # observations per batch mean (the "5" of MSER-5)


@dataclass(frozen=True)
class Truncation:
    observations: int  # leading observations to drop (a multiple of the batch)
    settled: bool  # False: the best truncation was at the search limit (no steady state seen)


def mser(series: np.ndarray, batch: int = BATCH) -> Truncation:
    """The MSER-`batch` truncation of `series` (observations in time order, e.g. tokens
    produced per time bin). Observations past the last whole batch are kept but not used
    to choose. Fewer than two batches: nothing is dropped."""
    values = np.asarray(series, dtype=float)
    m = len(values) // batch
    if m < 2:
        return Truncation(0, True)
    z = values[: m * batch].reshape(m, batch).mean(axis=1)
    z = z - z.mean()  # MSER does not depend on the level; centring keeps the sums exact
    # Tail sums from each d: Σ z and Σ z² over j ≥ d (0-based), for d = 0 … m − 1.
    tail = np.cumsum(z[::-1])[::-1]
    tail_sq = np.cumsum((z * z)[::-1])[::-1]
    kept = np.arange(m, 0, -1, dtype=float)  # m − d
    sse = np.maximum(tail_sq - tail * tail / kept, 0.0)
    limit = m // 2  # search d ∈ [0, m/2]
    score = sse[: limit + 1] / kept[: limit + 1] ** 2
    d = int(np.argmin(score))
    return Truncation(d * batch, d < limit or limit == 0)
