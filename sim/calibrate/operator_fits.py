"""Fits and error estimates for the derived operator tables (`sim.steptime.operators`).

Measured operator latencies span four decades (a few microseconds to hundreds of
milliseconds), so every fit here works in *relative* error: a 10 µs decode call matters as
much as a 100 ms prefill. Latency cannot fall as work grows, so attention coefficients are
fitted non-negative. Tables are checked by leave-one-out: drop an interior knot, interpolate
it from its neighbours in log-log space (where GEMM, MoE and collective curves are close to
straight) and compare with what was measured.

Pure numpy: the parquet reading lives in `calibration.sources.aic`.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


def nnls(a: FloatArray, b: FloatArray) -> FloatArray:
    """min ‖a·x − b‖ subject to x ≥ 0, exactly, for the few columns a latency form has.

    The optimum is the unconstrained least-squares solution on its own support, so trying
    every support (2^columns − 1 of them) and keeping the best feasible one is exact; with
    three columns that is seven small solves, and it needs no optimiser.
    """
    columns = a.shape[1]
    best = np.zeros(columns)
    best_residual = float(np.sum(b * b))
    for size in range(1, columns + 1):
        for support in combinations(range(columns), size):
            cols = list(support)
            x_s, *_ = np.linalg.lstsq(a[:, cols], b, rcond=None)
            if np.any(x_s < 0):
                continue
            residual = float(np.sum((a[:, cols] @ x_s - b) ** 2))
            if residual < best_residual:
                best_residual = residual
                best = np.zeros(columns)
                best[cols] = x_s
    return best


def fit_relative(features: FloatArray, latency_ms: FloatArray) -> FloatArray:
    """Non-negative coefficients c minimising Σ ((features·c − y) / y)².

    Rows are weighted by 1/latency (relative error); columns are scaled to unit size first
    so that a per-pair coefficient of 1e-9 ms and a fixed cost of 1e-2 ms are solved alike.
    """
    weighted = features / latency_ms[:, None]
    scale = np.max(np.abs(weighted), axis=0)
    scale[scale == 0] = 1.0
    coefficients = nnls(weighted / scale, np.ones(len(latency_ms)))
    result: FloatArray = coefficients / scale
    return result


def relative_errors_pct(predicted: FloatArray, measured: FloatArray) -> FloatArray:
    """|predicted − measured| / measured, in percent."""
    errors: FloatArray = np.abs(predicted - measured) / measured * 100.0
    return errors


def causal_pairs(isl_tokens: FloatArray, window_tokens: int) -> FloatArray:
    """Query-key pairs of one causal prompt of `isl_tokens`: Σ_{i=1..isl} min(i, window).

    Full attention (window 0) gives isl·(isl+1)/2; a sliding window caps each query's keys.
    """
    isl = np.asarray(isl_tokens, dtype=np.float64)
    full: FloatArray = isl * (isl + 1) / 2
    if window_tokens <= 0:
        return full
    w = float(window_tokens)
    capped: FloatArray = np.where(isl <= w, full, w * (w + 1) / 2 + (isl - w) * w)
    return capped


def cached_tokens(context_tokens: FloatArray, window_tokens: int) -> FloatArray:
    """KV tokens one decode query reads: its context, capped at the window if it has one."""
    context = np.asarray(context_tokens, dtype=np.float64)
    if window_tokens <= 0:
        return context
    capped: FloatArray = np.minimum(context, float(window_tokens))
    return capped


def _loo_along_first_axis(x: FloatArray, values: FloatArray) -> FloatArray:
    """Errors (%) of predicting each interior knot along axis 0 from its two neighbours."""
    if len(x) < 3:
        return np.empty(0)
    lx = np.log(x)
    fraction = ((lx[1:-1] - lx[:-2]) / (lx[2:] - lx[:-2])).reshape((-1,) + (1,) * (values.ndim - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        ly = np.log(values)
    predicted = np.exp(ly[:-2] + fraction * (ly[2:] - ly[:-2]))
    measured = values[1:-1]
    usable = np.isfinite(predicted) & np.isfinite(measured) & (measured > 0)
    return relative_errors_pct(predicted[usable], measured[usable])


def loo_curve_errors_pct(x: FloatArray, y: FloatArray) -> FloatArray:
    """Leave-one-out errors (%) of the interior knots of one curve y(x), x increasing."""
    return _loo_along_first_axis(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))


def loo_grid_errors_pct(axes: list[FloatArray], values: FloatArray) -> FloatArray:
    """Leave-one-out errors (%) along every axis of a grid; NaN marks points not measured.

    Each interior knot is predicted from its two neighbours along one axis at a time, the
    others held fixed; knots whose neighbours were not measured are skipped.
    """
    grid = np.asarray(values, dtype=np.float64)
    errors = [_loo_along_first_axis(np.asarray(axis, dtype=np.float64), np.moveaxis(grid, i, 0))
              for i, axis in enumerate(axes)]
    return np.concatenate(errors) if errors else np.empty(0)


def padded_minimum(values: FloatArray, axis: int = 0) -> FloatArray:
    """Latency that never falls as the size grows: each point becomes the minimum over itself
    and every larger size along `axis`; points not measured (NaN) stay NaN.

    An operator call of m tokens (or bytes) can always run as the call of a larger measured
    size with padding, so the larger size's time is an achievable time for the smaller one.
    Measured tables break this at the few-percent level (timing noise) and sometimes by more
    (a kernel choice that is slower at m = 1 than at m = 4); interpolating such dips would
    make a larger batch look cheaper than a smaller one.
    """
    grid = np.moveaxis(np.asarray(values, dtype=np.float64), axis, 0)
    running = np.fmin.accumulate(grid[::-1], axis=0)[::-1]
    result: FloatArray = np.moveaxis(np.where(np.isnan(grid), np.nan, running), 0, axis)
    return result


def nearest_log_subset(values: list[int], targets: list[int]) -> list[int]:
    """For each target, the measured value nearest to it on a log scale; sorted, unique."""
    measured = np.log(np.asarray(values, dtype=np.float64))
    picked = {values[int(np.argmin(np.abs(measured - np.log(t))))] for t in targets}
    return sorted(picked)


def summary_pct(errors: FloatArray) -> dict[str, float | int]:
    """Median and 90th percentile of |error| % (what `fit_error` records), and the count."""
    if len(errors) == 0:
        return {"median_pct": 0.0, "p90_pct": 0.0, "points": 0}
    return {"median_pct": float(np.median(errors)), "p90_pct": float(np.percentile(errors, 90)),
            "points": int(len(errors))}
