"""From a scenario's failures / spot / outage / autoscaling keys to the engine's `FleetSchedule`.

Fault times are drawn here, up front, each kind from its own seed stream, over the horizon
[0, duration_s + drain_s) — [0, duration_s) when the run drains to completion, so no new
faults start while the last requests finish. Provisioning delays are drawn as the
autoscaler asks for replicas, from the autoscaling stream, and whether a request gets
capacity from that stream's first child: drawing outcomes leaves the delays as they were.

The autoscaler's capacity per replica is the sequences one replica holds at the workload's
mean context, ⌊KV capacity ÷ (mean prompt + mean output ÷ 2 + one block)⌋ — what the engine
reserves for a sequence halfway through its answer, its context plus a block of slack —
capped by max_num_seqs: a 70B model on two H100s holds about ten 3,000-token chats, not 256.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from sim.engine import faults
from sim.engine.records import AutoscaleSettings, FleetSchedule
from sim.hardware.memory import KV_BLOCK_TOKENS
from sim.scenario import Scenario
from sim.scenario.dynamics import Provisioning
from sim.scenario.workload import LengthSpec, WorkloadSpec


def build(scenario: Scenario, streams: dict[str, np.random.SeedSequence],
          kv_capacity_tokens: int) -> FleetSchedule | None:
    """None for a fleet that never changes (the engine then adds no work for it);
    `kv_capacity_tokens`: one replica's KV cache, as the runner resolved it."""
    d = scenario.deployment
    if not d.dynamic:
        return None
    horizon_s = scenario.duration_s + (scenario.drain_s or 0.0)
    slots = d.replicas if d.autoscaling is None else d.autoscaling.max_replicas
    parts = []
    if d.failures is not None:
        parts.append(faults.failure_events(
            slots, scenario.gpus_per_replica, d.failures.mtbf_h, d.failures.mttr_h, horizon_s,
            np.random.default_rng(streams["failures"])))
    if d.spot is not None:
        parts.append(faults.spot_events(
            slots, d.spot.preemptions_per_h, d.spot.notice_s, d.spot.replace_s, horizon_s,
            np.random.default_rng(streams["spot"])))
    if d.outage is not None:
        parts.append(faults.outage_events(d.outage.replicas, d.outage.at_s,
                                          d.outage.duration_s))
    times, slot, kind = faults.merge(*parts)
    scaling = None
    if d.autoscaling is not None:
        a = d.autoscaling
        stream = streams["autoscaling"]
        scaling = AutoscaleSettings(
            policy=a.policy, target=a.target, min_replicas=a.min_replicas,
            max_replicas=a.max_replicas, interval_s=a.interval_s,
            scale_in_ticks=max(1, math.ceil(a.scale_in_stabilization_s / a.interval_s - 1e-9)),
            concurrency_per_replica=concurrency_per_replica(
                kv_capacity_tokens, scenario.workload, d.scheduler.max_num_seqs),
            provisioning_delay_s=_delay_sampler(a.provisioning_delay_s,
                                                np.random.default_rng(stream)),
            provisioning_succeeds=_outcome_sampler(a.provisioning, _first_child(stream)),
            retry_s=a.provisioning.retry_s)
    return FleetSchedule(slots=slots, initial=d.replicas, event_s=times, event_slot=slot,
                     event_kind=kind, autoscaling=scaling)


def concurrency_per_replica(kv_capacity_tokens: int, workload: WorkloadSpec,
                            max_num_seqs: int) -> int:
    """Sequences one replica holds at the workload's mean context (at least one)."""
    prompt_tokens, output_tokens = mean_lengths(workload)
    per_sequence = prompt_tokens + output_tokens / 2 + KV_BLOCK_TOKENS
    return max(1, min(max_num_seqs, math.floor(kv_capacity_tokens / per_sequence)))


def mean_lengths(workload: WorkloadSpec) -> tuple[float, float]:
    """Mean prompt and output tokens: the distributions' (cut at their max_tokens) or the
    replayed trace's."""
    if workload.trace is not None:
        trace = workload.trace.requests
        assert trace is not None  # load_scenario reads the trace
        if not len(trace.prompt_tokens):
            return 0.0, 0.0
        return float(trace.prompt_tokens.mean()), float(trace.output_tokens.mean())
    assert workload.prompt_tokens is not None and workload.output_tokens is not None
    return _mean(workload.prompt_tokens), _mean(workload.output_tokens)


def _mean(spec: LengthSpec) -> float:
    mean = spec.mean_tokens
    return mean if spec.max_tokens is None else min(mean, float(spec.max_tokens))


def _first_child(stream: np.random.SeedSequence) -> np.random.SeedSequence:
    """What `stream.spawn(1)[0]` gives on a fresh stream, without counting a spawn on it."""
    return np.random.SeedSequence(stream.entropy, spawn_key=(*stream.spawn_key, 0),
                                  pool_size=stream.pool_size)


def _outcome_sampler(spec: Provisioning, seq: np.random.SeedSequence) -> Callable[[], bool]:
    """Whether one request for a replica gets capacity; no draw when it always does."""
    if spec.success_probability >= 1.0:
        return lambda: True
    rng = np.random.default_rng(seq)
    return lambda: bool(rng.random() < spec.success_probability)


def _delay_sampler(spec, rng: np.random.Generator) -> Callable[[], float]:
    """One provisioning delay per call: a fixed number, or a draw from the distribution."""
    if isinstance(spec, float | int):
        return lambda: float(spec)
    return lambda: float(spec.ppf(rng.random(1))[0])
