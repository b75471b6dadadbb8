"""`plan`: a scenario with a `plan:` block → the plan document (plan.json's contents).

Seeds: SeedSequence(seed).spawn(2) → the Monte Carlo draws (run seeds, demand uniforms,
sampled inputs) and the capacity probes, so the whole plan repeats exactly for a seed and
does not depend on the executor or the number of workers.

Feasibility is `sim.planning.runs`' rule: Wald's sequential test on the draws' SLO verdicts
(P(SLO met at the peak) ≥ `target.confidence`, with 5% error rates outside its indifference
zone), looking after every chunk of draws up to `target.max_draws`; each fleet is reported
with the Wilson 95% interval of its share met.

Before any run the plan's size is checked (`sim.runner.budget`): options × periods ×
max_draws cells, at most `max_runs`; its biggest run (the highest per-draw peak at
max_replicas), within the per-run limits; and an upper bound of all its runs' requests —
every cell at up to `sizing.max_fleet_sizes` fleet sizes of `draws` draws, two of them
(`runs.EXTENDED_PER_SEARCH`) taken on to max_draws, plus the average-load runs — at most
`max_total_requests`; a split search's cell (a disaggregated or a heterogeneous option's)
at up to `sizing.max_splits` splits, every one of them taken on. The bound is a worst case: a
search usually tries a few sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import MISSING, InputError
from sim.montecarlo.confidence import SequentialTest
from sim.montecarlo.design import int_seed
from sim.planning import forecast, mix
from sim.planning import options as option_specs
from sim.planning.document import periods_document
from sim.planning.runs import CHUNK, EXTENDED_PER_SEARCH, Draws, Evaluator
from sim.planning.sizing import (
    OptionSizing,
    max_fleet_sizes,
    max_splits,
    requests_per_run,
    size_all,
)
from sim.planning.split import SPAN, split_text
from sim.provenance import resolve_seed, stamp
from sim.runner import budget
from sim.scenario import load_scenario
from sim.scenario.planning import Mix, PlanSpec


def plan(raw: Mapping[str, Any], base_dir: Path, executor: Executor, *,
         seed: int | None = None, on_run: Callable[[], None] | None = None,
         max_requests: int = budget.DEFAULT_MAX_REQUESTS,
         max_total_requests: int = budget.DEFAULT_MAX_TOTAL_REQUESTS,
         max_runs: int = budget.DEFAULT_MAX_RUNS) -> dict[str, Any]:
    """The plan document; `InputError` for bad input, and for a plan beyond the limits of
    `sim.runner.budget` (see the module docstring), before any run."""
    base = load_scenario(raw, base_dir=base_dir)
    spec = base.plan
    if spec is None:
        raise InputError("plan", MISSING, "a plan: block with periods (or growth), options "
                         "and target (see the README)")
    seed = resolve_seed(seed, base.seed)
    options = option_specs.load(raw, spec, base_dir)
    _check_certifiable(spec)
    _check_cells(spec, len(options), max_runs)
    draws_seq, probe_seq = np.random.SeedSequence(seed).spawn(2)
    draws = Draws.spawn(draws_seq, spec.target.most_draws)
    demands = forecast.demands(spec, draws.demand_u)
    _check_work(spec, options, demands, max_requests, max_total_requests)
    evaluator = Evaluator(executor, draws, spec.target.confidence, on_run,
                          first=spec.target.draws)
    sizings = size_all(options, demands, spec.target, spec.max_replicas, evaluator, draws,
                       int_seed(probe_seq))
    periods = periods_document(demands, sizings)
    notes = _notes(spec, sizings)
    mixes, mix_notes = _mixes(spec, sizings)
    return {
        "scenario": base.name,
        "seed": seed,
        "target": {"confidence": spec.target.confidence, "draws": spec.target.draws,
                   "max_draws": spec.target.most_draws,
                   "rule": _rule_text(evaluator),
                   "slo": options[0].scenario.slo.model_dump(),
                   "first_guess_utilization": spec.target.utilization},
        "run": {"duration_s": options[0].scenario.duration_s,
                "warmup_s": options[0].scenario.warmup_s,
                **option_specs.run_note(options[0].scenario)},
        "options": [_option_summary(s) for s in sizings],
        "periods": periods,
        "mix": mixes,
        "search": {"simulations": sum(p["options"][i]["search"]["simulations"]
                                      for p in periods for i in range(len(sizings))),
                   "average_load_simulations": sum(
                       p["options"][i]["search"]["average_load_simulations"]
                       for p in periods for i in range(len(sizings))),
                   "capacity_probes": sum(not s.option.searched for s in sizings)},
        "notes": notes + mix_notes,
        # The scenario as validated (defaults filled in) and which code wrote the plan.
        "scenario_config": base.model_dump(mode="json", exclude_none=True),
        "provenance": stamp(),
    }


def _check_certifiable(spec: PlanSpec) -> None:
    """Enough draws for the sequential test to call any fleet feasible at all."""
    target = spec.target
    if target.confidence >= 1.0:
        return  # every draw must meet the SLO: any number of draws can say so
    needed = SequentialTest(target.confidence).draws_to_accept()
    if target.most_draws >= needed:
        return
    where, value = (("plan.target.max_draws", target.max_draws) if target.max_draws is not None
                    else ("plan.target.confidence", target.confidence))
    raise InputError(where, value, f"max_draws of at least {needed}: calling a fleet feasible "
                     f"at confidence {target.confidence:g} takes {needed} draws that all meet "
                     f"the SLO (max_draws is {target.most_draws})")


def _rule_text(evaluator: Evaluator) -> str:
    assert evaluator.test is not None  # a plan judges sequentially
    p0, p1 = evaluator.test.zone
    return (f"Wald's sequential test on the draws' SLO verdicts, looking every {CHUNK} draws "
            f"up to max_draws: P(SLO met) = {p0:.4g} is called feasible, and {p1:.4g} "
            "infeasible, at most 5% of the time each; an undecided fleet is infeasible; the "
            "interval is the Wilson 95% interval of the share met")


def _periods_key(spec: PlanSpec) -> tuple[str, Any, int]:
    """The key that sets how many periods there are, its value, and the count."""
    if spec.periods is not None:
        return "plan.periods", spec.periods, len(spec.periods)
    assert spec.growth is not None  # PlanSpec._one_forecast: growth whenever periods is absent
    return "plan.growth.months", spec.growth.months, spec.growth.months


def _blamed(spec: PlanSpec, options: int) -> tuple[str, Any]:
    """The largest of the factors a user sets: draws, periods or options."""
    periods_key, periods_value, periods = _periods_key(spec)
    draws_key, draws_value = (("plan.target.draws", spec.target.draws)
                              if spec.target.max_draws is None
                              else ("plan.target.max_draws", spec.target.max_draws))
    factors = [(spec.target.most_draws, draws_key, draws_value),
               (periods, periods_key, periods_value),
               (options, "plan.options", f"{options} options")]
    _, key, value = max(factors, key=lambda factor: factor[0])
    return key, value


def _check_cells(spec: PlanSpec, options: int, max_runs: int) -> None:
    """Options × periods × max_draws: the draws of every cell are spawned before any run
    (which costs memory per draw)."""
    periods = _periods_key(spec)[2]
    budget.check_runs(options * periods * spec.target.most_draws, max_runs,
                      *_blamed(spec, options),
                      _cells_text(options, periods, spec.target.most_draws),
                      "fewer draws, periods or options", "a plan")


def _check_work(spec: PlanSpec, options: list[option_specs.Option],
                demands: list[forecast.Demand], max_requests: int,
                max_total_requests: int) -> None:
    """The plan's biggest run within the per-run limits, and its worst-case total."""
    most_tries = max_fleet_sizes(spec.max_replicas)
    top = max(range(len(demands)), key=lambda i: max(demands[i].peak_draws))
    where: dict[str, str | tuple[str, Any]] = {
        option_specs.RATE_KEY: _period_rate(spec, top),
        **{f"{option_specs.ARRIVAL_KEY}.spikes.{i}": f"plan.spikes[{i}]"
           for i in range(len(spec.spikes))},
        option_specs.REPLICAS_KEY: "plan.max_replicas",
        option_specs.MAX_REPLICAS_KEY: "plan.max_replicas",
        option_specs.PREFILL_REPLICAS_KEY: "plan.max_replicas",
        option_specs.DECODE_REPLICAS_KEY: "plan.max_replicas",
        **{f"{option_specs.POOLS_KEY}.{i}.replicas": "plan.max_replicas"
           for i in range(option_specs.SIZED_POOLS)}}
    if spec.run.duration_s is not None:
        where["duration_s"] = "plan.run.duration_s"
    total = 0.0
    runs = 0
    for option in options:
        if option.min_replicas > spec.max_replicas:
            continue  # the search has nothing to try: the option makes no runs
        limit = option.fleet_limit(spec.max_replicas)
        largest: option_specs.Fleet = limit
        tries, extended = max_fleet_sizes(limit), EXTENDED_PER_SEARCH
        if option.searched:
            largest = (limit, limit)
            tries = extended = max_splits(limit)
        most_tries = max(most_tries, tries)
        biggest = option.candidate(largest, max(demands[top].peak_draws), {}, shaped=True)
        try:
            budget.check_run(biggest, max_requests)
        except InputError as exc:
            raise budget.renamed(exc, where) from None
        peak, average = requests_per_run(option, shaped=True), requests_per_run(option)
        first = spec.target.draws
        for demand in demands:
            early, late = demand.peak_draws[:first], demand.peak_draws[first:]
            total += (tries * sum(peak(r) for r in early)
                      + extended * sum(peak(r) for r in late))
            runs += tries * len(early) + extended * len(late)
            if demand.average_draws is not None:
                priced = demand.average_draws[:spec.target.draws]
                total += sum(average(r) for r in priced)
                runs += len(priced)
    periods = _periods_key(spec)[2]
    budget.check_total(
        total, max_total_requests, *_blamed(spec, len(options)),
        f"{_cells_text(len(options), periods, spec.target.most_draws)}: up to {most_tries} "
        f"fleet sizes each (the search's most for max_replicas {spec.max_replicas}) at the first "
        f"{spec.target.draws} draws, {EXTENDED_PER_SEARCH} at all, "
        f"plus the average-load runs, at about {budget.count_text(total / max(runs, 1))} "
        "requests a run",
        "fewer draws, periods or options, or a shorter plan.run.duration_s", "a plan")


def _cells_text(options: int, periods: int, draws: int) -> str:
    return " × ".join(budget.counted(n, noun) for n, noun in
                      ((options, "option"), (periods, "period"), (draws, "draw")))


def _period_rate(spec: PlanSpec, index: int) -> tuple[str, Any]:
    """The key that sets the peak rate of period `index`, and its value: a month after the
    first of a growth forecast is set by how many months it grows."""
    if spec.periods is not None:
        return (f"plan.periods[{index}].peak_rate_per_s",
                spec.periods[index].peak_rate_per_s)
    assert spec.growth is not None  # PlanSpec._one_forecast: growth whenever periods is absent
    if index == 0:
        return "plan.growth.start.peak_rate_per_s", spec.growth.start.peak_rate_per_s
    return "plan.growth.months", spec.growth.months


def _option_summary(sizing: OptionSizing) -> dict[str, Any]:
    """The option's deployment; a disaggregated one's pools and `split` too (`search`, or
    `ratio` with its `unit`, e.g. 1P:2D), its capacity per replica of each pool."""
    option = sizing.option
    s = option.scenario
    summary = {"option": option.name, "gpu": s.gpu.name, "model": s.model.name,
               "tensor_parallel": s.deployment.tensor_parallel,
               "gpus_per_replica": s.gpus_per_replica, "dtype": s.deployment.dtype,
               "scheduler": s.deployment.scheduler.policy, "autoscaled": option.autoscaled,
               "capacity_per_replica": sizing.capacity.to_dict(),
               "sampled_inputs": sizing.notes, "split": option.split}
    if s.pools is not None:
        summary["pools"] = {pool.role: {
            "gpu": pool.gpu.name, "gpus_per_replica": pool.layout.gpus,
            "tensor_parallel": pool.layout.tensor_parallel, "dtype": pool.layout.dtype,
            "scheduler": pool.scheduler.policy} for pool in s.pools}
        if option.split == "ratio" and option.unit is not None:
            summary["unit"] = split_text(option.unit)
    fleet = s.fleet_pools
    if fleet is not None:
        bounds = [spec.max_prompt_tokens for spec in s.deployment.pools or ()]
        summary["pool_split"] = s.deployment.pool_split
        summary["pools"] = {pool.role: {
            "gpu": pool.gpu.name, "gpus_per_replica": pool.layout.gpus,
            "tensor_parallel": pool.layout.tensor_parallel, "dtype": pool.layout.dtype,
            "scheduler": pool.scheduler.policy, "router": pool.router,
            "max_prompt_tokens": bound,
            "gpu_hour_usd": (s.cost.rental_gpu_hour_usd if pool.gpu_hour_usd is None
                             else pool.gpu_hour_usd)}
            for pool, bound in zip(fleet, bounds, strict=True)}
    return summary


def _notes(spec: PlanSpec, sizings: list[OptionSizing]) -> list[str]:
    if spec.shape is None:
        notes = ["each period is sized at its peak rate as a stationary arrival process"
                 + (" with the plan's spikes on top" if spec.spikes else "")]
    else:
        notes = ["each period is sized on the day shape around its peak (the shape's "
                 "highest rate at the middle of the metrics window, equal to the period's "
                 "peak)" + (", with the plan's spikes on top" if spec.spikes else "")
                 + "; the average-load runs are stationary at the day's average rate"]
    if any(s.option.autoscaled for s in sizings):
        notes.append("autoscaled options: replicas is the ceiling the autoscaler may reach; "
                     "$/month is charged for the replicas it kept provisioned on average in "
                     "the runs at the average load (at the peak when no average is known)")
    if any(s.option.split == "search" for s in sizings):
        notes.append("disaggregated options with split: search: the planner chose each "
                     "period's prefill and decode replicas (split, e.g. 1P:2D), the cheapest "
                     "meeting the target on the same draws (ties: fewer GPUs, then fewer "
                     "prefill), "
                     f"comparing up to {SPAN} prefill counts above the fewest that can; "
                     "their capacity per replica is a closed-form estimate per pool")
    if any(s.option.pooled for s in sizings):
        notes.append("options with deployment.pools (split by prompt size): the planner "
                     "chose each period's replicas of each pool (pools, e.g. chat:2+"
                     "documents:1), the cheapest meeting the target on the same draws (ties: "
                     "fewer GPUs, then fewer of the first pool), by the split search over "
                     "the two pools; their capacity per replica is a closed-form estimate "
                     "per pool on its share of the prompts")
    if any(s.option.split == "ratio" for s in sizings):
        notes.append("disaggregated options with split: ratio: sized in whole units of their "
                     "own pools (2 units of 1P:2D are 2P:4D); capacity is one unit's")
    notes += sorted({s.option.profile_note for s in sizings if s.option.profile_note})
    return notes


def _mixes(spec: PlanSpec, sizings: list[OptionSizing]) -> tuple[list[dict], list[str]]:
    """The reserved/on-demand mix for each option priced by both named price points."""
    names = spec.mix or Mix()
    fractions = forecast.day_fractions(spec.shape)
    out, notes = [], []
    for sizing in sizings:
        option = sizing.option
        prices = option.scenario.cost.prices or {}
        if names.reserved not in prices or names.on_demand not in prices:
            if spec.mix is not None:  # asked for by name: say why there is none
                notes.append(f"no reserved/on-demand mix for {option.name}: its cost.prices "
                             f"lack {names.reserved!r} or {names.on_demand!r}")
            continue
        if option.pooled and any(p.gpu_hour_usd is not None
                                 for p in option.scenario.fleet_pools or ()):
            notes.append(f"no reserved/on-demand mix for {option.name}: its pools have "
                         "their own prices")
            continue
        fleets = [p.fleet for p in sizing.periods]
        feasible = [n for n in fleets if n is not None]
        if len(feasible) < len(fleets):
            notes.append(f"no reserved/on-demand mix for {option.name}: some period has no "
                         "feasible fleet")
            continue
        if option.unit is None and not option.pooled:  # whole replicas follow the day
            demand = mix.demand_gpus([n for n in feasible if isinstance(n, int)],
                                     option.scenario.gpus_per_replica, fractions)
        else:  # two pools: both pools' GPUs, in whole GPUs
            demand = mix.demand_gpus([option.gpus_of(n) for n in feasible], 1, fractions)
        result = mix.best_mix(demand, prices[names.reserved], prices[names.on_demand])
        out.append({"option": option.name, "reserved_usd_per_gpu_hour": prices[names.reserved],
                    "on_demand_usd_per_gpu_hour": prices[names.on_demand],
                    "within_day_shape": spec.shape is not None, **result.to_dict()})
    return out, notes
