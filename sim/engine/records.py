"""What the engine hands back: flat per-request columns and per-replica counters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


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
    fleet: FleetSchedule | None = None  # failures, preemption, outages, autoscaling (None: static)


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
    max_num_seqs: int
    provisioning_delay_s: Callable[[], float]  # draws one delay (from its own seed stream)


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


class WindowCounters:
    """Time integrals over the metrics window, clipped at its edges.

    An interval of engine work [start, end) carries its prefill and decode seconds, its batch
    size and its KV occupancy at both ends (occupancy grows linearly across a decode block).
    """

    __slots__ = ("start_s", "end_s", "busy_s", "prefill_s", "decode_s", "batch_s", "kv_token_s")

    def __init__(self, start_s: float, end_s: float) -> None:
        self.start_s, self.end_s = start_s, end_s
        self.busy_s = self.prefill_s = self.decode_s = 0.0
        self.batch_s = self.kv_token_s = 0.0  # ∫ batch size dt, ∫ KV tokens held dt

    def add(self, start: float, end: float, prefill_s: float, decode_s: float, batch: int,
            kv_start: float, kv_end: float) -> None:
        lo, hi = self.start_s, self.end_s
        length = end - start
        if start >= lo and end <= hi:  # the common case: wholly inside the window
            self.busy_s += length
            self.prefill_s += prefill_s
            self.decode_s += decode_s
            self.batch_s += batch * length
            self.kv_token_s += 0.5 * (kv_start + kv_end) * length
            return
        a, b = max(start, lo), min(end, hi)
        if b <= a or length <= 0.0:
            return
        f0, f1 = (a - start) / length, (b - start) / length
        overlap = b - a
        self.busy_s += overlap
        self.prefill_s += prefill_s * (f1 - f0)
        self.decode_s += decode_s * (f1 - f0)
        self.batch_s += batch * overlap
        kv_a = kv_start + (kv_end - kv_start) * f0
        kv_b = kv_start + (kv_end - kv_start) * f1
        self.kv_token_s += 0.5 * (kv_a + kv_b) * overlap


@dataclass(frozen=True)
class ReplicaCounters:
    busy_s: float
    prefill_s: float
    decode_s: float
    batch_s: float
    kv_token_s: float
    steps: int
    preemptions: int
    generated_tokens: int  # whole run, not just the window
    prefill_tokens: int  # whole run, recomputation included


@dataclass(frozen=True)
class EngineResult:
    """Request i: admitted (left the queue) at admit_s[i], first token at first_token_s[i],
    done at finish_s[i] (NaN where it never got there)."""

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
