"""Trace statistics: what to know about a trace before replaying it or fitting a model to it.

The definitions are those of the public traces' README, so the numbers can be checked
against it: duration = last − first arrival; mean rate = (n − 1) / duration; CV = standard
deviation / mean of the inter-arrival gaps (1 for Poisson); IoD(1 s) = variance / mean of the
request counts in 1-second bins counted from the first request (1 for Poisson); the
per-minute minimum is over complete minutes only (a trailing partial minute would look like
a lull); peaks are the most requests in one bin of a second, a minute or an hour (the hour
only when the trace lasts one). Percentiles interpolate linearly; the prompt-output
correlation is given as Pearson's (on token counts) and Spearman's (on ranks, ties averaged).
Counts per bin take memory in proportion to the requests, not the span (`BinCounts`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from sim.scenario.traces import Trace
from sim.workload.bins import BinCounts

PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class LengthStats:
    mean: float
    p50: float
    p90: float
    p99: float
    max: int
    min: int


@dataclass(frozen=True)
class TraceStats:
    requests: int
    duration_s: float
    rate_per_s: float | None
    peak_per_s: int
    peak_per_minute: int
    min_per_minute: int | None  # None: not one complete minute
    peak_per_hour: int | None  # None: shorter than an hour
    interarrival_cv: float | None
    zero_gap_fraction: float | None  # share of gaps of exactly 0: quantised timestamps
    dispersion_1s: float
    prompt: LengthStats
    output: LengthStats
    correlation_pearson: float | None
    correlation_spearman: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def trace_stats(trace: Trace) -> TraceStats:
    t = trace.arrival_s - trace.arrival_s[0]
    n = len(t)
    duration_s = float(t[-1])
    gaps = np.diff(t)
    per_s = BinCounts(t, 1.0)
    per_minute = BinCounts(t, 60.0)
    complete_minutes = int(duration_s // 60.0)
    per_hour = BinCounts(t, 3600.0)
    return TraceStats(
        requests=n,
        duration_s=duration_s,
        rate_per_s=(n - 1) / duration_s if duration_s > 0 else None,
        peak_per_s=int(per_s.max()),
        peak_per_minute=int(per_minute.max()),
        min_per_minute=per_minute.min(complete_minutes) if complete_minutes else None,
        peak_per_hour=int(per_hour.max()) if duration_s >= 3600.0 else None,
        interarrival_cv=float(gaps.std() / gaps.mean()) if n > 1 and gaps.mean() > 0 else None,
        zero_gap_fraction=float(np.mean(gaps == 0)) if n > 1 else None,
        dispersion_1s=per_s.dispersion(),
        prompt=length_stats(trace.prompt_tokens),
        output=length_stats(trace.output_tokens),
        correlation_pearson=_correlation(trace.prompt_tokens, trace.output_tokens),
        correlation_spearman=_correlation(ranks(trace.prompt_tokens),
                                          ranks(trace.output_tokens)),
    )


def length_stats(tokens: np.ndarray) -> LengthStats:
    p50, p90, p99 = np.percentile(tokens, PERCENTILES)
    return LengthStats(float(tokens.mean()), float(p50), float(p90), float(p99),
                       int(tokens.max()), int(tokens.min()))


def ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    return (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]


def _correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])
