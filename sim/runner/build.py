"""From a scenario to the plain values the lower layers take.

The engine, the step-time models and the memory model never see a `Scenario`: this module
picks out what each needs, in one place, so every caller (a run, a sweep's capacity probe,
the planner's option checks, validation) builds them the same way.
"""

from __future__ import annotations

from sim.engine.records import EngineConfig, FleetSchedule
from sim.hardware.memory import KV_BLOCK_TOKENS, kv_capacity_tokens
from sim.scenario import Scenario
from sim.steptime.model import StepTimeModel
from sim.steptime.scaled import ScaledStep
from sim.steptime.select import select


def step_model(scenario: Scenario) -> StepTimeModel:
    """The scenario's step-time model, scaled by its `step_time_scale`."""
    d = scenario.deployment
    model = select(scenario.profile, scenario.model, scenario.gpu, d.tensor_parallel, d.dtype,
                   d.scheduler.max_batched_tokens + d.scheduler.max_num_seqs)
    if scenario.step_time_scale != 1.0:
        return ScaledStep(model, scenario.step_time_scale)
    return model


def kv_capacity(scenario: Scenario) -> int:
    """KV-cache tokens one replica holds; `InputError` when the weights do not fit."""
    d = scenario.deployment
    return kv_capacity_tokens(scenario.model, scenario.gpu, d.tensor_parallel, d.dtype,
                              d.gpu_memory_utilization, d.activation_reserve_gib)


def engine_config(scenario: Scenario, kv_capacity_tokens: int, exact: bool,
                  fleet: FleetSchedule | None) -> EngineConfig:
    d = scenario.deployment
    return EngineConfig(
        replicas=d.replicas,
        policy=d.scheduler.policy,
        max_num_seqs=d.scheduler.max_num_seqs,
        max_batched_tokens=d.scheduler.max_batched_tokens,
        kv_capacity_tokens=kv_capacity_tokens,
        kv_block_tokens=KV_BLOCK_TOKENS,
        router=d.router,
        window_start_s=scenario.warmup_s,
        window_end_s=scenario.duration_s,
        stop_s=None if scenario.drain_s is None else scenario.duration_s + scenario.drain_s,
        exact=exact,
        fleet=fleet,
    )
