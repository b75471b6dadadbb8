"""Fault timelines, drawn up front as arrays: when each replica slot fails and is repaired,
gets a spot notice, is reclaimed and replaced, or goes down in a planned outage.

Failures and spot preemptions are alternating renewal processes per slot: an exponential
time up, then a time down (failures: exponential repair; spot: the notice, then the wait for
a replacement). Their long-run share of time up is mean up ÷ (mean up + mean down), the
number the availability test checks. Every slot's cycles are drawn at once, in chunks of
columns, until each slot's cycles pass the horizon; the last cycle that starts before the
horizon is kept whole, so a replica that fails is always repaired.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sim.engine.records import FAIL, NOTICE, OUTAGE_END, OUTAGE_START, RECLAIM, REPAIR, RESTORE

SECONDS_PER_HOUR = 3600.0

Events = tuple[np.ndarray, np.ndarray, np.ndarray]  # times, slots, kinds


def _cycles(slots: int, mean_up_s: float, draw_down: Callable[[tuple[int, int]], np.ndarray],
            horizon_s: float, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(slot, start of down time, down duration) of every cycle starting before the horizon."""
    expected = horizon_s / mean_up_s
    chunk = int(expected + 6.0 * np.sqrt(expected) + 4)
    ups, downs = [], []
    reached = np.zeros(slots)
    while reached.min() < horizon_s:
        up = rng.exponential(mean_up_s, (slots, chunk))
        down = draw_down((slots, chunk))
        ups.append(up)
        downs.append(down)
        reached = reached + up.sum(axis=1) + down.sum(axis=1)
    up, down = np.hstack(ups), np.hstack(downs)
    # down_start[j] = Σ_{i≤j} up_i + Σ_{i<j} down_i
    down_start = np.cumsum(up, axis=1) + np.cumsum(down, axis=1) - down
    keep = down_start < horizon_s
    slot = np.broadcast_to(np.arange(slots)[:, None], keep.shape)
    return slot[keep], down_start[keep], down[keep]


def failure_events(slots: int, tensor_parallel: int, mtbf_h: float, mttr_h: float,
                   horizon_s: float, rng: np.random.Generator) -> Events:
    """A replica of tp GPUs fails at tp × the per-GPU rate (any one GPU takes it down)."""
    mean_up_s = mtbf_h * SECONDS_PER_HOUR / tensor_parallel
    mean_down_s = mttr_h * SECONDS_PER_HOUR
    slot, start, down = _cycles(slots, mean_up_s,
                                lambda shape: rng.exponential(mean_down_s, shape),
                                horizon_s, rng)
    return (np.concatenate([start, start + down]), np.concatenate([slot, slot]),
            np.concatenate([np.full(len(slot), FAIL), np.full(len(slot), REPAIR)]))


def spot_events(slots: int, preemptions_per_h: float, notice_s: float, replace_s: float,
                horizon_s: float, rng: np.random.Generator) -> Events:
    """Notice, reclaim notice_s later, replacement serving replace_s after the reclaim."""
    mean_up_s = SECONDS_PER_HOUR / preemptions_per_h
    slot, start, _ = _cycles(slots, mean_up_s,
                             lambda shape: np.full(shape, notice_s + replace_s),
                             horizon_s, rng)
    n = len(slot)
    return (np.concatenate([start, start + notice_s, start + notice_s + replace_s]),
            np.concatenate([slot, slot, slot]),
            np.concatenate([np.full(n, NOTICE), np.full(n, RECLAIM), np.full(n, RESTORE)]))


def outage_events(replicas: int, at_s: float, duration_s: float | None) -> Events:
    """The first `replicas` slots down from at_s (for duration_s, or to the end)."""
    slots = np.arange(replicas)
    times = [np.full(replicas, at_s)]
    kinds = [np.full(replicas, OUTAGE_START)]
    if duration_s is not None:
        times.append(np.full(replicas, at_s + duration_s))
        kinds.append(np.full(replicas, OUTAGE_END))
    return np.concatenate(times), np.tile(slots, len(times)), np.concatenate(kinds)


def merge(*parts: Events) -> Events:
    """All events in time order; at equal times by slot, then in kind order (a notice
    before its reclaim, a reclaim before its replacement when the gaps are zero)."""
    if not parts:
        empty = np.zeros(0)
        return empty, empty.astype(np.int64), empty.astype(np.int64)
    times = np.concatenate([p[0] for p in parts]).astype(np.float64)
    slots = np.concatenate([p[1] for p in parts]).astype(np.int64)
    kinds = np.concatenate([p[2] for p in parts]).astype(np.int64)
    order = np.lexsort((kinds, slots, times))
    return times[order], slots[order], kinds[order]
