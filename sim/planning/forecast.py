"""The demand forecast: periods with peak (and average) rates, per-draw rates for the Monte
Carlo, and the within-day shape.

A period's `uncertainty` is a multiplier on its rates; draw d of every period uses the same
uniform number u_d (a Latin hypercube over the draws), so a period whose distribution lies
above another's gets higher rates in every draw — the common random numbers that let the
search carry what it learned at one load to a higher one. The fan in the plan's figure is
the multiplier's P5–P95 from its quantile function, not from the draws.

Within a day the shape uses the arrival keys of the same names (`sim.workload.rate`):
`profile: diurnal` has rate ∝ 1 + a·cos(2π(h − peak_hour)/24) with a = (p − 1)/(p + 1) for
peak_to_trough p, so its average is (p + 1)/(2p) of its peak; a `rate_curve` is linear
between its points, and its average over its span ÷ its highest point is the ratio.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.errors import InputError
from sim.scenario.planning import Period, PlanSpec, Shape, Spike
from sim.scenario.workload import PoissonArrivals
from sim.workload import rate

BAND_QUANTILES = (0.05, 0.5, 0.95)
DAY_POINTS = 1440  # one a minute over a day (or over a rate curve's span)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Demand:
    """One period: nominal rates, the rates each draw runs at, and the band of the peak."""

    name: str
    peak_rate_per_s: float
    average_rate_per_s: float | None
    peak_draws: tuple[float, ...]
    average_draws: tuple[float, ...] | None
    peak_band: tuple[float, float, float]  # P5, P50, P95 of the peak rate


def periods(spec: PlanSpec) -> list[Period]:
    """The periods as listed, or generated month by month from `growth`."""
    if spec.periods is not None:
        return list(spec.periods)
    g = spec.growth
    assert g is not None  # PlanSpec._one_forecast: growth whenever periods is absent
    out = []
    for k in range(g.months):
        factor = (1.0 + g.growth_per_month) ** k
        average = g.start.average_rate_per_s
        out.append(g.start.model_copy(update={
            "name": _month_name(g.start.name, k),
            "peak_rate_per_s": g.start.peak_rate_per_s * factor,
            "average_rate_per_s": None if average is None else average * factor}))
    return out


def _month_name(start: str, k: int) -> str:
    """'2027-11' + 2 → '2028-01'; any other name gets '+k'."""
    match = _MONTH.match(start)
    if match is None:
        return start if k == 0 else f"{start}+{k}"
    months = int(match.group(1)) * 12 + int(match.group(2)) - 1 + k
    return f"{months // 12:04d}-{months % 12 + 1:02d}"


def as_arrival(shape: Shape, mean_rate_per_s: float, start_hour: float = 0.0,
               rate_curve: list[list[float]] | None = None) -> PoissonArrivals:
    """The shape as the traces' time-varying Poisson arrival keys."""
    if shape.profile == "diurnal":
        return PoissonArrivals(process="poisson", rate_per_s=mean_rate_per_s,
                               profile="diurnal", peak_to_trough=shape.peak_to_trough,
                               peak_hour=shape.peak_hour, start_hour=start_hour % 24.0)
    return PoissonArrivals(process="poisson", rate_per_s=mean_rate_per_s,
                           rate_curve=rate_curve or shape.rate_curve)


def average_to_peak(shape: Shape) -> float:
    """The within-day average rate as a fraction of the peak."""
    if shape.profile == "diurnal":
        p = shape.peak_to_trough
        assert p is not None  # Shape._one_shape: profile diurnal requires it
        return (p + 1.0) / (2.0 * p)
    assert shape.rate_curve is not None  # Shape._one_shape: a rate curve when no profile
    return rate.curve_mean(shape.rate_curve) / max(r for _, r in shape.rate_curve)


def day_fractions(shape: Shape | None) -> np.ndarray:
    """Rate ÷ peak rate at DAY_POINTS evenly spaced moments of one cycle (all 1 without a
    shape: demand held at the peak all the time)."""
    if shape is None:
        return np.ones(DAY_POINTS)
    if shape.profile == "diurnal":
        t = np.arange(DAY_POINTS) * rate.DAY_S / DAY_POINTS
    else:
        assert shape.rate_curve is not None  # Shape._one_shape: a rate curve when no profile
        times = [p[0] for p in shape.rate_curve]
        t = times[0] + (np.arange(DAY_POINTS) + 0.5) * (times[-1] - times[0]) / DAY_POINTS
    # At a mean rate of 1 the peak is 1 ÷ (average ÷ peak).
    return rate.rate_per_s(as_arrival(shape, 1.0), t) * average_to_peak(shape)


@dataclass(frozen=True)
class Shaping:
    """How a period's peak becomes a run's arrivals. Without a shape or spikes: a stationary
    process at the peak rate. With a shape: the traces' time-varying Poisson process, placed
    so the shape's peak falls in the middle of the metrics window, and scaled so the peak is
    the period's peak rate (a diurnal day changes little over a run, a steep rate curve
    more). Spikes multiply on top, at times measured from the start of the run."""

    shape: Shape | None
    spikes: tuple[Spike, ...]
    warmup_s: float
    duration_s: float

    @property
    def stationary(self) -> bool:
        return self.shape is None and not self.spikes

    def arrival(self, peak_rate_per_s: float) -> dict[str, Any]:
        """The workload.arrival mapping of a run at this peak rate."""
        middle_s = (self.warmup_s + self.duration_s) / 2.0
        if self.shape is None:
            arrival = {"process": "poisson", "rate_per_s": peak_rate_per_s}
        elif self.shape.profile == "diurnal":
            assert self.shape.peak_hour is not None  # Shape._one_shape: diurnal requires it
            mean = peak_rate_per_s * average_to_peak(self.shape)
            spec = as_arrival(self.shape, mean, self.shape.peak_hour - middle_s / 3600.0)
            arrival = spec.model_dump(exclude_none=True, exclude={"spikes"})
        else:
            assert self.shape.rate_curve is not None  # Shape._one_shape: no profile, a curve
            window = _curve_window(self.shape.rate_curve, middle_s, self.duration_s)
            top = max(r for _, r in self.shape.rate_curve)
            mean = peak_rate_per_s * rate.curve_mean(window) / top
            arrival = as_arrival(self.shape, mean, rate_curve=window).model_dump(
                exclude_none=True, exclude={"spikes"})
        if self.spikes:
            arrival["spikes"] = [{"at_s": self.warmup_s if s.at_s is None else s.at_s,
                                  "duration_s": s.duration_s, "multiplier": s.multiplier}
                                 for s in self.spikes]
        return arrival


def _curve_window(points: list[list[float]], middle_s: float,
                  duration_s: float) -> list[list[float]]:
    """The stretch of a rate curve that a run of duration_s sees when the curve's highest
    point falls at middle_s of the run, as points from t = 0 (flat beyond the curve's ends)."""
    times = np.array([p[0] for p in points])
    rates = np.array([p[1] for p in points])
    lo = float(times[int(np.argmax(rates))]) - middle_s
    hi = lo + duration_s
    inner = [[float(t) - lo, float(r)] for t, r in points if lo < t < hi]
    return [[0.0, float(np.interp(lo, times, rates))], *inner,
            [duration_s, float(np.interp(hi, times, rates))]]


def demands(spec: PlanSpec, u: np.ndarray) -> list[Demand]:
    """Every period's demand, with draw d using uniform u[d] for its multiplier."""
    ratio = None if spec.shape is None else average_to_peak(spec.shape)
    out = []
    for index, period in enumerate(periods(spec)):
        if period.uncertainty is None:
            multipliers = np.ones(len(u))
            band = (1.0, 1.0, 1.0)
        else:
            multipliers = period.uncertainty.ppf(u)
            p5, p50, p95 = period.uncertainty.ppf(np.array(BAND_QUANTILES))
            band = (float(p5), float(p50), float(p95))
            if not np.all(multipliers > 0):
                where = ("plan.growth.start.uncertainty" if spec.periods is None
                         else f"plan.periods[{index}].uncertainty")
                raise InputError(where, period.uncertainty.model_dump(), "a distribution "
                                 "of positive multipliers of the rate (one draw was ≤ 0)")
        peak = period.peak_rate_per_s
        average = period.average_rate_per_s
        if average is None and ratio is not None:
            average = peak * ratio
        out.append(Demand(
            name=period.name, peak_rate_per_s=peak, average_rate_per_s=average,
            peak_draws=tuple(float(peak * m) for m in multipliers),
            average_draws=None if average is None else tuple(float(average * m)
                                                             for m in multipliers),
            peak_band=(peak * band[0], peak * band[1], peak * band[2])))
    return out
