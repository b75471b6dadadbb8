"""Inter-token gaps without per-token work: a log-binned histogram of the fleet's gaps, and
each sequence's longest gap.

A user sees a token, then waits for the next: the gaps between consecutive tokens of one
request are its inter-token latency (ITL). A run of k skipped decode steps gives each of its
B sequences k gaps, and they are not equal: step i of the run lasts a + 2h·i (every step
adds B tokens of context), an arithmetic progression. So a run is recorded as one entry
(a, 2h, first step, last step, B), and B gaps of one length (the first step after a
boundary, a step mixed with prefill chunks, the token a recompute produces) as an entry
without slope. Entries are buffered and binned in bulk with numpy: the steps of a run below
a bin edge are a ceiling (the progression is linear in i), so the work is O(bins touched)
per run, never per token.

**Bins.** `BINS_PER_DECADE` = 300 log-spaced bins per decade from `LOW_S` = 1 µs over
`DECADES` = 10 decades (to ~2.8 h; shorter and longer gaps land in the end bins), so
adjacent edges differ by a factor r = 10^(1/300) ≈ 1.0077. A bin keeps the number of its
gaps and their summed seconds, and a quantile is reported as the mean gap of the bin that
holds it: that mean and the true quantile lie in the same bin, so the reported value is
within a factor r (0.77%) of the true one, and exact when the bin holds a single length
(a constant step time). 100 bins per decade would allow 2.3%, too coarse for a p99 compared
with a target; 3,000 bins per row cost 48 KB, and the binning work grows with the bins a
run crosses, which at 300 per decade is one or two for almost every run. The mean of all
gaps is their summed seconds over their number: exact up to float rounding.

**Window.** A gap counts where it *ends* (the token that closes it), as the window counts
tokens (`WindowCounters`): inside [start, end), in the row of the interval between the
window's marks that it ends in (`GapCounts`).

**Longest gap per sequence** (`LongestGaps`, with `EngineConfig.track_longest_gaps`):
every decoding sequence of a replica gets a token at every decode step, so its gaps are
the replica's step gaps (its first one is its own when it joined between two decode
steps). A replica keeps the suffix maxima of its step gaps (a stack of decreasing values by
decode-step number; the last step of a run is its longest, so a run is one entry), and a
sequence leaving at a step boundary reads the maximum over the steps since it joined with
one bisection.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right

import numpy as np

from sim.engine.records import GapCounts, steps_ending_before

BINS_PER_DECADE = 300
LOW_S = 1e-6  # the lower edge of bin 0
DECADES = 10
BINS = BINS_PER_DECADE * DECADES
BIN_OFFSET = -math.log10(LOW_S) * BINS_PER_DECADE  # bin of x: log10(x)·BINS_PER_DECADE + this
FLUSH_ENTRIES = 4096  # runs that cross a bin edge, buffered before they are binned

# (row, base_s, slope_s, i0, i1, weight): steps i0 … i1 of a run, step i lasting
# base_s + slope_s·i, each closing `weight` gaps.
Entry = tuple[int, float, float, int, int, int]


def bin_of(gap_s: float) -> int:
    """The bin of one gap (those outside the bins' range go to the end bins)."""
    if gap_s <= LOW_S:
        return 0
    b = math.floor(math.log10(gap_s) * BINS_PER_DECADE + BIN_OFFSET)
    return b if b < BINS else BINS - 1


def bins_of(gap_s: np.ndarray) -> np.ndarray:
    """`bin_of` of each gap, with the same arithmetic."""
    scaled = np.log10(np.maximum(gap_s, LOW_S)) * BINS_PER_DECADE + BIN_OFFSET
    return np.clip(np.floor(scaled), 0, BINS - 1).astype(np.int64)


# The upper edge of each bin (a list: what the scalar paths index).
UPPER_S = [*(10.0 ** ((b + 1 - BIN_OFFSET) / BINS_PER_DECADE) for b in range(BINS - 1)), math.inf]


def upper_edge_s(bins: np.ndarray) -> np.ndarray:
    return np.asarray(UPPER_S)[bins]


class GapHistogram:
    """The fleet's gap counts, one row per interval of the metrics window between its marks
    (shared by the replicas: each records through its own `GapRecorder`).

    Gaps of one length, and runs whose steps all fall in one bin (nearly all), are added
    where they happen, to a Python list per row (cheapest for scalar updates, and a
    recorder holds the list of the row it is in: no offset to add); runs that cross bin
    edges are buffered and binned in bulk with numpy (`flush`)."""

    def __init__(self, start_s: float, end_s: float, marks_s: tuple[float, ...]) -> None:
        self.edges_s = [start_s, *sorted({m for m in marks_s if start_s < m < end_s}), end_s]
        self.rows = len(self.edges_s) - 1
        self.weights = [[0.0] * BINS for _ in range(self.rows)]
        self.seconds = [[0.0] * BINS for _ in range(self.rows)]
        self.spread_weights = np.zeros(self.rows * BINS)  # what `flush` binned
        self.spread_seconds = np.zeros(self.rows * BINS)
        self.pending: list[Entry] = []

    def flush(self) -> None:
        """Bin the buffered runs: per run, the bins from its shortest step's to its
        longest's, and in each the steps below the bin's upper edge (a ceiling)."""
        if not self.pending:
            return
        row, base, slope, i0, i1, weight = (np.asarray(c) for c in zip(*self.pending,
                                                                       strict=True))
        self.pending.clear()
        i0, i1 = i0.astype(float), i1.astype(float)
        first, last = bins_of(base + slope * i0), bins_of(base + slope * i1)
        spans = last - first + 1
        owner = np.repeat(np.arange(spans.size), spans)
        starts = np.cumsum(spans) - spans
        position = np.arange(owner.size)
        bins = first[owner] + position - starts[owner]
        upper = i1[owner] + 1.0  # steps i0 … upper − 1 are in this bin or below it
        inner = position != (starts + spans - 1)[owner]  # not a run's last bin
        if inner.any():  # only runs with a slope cross an edge
            o = owner[inner]
            below = np.ceil((upper_edge_s(bins[inner]) - base[o]) / slope[o])
            upper[inner] = np.clip(below, i0[o], i1[o] + 1.0)
        lower = np.empty_like(upper)
        lower[1:] = upper[:-1]
        lower[starts] = i0
        n = upper - lower
        seconds = n * base[owner] + 0.5 * slope[owner] * n * (lower + upper - 1.0)
        flat = row[owner] * BINS + bins
        w = weight[owner]
        size = self.rows * BINS
        self.spread_weights += np.bincount(flat, w * n, minlength=size)
        self.spread_seconds += np.bincount(flat, w * seconds, minlength=size)

    def counts(self) -> GapCounts:
        self.flush()
        shape = (self.rows, BINS)
        return GapCounts(np.asarray(self.edges_s[:-1]),
                         np.asarray(self.weights) + self.spread_weights.reshape(shape),
                         np.asarray(self.seconds) + self.spread_seconds.reshape(shape))


class GapRecorder:
    """One replica's way into the fleet's `GapHistogram`. It points at the row its last gap
    ended in (`weights` and `seconds` are that row's lists, [lo_s, hi_s) its interval): a
    replica's work arrives in time order, so that is almost always the row of the next one
    too. The replica books its common cases itself against these attributes
    (`Replica._finish_block`, `Replica._finish_step`: a method call per decode run or mixed
    step is a tenth of the engine's time); the methods here are the general paths."""

    __slots__ = ("histogram", "edges_s", "start_s", "end_s", "row", "weights", "seconds",
                 "lo_s", "hi_s")

    def __init__(self, histogram: GapHistogram) -> None:
        self.histogram = histogram
        self.edges_s = histogram.edges_s
        self.start_s, self.end_s = self.edges_s[0], self.edges_s[-1]  # the window
        self.row = 0
        self.weights, self.seconds = histogram.weights[0], histogram.seconds[0]
        self.lo_s, self.hi_s = self.edges_s[0], self.edges_s[1]

    def gaps(self, end_s: float, gap_s: float, weight: int) -> None:
        """`weight` gaps of gap_s seconds, all ending at end_s."""
        if self.lo_s <= end_s < self.hi_s or self._move(end_s):
            b = math.floor(math.log10(gap_s) * BINS_PER_DECADE + BIN_OFFSET) if gap_s > LOW_S else 0
            if b >= BINS:
                b = BINS - 1
            self.weights[b] += weight
            self.seconds[b] += weight * gap_s

    def step(self, end_s: float, gap_s: float, weight: int, step: int) -> None:
        """`gaps`, closed by decode step number `step` for every sequence of the replica
        that got its previous token at the decode step before."""
        self.gaps(end_s, gap_s, weight)
        self.keep(step, gap_s)

    def run(self, start_s: float, end_s: float, a: float, h: float, first: int, k: int,
            weight: int, step: int) -> None:
        """Steps first … k − 1 of a decode run from start_s to end_s (step i ends
        (i + 1)·a + h·(i + 1)·i after it began and lasts a + 2h·i), each closing `weight`
        gaps (those that end outside the window are left out); run step `first` is decode
        step number `step`."""
        if self.lo_s <= start_s and end_s < self.hi_s:
            first_s = a + 2.0 * h * first
            last_s = a + 2.0 * h * (k - 1)
            b = bin_of(first_s)
            if last_s < UPPER_S[b]:  # all in one bin: nearly every run
                n = k - first
                self.weights[b] += weight * n
                self.seconds[b] += weight * n * 0.5 * (first_s + last_s)
            else:
                self._spread(self.row, a, h, first, k, weight)
        elif start_s < self.end_s and end_s >= self.start_s:  # some steps may end inside
            self._split(start_s, end_s, a, h, first, k, weight)
        self.keep(step, a + 2.0 * h * (k - 1))  # the run's longest step

    def keep(self, step: int, gap_s: float) -> None:
        """Decode steps from number `step` on closed gaps of up to gap_s: this recorder
        keeps no longest gaps (`LongestGaps` does)."""

    def longest_since(self, step: int) -> float:
        """This recorder keeps no longest gaps (`LongestGaps` does)."""
        return 0.0

    def forget_steps(self) -> None:
        """No sequence of the replica will ask about the steps so far."""

    def _spread(self, row: int, a: float, h: float, first: int, k: int, weight: int) -> None:
        """Steps first … k − 1 of a run, all ending in `row`, in bins of their own."""
        b = bin_of(a + 2.0 * h * first)
        if b == bin_of(a + 2.0 * h * (k - 1)):
            n = k - first
            self.histogram.weights[row][b] += weight * n
            self.histogram.seconds[row][b] += weight * n * (a + h * (first + k - 1))
            return
        pending = self.histogram.pending
        pending.append((row, a, 2.0 * h, first, k - 1, weight))
        if len(pending) >= FLUSH_ENTRIES:
            self.histogram.flush()

    def _split(self, start_s: float, end_s: float, a: float, h: float, first: int, k: int,
               weight: int) -> None:
        """A run whose steps may end in more than one row, or outside the window."""
        edges = self.edges_s
        end_first_s = start_s + (first + 1) * a + h * (first + 1) * first
        r0 = max(bisect_right(edges, end_first_s) - 1, 0)
        r1 = min(bisect_right(edges, end_s) - 1, self.histogram.rows - 1)
        lo = max(first, steps_ending_before(start_s, a, h, k, edges[r0]))
        for row in range(r0, r1 + 1):
            hi = steps_ending_before(start_s, a, h, k, edges[row + 1])
            if hi > lo:
                self._spread(row, a, h, lo, hi, weight)
                lo = hi
        self._move(end_s)

    def _move(self, t_s: float) -> bool:
        """Point at the row holding t_s; False (and stay) when t_s is outside the window."""
        if not self.start_s <= t_s < self.end_s:
            return False
        edges = self.edges_s
        row = bisect_right(edges, t_s) - 1
        self.row = row
        self.weights = self.histogram.weights[row]
        self.seconds = self.histogram.seconds[row]
        self.lo_s, self.hi_s = edges[row], edges[row + 1]
        return True


class LongestGaps(GapRecorder):
    """A `GapRecorder` that also keeps the suffix maxima of the replica's step gaps:
    `longest_since(n)` is the longest gap of the decode steps numbered n and later (0.0
    when none). They are a stack whose gaps decrease from the bottom to the top: a new gap
    removes those it outlasts, and the answer is the first entry at or after n; O(1)
    amortised per entry, a bisection per query."""

    __slots__ = ("steps", "longest_s")

    def __init__(self, histogram: GapHistogram) -> None:
        super().__init__(histogram)
        self.steps: list[int] = []  # decode-step numbers …
        self.longest_s: list[float] = []  # … and the longest gap from there on

    def keep(self, step: int, gap_s: float) -> None:
        steps, longest = self.steps, self.longest_s
        while longest and longest[-1] <= gap_s:
            longest.pop()
            steps.pop()
        steps.append(step)
        longest.append(gap_s)

    def longest_since(self, step: int) -> float:
        i = bisect_left(self.steps, step)
        return self.longest_s[i] if i < len(self.longest_s) else 0.0

    def forget_steps(self) -> None:
        self.steps.clear()
        self.longest_s.clear()
