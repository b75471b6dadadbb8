"""Scenario keys for a fleet that changes while it runs: failures, spot preemption, a planned
outage and autoscaling (all under `deployment:`, all optional).

    failures:    {mtbf_h, mttr_h}         per GPU; a replica of tp GPUs fails tp times as often
    spot:        {preemptions_per_h, notice_s, replace_s}     per replica
    outage:      {replicas, at_s, duration_s}                 n replicas down at a known time
    autoscaling: {policy, target, min_replicas, max_replicas, provisioning_delay_s, interval_s}

What the engine does with them is described in `sim.engine.fleet`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from sim.scenario.base import NonNeg, Pos, PosInt, Strict
from sim.scenario.uncertain import Lognormal, Triangular, Uniform


class Failures(Strict):
    """Hardware failures: each GPU fails after an exponential time with mean `mtbf_h`; the
    replica it belongs to is down until repaired (exponential, mean `mttr_h`)."""

    mtbf_h: Pos  # mean time between failures of one GPU, hours
    mttr_h: Pos  # mean time to repair a failed replica, hours


class Spot(Strict):
    """Spot capacity: the provider reclaims a replica at `preemptions_per_h` (a Poisson
    process per replica), warning `notice_s` ahead; a replacement serves `replace_s` after
    the reclaim."""

    preemptions_per_h: Pos
    notice_s: NonNeg = 30.0
    replace_s: NonNeg = 300.0


class Outage(Strict):
    """`replicas` replicas down from `at_s` for `duration_s` (null: to the end of the run)."""

    replicas: PosInt
    at_s: NonNeg = 0.0
    duration_s: Pos | None = None


DelaySpec = Annotated[Lognormal | Uniform | Triangular, Field(discriminator="dist")]


class Autoscaling(Strict):
    """Every `interval_s` the autoscaler compares the fleet's load with `target` and asks for
    replicas (they serve after `provisioning_delay_s`) or, once it has wanted fewer at every
    tick of the last `scale_in_stabilization_s`, drains one (released once empty).

    * `target-utilization`: wanted replicas = ⌈outstanding requests ÷ (target × max_num_seqs)⌉,
      `target` being the wanted share of each replica's sequence slots in use.
    * `queue`: one more replica while the requests waiting for admission exceed `target` per
      serving replica; one fewer while none wait and the outstanding requests would fill the
      remaining replicas' slots at most half."""

    policy: Literal["target-utilization", "queue"]
    target: Pos
    min_replicas: PosInt = 1
    max_replicas: PosInt
    provisioning_delay_s: NonNeg | DelaySpec = 120.0
    interval_s: Pos = 30.0
    scale_in_stabilization_s: NonNeg = 300.0  # scale in only after wanting fewer this long

    @model_validator(mode="after")
    def _consistent(self) -> Autoscaling:
        if self.max_replicas < self.min_replicas:
            raise PydanticCustomError("order", "max below min", {
                "field": "max_replicas", "expected": f"a number ≥ min_replicas "
                f"({self.min_replicas})"})
        if self.policy == "target-utilization" and self.target > 1:
            raise PydanticCustomError("order", "a fraction", {
                "field": "target", "expected": "a fraction in (0, 1] of each replica's "
                "max_num_seqs slots (policy target-utilization)"})
        delay = self.provisioning_delay_s
        if isinstance(delay, Uniform | Triangular) and delay.low < 0:
            raise PydanticCustomError("order", "negative delay", {
                "field": "provisioning_delay_s", "expected": "a distribution of delays ≥ 0 "
                "(low ≥ 0)"})
        return self
