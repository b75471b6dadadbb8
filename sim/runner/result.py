"""A run's result: per-request columns plus the headline numbers of the `--json` contract."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.engine import EngineResult
from sim.metrics import cost as cost_model
from sim.metrics import latency as metrics
from sim.provenance import Provenance, stamp
from sim.scenario import Scenario
from sim.workload import Workload


@dataclass(frozen=True)
class Result:
    scenario: Scenario
    seed: int
    workload: Workload
    engine: EngineResult
    latencies: metrics.Latencies
    measured: np.ndarray  # bool per request: arrived inside the metrics window
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.data)


def build(scenario: Scenario, seed: int, workload: Workload, engine: EngineResult,
          provenance: Provenance, kv_capacity_tokens: int, wall_s: float, exact: bool) -> Result:
    window_start, window_end = scenario.warmup_s, scenario.duration_s
    window_s = window_end - window_start
    arrival = workload.arrival_s
    lat = metrics.latencies(arrival, engine.admit_s, engine.first_token_s, engine.finish_s,
                            workload.output_tokens)
    measured = (arrival >= window_start) & (arrival < window_end)
    m_lat = metrics.Latencies(lat.ttft_s[measured], lat.tpot_s[measured], lat.e2e_s[measured],
                              lat.queue_s[measured])
    completed = np.isfinite(engine.finish_s)
    finish = engine.finish_s
    finished_in_window = completed & (finish >= window_start) & (finish < window_end)
    in_window_input = float(workload.prompt_tokens[finished_in_window].sum())
    in_window_output = float(workload.output_tokens[finished_in_window].sum())

    reps = engine.replicas
    timeline = engine.timeline
    # Replicas paid for, on average over the window: the whole fleet when it is static; the
    # provisioned replica-time when it changes (autoscaling, spot reclaims).
    n_replicas = metrics.step_mean(timeline.time_s, timeline.billed, window_start, window_end)
    working = metrics.step_mean(timeline.time_s, timeline.working, window_start, window_end)
    due = metrics.step_mean(timeline.time_s, timeline.due, window_start, window_end)
    gpus = n_replicas * scenario.gpus_per_replica
    requeued = engine.requeues > 0
    busy_s = sum(r.busy_s for r in reps)
    prefill_s = sum(r.prefill_s for r in reps)
    decode_s = sum(r.decode_s for r in reps)
    slo = scenario.slo
    attained = metrics.slo_attainment(m_lat, slo.ttft_s, slo.tpot_s)
    # Goodput: tokens of the requests finished in the window that met both latency targets.
    good = finished_in_window & metrics.slo_attainment(lat, slo.ttft_s, slo.tpot_s)
    goodput_tokens = float(workload.prompt_tokens[good].sum() + workload.output_tokens[good].sum())
    busy_fraction = busy_s / (n_replicas * window_s) if n_replicas > 0 else 0.0
    hour = cost_model.gpu_hour(scenario.cost, busy_fraction)
    price = cost_model.token_cost(gpus, hour.usd, window_s,
                                  prefill_s, decode_s, in_window_input, in_window_output)
    tokens_per_s = (in_window_input + in_window_output) / window_s
    n_measured = int(measured.sum())
    data = {
        "scenario": scenario.name,
        "seed": seed,
        "requests": {
            "arrived": len(workload),
            "completed": int(completed.sum()),
            "unfinished": int((~completed).sum()),
            "preempted": int(engine.preemptions.sum()),
            "preempted_requests": int((engine.preemptions > 0).sum()),
            "rejected": int(engine.rejected.sum()),
            "measured": n_measured,
            "capped": dict(workload.capped),
            "floored": dict(workload.floored),
            "requeued": int(engine.requeues.sum()),
            "requeued_requests": int(requeued.sum()),
        },
        "latency_s": {
            "ttft": metrics.summarise(m_lat.ttft_s),
            "tpot": metrics.summarise(m_lat.tpot_s),
            "e2e": metrics.summarise(m_lat.e2e_s),
            "queue": metrics.summarise(m_lat.queue_s),
        },
        "throughput": {
            "requests_per_s": float(finished_in_window.sum()) / window_s,
            "input_tokens_per_s": in_window_input / window_s,
            "output_tokens_per_s": in_window_output / window_s,
            "goodput_tokens_per_s": goodput_tokens / window_s,
        },
        "utilization": {
            "busy_fraction": busy_fraction,
            "batch_size_mean": sum(r.batch_s for r in reps) / busy_s if busy_s > 0 else 0.0,
            "kv_cache_fraction_mean": sum(r.kv_token_s for r in reps)
            / (n_replicas * window_s * kv_capacity_tokens) if n_replicas > 0 else 0.0,
            "prefill_fraction_of_busy": prefill_s / busy_s if busy_s > 0 else 0.0,
        },
        "slo": {
            "attainment": float(attained.mean()) if n_measured else None,
            "met": metrics.slo_met(m_lat, slo.ttft_s, slo.tpot_s, slo.percentile),
            "attainment_requeued": float(attained[requeued[measured]].mean())
            if requeued[measured].any() else None,
            "ttft_s": slo.ttft_s,
            "tpot_s": slo.tpot_s,
            "percentile": slo.percentile,
        },
        "cost": {
            "fleet_usd_per_hour": price.fleet_usd_per_hour,
            "window_usd": price.window_usd,
            "usd_per_million_tokens": {
                "input": price.input_usd_per_million,
                "output": price.output_usd_per_million,
                "blended": price.blended_usd_per_million,
                "goodput": cost_model.per_million(price.window_usd, goodput_tokens),
            },
            "model": "rental" if scenario.cost.tco is None else "tco",
            "gpu_hour_usd": hour.usd,
            "gpu_hour_usd_by_item": hour.usd_by_item,
            "facility_w_per_gpu": hour.facility_w,
            "energy_j_per_token": cost_model.energy_j_per_token(
                hour.facility_w, gpus, tokens_per_s),
            "gpu_hours": gpus * window_s / cost_model.SECONDS_PER_HOUR,
        },
        "availability": {
            "fraction": working / due if due > 0 else None,
            "replicas_working_mean": working,
            "replicas_billed_mean": n_replicas,
            "failures": timeline.failures,
            "spot_preemptions": timeline.spot_preemptions,
            "outages": timeline.outages,
            "scale_ups": timeline.scale_ups,
            "scale_downs": timeline.scale_downs,
        },
        "tokens": {
            "input": int(workload.prompt_tokens[completed].sum()),
            "output": int(workload.output_tokens[completed].sum()),
            "generated": sum(r.generated_tokens for r in reps),
            "prefilled": sum(r.prefill_tokens for r in reps),
        },
        "fleet": {
            "gpu": scenario.gpu.name,
            "model": scenario.model.name,
            "replicas": scenario.deployment.replicas,
            "tensor_parallel": scenario.deployment.tensor_parallel,
            "gpus": scenario.gpu_count,
            "kv_capacity_tokens_per_replica": kv_capacity_tokens,
            "scheduler": scenario.deployment.scheduler.policy,
            "router": scenario.deployment.router,
        },
        "profile": {
            "name": provenance.name,
            "source": provenance.source,
            "fit_error_pct": provenance.fit_error_pct,
            "step_time_scale": scenario.step_time_scale,
            "details": dict(provenance.details),
        },
        "sim": {
            "wall_s": wall_s,
            "events": engine.events,
            "requests_per_wall_s": len(workload) / wall_s if wall_s > 0 else None,
            "end_s": engine.end_s,
            "window_s": [window_start, window_end],
            "mode": "exact" if exact else "event-skipping",
        },
        # Which code wrote this and the scenario as validated (defaults filled in), so a
        # report can show what was run without the YAML file.
        "provenance": {**stamp(), "scenario": scenario.model_dump(mode="json",
                                                                 exclude_none=True)},
    }
    return Result(scenario, seed, workload, engine, lat, measured, data)
