"""Arrival models fitted to a trace's arrival times, and the two checks that pick one.

1. **Does the rate move?** Count requests in windows of `window_s` (60 s by default). If the
   arrivals were one stationary process with burstiness c (the CV of its gaps; 1 for
   Poisson), the variance/mean of those counts would be about c², give or take
   √(2/(k − 1)) for k windows. More than three of those above c² means the rate itself
   changes: the model is a piecewise-constant `rate_curve`, one step per window, with
   Poisson arrivals within a step.
2. **Otherwise, how bursty?** Poisson when c is within 0.1 of 1, gamma gaps with CV c
   when not.

c is measured after taking out slow changes of rate: each gap is multiplied by the request
rate of its window, so a busy hour does not pass for burstiness. Quantised timestamps (most
gaps exactly 0: Mooncake logs arrivals in 3-second ticks) have no usable gaps; there c² is
the variance/mean of the requests per tick, which it equals for a renewal process. A fit is
checked by generating arrivals from it over the trace's duration with the simulator's own
generators and measuring them as the trace was measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.errors import InputError
from sim.scenario.workload import GammaArrivals, PoissonArrivals, WorkloadSpec
from sim.workload.arrivals import arrival_times
from sim.workload.bins import BinCounts
from sim.workload.rate import curve_mean, is_time_varying, nhpp_arrival_times
from sim.workload.yamlnumbers import bare, sig

ARRIVAL_MODELS = ("poisson", "gamma", "rate_curve")
POISSON_CV_TOLERANCE = 0.1
MIN_WINDOWS = 5  # fewer complete windows than this: too few to judge stationarity
QUANTISED_ZERO_GAPS = 0.5  # more gaps than this exactly 0: timestamps come in ticks
MIN_CV = 0.01  # clockwork arrivals (c = 0) get a gamma this regular: the spec needs cv > 0
# A rate curve of this many steps is already a 6 MB workload block (two points a step); more
# windows than this would fit noise, and make a scenario too big to read back quickly.
MAX_WINDOWS = 100_000


@dataclass(frozen=True)
class ArrivalCheck:
    """How a set of arrival times looks: what a fit should reproduce."""

    rate_per_s: float
    burstiness_cv: float | None  # None: fewer than two gaps
    dispersion: float | None  # variance/mean of requests per complete window
    peak_per_window: int
    low_per_window: int | None  # fewest requests in a complete window


@dataclass(frozen=True)
class ArrivalFit:
    model: str
    spec: dict
    check: ArrivalCheck  # of arrivals generated from spec


@dataclass(frozen=True)
class ArrivalDiagnosis:
    trace: ArrivalCheck
    duration_s: float
    window_s: float
    windows: int
    dispersion_limit: float | None  # above it the rate moves (None: too few windows)
    tick_s: float | None  # the tick of quantised timestamps

    @property
    def stationary(self) -> bool:
        if self.dispersion_limit is None:
            return True
        # A limit needs MIN_WINDOWS complete windows, and the first holds the request at t = 0:
        # the trace's dispersion was measured.
        assert self.trace.dispersion is not None
        return self.trace.dispersion <= self.dispersion_limit


def fit_arrivals(arrival_s: np.ndarray, window_s: float, source: str, seed: int = 0,
                 window_key: str = "--window-s"
                 ) -> tuple[ArrivalDiagnosis, list[ArrivalFit], ArrivalFit]:
    """The diagnosis, every candidate (ARRIVAL_MODELS order) and the chosen one; `InputError`
    naming `window_key` when the trace spans more than MAX_WINDOWS windows."""
    t = arrival_s - arrival_s[0]
    duration_s = float(t[-1])
    if duration_s <= 0:
        raise InputError(source, f"{len(t)} requests at one instant",
                         "a trace whose arrivals span some time, to fit a rate to")
    if duration_s / window_s > MAX_WINDOWS:
        at_least_s = sig(duration_s / MAX_WINDOWS * 1.01, 3)  # rounded, still enough
        raise InputError(window_key, window_s, f"a window of at least {at_least_s:g} s for "
                         f"this trace of {duration_s:g} s (at most {MAX_WINDOWS:,} windows: "
                         "the rate curve has a step per window)")
    trace_check = check(t, window_s, duration_s)
    # Two requests have one gap and no spread to measure: take them as Poisson.
    c = 1.0 if trace_check.burstiness_cv is None else trace_check.burstiness_cv
    windows = int(duration_s // window_s)
    limit = None
    if windows >= MIN_WINDOWS:
        limit = c**2 * (1 + 3 * np.sqrt(2 / (windows - 1)))
    diagnosis = ArrivalDiagnosis(trace_check, duration_s, window_s, windows, limit, _tick_s(t))
    rate = sig((len(t) - 1) / duration_s)
    specs = [
        {"process": "poisson", "rate_per_s": rate},
        {"process": "gamma", "rate_per_s": rate, "cv": sig(max(c, MIN_CV), 3)},
        _rate_curve(t, window_s, duration_s),
    ]
    fits = [ArrivalFit(model, spec, _check_model(spec, window_s, duration_s, seed))
            for model, spec in zip(ARRIVAL_MODELS, specs, strict=True)]
    if not diagnosis.stationary:
        chosen = fits[2]
    elif abs(c - 1) <= POISSON_CV_TOLERANCE:
        chosen = fits[0]
    else:
        chosen = fits[1]
    return diagnosis, fits, chosen


def check(t: np.ndarray, window_s: float, duration_s: float) -> ArrivalCheck:
    """Arrival times t (from 0) over [0, duration_s], measured."""
    windows = int(duration_s // window_s)
    counts = BinCounts(t, window_s, minlength=max(windows, 1))
    dispersion = None
    if windows >= 2 and counts.mean(windows) > 0:
        dispersion = counts.dispersion(windows, ddof=1)
    return ArrivalCheck(
        rate_per_s=max(len(t) - 1, 0) / duration_s,
        burstiness_cv=_burstiness_cv(t, window_s, duration_s),
        dispersion=dispersion,
        peak_per_window=counts.max(),
        low_per_window=counts.min(windows) if windows else None,
    )


def _burstiness_cv(t: np.ndarray, window_s: float, duration_s: float) -> float | None:
    if len(t) < 3:
        return None
    tick_s = _tick_s(t)
    if tick_s is not None:
        return float(np.sqrt(BinCounts(t, tick_s, nearest=True).dispersion()))
    # Each request's window and that window's rate, from the non-empty windows alone.
    occupied, window, count = np.unique(np.floor(t / window_s).astype(np.int64),
                                        return_inverse=True, return_counts=True)
    lengths = np.minimum(window_s, duration_s - occupied * window_s)
    rate = count / np.maximum(lengths, np.finfo(float).tiny)
    scaled = np.diff(t) * rate[window[:-1]]  # gaps in units of their window's mean gap
    return float(scaled.std() / scaled.mean())


def _tick_s(t: np.ndarray) -> float | None:
    gaps = np.diff(t)
    positive = gaps[gaps > 0]
    if positive.size == 0 or np.mean(gaps == 0) <= QUANTISED_ZERO_GAPS:
        return None
    return float(np.median(positive))


def _rate_curve(t: np.ndarray, window_s: float, duration_s: float) -> dict:
    """Requests per second in each window, as steps; a last partial window shorter than
    half a window joins the one before it."""
    edges = np.arange(0.0, duration_s, window_s)
    if len(edges) > 1 and duration_s - edges[-1] < window_s / 2:
        edges = edges[:-1]
    edges = np.append(edges, duration_s)
    counts, _ = np.histogram(t, edges)
    rates = counts / np.diff(edges)
    curve = []
    for a, b, r in zip(edges[:-1], edges[1:], rates, strict=True):
        rate = sig(r)
        curve += [[bare(round(a, 3)), rate], [bare(round(b, 3)), rate]]
    return {"process": "poisson", "rate_per_s": sig(curve_mean(curve)), "rate_curve": curve}


def _check_model(spec: dict, window_s: float, duration_s: float, seed: int) -> ArrivalCheck:
    fixed = {"dist": "fixed", "value": 1}
    parsed = WorkloadSpec.model_validate(
        {"arrival": spec, "prompt_tokens": fixed, "output_tokens": fixed}).arrival
    assert isinstance(parsed, PoissonArrivals | GammaArrivals)  # the open process given above
    rng = np.random.default_rng(seed)
    if is_time_varying(parsed):
        t = nhpp_arrival_times(parsed, duration_s, rng)
    else:
        t = arrival_times(parsed, duration_s, rng)
    return check(t, window_s, duration_s)

