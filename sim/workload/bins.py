"""Requests per time bin, in memory that grows with the requests rather than the time span.

Trace statistics count requests per second, minute, hour, window or tick from the first
request. `np.bincount` over the span allocates one counter per bin: fine for an hour of
seconds, 2.5 GB for ten years of them, and hundreds of GiB where one absurd timestamp
stretches the span. `BinCounts` keeps the dense array while it is small (the statistics
come out exactly as numpy computes them on it) and past `MAX_DENSE_BINS` only the non-empty
bins, from which the same statistics follow in closed form: the empty bins each count 0.
"""

from __future__ import annotations

import math

import numpy as np

MAX_DENSE_BINS = 1 << 24  # 16.8 M counters, 128 MiB: about 6 months of seconds


class BinCounts:
    """How many of the times `t` (seconds from 0, non-negative) fall in each bin
    [k·width_s, (k + 1)·width_s) — or, with `nearest`, in each bin centred on k·width_s —
    for k from 0 to at least `minlength` − 1 and up to the last time's bin."""

    def __init__(self, t: np.ndarray, width_s: float, minlength: int = 0,
                 nearest: bool = False) -> None:
        index = np.rint(t / width_s) if nearest else np.floor(t / width_s)
        last = float(index.max()) if index.size else -1.0
        self.bins = int(max(last + 1, minlength))
        self.dense: np.ndarray | None = None
        self.index: np.ndarray = np.zeros(0)  # the non-empty bins, when not dense
        self.counts: np.ndarray = np.zeros(0, dtype=np.int64)
        if self.bins <= MAX_DENSE_BINS:
            self.dense = np.bincount(index.astype(np.int64), minlength=minlength)
        else:  # bin numbers stay floats: exact up to 2**53, and no int64 overflow beyond
            self.index, self.counts = np.unique(index, return_counts=True)

    def max(self) -> int:
        """The most requests in one bin."""
        if self.dense is not None:
            return int(self.dense.max())
        return int(self.counts.max()) if self.counts.size else 0

    def min(self, upto: int) -> int:
        """The fewest requests in one of the first `upto` bins (≥ 1 of them)."""
        if self.dense is not None:
            return int(self.dense[:upto].min())
        inside = self.counts[self.index < upto]
        return int(inside.min()) if inside.size == upto else 0

    def mean(self, upto: int | None = None) -> float:
        """Requests per bin over the first `upto` bins (default all)."""
        if self.dense is not None:
            return float(self.dense[:upto].mean())
        n = self.bins if upto is None else upto
        return float(self.counts[self.index < n].sum() / n)

    def dispersion(self, upto: int | None = None, ddof: int = 0) -> float:
        """Variance ÷ mean of the counts of the first `upto` bins (default all): the index of
        dispersion, 1 for Poisson arrivals."""
        if self.dense is not None:
            counts = self.dense[:upto]
            return float(counts.var(ddof=ddof) / counts.mean())
        n = self.bins if upto is None else upto
        inside = self.counts[self.index < n].astype(np.float64)
        mean = inside.sum() / n
        # Σ (c − mean)² over every bin: the non-empty ones, and mean² for each empty one.
        squares = float(np.sum((inside - mean) ** 2)) + (n - inside.size) * mean**2
        return float(squares / (n - ddof) / mean)


def coarser_width_s(span_s: float, width_s: float, max_bins: int) -> float:
    """`width_s`, or the smallest 1, 2 or 5 × 10ᵏ multiple of it that covers [0, span_s] in
    at most `max_bins` bins: a figure of a ten-year trace need not count it second by
    second (a dense count, then a line of 3·10⁸ steps, would not fit in memory)."""
    if span_s <= width_s * max_bins:
        return width_s
    needed = span_s / (width_s * max_bins)
    power = 10.0 ** math.floor(math.log10(needed))
    factor = next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= needed)
    return width_s * factor
