"""A run's result: per-request columns, the flat record of its numbers, and the nested
`--json` document rendered from that record.

The numbers are computed in `sim.metrics.record`; this module gathers the facts that takes
from the scenario, and renders the record under the keys and in the order the `--json`
contract fixes. The simulator's wall-clock time is kept apart (`Timing`), so that the same
scenario and seed give equal records however fast the machine was.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from sim.engine import EngineResult
from sim.metrics import latency as metrics
from sim.metrics.pools import PoolFacts, gpu_hour_usd, pool_figures
from sim.metrics.record import FleetFacts, RunFacts, RunRecord, Window, build_record
from sim.provenance import stamp
from sim.runner.build import (
    Side,
    Sides,
    fleet_step_facts,
    pooled_step_facts,
    step_facts,
    tokens_per_step,
)
from sim.scenario import Scenario
from sim.scenario.disaggregation import Pool
from sim.scenario.schema import Cost
from sim.steptime.model import StepTimeModel
from sim.workload import Workload


@dataclass(frozen=True)
class Timing:
    """How long the engine took on this machine: the one part of a result that is not a
    function of the scenario and the seed."""

    wall_s: float
    requests_per_wall_s: float | None  # None for an instant run (no time to divide by)

    @classmethod
    def of(cls, wall_s: float, requests: int) -> Timing:
        return cls(wall_s, requests / wall_s if wall_s > 0 else None)


@dataclass(frozen=True)
class Result:
    """One run: the record of its numbers, how long it took, and what they were computed
    from (the scenario and per-request columns, for callers that need more than the record:
    per-minute SLO series, queue lengths, windowed throughput)."""

    scenario: Scenario
    seed: int
    workload: Workload
    engine: EngineResult
    latencies: metrics.Latencies
    measured: np.ndarray  # bool per request: arrived inside the metrics window
    record: RunRecord
    timing: Timing
    # A session workload's counts (`sim.workload.sessions.summary`); None for single turns.
    sessions: dict[str, Any] | None = None
    # A heterogeneous fleet's figures per pool (`sim.metrics.pools.pool_figures`); None
    # without `deployment.pools`.
    pools: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The `--json` document (a new one each call: the caller may change it); a session
        workload's adds `sessions`, a fleet of pools `pools`."""
        doc = render(self.record, self.timing, self.scenario)
        if self.sessions is not None:
            doc["sessions"] = copy.deepcopy(self.sessions)
        if self.pools is not None:
            doc["pools"] = copy.deepcopy(self.pools)
        return doc


def build(scenario: Scenario, seed: int, workload: Workload, engine: EngineResult,
          step_model: StepTimeModel, kv_capacity_tokens: int, wall_s: float,
          exact: bool, window_start_s: float | None = None, both: Sides | None = None,
          each: tuple[Side, ...] | None = None) -> Result:
    """`window_start_s`: where the metrics window begins when the run chose it (a detected
    warm-up); None: at the scenario's warmup_s. `both`: a disaggregated fleet's pools
    (`step_model` and `kv_capacity_tokens` are then the prefill pool's); `each`: a
    heterogeneous fleet's pools (they are then the first pool's)."""
    start_s = scenario.warmup_s if window_start_s is None else window_start_s
    window = Window(start_s, scenario.duration_s)
    measured = window.holds(workload.arrival_s)
    mixed = measured if measured.any() else np.ones(len(workload), dtype=bool)
    prompts, outputs = workload.prompt_tokens[mixed], workload.output_tokens[mixed]
    lat = metrics.latencies(workload.arrival_s, engine.admit_s, engine.first_token_s,
                            engine.finish_s, workload.output_tokens)
    fleet = fleet_facts(scenario, kv_capacity_tokens, both, each)
    if both is not None:
        step = pooled_step_facts(scenario, both, prompts, outputs)
    elif each is not None:
        step = fleet_step_facts(scenario, each, prompts, outputs)
    else:
        step = step_facts(scenario, step_model, kv_capacity_tokens, prompts, outputs)
    record = build_record(
        run=RunFacts(scenario.name, seed, exact, scenario.step_time_scale,
                     scenario.warmup_auto),
        fleet=fleet, profile=step_model.provenance, window=window, slo=scenario.slo,
        cost=_fleet_cost(scenario, fleet.pools), workload=workload, engine=engine, lat=lat,
        step=step)
    pools = None if each is None else pool_figures(
        fleet.pools, engine, window.length_s, measured, lat,
        scenario.cost.rental_gpu_hour_usd)
    return Result(scenario, seed, workload, engine, lat, measured, record,
                  Timing.of(wall_s, len(workload)), pools=pools)


def _fleet_cost(scenario: Scenario, pools: tuple[PoolFacts, ...]) -> Cost:
    """The scenario's cost, its rental price replaced by the pools' prices weighted by
    their GPUs where a pool prices its own (`sim.metrics.pools.gpu_hour_usd`)."""
    cost = scenario.cost
    if all(pool.gpu_hour_usd is None for pool in pools):
        return cost
    rental = cost.rental_gpu_hour_usd
    assert rental is not None  # a pool's price needs a rental cost (sim.scenario)
    return Cost(gpu_hour_usd=gpu_hour_usd(pools, rental))


def fleet_facts(scenario: Scenario, kv_capacity_tokens: int,
                both: Sides | None = None, each: tuple[Side, ...] | None = None) -> FleetFacts:
    """The fleet as configured. Disaggregated (`both`), its replicas and GPUs are both
    pools'; its layout, GPU, KV capacity, scheduler and router the decode pool's, which
    holds each request the longest (the `disaggregation` block has both pools). With
    pools (`each`), its replicas and GPUs are every pool's, its GPU the pools' GPUs
    joined by "+", and its layout, KV capacity, scheduler and router the first pool's
    (the `pools` list has each)."""
    deployment = scenario.deployment
    facts = FleetFacts(
        gpu_name=scenario.gpu.name, model_name=scenario.model.name,
        replicas=deployment.replicas, tensor_parallel=deployment.tensor_parallel,
        gpus_per_replica=scenario.gpus_per_replica, gpus=scenario.gpu_count,
        expert_parallel=deployment.expert_parallel,
        data_parallel_attention=deployment.data_parallel_attention,
        engine=deployment.engine, kv_cache_dtype=scenario.layout.kv_cache_dtype,
        kv_capacity_tokens_per_replica=kv_capacity_tokens,
        scheduler=deployment.scheduler.policy, router=deployment.router)
    if each is not None:
        first = each[0].pool
        names = dict.fromkeys(side.pool.gpu.name for side in each)
        return replace(
            _shaped(facts, first, each[0].kv_capacity_tokens), gpu_name="+".join(names),
            replicas=sum(side.pool.replicas for side in each),
            pools=tuple(_facts_of(side) for side in each))
    if both is None:
        return facts
    decode = both.decode.pool
    return replace(
        _shaped(facts, decode, both.decode.kv_capacity_tokens), gpu_name=decode.gpu.name,
        replicas=both.prefill.pool.replicas + decode.replicas,
        pools=(_facts_of(both.prefill), _facts_of(both.decode)))


def _shaped(facts: FleetFacts, pool: Pool, kv_capacity_tokens: int) -> FleetFacts:
    """`facts` with one pool's layout, KV cache, scheduler and router."""
    layout = pool.layout
    return replace(facts, tensor_parallel=layout.tensor_parallel, gpus_per_replica=layout.gpus,
                   expert_parallel=layout.expert_parallel,
                   data_parallel_attention=layout.data_parallel_attention,
                   kv_cache_dtype=layout.kv_cache_dtype,
                   kv_capacity_tokens_per_replica=kv_capacity_tokens,
                   scheduler=pool.scheduler.policy, router=pool.router)


def _facts_of(side: Side) -> PoolFacts:
    pool = side.pool
    return PoolFacts(pool.role, pool.replicas, pool.layout.gpus, side.kv_capacity_tokens,
                     pool.gpu.name, pool.gpu_hour_usd)


def render(r: RunRecord, timing: Timing, scenario: Scenario) -> dict[str, Any]:
    """The record as the nested `--json` document: keys, order and values are a contract
    (README, DESIGN.md); tests compare them key by key."""
    return {
        "scenario": r.scenario_name,
        "seed": r.seed,
        "requests": _requests(r),
        "latency_s": {
            "ttft": _stats(r.ttft_mean_s, r.ttft_p50_s, r.ttft_p90_s, r.ttft_p99_s),
            "tpot": _stats(r.tpot_mean_s, r.tpot_p50_s, r.tpot_p90_s, r.tpot_p99_s),
            "e2e": _stats(r.e2e_mean_s, r.e2e_p50_s, r.e2e_p90_s, r.e2e_p99_s),
            "queue": _stats(r.queue_mean_s, r.queue_p50_s, r.queue_p90_s, r.queue_p99_s),
            "itl": _stats(r.itl_mean_s, r.itl_p50_s, r.itl_p90_s, r.itl_p99_s),
        },
        "throughput": {
            "requests_per_s": r.requests_per_s,
            "input_tokens_per_s": r.input_tokens_per_s,
            "output_tokens_per_s": r.output_tokens_per_s,
            "goodput_tokens_per_s": r.goodput_tokens_per_s,
        },
        "utilization": {
            "busy_fraction": r.busy_fraction,
            "batch_size_mean": r.batch_size_mean,
            "kv_cache_fraction_mean": r.kv_cache_fraction_mean,
            "prefill_fraction_of_busy": r.prefill_fraction_of_busy,
            "offered_requests_per_s": r.offered_requests_per_s,
            "capacity_requests_per_s": r.capacity_requests_per_s,
            "load_fraction": r.load_fraction,
            "capacity_used_fraction": r.capacity_used_fraction,
            "mfu": r.mfu,
            "mbu": r.mbu,
        },
        "slo": {
            "attainment": r.slo_attainment,
            "met": r.slo_met,
            "ttft_met": r.slo_ttft_met,
            "tpot_met": r.slo_tpot_met,
            "itl_met": r.slo_itl_met,
            "attainment_requeued": r.slo_attainment_requeued,
            "ttft_s": r.slo_ttft_s,
            "tpot_s": r.slo_tpot_s,
            "itl_s": r.slo_itl_s,
            "percentile": r.slo_percentile,
        },
        "cost": _cost(r),
        "availability": {
            "fraction": r.availability_fraction,
            "replicas_working_mean": r.replicas_working_mean,
            "replicas_billed_mean": r.replicas_billed_mean,
            "failures": r.failures,
            "spot_preemptions": r.spot_preemptions,
            "outages": r.outages,
            "scale_ups": r.scale_ups,
            "scale_downs": r.scale_downs,
            "provisioning_failures": r.provisioning_failures,
        },
        "tokens": {
            "input": r.completed_input_tokens,
            "output": r.completed_output_tokens,
            "generated": r.generated_tokens,
            "prefilled": r.prefilled_tokens,
        },
        **_prefix_cache(r),
        **_speculative(scenario),
        **_disaggregation(r),
        "fleet": {
            "gpu": r.gpu_name,
            "model": r.model_name,
            "replicas": r.fleet_replicas,
            "tensor_parallel": r.tensor_parallel,
            "gpus_per_replica": r.gpus_per_replica,
            "expert_parallel": r.expert_parallel,
            "data_parallel_attention": r.data_parallel_attention,
            "engine": r.engine,
            "kv_cache_dtype": r.kv_cache_dtype,
            "gpus": r.fleet_gpus,
            "kv_capacity_tokens_per_replica": r.kv_capacity_tokens_per_replica,
            "scheduler": r.scheduler,
            "router": r.router,
        },
        "profile": {
            "name": r.profile_name,
            "source": r.profile_source,
            "fit_error_pct": r.profile_fit_error_pct,
            "step_time_scale": r.step_time_scale,
            "details": copy.deepcopy(r.profile_details),
        },
        "sim": {
            "wall_s": timing.wall_s,
            "events": r.events,
            "requests_per_wall_s": timing.requests_per_wall_s,
            "end_s": r.end_s,
            "window_s": [r.window_start_s, r.window_end_s],
            "mode": r.sim_mode,
            # "auto" when the window's start was detected (window_s[0] is where), else the
            # warm-up given in seconds
            "warmup": "auto" if r.warmup_auto else r.window_start_s,
        },
        # Which code wrote this and the scenario as validated (defaults filled in), so a
        # report can show what was run without the YAML file.
        "provenance": {**stamp(), "scenario": scenario.model_dump(mode="json",
                                                                 exclude_none=True)},
    }


def _requests(r: RunRecord) -> dict[str, Any]:
    return {
        "arrived": r.requests_arrived,
        "completed": r.requests_completed,
        "unfinished": r.requests_unfinished,
        "preempted": r.preemptions,
        "preempted_requests": r.requests_preempted,
        "rejected": r.requests_rejected,
        "measured": r.requests_measured,
        "capped": {"prompt_tokens": r.prompt_tokens_capped,
                   "output_tokens": r.output_tokens_capped},
        "floored": {"prompt_tokens": r.prompt_tokens_floored,
                    "output_tokens": r.output_tokens_floored},
        "requeued": r.requeues,
        "requeued_requests": r.requests_requeued,
    }


def _stats(mean: float | None, p50: float | None, p90: float | None,
           p99: float | None) -> dict[str, float | None]:
    return {"mean": mean, "p50": p50, "p90": p90, "p99": p99}


def _prefix_cache(r: RunRecord) -> dict[str, Any]:
    """The `prefix_cache` block (a contract key, so always there: without a cache nothing is
    reused): the hit ratio and hit tokens of the requests whose prefill completed in the
    window; the blocks evicted from the GPUs and the tokens copied back from the hosts'
    memory over the whole run."""
    if r.prefix_hit_tokens is None:
        return {"prefix_cache": {"enabled": False, "hit_ratio": 0.0, "hit_tokens": 0,
                                 "evicted_blocks": 0, "reloaded_tokens": 0}}
    return {"prefix_cache": {"enabled": True, "hit_ratio": r.prefix_hit_ratio,
                             "hit_tokens": r.prefix_hit_tokens,
                             "evicted_blocks": r.prefix_evicted_blocks,
                             "reloaded_tokens": r.prefix_reloaded_tokens}}


def _speculative(scenario: Scenario) -> dict[str, Any]:
    """The `speculative` block of a run with speculative decoding (else nothing): its
    settings and the tokens a decoding sequence gains per step on average (τ)."""
    spec = scenario.deployment.speculative
    if spec is None:
        return {}
    rates = spec.acceptance_rate
    draft = {} if spec.draft_model is None else {"draft_model": spec.draft_model.name}
    return {"speculative": {"method": spec.method, "num_tokens": spec.num_tokens,
                            "acceptance_rate": list(rates) if isinstance(rates, list)
                            else rates, **draft,
                            "tokens_per_step": tokens_per_step(scenario)}}


def _disaggregation(r: RunRecord) -> dict[str, Any]:
    """The `disaggregation` block of a run with a prefill and a decode pool (else nothing):
    each pool's fleet and use over the window, and the KV transfers (seconds from a
    measured request's first token to its KV landing on the decode side; bytes of the
    whole run)."""
    if r.prefill_pool_replicas is None:
        return {}
    pools = {role: {key: getattr(r, f"{role}_pool_{key}")
                    for key in ("replicas", "gpus", "busy_fraction", "batch_size_mean",
                                "kv_cache_fraction_mean")}
             for role in ("prefill", "decode")}
    return {"disaggregation": {**pools, "kv_transfer": {
        "mean_s": r.kv_transfer_mean_s, "p99_s": r.kv_transfer_p99_s,
        "bytes": r.kv_transfer_bytes}}}


def _by_kind(r: RunRecord, input_usd: float | None, cached_usd: float | None,
             **others: float | None) -> dict[str, float | None]:
    """Prices per token kind; `cached_input` follows `input` in a run with a prefix cache
    (null when no request reused a prefix in the window) and is absent without one."""
    cached = {} if r.prefix_hit_tokens is None else {"cached_input": cached_usd}
    return {"input": input_usd, **cached, **others}


def _cost(r: RunRecord) -> dict[str, Any]:
    return {
        "fleet_usd_per_hour": r.fleet_usd_per_hour,
        "window_usd": r.window_usd,
        "usd_per_million_tokens": _by_kind(
            r, r.usd_per_million_input, r.usd_per_million_cached_input,
            output=r.usd_per_million_output, blended=r.usd_per_million_blended,
            goodput=r.usd_per_million_goodput),
        "usd_per_million_tokens_at_capacity": _by_kind(
            r, r.usd_per_million_input_at_capacity,
            r.usd_per_million_cached_input_at_capacity,
            output=r.usd_per_million_output_at_capacity,
            blended=r.usd_per_million_blended_at_capacity),
        "usd_per_million_tokens_capacity_split": _by_kind(
            r, r.usd_per_million_input_capacity_split,
            r.usd_per_million_cached_input_capacity_split,
            output=r.usd_per_million_output_capacity_split),
        "model": r.cost_model,
        "gpu_hour_usd": r.gpu_hour_usd,
        "gpu_hour_usd_by_item": r.gpu_hour_usd_by_item,
        "facility_w_per_gpu": r.facility_w_per_gpu,
        "energy_j_per_token": r.energy_j_per_token,
        "gpu_hours": r.gpu_hours,
    }
