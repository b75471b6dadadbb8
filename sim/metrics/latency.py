"""Metrics: pure functions from per-request columns and replica counters to numbers.

Latency statistics use the requests that arrived inside the metrics window
[warmup_s, duration_s); throughput counts the requests that *finished* inside it, so a run
that falls behind shows its real delivered rate, not its arrival rate.

Inter-token latency (ITL) is the exception: its statistics are over every gap between two
consecutive tokens of a request that *ended* inside the window (the token closing it was
produced there), whichever request it belonged to, as the window counts tokens. The engine
bins the gaps (`sim.engine.gaps`), so its quantiles are within a bin's width (0.77%) of the
exact ones. In the SLO, a request meets an ITL target when its *longest* gap does: the
user-facing reading of "p99 ITL ≤ x" per request, the stall a chunked prefill or a
recompute gave it, which a mean (TPOT) hides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class Stats:
    """Mean and percentiles of one latency column, in seconds (None where nothing finished)."""

    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None


def stats(values: np.ndarray) -> Stats:
    """mean, p50, p90, p99 of the finite values: requests that never got that far are left
    out here and counted as unfinished elsewhere."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return Stats(None, None, None, None)
    p50, p90, p99 = (float(q) for q in np.percentile(finite, PERCENTILES))
    return Stats(float(finite.mean()), p50, p90, p99)


@dataclass(frozen=True)
class Latencies:
    """Per-request latencies in seconds; NaN where the request never got that far."""

    ttft_s: np.ndarray
    tpot_s: np.ndarray  # NaN for one-token outputs, which have no inter-token time
    e2e_s: np.ndarray
    queue_s: np.ndarray
    # The longest gap between two consecutive tokens (NaN for one-token outputs); None
    # where the caller has not got it (an ITL target cannot be judged then).
    worst_gap_s: np.ndarray | None = None


def latencies(arrival_s: np.ndarray, admit_s: np.ndarray, first_token_s: np.ndarray,
              finish_s: np.ndarray, output_tokens: np.ndarray) -> Latencies:
    ttft = first_token_s - arrival_s
    e2e = finish_s - arrival_s
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(output_tokens > 1, (e2e - ttft) / (output_tokens - 1), np.nan)
    return Latencies(ttft, tpot, e2e, admit_s - arrival_s)


def worst_gaps(max_gap_s: np.ndarray, output_tokens: np.ndarray) -> np.ndarray:
    """Each request's longest inter-token gap (`Latencies.worst_gap_s`) from the engine's
    `EngineResult.max_gap_s`: NaN for one-token outputs, which have none."""
    return np.where(output_tokens > 1, max_gap_s, np.nan)


def subset(lat: Latencies, mask: np.ndarray) -> Latencies:
    """The latencies of the requests `mask` selects (e.g. those inside the metrics window)."""
    worst = None if lat.worst_gap_s is None else lat.worst_gap_s[mask]
    return Latencies(lat.ttft_s[mask], lat.tpot_s[mask], lat.e2e_s[mask], lat.queue_s[mask],
                     worst)


def slo_attainment(lat: Latencies, ttft_s: float, tpot_s: float,
                   itl_s: float | None = None) -> np.ndarray:
    """Per request: met every target (unfinished requests never do); with `itl_s`, its
    longest inter-token gap too."""
    ttft_ok = lat.ttft_s <= ttft_s
    tpot_ok = np.isnan(lat.tpot_s) | (lat.tpot_s <= tpot_s)
    within = ttft_ok & tpot_ok & np.isfinite(lat.e2e_s)
    if itl_s is None:
        return within
    if lat.worst_gap_s is None:
        raise ValueError("an ITL target needs each request's longest gap (worst_gap_s: the "
                         "engine keeps it with EngineConfig.track_longest_gaps)")
    return within & (np.isnan(lat.worst_gap_s) | (lat.worst_gap_s <= itl_s))


def slo_met(lat: Latencies, ttft_s: float, tpot_s: float, percentile: float,
            itl_s: float | None = None) -> bool | None:
    """The joint SLO: at least `percentile` % of the requests met every target (unfinished
    requests never do). None when no request was measured: there is nothing to judge.

    Judging TTFT and TPOT percentiles one by one (`marginal_met`) passes a run in which 1%
    of requests miss TTFT and another 1% miss TPOT, so only 98% of users were served within
    the SLO; the joint rule counts each user once."""
    n = lat.ttft_s.size
    if n == 0:
        return None
    within = int(slo_attainment(lat, ttft_s, tpot_s, itl_s).sum())
    return within >= math.ceil(percentile / 100.0 * n - 1e-9)  # 1e-9: 99% of 100 is 99


def marginal_met(lat: Latencies, ttft_s: float, tpot_s: float,
                 percentile: float) -> tuple[bool, bool] | tuple[None, None]:
    """The percentile of TTFT, and of TPOT, each within its own target, unfinished requests
    counting as ∞ (None, None when no request was measured)."""
    if lat.ttft_s.size == 0:
        return None, None
    unfinished = ~np.isfinite(lat.e2e_s)
    ttft = np.where(unfinished, np.inf, lat.ttft_s)
    tpot = np.where(unfinished, np.inf, lat.tpot_s)
    tpot = tpot[~np.isnan(tpot)]
    ttft_p = np.percentile(ttft, percentile, method="higher")
    tpot_p = np.percentile(tpot, percentile, method="higher") if tpot.size else 0.0
    return bool(ttft_p <= ttft_s), bool(tpot_p <= tpot_s)


def gap_stats(weights: np.ndarray, seconds: np.ndarray) -> Stats:
    """mean, p50, p90, p99 of binned inter-token gaps (`weights`: gaps per bin, `seconds`:
    their sum, as `GapCounts.since` gives them); None where there was no gap."""
    total = float(weights.sum())
    if total <= 0.0:
        return Stats(None, None, None, None)
    p50, p90, p99 = (gap_percentile(weights, seconds, q) for q in PERCENTILES)
    return Stats(float(seconds.sum()) / total, p50, p90, p99)


def gap_percentile(weights: np.ndarray, seconds: np.ndarray, percentile: float) -> float | None:
    """The gap at or below which `percentile` % of the gaps lie (the inverse of their
    distribution function), as the mean gap of the bin holding it: within a bin's width of
    the exact value, and exact when that bin holds gaps of one length. None: no gaps."""
    held = np.flatnonzero(weights > 0.0)
    if held.size == 0:
        return None
    cumulative = np.cumsum(weights[held])
    i = int(np.searchsorted(cumulative, percentile / 100.0 * cumulative[-1]))
    b = held[min(i, held.size - 1)]
    return float(seconds[b] / weights[b])


def step_mean(time_s: np.ndarray, values: np.ndarray, start_s: float, end_s: float) -> float:
    """Time-average over [start_s, end_s) of a step function: values[i] from time_s[i] until
    time_s[i + 1] (the last one holds to the end). Exact for a constant function."""
    if np.all(values == values[0]):
        return float(values[0])
    edges = np.append(time_s, np.inf)
    overlap = np.clip(np.minimum(edges[1:], end_s) - np.maximum(edges[:-1], start_s), 0, None)
    return float(np.dot(overlap, values) / (end_s - start_s))


def per_interval_slo(arrival_s: np.ndarray, lat: Latencies, ttft_s: float, tpot_s: float,
                     percentile: float, start_s: float, end_s: float,
                     interval_s: float = 60.0) -> tuple[np.ndarray, np.ndarray]:
    """Per interval of arrival time from start_s: the share of its requests within both
    targets, and whether its percentile met the SLO (NaN / None for an empty interval)."""
    bins = int(np.ceil((end_s - start_s) / interval_s - 1e-9))
    index = np.floor((arrival_s - start_s) / interval_s).astype(np.int64)
    inside = (arrival_s >= start_s) & (arrival_s < end_s)
    within = slo_attainment(lat, ttft_s, tpot_s)
    attainment = np.full(bins, np.nan)
    met = np.empty(bins, dtype=object)
    for b in range(bins):
        mask = inside & (index == b)
        if mask.any():
            attainment[b] = within[mask].mean()
        met[b] = slo_met(subset(lat, mask), ttft_s, tpot_s, percentile)
    return attainment, met


def max_queue_length(arrival_s: np.ndarray, admit_s: np.ndarray, start_s: float,
                     end_s: float) -> int:
    """The most requests waiting for their first admission at any moment in [start_s, end_s)
    (a request never admitted waits to the end; a departure at the same instant as an
    arrival is counted first)."""
    leave = admit_s[np.isfinite(admit_s)]
    times = np.concatenate([arrival_s, leave])
    steps = np.concatenate([np.ones(len(arrival_s)), -np.ones(len(leave))])
    order = np.lexsort((steps, times))
    times, queue = times[order], np.cumsum(steps[order])
    before = queue[times <= start_s]  # the queue at start_s, after what happened then
    at_start = before[-1] if before.size else 0.0
    during = queue[(times > start_s) & (times < end_s)]
    return int(max(at_start, during.max() if during.size else 0.0))
