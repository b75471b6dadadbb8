"""From a scenario to the plain values the lower layers take.

The engine, the step-time models and the memory model never see a `Scenario`: this module
picks out what each needs, in one place, so every caller (a run, a sweep's capacity probe,
the planner's option checks, validation) builds them the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from sim.engine.pools import FleetPools, ServingPool
from sim.engine.records import DecodePool, EngineConfig, FleetSchedule
from sim.hardware.catalog import GpuSpec
from sim.hardware.layout import Layout
from sim.hardware.memory import KV_BLOCK_TOKENS, kv_bytes_per_token, kv_capacity_tokens
from sim.metrics.capacity import Mix, saturation
from sim.metrics.headroom import StepFacts
from sim.metrics.intensity import demands
from sim.metrics.pools import mean_demands
from sim.scenario import Scenario
from sim.scenario.disaggregation import Pool, pool_kv_capacity, transfer_bytes_per_token
from sim.scenario.profiles import PROFILE_NAMES
from sim.scenario.scheduling import Scheduler
from sim.scenario.schema import longest_tokens
from sim.steptime.model import StepTimeModel
from sim.steptime.scaled import ScaledStep
from sim.steptime.select import select
from sim.steptime.speculative import expected_tokens_per_step, speculative_steps
from sim.workload.closed import PoolLimits, min_step_s


def prefill_step_tokens(scenario: Scenario, scheduler: Scheduler | None = None) -> int:
    """The most prompt tokens one step prefills: the token budget, or where prompts run whole
    (`chunked_prefill: false`) the longest prompt: the prompt lengths' bound, else the model's
    context (a longer prompt, possible only from an unbounded length distribution, is split
    at it). The step-time tables reach this far. `scheduler`: a pool's (None: the
    deployment's)."""
    s = scenario.deployment.scheduler if scheduler is None else scheduler
    if s.chunked_prefill:
        return s.max_batched_tokens
    longest = scenario.model.max_context
    bound = longest_tokens(scenario.workload.prompt_tokens)
    if bound is not None and scenario.workload.sessions is None:
        longest = min(longest, bound[0])
    return max(s.max_batched_tokens, longest)


def step_model(scenario: Scenario) -> StepTimeModel:
    """The scenario's step-time model (with speculative decoding, its verify and draft
    steps: `sim.steptime.speculative`), scaled by its `step_time_scale`."""
    return _step_model_on(scenario, scenario.gpu, scenario.layout,
                          scenario.deployment.scheduler)


def _step_model_on(scenario: Scenario, gpu: GpuSpec, layout: Layout,
                   scheduler: Scheduler) -> StepTimeModel:
    """`step_model` of one replica on `gpu` in `layout` under `scheduler` (a pool's)."""
    spec = scenario.deployment.speculative
    width = 1 if spec is None else spec.num_tokens + 1  # a decoding sequence's step tokens
    model = select(scenario.profile, scenario.model, gpu, layout,
                   prefill_step_tokens(scenario, scheduler) + scheduler.max_num_seqs * width)
    if spec is not None:
        model = speculative_steps(model, scenario.model.layers, spec.method, spec.num_tokens,
                                  spec.acceptance_rate,
                                  draft_step_model(scenario, gpu, layout, scheduler))
    return scaled(model, scenario.step_time_scale)


def scaled(model: StepTimeModel, step_time_scale: float) -> StepTimeModel:
    """`model` with every step time × `step_time_scale` (itself at 1)."""
    return model if step_time_scale == 1.0 else ScaledStep(model, step_time_scale)


def draft_step_model(scenario: Scenario, gpu: GpuSpec, layout: Layout,
                     scheduler: Scheduler) -> StepTimeModel | None:
    """The draft model's step model (`method: draft`; else None), on the target's GPUs and
    layout (its experts not spread when it has none), chosen as the target's is; a profile
    file made for the target's model gives way to `auto`."""
    spec = scenario.deployment.speculative
    if spec is None or spec.draft_model is None:
        return None
    draft = spec.draft_model
    if not draft.is_moe:
        layout = replace(layout, expert_parallel=1)
    profile = scenario.profile
    if isinstance(profile, str) and profile not in PROFILE_NAMES:
        profile = "auto"
    return select(profile, draft, gpu, layout,
                  prefill_step_tokens(scenario, scheduler) + scheduler.max_num_seqs)


def tokens_per_step(scenario: Scenario) -> float:
    """Tokens a decoding sequence gains per step: 1, or τ with speculative decoding."""
    spec = scenario.deployment.speculative
    return 1.0 if spec is None else expected_tokens_per_step(spec.acceptance_rate,
                                                             spec.num_tokens)


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
                                               kv_capacity_tokens, tokens_per_step(scenario))
    return StepFacts(mix, full, demands(scenario.model, scenario.gpu, d.dtype))


def pool_limits(model: StepTimeModel, kv_capacity_tokens: int, max_requests: int,
                tokens_per_step: float = 1.0) -> PoolLimits:
    """What a closed loop's pool of requests is sized by (`sim.workload.closed`)."""
    return PoolLimits(_shortest_token_s(model, tokens_per_step),
                      kv_capacity_tokens - KV_BLOCK_TOKENS, max_requests)


def shortest_token_s(scenario: Scenario) -> float:
    """The shortest time an output token of the scenario takes (`_shortest_token_s`;
    disaggregated, the shorter of both pools' shortest steps)."""
    both = sides(scenario)
    if both is not None:
        return both.shortest_step_s
    each = fleet_sides(scenario)
    if each is not None:
        return shortest_token_over(each, tokens_per_step(scenario))
    return _shortest_token_s(step_model(scenario), tokens_per_step(scenario))


def _shortest_token_s(model: StepTimeModel, tokens_per_step: float) -> float:
    """The shortest step over the most tokens one step gives a sequence (⌈τ⌉ with
    speculative decoding): a client's request keeps it busy at least this per output token."""
    return min_step_s(model) / math.ceil(tokens_per_step)


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
    mix = Mix(prompt, output, prompt * (prompt + 1.0) / 2.0)
    each = fleet_sides(scenario)
    if each is not None:  # the slowest pool's: a run long enough for every pool
        times = [_saturated_e2e_s(side.step_model, mix, side.pool.scheduler,
                                  side.kv_capacity_tokens, tokens_per_step(scenario))
                 for side in each]
        known = [t for t in times if t is not None]
        return max(known) if known else None
    return _saturated_e2e_s(step_model(scenario), mix, scenario.deployment.scheduler,
                            kv_capacity(scenario), tokens_per_step(scenario))


def _saturated_e2e_s(model: StepTimeModel, mix: Mix, scheduler: Scheduler,
                     kv_capacity_tokens: int, tokens_per_step: float) -> float | None:
    full = saturation(model, mix, scheduler.max_num_seqs, scheduler.max_batched_tokens,
                      kv_capacity_tokens, tokens_per_step)
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
        **_host_offload(scenario),
        tokens_per_step=tokens_per_step(scenario),
        lookahead_tokens=0 if d.speculative is None else d.speculative.num_tokens,
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


def _host_offload(scenario: Scenario) -> dict[str, Any]:
    """The prefix cache's host tier in KV tokens, and what copying one token back costs: a
    token's KV is spread over the attention group's tensor_parallel GPUs, each copying its
    share over its own host link."""
    cache = scenario.deployment.prefix_cache
    if cache is None or not cache.enabled or cache.cpu_offload_gib == 0:
        return {}
    layout = scenario.layout
    per_token = kv_bytes_per_token(scenario.model, layout.kv_cache_dtype)
    link_bytes_per_s = cache.cpu_offload_gb_s * 1e9 * layout.tensor_parallel
    return {"prefix_host_tokens": int(cache.cpu_offload_gib * 2**30 // per_token),
            "prefix_reload_s_per_token": per_token / link_bytes_per_s}


# ---- disaggregated serving: a prefill pool and a decode pool -----------------------------


@dataclass(frozen=True)
class Side:
    """What the engine runs one pool with: its step-time model and one replica's KV cache."""

    pool: Pool
    step_model: StepTimeModel
    kv_capacity_tokens: int


@dataclass(frozen=True)
class Sides:
    prefill: Side
    decode: Side

    @property
    def shortest_step_s(self) -> float:
        """The shorter of the pools' shortest steps: the fastest a client could go."""
        return shortest_token_over((self.prefill, self.decode))

    def limits(self, max_requests: int) -> PoolLimits:
        """A closed loop's pool sizing over both pools (`limits_over`: a request must fit on
        both sides)."""
        return limits_over((self.prefill, self.decode), max_requests)


def sides(scenario: Scenario) -> Sides | None:
    """Both pools' step models and KV caches (None: not disaggregated); `InputError`
    naming the pool's key when one's weights do not fit."""
    pools = scenario.pools
    if pools is None:
        return None
    return Sides(*(Side(pool, pool_step_model(scenario, pool),
                        pool_kv_capacity(scenario.model, pool)) for pool in pools))


def pool_step_model(scenario: Scenario, pool: Pool) -> StepTimeModel:
    """One pool's step-time model: the scenario's profile on the pool's GPU and layout,
    reaching as far as the pool's scheduler batches, scaled by `step_time_scale`."""
    return _step_model_on(scenario, pool.gpu, pool.layout, pool.scheduler)


def pool_engine_config(scenario: Scenario, side: Side, exact: bool) -> EngineConfig:
    """The engine's settings for one pool: the scenario's window and run settings, the
    pool's replicas, scheduler, router and KV cache."""
    s, pool = side.pool.scheduler, side.pool
    return replace(engine_config(scenario, side.kv_capacity_tokens, exact, None),
                   replicas=pool.replicas, policy=s.policy, max_num_seqs=s.max_num_seqs,
                   max_batched_tokens=s.max_batched_tokens, admission=s.admission,
                   reserve_ratio=s.reserve_ratio, chunked_prefill=s.chunked_prefill,
                   max_prefill_tokens=prefill_step_tokens(scenario, s), router=pool.router)


def pooled_step_facts(scenario: Scenario, both: Sides, prompt_tokens: np.ndarray,
                      output_tokens: np.ndarray) -> StepFacts:
    """`step_facts` of a disaggregated fleet: the mix, no one-replica saturation (neither
    pool runs both phases, so the capacity-based prices and headroom are left out), and
    the model's demands on the decode pool's GPUs (MFU and MBU against their peaks)."""
    decode = both.decode.pool
    return StepFacts(Mix.of(prompt_tokens, output_tokens), None,
                     demands(scenario.model, decode.gpu, decode.layout.dtype))


def decode_pool(scenario: Scenario, both: Sides, exact: bool) -> DecodePool:
    """The decode side the engine hands prefilled requests to, and the link to it."""
    spec = scenario.deployment.disaggregation
    assert spec is not None  # Sides exist only for a disaggregated deployment
    return DecodePool(config=pool_engine_config(scenario, both.decode, exact),
                      step_model=both.decode.step_model,
                      kv_bytes_per_token=transfer_bytes_per_token(scenario.model,
                                                                  both.decode.pool),
                      link_bytes_per_s=spec.kv_transfer.bytes_per_s,
                      link_latency_s=spec.kv_transfer.latency_s)


# ---- a heterogeneous fleet: named pools on their own GPUs --------------------------------


def fleet_sides(scenario: Scenario) -> tuple[Side, ...] | None:
    """Every pool's step model and KV cache (None: no `deployment.pools`); `InputError`
    naming the pool's key when one's weights do not fit."""
    pools = scenario.fleet_pools
    if pools is None:
        return None
    return tuple(Side(pool, pool_step_model(scenario, pool),
                      pool_kv_capacity(scenario.model, pool)) for pool in pools)


def fleet_pools(scenario: Scenario, each: tuple[Side, ...], exact: bool) -> FleetPools:
    """The engine's pools, with the deployment's split."""
    specs = scenario.deployment.pools
    assert specs is not None  # fleet sides exist only for a deployment with pools
    return FleetPools(tuple(ServingPool(pool_engine_config(scenario, side, exact),
                                        side.step_model, spec.max_prompt_tokens)
                            for side, spec in zip(each, specs, strict=True)),
                      scenario.deployment.pool_split)


def shortest_token_over(each: Sequence[Side], tokens_per_step: float = 1.0) -> float:
    """The shortest output token of any of the pools (`_shortest_token_s`)."""
    return min(_shortest_token_s(side.step_model, tokens_per_step) for side in each)


def limits_over(each: Sequence[Side], max_requests: int,
                tokens_per_step: float = 1.0) -> PoolLimits:
    """A closed loop's pool sizing over several pools: the shortest token of any, and the
    smallest KV cache (what every pool could hold)."""
    return PoolLimits(shortest_token_over(each, tokens_per_step),
                      min(side.kv_capacity_tokens for side in each) - KV_BLOCK_TOKENS,
                      max_requests)


def fleet_step_facts(scenario: Scenario, each: tuple[Side, ...], prompt_tokens: np.ndarray,
                     output_tokens: np.ndarray) -> StepFacts:
    """`step_facts` of pools on different GPUs: the mix, no one-replica saturation (the
    replicas differ, so the capacity-based prices and headroom are left out), and the
    model's demands on all the pools' GPUs together (`mean_demands`)."""
    return StepFacts(Mix.of(prompt_tokens, output_tokens), None, mean_demands(
        [(demands(scenario.model, side.pool.gpu, side.pool.layout.dtype), side.pool.gpus)
         for side in each]))
