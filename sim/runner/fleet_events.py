"""From a scenario's failures / spot / outage / autoscaling keys to the engine's `FleetSchedule`.

Fault times are drawn here, up front, each kind from its own seed stream, over the horizon
[0, duration_s + drain_s) — [0, duration_s) when the run drains to completion, so no new
faults start while the last requests finish. Provisioning delays are drawn as the
autoscaler asks for replicas, from the autoscaling stream.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from sim.engine import faults
from sim.engine.records import AutoscaleSettings, FleetSchedule
from sim.scenario import Scenario


def build(scenario: Scenario, streams: dict[str, np.random.SeedSequence]) -> FleetSchedule | None:
    """None for a fleet that never changes (the engine then adds no work for it)."""
    d = scenario.deployment
    if not d.dynamic:
        return None
    horizon_s = scenario.duration_s + (scenario.drain_s or 0.0)
    slots = d.replicas if d.autoscaling is None else d.autoscaling.max_replicas
    parts = []
    if d.failures is not None:
        parts.append(faults.failure_events(
            slots, d.tensor_parallel, d.failures.mtbf_h, d.failures.mttr_h, horizon_s,
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
        scaling = AutoscaleSettings(
            policy=a.policy, target=a.target, min_replicas=a.min_replicas,
            max_replicas=a.max_replicas, interval_s=a.interval_s,
            scale_in_ticks=max(1, math.ceil(a.scale_in_stabilization_s / a.interval_s - 1e-9)),
            max_num_seqs=d.scheduler.max_num_seqs,
            provisioning_delay_s=_delay_sampler(a.provisioning_delay_s,
                                                np.random.default_rng(streams["autoscaling"])))
    return FleetSchedule(slots=slots, initial=d.replicas, event_s=times, event_slot=slot,
                     event_kind=kind, autoscaling=scaling)


def _delay_sampler(spec, rng: np.random.Generator) -> Callable[[], float]:
    """One provisioning delay per call: a fixed number, or a draw from the distribution."""
    if isinstance(spec, float | int):
        return lambda: float(spec)
    return lambda: float(spec.ppf(rng.random(1))[0])
