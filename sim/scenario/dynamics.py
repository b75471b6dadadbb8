"""Scenario keys for a fleet that changes while it runs: failures, spot preemption, a planned
outage and autoscaling (all under `deployment:`, all optional).

    failures:    {mtbf_h, mttr_h}         per GPU; a replica of tp GPUs fails tp times as often
    spot:        {preemptions_per_h, notice_s, replace_s}     per replica
    outage:      {replicas, at_s, duration_s}                 n replicas down at a known time
    autoscaling: {policy, target, min_replicas, max_replicas, provisioning_delay_s, interval_s,
                  scale_in_stabilization_s, provisioning: {success_probability, retry_s}}

What the engine does with them is described in `sim.engine.fleet`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from sim.scenario.base import (
    MAX_DURATION_S,
    MIN_INTERVAL_S,
    NonNegSeconds,
    Pos,
    Replicas,
    Seconds,
    Strict,
)
from sim.scenario.uncertain import Lognormal, Triangular, Uniform

# Hours between failures or repairs, up to ~114,000 years (a GPU's published MTBF is tens of
# thousands of hours). Failures come at least MIN_MTBF_H apart on average (3.6 s: fast enough
# to exercise a fleet in a short test run); at 1e-300 h the clock would never advance.
Hours = Annotated[float, Field(gt=0, le=1e9, allow_inf_nan=False)]
MIN_MTBF_H = 1e-3


class Failures(Strict):
    """Hardware failures: each GPU fails after an exponential time with mean `mtbf_h`; the
    replica it belongs to is down until repaired (exponential, mean `mttr_h`)."""

    mtbf_h: Hours  # mean time between failures of one GPU, hours
    mttr_h: Hours  # mean time to repair a failed replica, hours

    @model_validator(mode="after")
    def _not_too_often(self) -> Failures:
        if self.mtbf_h < MIN_MTBF_H:
            raise PydanticCustomError("order", "failing too often", {
                "field": "mtbf_h", "expected": f"a number ≥ {MIN_MTBF_H:g} (hours)"})
        return self


class Spot(Strict):
    """Spot capacity: the provider reclaims a replica at `preemptions_per_h` (a Poisson
    process per replica), warning `notice_s` ahead; a replacement serves `replace_s` after
    the reclaim."""

    # At most one a second per replica: each is a handful of events.
    preemptions_per_h: Annotated[float, Field(gt=0, le=3600, allow_inf_nan=False)]
    notice_s: NonNegSeconds = 30.0
    replace_s: NonNegSeconds = 300.0


class Outage(Strict):
    """`replicas` replicas down from `at_s` for `duration_s` (null: to the end of the run)."""

    replicas: Replicas
    at_s: NonNegSeconds = 0.0
    duration_s: Seconds | None = None


DelaySpec = Annotated[Lognormal | Uniform | Triangular, Field(discriminator="dist")]
# Between autoscaling decisions or provisioning retries: each is an event, so at least a
# tenth of a second apart (1e-6 s would be 10¹³ of them in a long run).
Interval = Annotated[float, Field(ge=MIN_INTERVAL_S, le=MAX_DURATION_S, allow_inf_nan=False)]


class Provisioning(Strict):
    """Capacity that is not always there: each request for a replica gets one with
    probability `success_probability` (drawn from its own seed stream); one that does not is
    asked again `retry_s` later, while the autoscaler still wants it. A cloud region out of a
    GPU type, or a quota, looks like this from the autoscaler's side."""

    # Above 0: a request that can never succeed would be retried for the whole run.
    success_probability: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 1.0
    retry_s: Interval = 60.0


class Autoscaling(Strict):
    """Every `interval_s` the autoscaler compares the fleet's load with `target` and asks for
    replicas (they serve after `provisioning_delay_s`) or, once it has wanted fewer at every
    tick of the last `scale_in_stabilization_s`, drains one (released once empty). It reads
    the outstanding requests averaged over the interval, and a replica's capacity as the
    sequences it holds at the workload's mean context (max_num_seqs, or fewer where the KV
    cache binds first: `sim.runner.fleet_events`).

    * `target-utilization`: wanted replicas = ⌈outstanding requests ÷ (target × capacity)⌉,
      `target` being the wanted share of each replica's sequence slots in use.
    * `queue`: one more replica while the requests waiting for admission exceed `target` per
      serving replica; one fewer while none wait and the outstanding requests would fill the
      remaining replicas' slots at most half.

    `provisioning` says how often a request for a replica gets capacity (default: always)."""

    policy: Literal["target-utilization", "queue"]
    target: Pos
    min_replicas: Replicas = 1
    max_replicas: Replicas
    provisioning_delay_s: NonNegSeconds | DelaySpec = 120.0
    interval_s: Interval = 30.0  # real autoscalers decide every few seconds to minutes
    scale_in_stabilization_s: NonNegSeconds = 300.0  # scale in only after wanting fewer
    provisioning: Provisioning = Provisioning()

    @model_validator(mode="after")
    def _consistent(self) -> Autoscaling:
        if self.max_replicas < self.min_replicas:
            raise PydanticCustomError("order", "max below min", {
                "field": "max_replicas", "expected": f"a number ≥ min_replicas "
                f"({self.min_replicas})"})
        if self.policy == "target-utilization" and self.target > 1:
            raise PydanticCustomError("order", "a fraction", {
                "field": "target", "expected": "a fraction in (0, 1] of each replica's "
                "sequence slots (policy target-utilization)"})
        delay = self.provisioning_delay_s
        if isinstance(delay, Uniform | Triangular) and delay.low < 0:
            raise PydanticCustomError("order", "negative delay", {
                "field": "provisioning_delay_s", "expected": "a distribution of delays ≥ 0 "
                "(low ≥ 0)"})
        longest = (delay.high if isinstance(delay, Uniform | Triangular)
                   else delay.mean if isinstance(delay, Lognormal) else delay)
        if longest > MAX_DURATION_S:
            raise PydanticCustomError("order", "delay too long", {
                "field": "provisioning_delay_s", "expected": f"delays ≤ {MAX_DURATION_S:g} s "
                "(the high or mean of a distribution too)"})
        return self
