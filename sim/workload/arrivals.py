"""Arrival processes: renewal processes generated as one numpy array of arrival times.

A renewal process is fixed by its gap distribution; gaps are drawn in vectorised chunks and
summed until they pass the horizon, so the cost is a few numpy calls, not a Python loop per
request.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sim.scenario.workload import ArrivalSpec, GammaArrivals, PoissonArrivals

GapSampler = Callable[[np.random.Generator, int], np.ndarray]


def _poisson_gaps(spec: PoissonArrivals) -> GapSampler:
    mean_gap_s = 1.0 / spec.rate_per_s
    return lambda rng, n: rng.exponential(mean_gap_s, n)


def _gamma_gaps(spec: GammaArrivals) -> GapSampler:
    # Gamma with shape k and scale θ has mean kθ and cv 1/√k.
    shape = 1.0 / spec.cv**2
    scale = 1.0 / (spec.rate_per_s * shape)
    return lambda rng, n: rng.gamma(shape, scale, n)


GAP_SAMPLERS: dict[str, Callable[..., GapSampler]] = {
    "poisson": _poisson_gaps,
    "gamma": _gamma_gaps,
}


def arrival_times(spec: ArrivalSpec, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted arrival times in [0, duration_s)."""
    sample = GAP_SAMPLERS[spec.process](spec)
    expected = spec.rate_per_s * duration_s
    chunk = int(expected + 6.0 * np.sqrt(expected) + 16)
    times = np.cumsum(sample(rng, chunk))
    parts = [times]
    while parts[-1][-1] < duration_s:
        parts.append(parts[-1][-1] + np.cumsum(sample(rng, chunk)))
    times = np.concatenate(parts) if len(parts) > 1 else times
    return times[: np.searchsorted(times, duration_s)]
