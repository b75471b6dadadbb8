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

import math
from itertools import pairwise
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


def max_rate_per_s(spec: PoissonArrivals, horizon_s: float) -> float:
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


def expected_count(spec: PoissonArrivals, horizon_s: float) -> float:
    """∫ λ(t) dt over [0, horizon_s): the expected number of arrivals, in closed form (the
    work estimate's count, so it is exact rather than sampled). Between consecutive spike
    edges the spikes' product is constant, so the integral is a sum of the shape's integral
    over each piece times that product."""
    edges = {0.0, horizon_s}
    for spike in spec.spikes:
        edges.update(min(max(t, 0.0), horizon_s)
                     for t in (spike.at_s, spike.at_s + spike.duration_s))
    ordered = sorted(edges)
    total = 0.0
    for a, b in pairwise(ordered):
        factor = math.prod(s.multiplier for s in spec.spikes
                           if s.at_s <= a < s.at_s + s.duration_s)
        piece = _shape_integral(spec, a, b)
        if factor > 0.0 and piece > 0.0:  # so that no 0 × ∞ (a product that overflowed)
            total += factor * piece
    return spec.rate_per_s * total


def spike_excess(spec: PoissonArrivals, index: int, horizon_s: float) -> float:
    """The arrivals spike `index` alone adds over [0, horizon_s): rate × (multiplier − 1) ×
    the shape's integral over the spike (which spike a message should blame)."""
    spike = spec.spikes[index]
    a = min(spike.at_s, horizon_s)
    b = min(spike.at_s + spike.duration_s, horizon_s)
    return spec.rate_per_s * (spike.multiplier - 1.0) * _shape_integral(spec, a, b)


def _shape_integral(spec: PoissonArrivals, a: float, b: float) -> float:
    """∫ shape(t) dt over [a, b] (a ≤ b): a sine difference for the diurnal cosine, the
    trapezoids of the rate curve (flat beyond its ends), b − a for a flat rate."""
    if spec.profile == "diurnal":
        assert spec.peak_to_trough is not None and spec.peak_hour is not None
        amplitude = (spec.peak_to_trough - 1.0) / (spec.peak_to_trough + 1.0)
        omega = 2.0 * math.pi / DAY_S  # radians per second
        offset_s = ((spec.start_hour or 0.0) - spec.peak_hour) * 3600.0  # t = 0 from the peak
        return (b - a) + amplitude / omega * (math.sin(omega * (offset_s + b))
                                              - math.sin(omega * (offset_s + a)))
    if spec.rate_curve is not None:
        return ((_curve_area(spec.rate_curve, b) - _curve_area(spec.rate_curve, a))
                / curve_mean(spec.rate_curve))
    return b - a


def _curve_area(points: list[list[float]], t_s: float) -> float:
    """∫ of the piecewise-linear curve from its first point to t_s (negative before it);
    flat beyond its ends, as `np.interp` extends it."""
    times = [float(p[0]) for p in points]
    rates = [float(p[1]) for p in points]
    if t_s <= times[0]:
        return (t_s - times[0]) * rates[0]
    area = 0.0
    for (t0, r0), (t1, r1) in pairwise(zip(times, rates, strict=True)):
        if t_s <= t0:
            return area
        if t_s < t1:  # inside this segment (t1 > t0 here: a repeated time has no inside)
            r_t = r0 + (r1 - r0) * (t_s - t0) / (t1 - t0)
            return area + (t_s - t0) * (r0 + r_t) / 2.0
        area += (t1 - t0) * (r0 + r1) / 2.0
    return area + (t_s - times[-1]) * rates[-1]


def nhpp_arrival_times(spec: PoissonArrivals, horizon_s: float,
                       rng: np.random.Generator) -> np.ndarray:
    """Sorted arrival times in [0, horizon_s) of the Poisson process with rate λ(t)."""
    bound = max_rate_per_s(spec, horizon_s)
    if bound <= 0.0:
        return np.zeros(0)
    n = rng.poisson(bound * horizon_s)
    candidates = np.sort(rng.uniform(0.0, horizon_s, n))
    keep = rng.uniform(0.0, bound, n) < rate_per_s(spec, candidates)
    return candidates[keep]
