"""Time-varying demand: a non-homogeneous Poisson process generated exactly by thinning.

The rate λ(t) is `rate_per_s` × a shape × the spikes in force at t:

* `profile: diurnal` — 1 + a·cos(2π (h − peak_hour) / 24) at clock hour h = start_hour +
  t/3600, with a = (p − 1)/(p + 1) for peak_to_trough p: the highest rate is p times the
  lowest, and the mean over 24 hours is 1.
* `rate_curve` — linear between the points (a repeated time makes a step), flat beyond the
  ends, rescaled so that its mean from the first to the last point is 1.
* `spikes` — each multiplies the rate by its multiplier over [at_s, at_s + duration_s).

Thinning (Lewis & Shedler): draw a homogeneous Poisson process at a bound λ_max ≥ λ(t) on
[0, horizon) and keep a point at t with probability λ(t)/λ_max. The kept points are exactly
a Poisson process of rate λ(t); the work is three vectorised draws.
"""

from __future__ import annotations

from typing import TypeGuard

import numpy as np

from sim.scenario.workload import PoissonArrivals

DAY_S = 86_400.0


def is_time_varying(spec: object) -> TypeGuard[PoissonArrivals]:
    return isinstance(spec, PoissonArrivals) and bool(
        spec.profile or spec.rate_curve or spec.spikes)


def rate_per_s(spec: PoissonArrivals, t_s: np.ndarray) -> np.ndarray:
    """λ(t) in requests per second."""
    return spec.rate_per_s * _shape(spec, t_s) * _spike_factor(spec, t_s)


def _shape(spec: PoissonArrivals, t_s: np.ndarray) -> np.ndarray:
    if spec.profile == "diurnal":
        # PoissonArrivals._one_shape: profile diurnal requires both.
        assert spec.peak_to_trough is not None and spec.peak_hour is not None
        a = (spec.peak_to_trough - 1.0) / (spec.peak_to_trough + 1.0)
        hour = (spec.start_hour or 0.0) + t_s / 3600.0
        return 1.0 + a * np.cos(2.0 * np.pi * (hour - spec.peak_hour) / 24.0)
    if spec.rate_curve is not None:
        times, rates = np.asarray(spec.rate_curve, dtype=np.float64).T
        return np.interp(t_s, times, rates) / curve_mean(spec.rate_curve)
    return np.ones_like(t_s)


def curve_mean(points: list[list[float]]) -> float:
    """Time-average of a piecewise-linear curve from its first point to its last."""
    times, rates = np.asarray(points, dtype=np.float64).T
    area = np.sum(np.diff(times) * (rates[1:] + rates[:-1]) / 2.0)
    return float(area / (times[-1] - times[0]))


def _spike_factor(spec: PoissonArrivals, t_s: np.ndarray) -> np.ndarray:
    factor = np.ones_like(t_s)
    for spike in spec.spikes:
        during = (t_s >= spike.at_s) & (t_s < spike.at_s + spike.duration_s)
        factor[during] *= spike.multiplier
    return factor


def _max_rate_per_s(spec: PoissonArrivals, horizon_s: float) -> float:
    """An upper bound of λ on [0, horizon_s): the shape's maximum times the spikes' largest
    product (which only changes where a spike starts or ends)."""
    if spec.profile == "diurnal":
        assert spec.peak_to_trough is not None  # PoissonArrivals._one_shape: diurnal needs it
        shape_max = 2.0 * spec.peak_to_trough / (spec.peak_to_trough + 1.0)  # 1 + a
    elif spec.rate_curve is not None:
        shape_max = max(r for _, r in spec.rate_curve) / curve_mean(spec.rate_curve)
    else:
        shape_max = 1.0
    edges = np.array([0.0, *(s.at_s for s in spec.spikes if s.at_s < horizon_s)])
    return spec.rate_per_s * shape_max * float(_spike_factor(spec, edges).max())


def nhpp_arrival_times(spec: PoissonArrivals, horizon_s: float,
                       rng: np.random.Generator) -> np.ndarray:
    """Sorted arrival times in [0, horizon_s) of the Poisson process with rate λ(t)."""
    bound = _max_rate_per_s(spec, horizon_s)
    if bound <= 0.0:
        return np.zeros(0)
    n = rng.poisson(bound * horizon_s)
    candidates = np.sort(rng.uniform(0.0, horizon_s, n))
    keep = rng.uniform(0.0, bound, n) < rate_per_s(spec, candidates)
    return candidates[keep]
