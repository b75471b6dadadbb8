"""Stress tests: the scenario's own fleet under more demand than forecast, a spike, and lost
capacity.

Cases: the forecast itself (the scenario's arrival rate, × 1), demand × k for each of
`multipliers`, a spike (the rate × `multiplier` for `duration_s`, when the scenario's
arrival process supports spikes), and `replicas_down` replicas out for the whole metrics
window (requests on them re-queued). Each case runs `draws` Monte Carlo draws of the fleet as
it is and reports, over the draws: SLO attainment minute by minute (by arrival minute), the
worst queue (requests waiting for their first admission), minutes in SLO violation (minutes
whose requests miss the SLO's percentile), and P(SLO met). Then the planner's search finds
the fewest replicas that hold the SLO in that case with the required confidence: the extra
GPUs over the current fleet, and what holding them costs for a year.

Before any run its size is checked (`sim.runner.budget`): cases × draws at most `max_runs`;
each case's biggest run (at max_replicas) within the per-run limits, its per-minute SLO
passes included; and every case's draws, at the fleet and at up to
`sizing.max_fleet_sizes` sizes of the search, at most `max_total_requests` in all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from sim.errors import MISSING, InputError
from sim.metrics import latency as metrics
from sim.metrics.cost import HOURS_PER_YEAR
from sim.montecarlo.capacity import Capacity
from sim.montecarlo.design import int_seed
from sim.planning.forecast import Demand
from sim.planning.options import PLANNING_BLOCKS, RATE_KEY, REPLICAS_KEY, Option, merge_patch
from sim.planning.runs import Draws, Evaluator, draw_row, met_count
from sim.planning.sizing import max_fleet_sizes, replica_capacity, size_option
from sim.provenance import resolve_seed, stamp
from sim.runner import budget
from sim.runner.single import run
from sim.scenario import Scenario, load_scenario
from sim.scenario.disaggregation import refuse_sizing
from sim.scenario.fleetpools import refuse_sizing as refuse_pool_sizing
from sim.scenario.planning import StressSpec, Target
from sim.scenario.workload import PoissonArrivals

# The per-minute SLO attainment makes one numpy pass over the requests per minute, ~3 ns a
# request: 500 passes per request of the limit (10¹⁰ at the default) is ~30 s, about what
# simulating that many requests takes.
MINUTE_PASSES_PER_REQUEST = 500


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # forecast | demand | spike | capacity
    multiplier: float  # of the arrival rate (1 for the spike and capacity cases)
    patch: dict[str, Any]  # merged into the scenario for this case


def stress_draw(scenario: Scenario, seed: int) -> dict[str, Any]:
    """One run (in a worker): the planner's row plus the per-minute story. Its work was
    checked with the whole stress test's, before any run (`stress`)."""
    result = run(scenario, seed=seed, max_requests=None)
    slo, start, end = scenario.slo, scenario.warmup_s, scenario.duration_s
    attainment, met = metrics.per_interval_slo(
        result.workload.arrival_s, result.latencies, slo.ttft_s, slo.tpot_s, slo.percentile,
        start, end)
    served = ~result.engine.rejected
    queue = metrics.max_queue_length(result.workload.arrival_s[served],
                                     result.engine.admit_s[served], start, end)
    row = draw_row(result.record)
    return {**row, "attainment_by_minute": [None if np.isnan(a) else float(a)
                                            for a in attainment],
            "violation_minutes": int(sum(m is False for m in met)),
            "max_queue": queue}


def cases(spec: StressSpec, scenario: Scenario) -> list[Case]:
    out = [Case("forecast", "forecast", 1.0, {})]
    out += [Case(f"demand ×{k:g}", "demand", k, {}) for k in spec.multipliers if k != 1.0]
    if spec.spike is not None:
        arrival = scenario.workload.arrival
        if not isinstance(arrival, PoissonArrivals):
            raise InputError("stress.spike", spec.spike.model_dump(exclude_none=True),
                             "Poisson arrivals (a spike is workload.arrival.spikes, which "
                             "only a Poisson process has)")
        at_s = scenario.warmup_s if spec.spike.at_s is None else spec.spike.at_s
        spike = {"at_s": at_s, "duration_s": spec.spike.duration_s,
                 "multiplier": spec.spike.multiplier}
        out.append(Case(f"spike ×{spike['multiplier']:g} for {spike['duration_s']:g} s",
                        "spike", 1.0, {"workload": {"arrival": {"spikes": [spike]}}}))
    if spec.replicas_down is not None:
        n = spec.replicas_down
        out.append(Case(f"{n} replica{'s' if n > 1 else ''} down", "capacity", 1.0,
                        {"deployment": {"outage": {"replicas": n, "at_s": scenario.warmup_s,
                                                   "duration_s": None}}}))
    return out


def stress(raw: Mapping[str, Any], base_dir: Path, executor: Executor, *,
           seed: int | None = None, max_requests: int = budget.DEFAULT_MAX_REQUESTS,
           max_total_requests: int = budget.DEFAULT_MAX_TOTAL_REQUESTS,
           max_runs: int = budget.DEFAULT_MAX_RUNS) -> dict[str, Any]:
    """The stress document; `InputError` for bad input, and for a stress test beyond the
    limits of `sim.runner.budget` (see the module docstring), before any run."""
    base = load_scenario(raw, base_dir=base_dir)
    refuse_sizing(base.deployment.disaggregation, "a stress test")
    refuse_pool_sizing(base.deployment.pools, "a stress test")
    spec = base.stress or StressSpec()
    if base.workload.arrival is None:
        raise InputError("workload.arrival", MISSING, "an arrival process whose rate the "
                         "stress cases scale (a replayed trace has none: fit one with "
                         "tokenfactory trace fit)")
    seed = resolve_seed(seed, base.seed)
    common = {k: v for k, v in raw.items() if k not in PLANNING_BLOCKS}
    the_cases = cases(spec, base)
    if spec.replicas_down is not None and spec.replicas_down >= base.deployment.replicas:
        raise InputError("stress.replicas_down", spec.replicas_down,
                         f"fewer than the fleet's {base.deployment.replicas} replicas")
    budget.check_runs(len(the_cases) * spec.draws, max_runs, *_blamed(spec, the_cases),
                      f"{budget.counted(len(the_cases), 'case')} × "
                      f"{budget.counted(spec.draws, 'draw')}",
                      "fewer draws or multipliers", "a stress test")
    rate = base.workload.arrival.rate_per_s
    options = []
    for index, case in enumerate(the_cases):
        merged = merge_patch(common, case.patch)
        options.append(Option(index, case.name, merged,
                              load_scenario(merged, base_dir=base_dir), base_dir))
    _check_work(spec, the_cases, options, rate, max_requests, max_total_requests)
    draws_seq, probe_seq = np.random.SeedSequence(seed).spawn(2)
    draws = Draws.spawn(draws_seq, spec.draws)
    evaluator = Evaluator(executor, draws, spec.confidence, sequential=False)
    target = Target(confidence=spec.confidence, draws=spec.draws)
    replicas, per_replica = base.deployment.replicas, base.gpus_per_replica
    capacity = None
    results = []
    for case, option in zip(the_cases, options, strict=True):
        capacity = capacity or replica_capacity(option, int_seed(probe_seq))
        sampled, _ = draws.sampled(option)
        rates = tuple(rate * case.multiplier for _ in draws.seeds)
        futures = [executor.submit(stress_draw, option.candidate(replicas, rates[d],
                                                                 sampled[d]), draws.seeds[d])
                   for d in range(len(draws.seeds))]
        rows = [f.result() for f in futures]
        demand = Demand(case.name, rates[0], None, rates, None, (rates[0],) * 3)
        sized = size_option(option, [demand], target, spec.max_replicas, evaluator, draws,
                            capacity).periods[0]
        results.append(_case_entry(case, rows, sized.replicas, replicas, per_replica,
                                   sized.simulations))
    return {"scenario": base.name, "seed": seed, "replicas": replicas,
            "tensor_parallel": base.deployment.tensor_parallel, "gpus_per_replica": per_replica,
            "arrival_rate_per_s": rate, "confidence": spec.confidence, "draws": spec.draws,
            "capacity_per_replica": _measured(capacity).to_dict(), "cases": results,
            "provenance": stamp()}


def _blamed(spec: StressSpec, the_cases: list[Case]) -> tuple[str, Any]:
    """The larger factor a user sets: the draws, or the cases (the multipliers)."""
    if spec.draws >= len(the_cases):
        return "stress.draws", spec.draws
    return "stress.multipliers", spec.multipliers


def _check_work(spec: StressSpec, the_cases: list[Case], options: list[Option], rate: float,
                max_requests: int, max_total_requests: int) -> None:
    """Each case's biggest run within the per-run limits, and the worst-case total: per
    case, its draws at the fleet and at up to `max_fleet_sizes` sizes of the search."""
    tries = max_fleet_sizes(spec.max_replicas)
    # The most replicas any of its runs has: the search's limit, or the fleet as it is.
    most = max(spec.max_replicas, options[0].scenario.deployment.replicas)
    total = 0.0
    for case, option in zip(the_cases, options, strict=True):
        where: dict[str, str | tuple[str, Any]] = {
            REPLICAS_KEY: "stress.max_replicas",
            "workload.arrival.spikes.0": "stress.spike"}  # the spike case's one spike
        if case.kind == "demand":
            where[RATE_KEY] = (f"stress.multipliers[{spec.multipliers.index(case.multiplier)}]",
                               case.multiplier)
        biggest = option.candidate(most, rate * case.multiplier, {})
        try:
            work = budget.check_run(biggest, max_requests)
            budget.check_item(_minute_passes(biggest, work.requests.count), max_requests)
        except InputError as exc:
            raise budget.renamed(exc, where) from None
        total += spec.draws * (1 + tries) * work.requests.count
    budget.check_total(
        total, max_total_requests, *_blamed(spec, the_cases),
        f"{budget.counted(len(the_cases), 'case')} × {budget.counted(spec.draws, 'draw')} × "
        f"(the fleet + up to {tries} fleet sizes of the search for max_replicas "
        f"{spec.max_replicas})",
        "fewer draws or multipliers, or a shorter duration_s", "a stress test")


def _minute_passes(scenario: Scenario, requests: float) -> budget.Work:
    """The per-minute SLO attainment looks at every request once per minute of the metrics
    window (`metrics.per_interval_slo`)."""
    minutes = math.ceil((scenario.duration_s - scenario.warmup_s) / 60.0)
    return budget.Work("per-minute SLO passes over the requests", minutes * requests,
                       "duration_s", scenario.duration_s, "minutes of the metrics window × "
                       "requests", "a shorter duration_s or a lower rate",
                       MINUTE_PASSES_PER_REQUEST)


def _case_entry(case: Case, rows: list[dict[str, Any]], needed: int | None, replicas: int,
                gpus_per_replica: int, simulations: int) -> dict[str, Any]:
    hour_usd = median(row["gpu_hour_usd"] for row in rows)
    series = np.array([[np.nan if a is None else a for a in row["attainment_by_minute"]]
                       for row in rows], dtype=float)
    with np.errstate(all="ignore"):
        mean_series = np.nanmean(series, axis=0) if series.size else np.array([])
    extra = None if needed is None else max(needed - replicas, 0) * gpus_per_replica
    return {
        "case": case.name, "kind": case.kind, "demand_multiplier": case.multiplier,
        "slo_met_probability": met_count(rows) / len(rows),
        "slo_attainment_p50": median(row["slo_attainment"] or 0.0 for row in rows),
        "attainment_by_minute": [None if np.isnan(a) else float(a) for a in mean_series],
        "violation_minutes": {"p50": median(row["violation_minutes"] for row in rows),
                              "max": max(row["violation_minutes"] for row in rows)},
        "max_queue": {"p50": median(row["max_queue"] for row in rows),
                      "max": max(row["max_queue"] for row in rows)},
        "ttft_p99_s_p50": median(_finite(row["ttft_p99_s"]) for row in rows),
        "replicas_needed": needed,
        "extra_gpus": extra,
        "headroom_usd_per_year": None if extra is None else extra * hour_usd * HOURS_PER_YEAR,
        "search_simulations": simulations,
    }


def _finite(value: float | None) -> float:
    return float("inf") if value is None else value


def _measured(capacity: Capacity | None) -> Capacity:
    # The forecast case always runs, and its sizing measures the capacity.
    assert capacity is not None
    return capacity
