"""Trace replay: cut a time window out of a trace, speed it up, thin or replicate it.

The rule, in trace seconds (after the trace's first request): requests in
[start_s, start_s + duration_s) are replayed (default: the whole trace), arriving at
(t − start_s) / speedup simulated seconds. `scale` then changes the rate but keeps the burst
structure: each request is kept ⌊scale⌋ times and once more with probability
scale − ⌊scale⌋, so `scale: 0.5` keeps a random half and `scale: 2.5` replays each request
twice or three times. The original keeps its time; each extra copy arrives up to one mean
inter-arrival gap later (uniformly). As with generated arrivals, only requests arriving
before the scenario's duration_s are simulated; a warning counts any that are cut.

Prefix-block ids (a Mooncake trace's `hash_ids`) go with the requests that are kept: an extra
copy keeps its original's ids, since it is the same prompt sent again (a prefix cache would
hit it whole), and a thinned-out request takes its ids with it.

A window that holds no request of the trace (a start past its last request, or a window
that falls in a lull) would simulate nothing at all: it is an `InputError` naming the key.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np

from sim.errors import InputError
from sim.scenario.traces import TraceWarning, take_rows
from sim.scenario.workload import TraceSpec


@dataclass(frozen=True)
class Replayed:
    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    # The requests' prefix-block ids, stored as the trace stores them (`Trace.hash_ids`), or
    # None when the trace has none.
    hash_ids: np.ndarray | None = None
    hash_offsets: np.ndarray | None = None
    block_tokens: int = 0  # tokens per id (the trace's), where there are ids


def replay(spec: TraceSpec, horizon_s: float, rng: np.random.Generator) -> Replayed:
    """The requests of `spec.requests` that the scenario simulates over [0, horizon_s)."""
    trace = spec.requests
    assert trace is not None, "load_scenario attaches a trace's requests to its spec"
    t = trace.arrival_s
    lo, hi = window(spec)
    arrival_s = (t[lo:hi] - spec.start_s) / spec.speedup
    index = np.arange(lo, hi)
    if spec.scale != 1.0:
        arrival_s, index = _rescale(arrival_s, index, spec.scale, rng)
    inside = arrival_s < horizon_s
    cut = int(np.count_nonzero(~inside))
    if cut:
        warnings.warn(f"{trace.source}: {cut:,} of {len(arrival_s):,} replayed requests "
                      f"arrive at or after duration_s ({horizon_s:g} s) and are not simulated; "
                      "raise duration_s or set workload.trace.duration_s", TraceWarning,
                      stacklevel=2)
        arrival_s, index = arrival_s[inside], index[inside]
    replayed = Replayed(arrival_s, trace.prompt_tokens[index], trace.output_tokens[index])
    if trace.hash_ids is None or trace.hash_offsets is None:
        return replayed
    ids, offsets = take_rows(trace.hash_ids, trace.hash_offsets, index)
    return replace(replayed, hash_ids=ids, hash_offsets=offsets,
                   block_tokens=trace.block_tokens)


def window(spec: TraceSpec) -> tuple[int, int]:
    """The indices [lo, hi) of the trace's requests inside the window; `InputError` naming
    workload.trace.start_s (or duration_s) when it holds none."""
    trace = spec.requests
    assert trace is not None, "load_scenario attaches a trace's requests to its spec"
    t = trace.arrival_s
    lo = int(np.searchsorted(t, spec.start_s, side="left"))
    hi = len(t) if spec.duration_s is None else int(
        np.searchsorted(t, spec.start_s + spec.duration_s, side="left"))
    if lo == len(t):
        raise InputError("workload.trace.start_s", spec.start_s, f"a start inside the trace, "
                         f"whose {len(t):,} requests arrive from 0 to {float(t[-1]):g} s "
                         "after its first one")
    if hi == lo:
        raise InputError("workload.trace.duration_s", spec.duration_s, "a window holding at "
                         f"least one request (none of the trace's arrive in [{spec.start_s:g}, "
                         f"{spec.start_s + (spec.duration_s or 0.0):g}) s; the next at "
                         f"{float(t[lo]):g} s)")
    return lo, hi


def _rescale(arrival_s: np.ndarray, index: np.ndarray, scale: float,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = len(arrival_s)
    whole = int(np.floor(scale))
    copies = whole + (rng.random(n) < scale - whole)
    source = np.repeat(np.arange(n), copies)
    # Rank of each copy among its request's copies: 0 is the original.
    rank = np.arange(len(source)) - np.repeat(np.cumsum(copies) - copies, copies)
    times = arrival_s[source]
    extra = rank > 0
    if extra.any():
        mean_gap_s = (arrival_s[-1] - arrival_s[0]) / (n - 1) if n > 1 else 0.0
        times[extra] += rng.uniform(0.0, mean_gap_s, int(extra.sum()))
    order = np.argsort(times, kind="stable")
    return times[order], index[source[order]]
