"""One run's numbers as a flat, typed record, computed from plain values.

`build_record` turns what a run produced (per-request columns, the engine's replica counters
and fleet timeline) and what it was judged against (the metrics window, the SLO, the cost
spec, facts about the fleet and its step-time profile) into a `RunRecord`. Everything in it
is a function of the scenario and the seed, so two runs with the same seed have equal
records; the simulator's own wall-clock time is not in it (the runner keeps that apart).

The record is what code reads (runs.csv, the planner, stress tests, validation); the nested
`--json` document is rendered from it by the runner. Field names carry their units.

Counting rules (see `latency` and `cost` for the formulas):
* latency statistics and SLO attainment use the requests that *arrived* in the window,
  except inter-token latency (`itl_*`): every gap between two tokens of a request that
  *ended* in the window (`sim.metrics.latency`);
* throughput and cost per token use the tokens the engine processed inside the window:
  prompt tokens prefilled for the first time (recomputation after an eviction is not new
  input) and tokens generated, each counted at the end of the step that produced it. A run
  that starts empty therefore shows the rate its fleet delivers in the window, not the rate
  at which requests that arrived earlier happen to finish (which, for long outputs, lags
  for several end-to-end times);
* `requests_per_s` counts the requests that *finished* in the window, as a request is
  judged whole; goodput is the window's delivered tokens × the share of the finished
  requests' tokens that belonged to requests meeting both SLO targets (so it equals the
  delivered tokens when every request met them, and is 0 when none did);
* with a prefix cache, a request's prompt counts in the window when its prefill
  completes, at its first token (window start ≤ first_token_s < window end), as its prompt
  tokens do: the hit ratio is the cached tokens of those requests over their prompt tokens,
  and the cached-input price charges the prefill seconds their reuse still cost
  (`EngineResult.cached_prefill_s`, summed over the same requests). Cached tokens are
  delivered tokens: blended and goodput cost and energy per token count them beside the
  fresh input and the output (`input_tokens_per_s` stays the fresh prompt tokens only).
  Evicted blocks cover the whole run;
* `requests_*` counts and the `completed_*_tokens` totals cover the whole run;
* busy time, batch and KV integrals are the replica counters, clipped to the window;
* disaggregated serving (`FleetFacts.pools`): the GPUs paid for are both pools' (the fleet
  does not change), `busy_fraction` is both pools' busy GPU-seconds over their paid
  GPU-seconds, `kv_cache_fraction_mean` both pools' KV held over their capacity,
  `batch_size_mean` the decode pool's (a prefill replica's batch lasts a step or a few);
  each pool's own figures are beside them (`prefill_pool_*`, `decode_pool_*`). The
  phase-time split prices input by the prefill pool's busy GPU-seconds and output by the
  decode pool's; the capacity-based prices and headroom, which need one replica's
  saturation, are None. KV transfer times are those of the measured requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from sim.engine.records import EngineResult, FleetTimeline
from sim.metrics import cost as cost_model
from sim.metrics import latency
from sim.metrics import pools as pool_figures
from sim.metrics.headroom import StepFacts, headroom
from sim.metrics.intensity import WindowWork
from sim.metrics.pools import NO_POOLS, PoolFacts
from sim.metrics.reuse import Reuse, reuse_of
from sim.metrics.work import Work, utilization, work_of
from sim.provenance import Provenance
from sim.scenario.schema import Cost, Slo
from sim.workload import Workload


@dataclass(frozen=True)
class RunRecord:
    """Every number a run reports, flat, with units in the names (None: nothing to measure)."""

    # the run
    scenario_name: str
    seed: int
    # requests (whole run)
    requests_arrived: int
    requests_completed: int
    requests_unfinished: int
    preemptions: int  # evictions (recomputed later), summed over requests
    requests_preempted: int  # requests evicted at least once
    requests_rejected: int  # larger than a replica's whole KV cache: never admitted
    requests_measured: int  # arrived inside the metrics window
    prompt_tokens_capped: int  # lengths cut to the distribution's max_tokens
    output_tokens_capped: int
    prompt_tokens_floored: int  # continuous samples raised to 1 token
    output_tokens_floored: int
    requeues: int  # hand-backs by a failed or reclaimed replica, summed over requests
    requests_requeued: int  # requests handed back at least once
    # latency of the requests that arrived in the window
    ttft_mean_s: float | None
    ttft_p50_s: float | None
    ttft_p90_s: float | None
    ttft_p99_s: float | None
    tpot_mean_s: float | None
    tpot_p50_s: float | None
    tpot_p90_s: float | None
    tpot_p99_s: float | None
    e2e_mean_s: float | None
    e2e_p50_s: float | None
    e2e_p90_s: float | None
    e2e_p99_s: float | None
    queue_mean_s: float | None
    queue_p50_s: float | None
    queue_p90_s: float | None
    queue_p99_s: float | None
    # gaps between consecutive tokens that ended in the window (binned: within 0.77%)
    itl_mean_s: float | None
    itl_p50_s: float | None
    itl_p90_s: float | None
    itl_p99_s: float | None
    # throughput in the window: tokens processed in it, requests finished in it
    requests_per_s: float
    input_tokens_per_s: float
    output_tokens_per_s: float
    goodput_tokens_per_s: float  # delivered tokens × the SLO-met share of finished ones
    # utilisation over the window
    busy_fraction: float
    batch_size_mean: float  # time-weighted over busy time
    kv_cache_fraction_mean: float
    prefill_fraction_of_busy: float
    # headroom (sim.metrics.headroom): what the fleet could deliver, and how hard it worked
    offered_requests_per_s: float  # arrivals in the window / its length
    capacity_requests_per_s: float | None  # closed-form saturation throughput at the mix
    load_fraction: float | None  # offered / capacity: below 1 is headroom
    capacity_used_fraction: float  # full-load GPU-seconds of the delivered tokens / paid
    mfu: float | None  # model FLOP utilisation of the paid GPU time
    mbu: float | None  # model bandwidth utilisation of the paid GPU time
    # SLO
    slo_attainment: float | None  # share of measured requests within both targets
    slo_met: bool | None  # joint: at least `percentile` % of measured requests met both targets
    slo_ttft_met: bool | None  # marginal: the TTFT percentile within its target
    slo_tpot_met: bool | None  # marginal: the TPOT percentile within its target
    slo_itl_met: bool | None  # marginal: the ITL percentile of all gaps (None: no itl_s)
    slo_attainment_requeued: float | None  # the same, of measured requests handed back
    slo_ttft_s: float
    slo_tpot_s: float
    slo_itl_s: float | None  # a target on each request's longest gap (None: none)
    slo_percentile: float
    # cost
    fleet_usd_per_hour: float
    window_usd: float
    usd_per_million_input: float | None  # fresh prompt tokens (cached ones have their own)
    usd_per_million_cached_input: float | None  # None: no prefix cache, or no hit in the window
    usd_per_million_output: float | None
    usd_per_million_blended: float | None
    usd_per_million_goodput: float | None
    # capacity-based (sim.metrics.cost): the tokens' price at full load, and the window's
    # cost split pro rata to their full-load GPU-seconds
    usd_per_million_input_at_capacity: float | None
    usd_per_million_cached_input_at_capacity: float | None
    usd_per_million_output_at_capacity: float | None
    usd_per_million_blended_at_capacity: float | None
    usd_per_million_input_capacity_split: float | None
    usd_per_million_cached_input_capacity_split: float | None
    usd_per_million_output_capacity_split: float | None
    cost_model: str  # rental | tco
    gpu_hour_usd: float
    gpu_hour_usd_rental: float | None  # the items of gpu_hour_usd; None where one does not apply
    gpu_hour_usd_capex: float | None
    gpu_hour_usd_maintenance: float | None
    gpu_hour_usd_hosting: float | None
    gpu_hour_usd_power: float | None
    facility_w_per_gpu: float | None  # None when renting: the watts are unknown
    energy_j_per_token: float | None
    gpu_hours: float  # paid GPU-hours of the window
    # availability (replica counts are time means over the window)
    availability_fraction: float | None  # working / due replicas
    replicas_working_mean: float
    replicas_billed_mean: float
    failures: int
    spot_preemptions: int
    outages: int
    scale_ups: int
    scale_downs: int
    provisioning_failures: int  # autoscaler's requests for a replica that got no capacity
    # tokens (whole run)
    completed_input_tokens: int  # prompt tokens of the requests that completed
    completed_output_tokens: int
    generated_tokens: int  # decoded by the replicas
    prefilled_tokens: int  # prefilled by the replicas, recomputation included
    # prefix cache (None: the run had none): requests whose first token came in the window
    prefix_hit_ratio: float | None  # their cached prompt tokens / their prompt tokens
    prefix_hit_tokens: int | None  # their cached prompt tokens
    prefix_evicted_blocks: int | None  # whole run, summed over replicas
    prefix_reloaded_tokens: int | None  # whole run: copied back from the host tier
    # disaggregated serving (None: aggregated): each pool over the window, and the seconds
    # from the measured requests' first tokens to their KV landing on the decode side
    prefill_pool_replicas: int | None
    prefill_pool_gpus: int | None
    prefill_pool_busy_fraction: float | None
    prefill_pool_batch_size_mean: float | None
    prefill_pool_kv_cache_fraction_mean: float | None
    decode_pool_replicas: int | None
    decode_pool_gpus: int | None
    decode_pool_busy_fraction: float | None
    decode_pool_batch_size_mean: float | None
    decode_pool_kv_cache_fraction_mean: float | None
    kv_transfer_mean_s: float | None
    kv_transfer_p99_s: float | None
    kv_transfer_bytes: float | None  # every transfer of the run
    # the fleet as configured
    gpu_name: str
    model_name: str
    fleet_replicas: int
    tensor_parallel: int
    gpus_per_replica: int  # tensor_parallel × data_parallel_attention
    expert_parallel: int
    data_parallel_attention: int
    engine: str
    kv_cache_dtype: str  # resolved (never `auto`)
    fleet_gpus: int
    kv_capacity_tokens_per_replica: int
    scheduler: str
    router: str
    # the step-time profile
    profile_name: str
    profile_source: str  # measured-operators | measured | fitted-roofline | roofline | inline
    profile_fit_error_pct: float | None
    step_time_scale: float
    # free-form facts of the profile's fit; left out of the hash, as a mapping cannot be hashed
    profile_details: dict[str, Any] = field(hash=False)
    # the simulation (simulated time only)
    events: int
    end_s: float  # simulated time when the run stopped
    window_start_s: float
    window_end_s: float
    sim_mode: str  # event-skipping | exact
    warmup_auto: bool  # window_start_s was detected (`warmup_s: auto`), not given

    @property
    def gpu_hour_usd_by_item(self) -> dict[str, float]:
        """The items of a GPU-hour that apply, in `cost.COST_ITEMS` order."""
        items = {item: getattr(self, f"gpu_hour_usd_{item}") for item in cost_model.COST_ITEMS}
        return {item: usd for item, usd in items.items() if usd is not None}


RECORD_FIELDS = tuple(f.name for f in fields(RunRecord))


@dataclass(frozen=True)
class Window:
    """The metrics window [start_s, end_s) of simulated time (after warm-up, before drain)."""

    start_s: float
    end_s: float

    @property
    def length_s(self) -> float:
        return self.end_s - self.start_s

    def holds(self, times_s: np.ndarray) -> np.ndarray:
        """Per time: inside the window (NaN, a time never reached, is not)."""
        return (times_s >= self.start_s) & (times_s < self.end_s)


@dataclass(frozen=True)
class RunFacts:
    """What identifies the run, besides what it measured."""

    scenario_name: str
    seed: int
    exact: bool  # decode steps simulated one by one rather than skipped over
    step_time_scale: float  # the factor applied to the profile's step times
    warmup_auto: bool = False  # the window's start was chosen by the steady-state detector


@dataclass(frozen=True)
class FleetFacts:
    """The fleet as configured; a changing fleet's paid replicas are measured instead."""

    gpu_name: str
    model_name: str
    replicas: int
    tensor_parallel: int
    gpus_per_replica: int
    gpus: int
    kv_capacity_tokens_per_replica: int
    scheduler: str
    router: str
    expert_parallel: int
    data_parallel_attention: int
    engine: str
    kv_cache_dtype: str  # resolved (never `auto`)
    # A disaggregated fleet's prefill pool and decode pool, in the engine's replica order
    # (its counters list the prefill replicas first); () for an aggregated one.
    pools: tuple[PoolFacts, ...] = ()


def build_record(*, run: RunFacts, fleet: FleetFacts, profile: Provenance, window: Window,
                 slo: Slo, cost: Cost, workload: Workload, engine: EngineResult,
                 lat: latency.Latencies, step: StepFacts) -> RunRecord:
    """The record of one run; `lat` are the latencies of every request (`latency.latencies`
    of the workload's arrivals and the engine's timestamps), taken rather than recomputed as
    the caller keeps them too; `step` is what the step model says the fleet can do."""
    measured = window.holds(workload.arrival_s)
    completed = np.isfinite(engine.finish_s)
    finished = completed & window.holds(engine.finish_s)
    if lat.worst_gap_s is None and engine.max_gap_s is not None:  # the engine's, if kept
        lat = replace(lat, worst_gap_s=latency.worst_gaps(engine.max_gap_s,
                                                          workload.output_tokens))
    good = finished & latency.slo_attainment(lat, slo.ttft_s, slo.tpot_s, slo.itl_s)
    finished_tokens = float(workload.prompt_tokens[finished].sum()
                            + workload.output_tokens[finished].sum())
    work = work_of(engine.replicas)
    prefilled = window.holds(engine.first_token_s)  # prefill completed inside the window
    reuse = reuse_of(engine, workload.prompt_tokens, prefilled)
    delivered = _delivered(workload, work, good, finished_tokens, int(prefilled.sum()),
                           reuse)
    replicas = _replica_means(engine.timeline, window)
    use = utilization(work, replicas.billed, window.length_s,
                       fleet.kv_capacity_tokens_per_replica)
    gpus = replicas.billed * fleet.gpus_per_replica
    phase_s = (work.prefill_s, work.decode_s)
    pooled = pool_figures.pooled(fleet.pools, engine, window.length_s, measured)
    if pooled is not None:
        gpus, use, phase_s = pooled.gpus, pooled.use, pooled.phase_gpu_s
    price = _price(cost, use.busy_fraction, gpus, window.length_s, phase_s, delivered,
                   step, fleet.gpus_per_replica, reuse)
    room = headroom(step, int(measured.sum()), window.length_s, replicas.working,
                    _enginework_of(work, step), gpus * window.length_s)
    m_lat = latency.subset(lat, measured)
    ttft, tpot = latency.stats(m_lat.ttft_s), latency.stats(m_lat.tpot_s)
    e2e, queue = latency.stats(m_lat.e2e_s), latency.stats(m_lat.queue_s)
    gap_weights, gap_seconds = engine.gaps.since(window.start_s)
    itl = latency.gap_stats(gap_weights, gap_seconds)
    itl_p = (None if slo.itl_s is None
             else latency.gap_percentile(gap_weights, gap_seconds, slo.percentile))
    judged = _slo(m_lat, engine.requeues[measured] > 0, slo, itl_p)
    window_s = window.length_s
    timeline = engine.timeline
    return RunRecord(
        scenario_name=run.scenario_name,
        seed=run.seed,
        requests_arrived=len(workload),
        requests_completed=int(completed.sum()),
        requests_unfinished=int((~completed).sum()),
        preemptions=int(engine.preemptions.sum()),
        requests_preempted=int((engine.preemptions > 0).sum()),
        requests_rejected=int(engine.rejected.sum()),
        requests_measured=int(measured.sum()),
        prompt_tokens_capped=workload.capped["prompt_tokens"],
        output_tokens_capped=workload.capped["output_tokens"],
        prompt_tokens_floored=workload.floored["prompt_tokens"],
        output_tokens_floored=workload.floored["output_tokens"],
        requeues=int(engine.requeues.sum()),
        requests_requeued=int((engine.requeues > 0).sum()),
        ttft_mean_s=ttft.mean, ttft_p50_s=ttft.p50, ttft_p90_s=ttft.p90, ttft_p99_s=ttft.p99,
        tpot_mean_s=tpot.mean, tpot_p50_s=tpot.p50, tpot_p90_s=tpot.p90, tpot_p99_s=tpot.p99,
        e2e_mean_s=e2e.mean, e2e_p50_s=e2e.p50, e2e_p90_s=e2e.p90, e2e_p99_s=e2e.p99,
        queue_mean_s=queue.mean, queue_p50_s=queue.p50, queue_p90_s=queue.p90,
        queue_p99_s=queue.p99,
        itl_mean_s=itl.mean, itl_p50_s=itl.p50, itl_p90_s=itl.p90, itl_p99_s=itl.p99,
        requests_per_s=float(finished.sum()) / window_s,
        input_tokens_per_s=delivered.input_tokens / window_s,
        output_tokens_per_s=delivered.output_tokens / window_s,
        goodput_tokens_per_s=delivered.goodput_tokens / window_s,
        busy_fraction=use.busy_fraction,
        batch_size_mean=use.batch_size_mean,
        kv_cache_fraction_mean=use.kv_cache_fraction_mean,
        prefill_fraction_of_busy=use.prefill_fraction_of_busy,
        offered_requests_per_s=room.offered_requests_per_s,
        capacity_requests_per_s=room.capacity_requests_per_s,
        load_fraction=room.load_fraction,
        capacity_used_fraction=price.capacity.used_fraction,
        mfu=room.mfu,
        mbu=room.mbu,
        slo_attainment=judged.attainment,
        slo_met=judged.met,
        slo_ttft_met=judged.ttft_met,
        slo_tpot_met=judged.tpot_met,
        slo_itl_met=judged.itl_met,
        slo_attainment_requeued=judged.attainment_requeued,
        slo_ttft_s=slo.ttft_s,
        slo_tpot_s=slo.tpot_s,
        slo_itl_s=slo.itl_s,
        slo_percentile=slo.percentile,
        fleet_usd_per_hour=price.tokens.fleet_usd_per_hour,
        window_usd=price.tokens.window_usd,
        usd_per_million_input=price.tokens.input_usd_per_million,
        usd_per_million_cached_input=price.tokens.cached_input_usd_per_million,
        usd_per_million_output=price.tokens.output_usd_per_million,
        usd_per_million_blended=price.tokens.blended_usd_per_million,
        usd_per_million_goodput=cost_model.per_million(price.tokens.window_usd,
                                                       delivered.goodput_tokens),
        usd_per_million_input_at_capacity=price.capacity.at_capacity_input,
        usd_per_million_cached_input_at_capacity=price.capacity.at_capacity_cached_input,
        usd_per_million_output_at_capacity=price.capacity.at_capacity_output,
        usd_per_million_blended_at_capacity=price.capacity.at_capacity_blended,
        usd_per_million_input_capacity_split=price.capacity.split_input,
        usd_per_million_cached_input_capacity_split=price.capacity.split_cached_input,
        usd_per_million_output_capacity_split=price.capacity.split_output,
        cost_model="rental" if cost.tco is None else "tco",
        gpu_hour_usd=price.hour.usd,
        gpu_hour_usd_rental=price.hour.usd_by_item.get("rental"),
        gpu_hour_usd_capex=price.hour.usd_by_item.get("capex"),
        gpu_hour_usd_maintenance=price.hour.usd_by_item.get("maintenance"),
        gpu_hour_usd_hosting=price.hour.usd_by_item.get("hosting"),
        gpu_hour_usd_power=price.hour.usd_by_item.get("power"),
        facility_w_per_gpu=price.hour.facility_w,
        energy_j_per_token=price.energy_j_per_token,
        gpu_hours=gpus * window_s / cost_model.SECONDS_PER_HOUR,
        availability_fraction=replicas.working / replicas.due if replicas.due > 0 else None,
        replicas_working_mean=replicas.working,
        replicas_billed_mean=replicas.billed,
        failures=timeline.failures,
        spot_preemptions=timeline.spot_preemptions,
        outages=timeline.outages,
        scale_ups=timeline.scale_ups,
        scale_downs=timeline.scale_downs,
        provisioning_failures=timeline.provisioning_failures,
        completed_input_tokens=int(workload.prompt_tokens[completed].sum()),
        completed_output_tokens=int(workload.output_tokens[completed].sum()),
        generated_tokens=work.generated_tokens,
        prefilled_tokens=work.prefilled_tokens,
        prefix_hit_ratio=reuse.hit_ratio if reuse is not None else None,
        prefix_hit_tokens=reuse.hit_tokens if reuse is not None else None,
        prefix_evicted_blocks=reuse.evicted_blocks if reuse is not None else None,
        prefix_reloaded_tokens=reuse.reloaded_tokens if reuse is not None else None,
        **(NO_POOLS if pooled is None else pooled.fields),
        gpu_name=fleet.gpu_name,
        model_name=fleet.model_name,
        fleet_replicas=fleet.replicas,
        tensor_parallel=fleet.tensor_parallel,
        gpus_per_replica=fleet.gpus_per_replica,
        expert_parallel=fleet.expert_parallel,
        data_parallel_attention=fleet.data_parallel_attention,
        engine=fleet.engine,
        kv_cache_dtype=fleet.kv_cache_dtype,
        fleet_gpus=fleet.gpus,
        kv_capacity_tokens_per_replica=fleet.kv_capacity_tokens_per_replica,
        scheduler=fleet.scheduler,
        router=fleet.router,
        profile_name=profile.name,
        profile_source=profile.source,
        profile_fit_error_pct=profile.fit_error_pct,
        step_time_scale=run.step_time_scale,
        profile_details=dict(profile.details),
        events=engine.events,
        end_s=engine.end_s,
        window_start_s=window.start_s,
        window_end_s=window.end_s,
        sim_mode="exact" if run.exact else "event-skipping",
        warmup_auto=run.warmup_auto,
    )


@dataclass(frozen=True)
class _Delivered:
    """Tokens delivered inside the window (floats: they are divided)."""

    input_tokens: float  # prompt tokens prefilled for the first time
    output_tokens: float  # tokens generated
    goodput_tokens: float  # all delivered × the SLO-met share of finished requests' tokens
    requests: float  # first tokens in the window: the output tokens no decode step made
    cached_tokens: float = 0.0  # prompt tokens served from a prefix cache

    @property
    def all_tokens(self) -> float:
        """Every token delivered: fresh input, cached input and output."""
        return self.input_tokens + self.cached_tokens + self.output_tokens


def _delivered(workload: Workload, work: Work, good: np.ndarray, finished_tokens: float,
               first_tokens: int, reuse: Reuse | None) -> _Delivered:
    prompt, output = workload.prompt_tokens, workload.output_tokens
    input_tokens = float(work.window_prefill_tokens)
    output_tokens = float(work.window_generated_tokens)
    cached_tokens = 0.0 if reuse is None else float(reuse.hit_tokens)
    met = float(prompt[good].sum() + output[good].sum())
    share = met / finished_tokens if finished_tokens > 0 else 0.0
    all_tokens = input_tokens + cached_tokens + output_tokens
    return _Delivered(input_tokens, output_tokens, all_tokens * share, float(first_tokens),
                      cached_tokens)


def _enginework_of(work: Work, step: StepFacts) -> WindowWork:
    """The window's work that MFU and MBU count: the engine's counts of the steps that ended
    in it (recomputed prompts included: the GPUs did that work too), prefill attention pairs
    at the mix's pairs per prompt token, KV tokens read as the mean KV held while busy ×
    the steps (each step reads its decoding sequences' cache once)."""
    prefilled = float(work.window_prefill_tokens + work.window_recomputed_tokens)
    mix = step.mix
    pairs_per_token = 0.0 if mix is None else mix.prompt_attn_pairs / max(mix.prompt_tokens,
                                                                          1.0)
    kv_held = work.kv_token_s / work.busy_s if work.busy_s > 0 else 0.0
    return WindowWork(
        prefill_tokens=prefilled,
        generated_tokens=float(work.window_generated_tokens),
        steps=float(work.window_steps),
        prefill_attn_pairs=prefilled * pairs_per_token,
        kv_tokens_read=kv_held * work.window_steps,
    )


@dataclass(frozen=True)
class _ReplicaMeans:
    """Replica counts averaged over the window: the whole fleet when it is static."""

    billed: float  # paid for: provisioned replica-time when the fleet changes
    working: float
    due: float  # should have been working (failed, reclaimed and out ones included)


def _replica_means(timeline: FleetTimeline, window: Window) -> _ReplicaMeans:
    def mean(values: np.ndarray) -> float:
        return latency.step_mean(timeline.time_s, values, window.start_s, window.end_s)

    return _ReplicaMeans(mean(timeline.billed), mean(timeline.working), mean(timeline.due))


_NO_CAPACITY = cost_model.CapacityPrice(0.0, None, None, None, None, None)


@dataclass(frozen=True)
class _Price:
    hour: cost_model.GpuHour
    tokens: cost_model.TokenCost
    energy_j_per_token: float | None
    capacity: cost_model.CapacityPrice


def _price(cost: Cost, busy_fraction: float, gpus: float, window_s: float,
           phase_s: tuple[float, float], delivered: _Delivered, step: StepFacts,
           gpus_per_replica: int, reuse: Reuse | None) -> _Price:
    """What the window cost and what that makes a token cost. Owned GPUs' power depends on
    the busy fraction or the capacity used, so the GPU-hour is priced at this run's load.
    `phase_s`: the busy seconds the phase-time split charges to input and to output.
    A prefix cache's reuse is priced at its measured prefill seconds (× GPUs per replica
    for the capacity split: those seconds ran on every GPU of the replica)."""
    sat = step.saturation
    prefill_gpu_s = 0.0 if sat is None else sat.prefill_s_per_token * gpus_per_replica
    decode_gpu_s = 0.0 if sat is None else sat.decode_s_per_token * gpus_per_replica
    cached_prefill_s = 0.0 if reuse is None else reuse.prefill_s
    cached_gpu_s = cached_prefill_s * gpus_per_replica
    paid_gpu_s = gpus * window_s
    full_load_s = cost_model.full_load_gpu_s(prefill_gpu_s, decode_gpu_s, delivered.input_tokens,
                                             delivered.output_tokens, delivered.requests,
                                             cached_gpu_s)
    hour = cost_model.gpu_hour(cost, busy_fraction,
                               full_load_s / paid_gpu_s if paid_gpu_s > 0 else 0.0)
    tokens = cost_model.token_cost(gpus, hour.usd, window_s, *phase_s,
                                   delivered.input_tokens, delivered.output_tokens,
                                   cached_prefill_s, delivered.cached_tokens)
    energy = cost_model.energy_j_per_token(hour.facility_w, gpus,
                                           delivered.all_tokens / window_s)
    # No saturation (no request, or a disaggregated fleet): no full-load price to quote.
    capacity = _NO_CAPACITY if sat is None else cost_model.capacity_price(
        hour.usd, paid_gpu_s, prefill_gpu_s, decode_gpu_s, delivered.input_tokens,
        delivered.output_tokens, delivered.requests, cached_gpu_s, delivered.cached_tokens)
    return _Price(hour, tokens, energy, capacity)


@dataclass(frozen=True)
class _Judged:
    attainment: float | None
    met: bool | None
    ttft_met: bool | None
    tpot_met: bool | None
    itl_met: bool | None
    attainment_requeued: float | None


def _slo(measured: latency.Latencies, requeued: np.ndarray, slo: Slo,
         itl_p_s: float | None) -> _Judged:
    """The SLO verdicts on the measured requests (`requeued`: which of them were handed
    back; `itl_p_s`: the window's ITL at the SLO's percentile, None without gaps); None
    where there is no request to judge, or no ITL target."""
    within = latency.slo_attainment(measured, slo.ttft_s, slo.tpot_s, slo.itl_s)
    ttft_met, tpot_met = latency.marginal_met(measured, slo.ttft_s, slo.tpot_s, slo.percentile)
    itl_met = None
    if slo.itl_s is not None and within.size:
        itl_met = itl_p_s is None or itl_p_s <= slo.itl_s  # no gap: none was too long
    return _Judged(
        attainment=float(within.mean()) if within.size else None,
        met=latency.slo_met(measured, slo.ttft_s, slo.tpot_s, slo.percentile, slo.itl_s),
        ttft_met=ttft_met,
        tpot_met=tpot_met,
        itl_met=itl_met,
        attainment_requeued=float(within[requeued].mean()) if requeued.any() else None,
    )
