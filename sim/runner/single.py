"""`run`: scenario → workload → step-time model → engine → metrics and cost."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sim.engine import simulate
from sim.engine.simulation import Progress
from sim.provenance import resolve_seed
from sim.runner import budget, build, fleet_events, result
from sim.scenario import Scenario, load_scenario
from sim.workload import generate

# Each component draws from its own child of the run's SeedSequence; the order is fixed so
# adding a stream at the end never reshuffles the others.
SEED_STREAMS = ("arrivals", "prompt_tokens", "output_tokens", "router", "failures", "spot",
                "autoscaling")


def run(scenario: Scenario | str | Path | Mapping[str, Any], *, seed: int | None = None,
        exact: bool = False, progress: Progress | None = None,
        max_requests: int | None = budget.DEFAULT_MAX_REQUESTS) -> result.Result:
    """Simulate one scenario. `seed` overrides the scenario's; with neither, one is drawn
    and recorded in the result so the run can be repeated. Before anything is generated its
    work is estimated, and beyond `max_requests` (and the tables' limits that follow from
    it) the run is refused with an `InputError` (`sim.runner.budget`); None skips that, for
    the runs of a sweep or plan that checked every run before starting any."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if max_requests is not None:
        budget.check_run(scenario, max_requests)
    seed = resolve_seed(seed, scenario.seed)
    children = np.random.SeedSequence(seed).spawn(len(SEED_STREAMS))
    streams = dict(zip(SEED_STREAMS, children, strict=True))

    step_model = build.step_model(scenario)
    capacity = build.kv_capacity(scenario)
    workload = generate(scenario.workload, scenario.duration_s, streams)
    cfg = build.engine_config(scenario, capacity, exact, fleet_events.build(scenario, streams))
    started = time.perf_counter()
    engine = simulate(cfg, workload, step_model, np.random.default_rng(streams["router"]),
                      progress)
    wall_s = time.perf_counter() - started
    return result.build(scenario, seed, workload, engine, step_model.provenance, capacity,
                        wall_s, exact)
