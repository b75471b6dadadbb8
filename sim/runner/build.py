"""From a scenario to the plain values the lower layers take.

The engine, the step-time models and the memory model never see a `Scenario`: this module
picks out what each needs, in one place, so every caller (a run, a sweep's capacity probe,
the planner's option checks, validation) builds them the same way.
"""

from __future__ import annotations

import numpy as np

from sim.engine.records import EngineConfig, FleetSchedule
from sim.hardware.memory import KV_BLOCK_TOKENS, kv_capacity_tokens
from sim.metrics.capacity import Mix, saturation
from sim.metrics.headroom import StepFacts
from sim.metrics.intensity import demands
from sim.scenario import Scenario
from sim.scenario.schema import longest_tokens
from sim.steptime.model import StepTimeModel
from sim.steptime.scaled import ScaledStep
from sim.steptime.select import select
from sim.workload.closed import PoolLimits, min_step_s


def prefill_step_tokens(scenario: Scenario) -> int:
    """The most prompt tokens one step prefills: the token budget, or where prompts run whole
    (`chunked_prefill: false`) the longest prompt: the prompt lengths' bound, else the model's
    context (a longer prompt, possible only from an unbounded length distribution, is split
    at it). The step-time tables reach this far."""
    s = scenario.deployment.scheduler
    if s.chunked_prefill:
        return s.max_batched_tokens
    longest = scenario.model.max_context
    bound = longest_tokens(scenario.workload.prompt_tokens)
    if bound is not None and scenario.workload.sessions is None:
        longest = min(longest, bound[0])
    return max(s.max_batched_tokens, longest)


def step_model(scenario: Scenario) -> StepTimeModel:
    """The scenario's step-time model, scaled by its `step_time_scale`."""
    d = scenario.deployment
    model = select(scenario.profile, scenario.model, scenario.gpu, scenario.layout,
                   prefill_step_tokens(scenario) + d.scheduler.max_num_seqs)
    if scenario.step_time_scale != 1.0:
        return ScaledStep(model, scenario.step_time_scale)
    return model


def kv_capacity(scenario: Scenario) -> int:
    """KV-cache tokens one replica holds; `InputError` when the weights do not fit."""
    d = scenario.deployment
    return kv_capacity_tokens(scenario.model, scenario.gpu, scenario.layout,
                              d.gpu_memory_utilization, d.activation_reserve_gib,
                              d.scheduler.max_num_seqs)


def step_facts(scenario: Scenario, step: StepTimeModel, kv_capacity_tokens: int,
               prompt_tokens: np.ndarray, output_tokens: np.ndarray) -> StepFacts:
    """What the step model says one replica delivers flat out on the mix of these requests
    (the window's arrivals), and what the model asks of the GPU per token."""
    d = scenario.deployment
    mix = Mix.of(prompt_tokens, output_tokens)
    full = None if mix is None else saturation(step, mix, d.scheduler.max_num_seqs,
                                               d.scheduler.max_batched_tokens,
                                               kv_capacity_tokens)
    return StepFacts(mix, full, demands(scenario.model, scenario.gpu, d.dtype))


def pool_limits(model: StepTimeModel, kv_capacity_tokens: int,
                max_requests: int) -> PoolLimits:
    """What a closed loop's pool of requests is sized by (`sim.workload.closed`)."""
    return PoolLimits(min_step_s(model), kv_capacity_tokens - KV_BLOCK_TOKENS, max_requests)


AUTO_WARMUP_BINS = 100  # `warmup_s: auto` chooses the window's start among this many bins


def window_marks(scenario: Scenario) -> tuple[float, ...]:
    """The bin edges a `warmup_s: auto` run takes its counters' totals at (else none)."""
    if not scenario.warmup_auto:
        return ()
    return tuple(scenario.duration_s * i / AUTO_WARMUP_BINS for i in range(1, AUTO_WARMUP_BINS))


def saturated_e2e_s(scenario: Scenario) -> float | None:
    """A request's time in a saturated replica at the workload's mean lengths: the batch
    the replica holds over the requests it completes per second (Little's law on the
    closed-form saturation of `sim.metrics.capacity`). None for a replayed trace, whose
    lengths are not known before it is read, or a profile that gives steps no time."""
    w = scenario.workload
    if w.prompt_tokens is None or w.output_tokens is None:
        return None
    prompt, output = w.prompt_tokens.mean_tokens, w.output_tokens.mean_tokens
    d = scenario.deployment
    full = saturation(step_model(scenario), Mix(prompt, output, prompt * (prompt + 1.0) / 2.0),
                      d.scheduler.max_num_seqs, d.scheduler.max_batched_tokens,
                      kv_capacity(scenario))
    return full.batch_seqs / full.requests_per_s if full.requests_per_s > 0 else None


def engine_config(scenario: Scenario, kv_capacity_tokens: int, exact: bool,
                  fleet: FleetSchedule | None) -> EngineConfig:
    """The engine's settings. The scheduler's keys arrive resolved: what the scenario sets,
    else its `deployment.engine`'s preset (`sim.engine.scheduler.ENGINE_PRESETS`, filled in
    when the scenario is validated, since the preset depends on the GPU)."""
    d = scenario.deployment
    s = d.scheduler
    return EngineConfig(
        replicas=d.replicas,
        policy=s.policy,
        max_num_seqs=s.max_num_seqs,
        max_batched_tokens=s.max_batched_tokens,
        admission=s.admission,
        reserve_ratio=s.reserve_ratio,
        chunked_prefill=s.chunked_prefill,
        max_prefill_tokens=prefill_step_tokens(scenario),
        kv_capacity_tokens=kv_capacity_tokens,
        kv_block_tokens=KV_BLOCK_TOKENS,
        prefix_block_tokens=0 if d.prefix_cache is None else d.prefix_cache.block_for(d.engine),
        router=d.router,
        # `auto`: count from the start, and take totals at every bin edge so that the
        # window's start can be chosen after the run (`sim.runner.single`).
        window_start_s=0.0 if scenario.warmup_auto else scenario.warmup_s,
        window_end_s=scenario.duration_s,
        window_marks_s=window_marks(scenario),
        stop_s=None if scenario.drain_s is None else scenario.duration_s + scenario.drain_s,
        exact=exact,
        fleet=fleet,
        # Each request's longest gap costs the engine a few % more; only an ITL target reads it.
        track_longest_gaps=scenario.slo.itl_s is not None,
    )
