"""Arrival processes: renewal processes generated as one numpy array of arrival times.

A renewal process is fixed by its gap distribution; gaps are drawn in vectorised chunks and
summed until they pass the horizon, so the cost is a few numpy calls, not a Python loop per
request.

How many arrive: a Poisson process brings rate × duration on average. A renewal process with
gaps of coefficient of variation cv brings at most rate × duration + cv² (Lorden's bound on
the renewal function, E N(t) ≤ t/μ + E[X²]/μ² − 1): very bursty gaps come in clusters of
about cv² arrivals, so a gamma process with cv = 10⁶ may well bring 10¹² requests to a
20-second run (its gaps underflow to exactly 0 inside a cluster). `expected_count` is that
bound, which the work estimate refuses beyond its limit, and the generator stops (with an
`InputError`) rather than grow without end if it ever draws many times more.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sim.errors import InputError
from sim.scenario.workload import ArrivalSpec, GammaArrivals, PoissonArrivals

GapSampler = Callable[[np.random.Generator, int], np.ndarray]

# The generator gives up past this many times the expected count (plus the slack, for runs
# that expect almost nothing), so it ends for any valid input. Markov's inequality alone puts
# 10 × the bound below a 10 % chance; in practice the count stays far under the bound itself
# (cv 1000 at 2 requests/s over 20 s: at most 2.5e5 in five seeds, against 1e6).
RUNAWAY_FACTOR = 10.0
RUNAWAY_SLACK = 1000


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


def expected_count(spec: ArrivalSpec, duration_s: float) -> float:
    """An upper bound of the mean number of arrivals in [0, duration_s): rate × duration_s
    for Poisson (exact), + cv² for gamma gaps (Lorden's bound; see the module docstring)."""
    base = spec.rate_per_s * duration_s
    return base + spec.cv**2 if isinstance(spec, GammaArrivals) else base


def arrival_times(spec: ArrivalSpec, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted arrival times in [0, duration_s)."""
    sample = GAP_SAMPLERS[spec.process](spec)
    expected = spec.rate_per_s * duration_s
    chunk = int(expected + 6.0 * np.sqrt(expected) + 16)
    runaway = RUNAWAY_FACTOR * expected_count(spec, duration_s) + RUNAWAY_SLACK
    times = np.cumsum(sample(rng, chunk))
    parts = [times]
    drawn = chunk
    while parts[-1][-1] < duration_s:
        if drawn > runaway:
            raise _runaway(spec, duration_s, drawn)
        parts.append(parts[-1][-1] + np.cumsum(sample(rng, chunk)))
        drawn += chunk
    times = np.concatenate(parts) if len(parts) > 1 else times
    return times[: np.searchsorted(times, duration_s)]


def _runaway(spec: ArrivalSpec, duration_s: float, drawn: int) -> InputError:
    if isinstance(spec, GammaArrivals):
        return InputError("workload.arrival.cv", spec.cv, f"gaps that add up to duration_s "
                          f"({duration_s:g} s): {drawn:,} gamma gaps with this cv summed to "
                          "less (they underflow to 0); a smaller cv")
    return InputError("workload.arrival.rate_per_s", spec.rate_per_s, f"gaps that add up "
                      f"to duration_s ({duration_s:g} s): {drawn:,} gaps summed to less")
