"""`plan`: a scenario with a `plan:` block → the plan document (plan.json's contents).

Seeds: SeedSequence(seed).spawn(2) → the Monte Carlo draws (run seeds, demand uniforms,
sampled inputs) and the capacity probes, so the whole plan repeats exactly for a seed and
does not depend on the executor or the number of workers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import MISSING, InputError
from sim.montecarlo.design import int_seed
from sim.planning import forecast, mix
from sim.planning import options as option_specs
from sim.planning.document import periods_document
from sim.planning.runs import Draws, Evaluator
from sim.planning.sizing import OptionSizing, size_all
from sim.provenance import resolve_seed, stamp
from sim.scenario import load_scenario
from sim.scenario.planning import Mix, PlanSpec


def plan(raw: Mapping[str, Any], base_dir: Path, executor: Executor, *,
         seed: int | None = None, on_run: Callable[[], None] | None = None) -> dict[str, Any]:
    base = load_scenario(raw, base_dir=base_dir)
    spec = base.plan
    if spec is None:
        raise InputError("plan", MISSING, "a plan: block with periods (or growth), options "
                         "and target (see the README)")
    seed = resolve_seed(seed, base.seed)
    options = option_specs.load(raw, spec, base_dir)
    draws_seq, probe_seq = np.random.SeedSequence(seed).spawn(2)
    draws = Draws.spawn(draws_seq, spec.target.draws)
    demands = forecast.demands(spec, draws.demand_u)
    evaluator = Evaluator(executor, draws, spec.target.confidence, on_run)
    sizings = size_all(options, demands, spec.target, spec.max_replicas, evaluator, draws,
                       int_seed(probe_seq))
    periods = periods_document(demands, sizings)
    notes = _notes(spec, sizings)
    mixes, mix_notes = _mixes(spec, sizings)
    return {
        "scenario": base.name,
        "seed": seed,
        "target": {"confidence": spec.target.confidence, "draws": spec.target.draws,
                   "slo": options[0].scenario.slo.model_dump(),
                   "first_guess_utilization": spec.target.utilization},
        "run": {"duration_s": options[0].scenario.duration_s,
                "warmup_s": options[0].scenario.warmup_s},
        "options": [_option_summary(s) for s in sizings],
        "periods": periods,
        "mix": mixes,
        "search": {"simulations": sum(p["options"][i]["search"]["simulations"]
                                      for p in periods for i in range(len(sizings))),
                   "average_load_simulations": sum(
                       p["options"][i]["search"]["average_load_simulations"]
                       for p in periods for i in range(len(sizings))),
                   "capacity_probes": len(sizings)},
        "notes": notes + mix_notes,
        # The scenario as validated (defaults filled in) and which code wrote the plan.
        "scenario_config": base.model_dump(mode="json", exclude_none=True),
        "provenance": stamp(),
    }


def _option_summary(sizing: OptionSizing) -> dict[str, Any]:
    s = sizing.option.scenario
    return {"option": sizing.option.name, "gpu": s.gpu.name, "model": s.model.name,
            "tensor_parallel": s.deployment.tensor_parallel, "dtype": s.deployment.dtype,
            "scheduler": s.deployment.scheduler.policy, "autoscaled": sizing.option.autoscaled,
            "capacity_per_replica": sizing.capacity.to_dict(),
            "sampled_inputs": sizing.notes}


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
        replicas = [p.replicas for p in sizing.periods]
        feasible = [n for n in replicas if n is not None]
        if len(feasible) < len(replicas):
            notes.append(f"no reserved/on-demand mix for {option.name}: some period has no "
                         "feasible fleet")
            continue
        demand = mix.demand_gpus(feasible, option.scenario.deployment.tensor_parallel,
                                 fractions)
        result = mix.best_mix(demand, prices[names.reserved], prices[names.on_demand])
        out.append({"option": option.name, "reserved_usd_per_gpu_hour": prices[names.reserved],
                    "on_demand_usd_per_gpu_hour": prices[names.on_demand],
                    "within_day_shape": spec.shape is not None, **result.to_dict()})
    return out, notes
