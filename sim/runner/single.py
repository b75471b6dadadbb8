"""`run`: scenario → workload → step-time model → engine → metrics and cost.

With `warmup_s: auto` the engine counts from time 0 and takes its counters' totals at the
edges of `build.AUTO_WARMUP_BINS` equal bins; the tokens generated per bin are the series
MSER-5 (`sim.metrics.steady`) truncates, and the metrics window starts at the bin edge it
chose. A run whose window is shorter than `WINDOW_E2E_TIMES` p95 end-to-end times of the
requests it measured warns (`WindowWarning`): the requests in flight at its edges are a
large share of its work, so throughput and cost are biased.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from sim.engine import EngineResult, simulate
from sim.engine.simulation import Progress
from sim.metrics import steady
from sim.provenance import resolve_seed
from sim.runner import budget, build, fleet_events, result
from sim.scenario import Scenario, load_scenario
from sim.workload import generate, sessions

# Each component draws from its own child of the run's SeedSequence; the order is fixed so
# adding a stream at the end never reshuffles the others.
SEED_STREAMS = ("arrivals", "prompt_tokens", "output_tokens", "router", "failures", "spot",
                "autoscaling", "think_times", "turns", "new_tokens", "session_think")
WINDOW_E2E_TIMES = 3.0  # a window shorter than this many p95 E2E times warns


class WindowWarning(UserWarning):
    """The metrics window is short for what it measures, or never reached a steady state."""


def run(scenario: Scenario | str | Path | Mapping[str, Any], *, seed: int | None = None,
        exact: bool = False, progress: Progress | None = None,
        max_requests: int | None = budget.DEFAULT_MAX_REQUESTS,
        warn_window: bool = True) -> result.Result:
    """Simulate one scenario. `seed` overrides the scenario's; with neither, one is drawn
    and recorded in the result so the run can be repeated. Before anything is generated its
    work is estimated, and beyond `max_requests` (and the tables' limits that follow from
    it) the run is refused with an `InputError` (`sim.runner.budget`); None skips that, for
    the runs of a sweep or plan that checked every run before starting any.
    `warn_window` False: no `WindowWarning` about the window (its length, or a steady state
    never reached), for a run overloaded on purpose, whose queue grows without end."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if max_requests is not None:
        budget.check_run(scenario, max_requests)
    seed = resolve_seed(seed, scenario.seed)
    children = np.random.SeedSequence(seed).spawn(len(SEED_STREAMS))
    streams = dict(zip(SEED_STREAMS, children, strict=True))

    pool_max = budget.DEFAULT_MAX_REQUESTS if max_requests is None else max_requests
    both = build.sides(scenario)
    each = build.fleet_sides(scenario)
    # Disaggregated, `simulate`'s own config and step model are the prefill pool's; with
    # pools, the first pool's step model names the profile.
    if both is not None:
        step_model, capacity = both.prefill.step_model, both.prefill.kv_capacity_tokens
        limits = both.limits(pool_max)
    elif each is not None:
        step_model, capacity = each[0].step_model, each[0].kv_capacity_tokens
        limits = build.limits_over(each, pool_max, build.tokens_per_step(scenario))
    else:
        step_model = build.step_model(scenario)
        capacity = build.kv_capacity(scenario)
        limits = build.pool_limits(step_model, capacity, pool_max,
                                   build.tokens_per_step(scenario))
    workload = generate(scenario.workload, scenario.duration_s, streams, limits,
                        scenario.model.max_context)
    fleet = fleet_events.build(scenario, streams, capacity)
    cfg = (build.engine_config(scenario, capacity, exact, fleet) if both is None
           else build.pool_engine_config(scenario, both.prefill, exact))
    decode = None if both is None else build.decode_pool(scenario, both, exact)
    pools = None if each is None else build.fleet_pools(scenario, each, exact)
    started = time.perf_counter()
    # Prefix identities matter only to a prefix cache, which disaggregation refuses.
    engine = simulate(cfg, workload, step_model, np.random.default_rng(streams["router"]),
                      progress, workload.clients, workload.prefix if decode is None else None,
                      decode, pools)
    wall_s = time.perf_counter() - started
    drawn = workload
    workload = workload.arrived(engine.arrival_s, engine.sent)  # a pool's: what was sent
    window_start_s = None
    if scenario.warmup_auto:
        engine, window_start_s = steady_window(engine, cfg.window_marks_s, scenario.name,
                                               warn_window)
    done = result.build(scenario, seed, workload, engine, step_model, capacity, wall_s, exact,
                        window_start_s, both, each)
    if isinstance(drawn.clients, sessions.SessionPlan) and engine.sent is not None:
        done = replace(done, sessions=sessions.summary(drawn.clients, engine.sent,
                                                       workload.prompt_tokens, engine.finish_s))
    if warn_window:
        _warn_if_short(done)
    return done


def steady_window(engine: EngineResult, marks_s: tuple[float, ...], name: str,
                  warn: bool) -> tuple[EngineResult, float]:
    """The engine's counters over the window MSER-5 chooses on the tokens generated per bin
    (bins between 0, `marks_s` and the window's end), and where that window starts."""
    replicas = engine.replicas
    at_marks = [sum(r.at_marks[i].generated_tokens for r in replicas)
                for i in range(len(marks_s))]
    total = sum(r.window_generated_tokens for r in replicas)
    cut = steady.mser(np.diff(np.asarray([0, *at_marks, total], dtype=float)))
    if warn and not cut.settled:
        warnings.warn(f"{name}: the tokens generated per {marks_s[0]:g} s never settled in the "
                      "first half of the run (warmup_s: auto); its metrics may not describe a "
                      "steady state: lengthen duration_s or lower the load", WindowWarning,
                      stacklevel=3)
    if cut.observations == 0:
        return engine, 0.0
    mark = cut.observations - 1
    return replace(engine, replicas=tuple(r.since(mark) for r in replicas)), marks_s[mark]


def _warn_if_short(done: result.Result) -> None:
    e2e_s = done.latencies.e2e_s[done.measured]
    e2e_s = e2e_s[np.isfinite(e2e_s)]
    if not e2e_s.size:
        return
    p95_s = float(np.percentile(e2e_s, 95))
    r = done.record
    window_s = r.window_end_s - r.window_start_s
    if window_s < WINDOW_E2E_TIMES * p95_s:
        warnings.warn(f"{r.scenario_name}: the metrics window ({window_s:g} s) is shorter than "
                      f"{WINDOW_E2E_TIMES:g} × the p95 end-to-end time of its requests "
                      f"({p95_s:.3g} s), so throughput and cost are biased by the requests in "
                      "flight at its edges: lengthen duration_s", WindowWarning, stacklevel=3)
