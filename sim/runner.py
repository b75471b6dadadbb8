"""`run`: scenario → workload → step-time model → engine → metrics and cost."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sim import result
from sim.engine import EngineConfig, simulate
from sim.engine.simulation import Progress
from sim.memory import kv_capacity_tokens
from sim.profile_select import resolve as resolve_step_model
from sim.profile_table import TableStep
from sim.profiles import StepTimeModel
from sim.scenario import Scenario, load_scenario
from sim.workload import generate

# Each component draws from its own child of the run's SeedSequence; the order is fixed so
# adding a stream at the end never reshuffles the others.
SEED_STREAMS = ("arrivals", "prompt_tokens", "output_tokens", "router")


def run(scenario: Scenario | str | Path | Mapping[str, Any], *, seed: int | None = None,
        exact: bool = False, progress: Progress | None = None) -> result.Result:
    """Simulate one scenario. `seed` overrides the scenario's; with neither, one is drawn
    and recorded in the result so the run can be repeated."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if seed is None:
        seed = scenario.seed
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % 2**63)
    children = np.random.SeedSequence(seed).spawn(len(SEED_STREAMS))
    streams = dict(zip(SEED_STREAMS, children, strict=True))

    step_model = resolve_step_model(scenario)
    if scenario.step_time_scale != 1.0:
        step_model = ScaledStep(step_model, scenario.step_time_scale)
    capacity = kv_capacity_tokens(scenario)
    workload = generate(scenario.workload, scenario.duration_s, streams)
    d = scenario.deployment
    cfg = EngineConfig(
        replicas=d.replicas,
        policy=d.scheduler.policy,
        max_num_seqs=d.scheduler.max_num_seqs,
        max_batched_tokens=d.scheduler.max_batched_tokens,
        kv_capacity_tokens=capacity,
        router=d.router,
        window_start_s=scenario.warmup_s,
        window_end_s=scenario.duration_s,
        stop_s=None if scenario.drain_s is None else scenario.duration_s + scenario.drain_s,
        exact=exact,
    )
    started = time.perf_counter()
    engine = simulate(cfg, workload, step_model, np.random.default_rng(streams["router"]),
                      progress)
    wall_s = time.perf_counter() - started
    return result.build(scenario, seed, workload, engine, step_model.provenance, capacity,
                        wall_s, exact)


class ScaledStep:
    """A step-time model with every time multiplied by `scale`: the model's own error, which
    a Monte Carlo sweep samples as `step_time_scale`. A common factor keeps the
    F(B) + c × KV form of decode steps that event skipping relies on."""

    def __init__(self, inner: StepTimeModel | TableStep, scale: float) -> None:
        self.inner = inner
        self.scale = scale
        self.per_kv_token_s = inner.per_kv_token_s * scale
        self.provenance = inner.provenance

    def decode_fixed_s(self, batch: int) -> float:
        return self.inner.decode_fixed_s(batch) * self.scale

    def step_s(self, prefill_tokens: int, prefill_attn_pairs: float, decode_seqs: int,
               decode_kv_tokens: int) -> tuple[float, float]:
        prefill_s, decode_s = self.inner.step_s(prefill_tokens, prefill_attn_pairs, decode_seqs,
                                                decode_kv_tokens)
        return prefill_s * self.scale, decode_s * self.scale
