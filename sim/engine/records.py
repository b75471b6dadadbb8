"""What the engine hands back: flat per-request columns and per-replica counters."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sim.engine.seams import StepModel


@dataclass(frozen=True)
class EngineConfig:
    """Plain settings the engine needs; built from a scenario by `sim.runner.single`."""

    replicas: int
    policy: str  # chunked-prefill | prefill-first | static
    max_num_seqs: int
    max_batched_tokens: int
    kv_capacity_tokens: int
    kv_block_tokens: int  # paged-KV block: each sequence reserves one as slack
    router: str
    window_start_s: float  # metrics window: counters below only see [start, end)
    window_end_s: float
    stop_s: float | None  # stop here even if requests remain (None: run until all finish)
    exact: bool = False  # simulate every decode step instead of skipping blocks of them
    # Times inside the window at which the counters' totals are taken, so that a later
    # window start can be chosen after the run (a detected warm-up); () for none.
    window_marks_s: tuple[float, ...] = ()
    fleet: FleetSchedule | None = None  # failures, preemption, outages, autoscaling (None: static)
    # Keep each request's longest inter-token gap (`EngineResult.max_gap_s`): what an ITL
    # target judges. It adds ~9% to the engine's time on benchmarks/engine_speed.py's fleet
    # (the histogram of all gaps, always kept, ~15%), so a run without one can skip it.
    track_longest_gaps: bool = True
    # Admission (`sim.engine.scheduler.ADMISSIONS`): prompt | reserve-output | reserve-ratio,
    # the last keeping `reserve_ratio` of the admitted sequences' outputs still to come free.
    admission: str = "prompt"
    reserve_ratio: float = 0.0
    chunked_prefill: bool = True  # False: a prompt is prefilled whole, in one step
    # Without chunked prefill, the most prompt tokens one step takes (the step-time tables
    # reach that far); 0: max_batched_tokens.
    max_prefill_tokens: int = 0
    # Prefix caching (`sim.engine.prefix`): reuse the cached KV of a prompt's shared prefix
    # (`PrefixTree`), in whole blocks of this many tokens (0: no prefix cache).
    prefix_block_tokens: int = 0
    # Host memory for prefixes evicted from the GPU, in KV tokens (0: none), and the seconds
    # copying one token's KV back takes (charged to the step after the admission it serves).
    prefix_host_tokens: int = 0
    prefix_reload_s_per_token: float = 0.0
    # Speculative decoding: the tokens a decoding sequence gains per step on average (each
    # request gains ⌊τ⌋ or ⌈τ⌉, `sim.engine.replica`), and the draft positions each one
    # holds in the KV cache and in a step's token budget beside its own. 1 and 0: off.
    tokens_per_step: float = 1.0
    lookahead_tokens: int = 0


@dataclass(frozen=True)
class DecodePool:
    """Disaggregated serving: the decode pool beside the prefill pool that `simulate`'s own
    config describes. A request is prefilled on a prefill replica (its first token comes
    from there), its KV then crosses the link of that prefill replica (`latency_s`, then
    its bytes at `link_bytes_per_s` shared by the transfers in flight on that link), and
    it decodes on a decode replica."""

    config: EngineConfig  # the decode replicas: count, scheduler, KV capacity, router
    step_model: StepModel
    kv_bytes_per_token: float  # of the KV the link carries (one token, all layers)
    link_bytes_per_s: float  # > 0
    link_latency_s: float  # ≥ 0


# Fleet events, pre-generated: what happens to which replica slot, and when.
FAIL, REPAIR, NOTICE, RECLAIM, RESTORE, OUTAGE_START, OUTAGE_END = range(7)


@dataclass(frozen=True)
class AutoscaleSettings:
    policy: str  # target-utilization | queue
    target: float
    min_replicas: int
    max_replicas: int
    interval_s: float
    scale_in_ticks: int  # ticks in a row wanting fewer replicas before one is drained
    # Sequences one replica holds at the workload's mean context: max_num_seqs, or fewer
    # where the KV cache binds first (computed by the runner, which knows the workload).
    concurrency_per_replica: int
    provisioning_delay_s: Callable[[], float]  # draws one delay (from its own seed stream)
    # Draws whether one request for a replica gets capacity (from its own seed stream); a
    # failed one is asked again retry_s later.
    provisioning_succeeds: Callable[[], bool]
    retry_s: float


@dataclass(frozen=True)
class FleetSchedule:
    """A fleet that changes while it runs. Slots are the replicas that may ever exist; the
    first `initial` serve from the start. Events are sorted by time (ties in slot order)."""

    slots: int
    initial: int
    event_s: np.ndarray  # float, sorted
    event_slot: np.ndarray  # int
    event_kind: np.ndarray  # int: FAIL, REPAIR, ... above
    autoscaling: AutoscaleSettings | None = None


@dataclass(frozen=True)
class FleetTimeline:
    """Replica counts after each change: at time_s[i] and until time_s[i + 1], `working`
    replicas were serving, `due` should have been (provisioned and booted: working, failed,
    reclaimed or in an outage) and `billed` were being paid for (provisioned, booting
    included, except spot replicas between reclaim and replacement)."""

    time_s: np.ndarray
    working: np.ndarray
    due: np.ndarray
    billed: np.ndarray
    failures: int = 0
    spot_preemptions: int = 0
    outages: int = 0
    scale_ups: int = 0
    scale_downs: int = 0
    provisioning_failures: int = 0  # requests for a replica that got no capacity


class WindowCounters:
    """Time integrals and counts over the metrics window [start_s, end_s).

    An interval of engine work [start, end) carries its prefill and decode seconds, its batch
    size and its KV occupancy at both ends (occupancy grows linearly across a decode block);
    the integrals are clipped at the window's edges. Its steps, and the tokens they prefilled
    and generated, count where each step *ends*: a step ending at t is inside when start_s ≤
    t < end_s, and of a decode block that straddles an edge exactly the steps that end inside
    count (the closed form of the block's step times), so skipping and exact mode agree.

    `mark` adds times inside the window at which the running totals are taken as the work
    passes them, so that the totals over [mark, end_s) of any mark are known afterwards
    (`ReplicaCounters.since`): what a warm-up chosen after the run needs. Work arrives in time
    order, so the common case, an interval before the next mark or edge, is a few additions.
    """

    __slots__ = ("start_s", "end_s", "next_s", "marks_s", "taken", "busy_s", "prefill_s",
                 "decode_s", "batch_s", "kv_token_s", "steps", "prefill_tokens",
                 "recomputed_tokens", "generated_tokens", "taken_s")

    def __init__(self, start_s: float, end_s: float) -> None:
        self.start_s, self.end_s = start_s, end_s
        self.next_s = end_s  # the next mark, or the window's end
        self.marks_s: list[float] = []  # marks not yet passed, latest first
        self.taken: list[WindowTotals] = []  # the totals at each mark passed
        self.taken_s: list[float] = []  # and its time
        self.busy_s = self.prefill_s = self.decode_s = 0.0
        self.batch_s = self.kv_token_s = 0.0  # ∫ batch size dt, ∫ KV tokens held dt
        self.steps = self.prefill_tokens = self.recomputed_tokens = self.generated_tokens = 0

    def mark(self, marks_s: tuple[float, ...]) -> None:
        """Take the running totals at each of `marks_s` (those strictly inside the window)."""
        self.marks_s = sorted((m for m in marks_s if self.start_s < m < self.end_s),
                              reverse=True)
        self.next_s = self.marks_s.pop() if self.marks_s else self.end_s

    def add_step(self, start: float, end: float, prefill_s: float, decode_s: float, batch: int,
                 kv: float, generated: int, prefilled: int, recomputed: int) -> None:
        """One step [start, end): `prefilled` prompt tokens (`recomputed` of them again after
        an eviction) and `generated` tokens produced, all at its end."""
        if start >= self.start_s and end < self.next_s:  # the common case
            length = end - start
            self.busy_s += length
            self.prefill_s += prefill_s
            self.decode_s += decode_s
            self.batch_s += batch * length
            self.kv_token_s += kv * length
            self.steps += 1
            self.generated_tokens += generated
            self.prefill_tokens += prefilled
            self.recomputed_tokens += recomputed
            return
        self._spread(start, end, prefill_s, decode_s, batch, kv, kv,
                     _Steps(1, generated, prefilled, recomputed, end - start, 0.0))

    def add_block(self, start: float, end: float, batch: int, a: float, h: float, k: int,
                  kv_start: float, growth: int) -> None:
        """A decode block of k steps of `batch` sequences from `start`, n of which take
        n·a + h·n(n − 1) seconds; each step generates `growth` tokens (`batch`, or more with
        speculative decoding) and grows the KV cache by as many."""
        if start >= self.start_s and end < self.next_s:  # the common case
            length = end - start
            self.busy_s += length
            self.decode_s += length
            self.batch_s += batch * length
            self.kv_token_s += (kv_start + 0.5 * growth * k) * length
            self.steps += k
            self.generated_tokens += growth * k
            return
        self._spread(start, end, 0.0, end - start, batch, kv_start, kv_start + growth * k,
                     _Steps(k, growth * k, 0, 0, a, h))

    def add_lost(self, start: float, end: float, prefill_s: float, decode_s: float, batch: int,
                 kv: float) -> None:
        """Busy time of a step cut short by a failure: it produced nothing."""
        self._spread(start, end, prefill_s, decode_s, batch, kv, kv, _Steps(0, 0, 0, 0, 0.0, 0.0))

    def finish(self) -> None:
        """Take the totals at the marks the work never reached (the replica was idle)."""
        while self.next_s < self.end_s:
            self._take()

    def totals(self) -> WindowTotals:
        return WindowTotals(self.busy_s, self.prefill_s, self.decode_s, self.batch_s,
                            self.kv_token_s, self.steps, self.prefill_tokens,
                            self.recomputed_tokens, self.generated_tokens)

    def _take(self) -> None:
        self.taken.append(self.totals())
        self.taken_s.append(self.next_s)
        self.next_s = self.marks_s.pop() if self.marks_s else self.end_s

    def _spread(self, start: float, end: float, prefill_s: float, decode_s: float, batch: int,
                kv_start: float, kv_end: float, steps: _Steps) -> None:
        """An interval that crosses the window's start, a mark or its end, piece by piece."""
        counted = steps.ended_before(start, end, self.start_s) if start < self.start_s else 0
        t = max(start, self.start_s)  # integrated up to here
        while True:
            edge = self.next_s
            stop = min(end, edge)
            if stop > t:
                f0, f1 = (t - start) / (end - start), (stop - start) / (end - start)
                overlap = stop - t
                self.busy_s += overlap
                self.prefill_s += prefill_s * (f1 - f0)
                self.decode_s += decode_s * (f1 - f0)
                self.batch_s += batch * overlap
                kv_a = kv_start + (kv_end - kv_start) * f0
                kv_b = kv_start + (kv_end - kv_start) * f1
                self.kv_token_s += 0.5 * (kv_a + kv_b) * overlap
                t = stop
            ended = steps.count if end < edge else steps.ended_before(start, end, edge)
            self._count(steps, ended - counted)
            counted = ended
            if end < edge or edge >= self.end_s:
                return
            self._take()

    def _count(self, steps: _Steps, n: int) -> None:
        if n <= 0:
            return
        self.steps += n
        self.generated_tokens += steps.generated * n // steps.count
        self.prefill_tokens += steps.prefilled * n // steps.count
        self.recomputed_tokens += steps.recomputed * n // steps.count


@dataclass(frozen=True)
class _Steps:
    """The steps of an interval of work: `count` of them (0 for lost work), step n ending
    n·a + h·n(n − 1) after the interval began (one step: at its end), with the tokens of
    all of them, spread evenly (a decode block) or all in its one step."""

    count: int
    generated: int
    prefilled: int
    recomputed: int
    a: float
    h: float

    def ended_before(self, start: float, end: float, x: float) -> int:
        """How many of the steps end strictly before x."""
        k = self.count
        if k <= 1:
            return k if end < x else 0
        return steps_ending_before(start, self.a, self.h, k, x)


def steps_ending_before(start: float, a: float, h: float, k: int, x: float) -> int:
    """How many of the k steps of a decode run that began at `start` (n of them take
    n·a + h·n(n − 1) seconds) end strictly before x."""
    n = min(whole_steps(x - start, a, h), k) if x > start else 0
    while n > 0 and start + (n * a + h * n * (n - 1)) >= x:
        n -= 1
    while n < k and start + ((n + 1) * a + h * (n + 1) * n) < x:
        n += 1
    return n


def whole_steps(elapsed: float, a: float, h: float) -> int:
    """Whole steps of a decode run finished `elapsed` seconds after it began, where n steps
    take n·a + h·n(n − 1): the root of the quadratic, guarded against float rounding."""
    if h > 0.0:
        b = a - h
        n = int((-b + math.sqrt(b * b + 4.0 * h * elapsed)) / (2.0 * h))
    else:
        n = int(elapsed / a)
    while n > 0 and n * a + h * n * (n - 1) > elapsed:
        n -= 1
    while (n + 1) * a + h * (n + 1) * n <= elapsed:
        n += 1
    return n


@dataclass(frozen=True)
class WindowTotals:
    """What a replica's `WindowCounters` held at one time."""

    busy_s: float
    prefill_s: float
    decode_s: float
    batch_s: float
    kv_token_s: float
    steps: int
    prefill_tokens: int
    recomputed_tokens: int
    generated_tokens: int


@dataclass(frozen=True)
class ReplicaCounters:
    """One replica's work. Seconds and integrals are clipped to the metrics window; `steps`,
    `generated_tokens` and `prefill_tokens` cover the whole run, the `window_*` counts the
    steps that ended inside the window."""

    busy_s: float
    prefill_s: float
    decode_s: float
    batch_s: float
    kv_token_s: float
    steps: int
    preemptions: int
    generated_tokens: int  # whole run, not just the window
    prefill_tokens: int  # whole run, recomputation included
    window_prefill_tokens: int = 0  # first-time prompt tokens prefilled (no recomputation)
    window_recomputed_tokens: int = 0  # prefilled again after an eviction or a failure
    window_generated_tokens: int = 0  # first tokens and decode tokens
    window_steps: int = 0
    marks_s: tuple[float, ...] = ()  # times inside the window the totals were taken at
    at_marks: tuple[WindowTotals, ...] = ()  # the window's totals then
    # Prefix cache (whole run): cached blocks evicted to make room, counted in blocks of
    # `EngineConfig.prefix_block_tokens` (a node of n tokens is ⌈n / block⌉ blocks).
    evicted_blocks: int = 0
    reloaded_tokens: int = 0  # prefix tokens copied back from the host's memory

    def since(self, mark: int) -> ReplicaCounters:
        """These counters over [marks_s[mark], window end) rather than the whole window."""
        m = self.at_marks[mark]
        return replace(
            self, busy_s=self.busy_s - m.busy_s, prefill_s=self.prefill_s - m.prefill_s,
            decode_s=self.decode_s - m.decode_s, batch_s=self.batch_s - m.batch_s,
            kv_token_s=self.kv_token_s - m.kv_token_s,
            window_prefill_tokens=self.window_prefill_tokens - m.prefill_tokens,
            window_recomputed_tokens=self.window_recomputed_tokens - m.recomputed_tokens,
            window_generated_tokens=self.window_generated_tokens - m.generated_tokens,
            window_steps=self.window_steps - m.steps, marks_s=(), at_marks=())


@dataclass(frozen=True)
class GapCounts:
    """The fleet's inter-token gaps that ended inside the metrics window, binned by length
    (`sim.engine.gaps`: log-spaced bins). Row s counts the gaps that ended in
    [start_s[s], start_s[s + 1]) (the window's end after the last row): one row, or one per
    interval between the window's marks, so that a start chosen after the run can drop
    the rows before it. `weights` is the number of gaps in each bin, `seconds` their sum."""

    start_s: np.ndarray  # (rows,)
    weights: np.ndarray  # (rows, bins)
    seconds: np.ndarray  # (rows, bins)

    def since(self, start_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(weights, seconds) per bin of the gaps that ended at or after `start_s`, a row's
        start (or the window's)."""
        rows = self.start_s >= start_s
        return self.weights[rows].sum(axis=0), self.seconds[rows].sum(axis=0)


@dataclass(frozen=True)
class EngineResult:
    """Request i: arrived at arrival_s[i], admitted (left the queue) at admit_s[i], first
    token at first_token_s[i], done at finish_s[i] (NaN where it never got there). The
    columns cover the requests that arrived: all of an open workload, the prefix of a
    closed loop's pool that its clients sent."""

    arrival_s: np.ndarray  # the workload's times, or when closed-loop clients sent them
    replica: np.ndarray  # int, −1 for rejected requests
    admit_s: np.ndarray
    first_token_s: np.ndarray
    finish_s: np.ndarray
    preemptions: np.ndarray  # times each request was evicted and recomputed
    rejected: np.ndarray  # bool: larger than a replica's whole KV cache, never admitted
    replicas: tuple[ReplicaCounters, ...]
    end_s: float  # simulated time when the run stopped
    events: int  # timeouts scheduled on the event queue
    requeues: np.ndarray  # times each request was handed back by a replica and routed again
    timeline: FleetTimeline
    gaps: GapCounts  # inter-token gaps ending inside the metrics window
    # Per request: its longest gap between two consecutive tokens, wherever it ended (0
    # for a request that never had two); None unless `track_longest_gaps`.
    max_gap_s: np.ndarray | None
    # Sessions send out of index order: row k is pool request sent[k] (None: row i is
    # request i, all of an open workload or the prefix of a closed loop's pool).
    sent: np.ndarray | None = None
    # Prefix cache (None without one), per row: prompt tokens its first admission found
    # cached and did not prefill, and the prefill seconds that reuse still cost (the
    # attention of its new tokens over the cached prefix, which reads that KV).
    cached_tokens: np.ndarray | None = None
    cached_prefill_s: np.ndarray | None = None
    # Disaggregated serving (None without a decode pool): `replicas` lists the prefill
    # replicas first, `prefill_replicas` of them, then the decode pool's; per row, the decode
    # replica (−1: none, e.g. rejected or never prefilled) and the seconds from its first
    # token to its KV landing there (NaN: no transfer); the bytes every transfer carried.
    prefill_replicas: int | None = None
    decode_replica: np.ndarray | None = None
    kv_transfer_s: np.ndarray | None = None
    kv_transfer_bytes: float = 0.0
    # Disaggregated, per row: when the decode replica first admitted it into its batch (NaN:
    # never), where a client of an engine that streams every token from the decode side
    # sees its first token.
    decode_admit_s: np.ndarray | None = None
