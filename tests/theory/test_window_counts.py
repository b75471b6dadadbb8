"""The engine's counts inside the metrics window: steps, prompt tokens prefilled (first time
and again) and tokens generated, each counted where its step ends. Worked stories at the
engine seam, exact mode = event skipping, totals taken at marks = a run given that start,
and the quality bar: at a plan's default run settings a long-output workload reports the
cost and throughput of a long steady-state run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from builders import DYNAMIC, dynamic, scenario
from engine_seam import requests, run

import sim
from sim.engine import simulate
from sim.montecarlo.capacity import run_length_s
from sim.runner import build

MODES = pytest.mark.parametrize("exact", [False, True], ids=["skipping", "exact"])


@MODES
def test_a_decode_block_across_the_window_counts_the_steps_that_end_inside(exact: bool) -> None:
    """One request, prompt 4, 10 tokens, steps of 0.1 s: the prefill step ends at 0.1 with
    token 1, then 9 decode steps (one skipped block) end at 0.2, 0.3, …, 1.0. The window
    [0.35, 0.75) holds the ends 0.4 … 0.7: 4 steps, 4 tokens, 0.4 s of busy time; from the
    mark at 0.55, the ends 0.6 and 0.7."""
    result = run(requests((0.0, 4, 10)), step=0.1, window_start_s=0.35, window_end_s=0.75,
                 window_marks_s=(0.55,), exact=exact)
    c = result.replicas[0]
    assert (c.window_steps, c.window_generated_tokens, c.window_prefill_tokens) == (4, 4, 0)
    assert c.busy_s == pytest.approx(0.4) and c.decode_s == pytest.approx(0.4)
    assert c.batch_s == pytest.approx(0.4)  # one sequence all along
    assert c.marks_s == (0.55,)
    later = c.since(0)
    assert (later.window_steps, later.window_generated_tokens) == (2, 2)
    assert later.busy_s == pytest.approx(0.2)
    # The whole-run counts are untouched by the window.
    assert (c.steps, c.generated_tokens, c.prefill_tokens) == (10, 10, 4)


@MODES
def test_a_step_ending_on_the_window_start_is_inside_and_on_its_end_outside(exact: bool) -> None:
    # Steps of 0.25 s (exact in binary): the prefill ends at 0.25, decode steps at 0.5, 0.75,
    # 1.0. The window [0.25, 0.75) holds the ends 0.25 (the prompt's 4 tokens and token 1)
    # and 0.5 (token 2).
    result = run(requests((0.0, 4, 4)), step=0.25, window_start_s=0.25, window_end_s=0.75,
                 exact=exact)
    c = result.replicas[0]
    assert (c.window_steps, c.window_generated_tokens, c.window_prefill_tokens) == (2, 2, 4)
    assert c.busy_s == pytest.approx(0.5)


@MODES
def test_a_prompt_evicted_after_decoding_is_recomputed_not_new_input(exact: bool) -> None:
    # The story of tests/stories: r1 (prompt 2) is evicted holding 3 tokens and later
    # prefills its 5 tokens of context again; r0 is never evicted.
    result = run(requests((0.0, 2, 8), (0.005, 2, 8)), kv_capacity_tokens=14,
                 kv_block_tokens=1, exact=exact)
    c = result.replicas[0]
    assert c.window_prefill_tokens == 2 + 2  # each prompt once
    assert c.window_recomputed_tokens == 5
    assert c.window_prefill_tokens + c.window_recomputed_tokens == c.prefill_tokens
    assert c.window_generated_tokens == c.generated_tokens == 16
    assert c.window_steps == c.steps


@MODES
def test_a_prompt_evicted_mid_prefill_recomputes_only_what_it_had_done(exact: bool) -> None:
    # r1 (prompt 6) had 4 tokens prefilled when it was evicted, then prefills all 6: 4 again
    # and 2 for the first time.
    result = run(requests((0.0, 2, 8), (0.005, 6, 3)), max_batched_tokens=3,
                 kv_capacity_tokens=14, kv_block_tokens=1, exact=exact)
    c = result.replicas[0]
    assert (c.window_prefill_tokens, c.window_recomputed_tokens) == (2 + 6, 4)


def _window_counts(result: sim.Result) -> list[tuple[int, int, int, int]]:
    return [(c.window_steps, c.window_prefill_tokens, c.window_recomputed_tokens,
             c.window_generated_tokens) for c in result.engine.replicas]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("warmup", [10.0, "auto"])
@pytest.mark.parametrize("policy", ["chunked-prefill", "prefill-first", "static"])
def test_window_counts_agree_between_exact_mode_and_event_skipping(warmup: object,
                                                                   policy: str) -> None:
    data = scenario(duration_s=60.0, warmup_s=warmup,
                    deployment={"replicas": 2, "scheduler": {"policy": policy,
                                                             "max_num_seqs": 32,
                                                             "max_batched_tokens": 2048}})
    fast, exact = sim.run(data), sim.run(data, exact=True)
    assert _window_counts(fast) == _window_counts(exact)
    assert fast.to_dict()["sim"]["window_s"] == exact.to_dict()["sim"]["window_s"]
    for f, e in zip(fast.engine.replicas, exact.engine.replicas, strict=True):
        assert f.window_generated_tokens > 0
        assert f.busy_s == pytest.approx(e.busy_s, rel=1e-9)


@pytest.mark.parametrize("kind", ["failures", "spot", "autoscaling"])
def test_window_counts_agree_between_modes_when_the_fleet_changes(kind: str) -> None:
    assert kind in DYNAMIC
    data = dynamic(kind, "chunked-prefill")
    fast, exact = sim.run(data), sim.run(data, exact=True)
    assert _window_counts(fast) == _window_counts(exact)
    if kind == "failures":  # handed-back requests recompute what they held
        assert sum(c.window_recomputed_tokens for c in fast.engine.replicas) > 0


def test_totals_at_marks_equal_a_run_that_starts_its_window_there() -> None:
    marks = (7.5, 20.0, 33.3)
    data = scenario(duration_s=60.0, warmup_s=5.0)
    marked = sim.run(data)
    # The engine config the run built, with marks added: `since(i)` is [marks[i], end).
    scn = sim.load_scenario(data)
    cfg = dataclasses.replace(build.engine_config(scn, build.kv_capacity(scn), False, None),
                              window_marks_s=marks)
    router_seed = np.random.SeedSequence(scn.seed).spawn(4)[3]  # the run's "router" stream
    engine = simulate(cfg, marked.workload, build.step_model(scn),
                      np.random.default_rng(router_seed))
    assert engine.finish_s.tolist() == marked.engine.finish_s.tolist()
    for i, start in enumerate(marks):
        direct = sim.run(scenario(duration_s=60.0, warmup_s=start))
        for with_marks, plain in zip(engine.replicas, direct.engine.replicas, strict=True):
            later = with_marks.since(i)
            assert later.window_steps == plain.window_steps
            assert later.window_generated_tokens == plain.window_generated_tokens
            assert later.window_prefill_tokens == plain.window_prefill_tokens
            assert later.busy_s == pytest.approx(plain.busy_s, rel=1e-9)
            assert later.prefill_s == pytest.approx(plain.prefill_s, rel=1e-9)
            assert later.kv_token_s == pytest.approx(plain.kv_token_s, rel=1e-9)
            assert later.batch_s == pytest.approx(plain.batch_s, rel=1e-9)


# ---- the quality bar --------------------------------------------------------------------

def _long_outputs(rate_per_s: float, drain_s: float | None) -> dict:
    """A cheap stand-in for the reasoning scenario: one replica, 3,000-token answers at
    10-23 ms a step (a request spends about a minute in a full batch), on a 120 s scenario
    with a 12 s warm-up — the short run that used to report such a fleet 19% slow."""
    return scenario(
        duration_s=120.0, warmup_s=12.0, drain_s=drain_s,
        profile={"kind": "linear", "base_s": 0.01, "per_prefill_token_s": 2e-6,
                 "per_decode_seq_s": 2e-4},
        deployment={"replicas": 1, "scheduler": {"policy": "chunked-prefill",
                                                 "max_num_seqs": 64,
                                                 "max_batched_tokens": 4096}},
        workload={"arrival": {"process": "poisson", "rate_per_s": rate_per_s},
                  "prompt_tokens": {"dist": "fixed", "value": 300},
                  "output_tokens": {"dist": "lognormal", "mean": 3000, "sigma": 0.3}})


def _means(data: dict, seeds: range) -> tuple[float, float]:
    runs = [sim.run(data, seed=seed).to_dict() for seed in seeds]
    return (float(np.mean([d["throughput"]["output_tokens_per_s"] for d in runs])),
            float(np.mean([d["cost"]["usd_per_million_tokens"]["blended"] for d in runs])))


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(("rate_per_s", "drain_s"), [(0.8, None), (3.0, 0.0)],
                         ids=["at-80%-load", "overloaded-probe"])
def test_plan_default_runs_report_long_run_cost_and_throughput(rate_per_s: float,
                                                               drain_s: float | None) -> None:
    base = _long_outputs(rate_per_s, drain_s)
    length_s = run_length_s(sim.load_scenario(base))
    assert length_s > 5 * base["duration_s"]  # long outputs get a long run
    seeds = range(1, 7)
    plan = _means({**base, "duration_s": length_s, "warmup_s": "auto"}, seeds)
    steady = _means({**base, "duration_s": 6 * length_s, "warmup_s": 1.5 * length_s}, seeds)
    assert plan[0] == pytest.approx(steady[0], rel=0.05)
    assert plan[1] == pytest.approx(steady[1], rel=0.05)
    if drain_s is None:  # the bias the plan's settings remove: the scenario's own short run
        short = _means(base, seeds)
        assert short[0] < 0.9 * steady[0] and short[1] > 1.1 * steady[1]
