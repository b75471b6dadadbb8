"""The planner's stated confidence against fresh runs (slow tier).

A small plan is sized by the rule (`sim.planning.runs`); then the recommended fleet, and the
one a replica smaller, are each run over many fresh, independent draws — new run seeds, new
demand multipliers from the period's forecast error — that the plan never saw. The share of
those that meet the SLO must agree with the interval the plan reported for that fleet, the
recommended fleet must not be shown to be one the rule promises to refuse (P(SLO met) at
or below the sequential test's p0), and where the plan's interval for the smaller fleet lies
below the target, fresh runs must not show it meeting it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from builders import scenario

from sim.montecarlo.confidence import SequentialTest, Share, wilson
from sim.planning import forecast
from sim.planning import options as option_specs
from sim.planning.planner import plan
from sim.planning.runs import Draws, Evaluator, InlineExecutor, met_count
from sim.scenario import load_scenario

FRESH_DRAWS = 160  # a Wilson half-width of at most ±8 points on each fleet's fresh share
TARGET = 0.9


def _data() -> dict:
    data = scenario(
        # Step time grows with the batch, so every latency varies from draw to draw (a
        # constant step would pin TPOT at one value: see sim.montecarlo.confidence).
        seed=11, duration_s=60.0, warmup_s=10.0,
        profile={"kind": "linear", "base_s": 0.01, "per_prefill_token_s": 2e-5,
                 "per_decode_seq_s": 0.004, "per_kv_token_s": 1e-6},
        deployment={"replicas": 1, "scheduler": {"policy": "chunked-prefill",
                                                 "max_num_seqs": 4, "max_batched_tokens": 4096}},
        workload={"arrival": {"process": "poisson", "rate_per_s": 10.0},
                  "prompt_tokens": {"dist": "fixed", "value": 100},
                  "output_tokens": {"dist": "geometric", "mean": 25}},
        slo={"ttft_s": 0.6, "tpot_s": 0.05, "percentile": 99})
    data["plan"] = {
        "periods": [{"name": "m", "peak_rate_per_s": 18.0,
                     "uncertainty": {"dist": "lognormal", "mean": 1.0, "sigma": 0.15}}],
        "options": [{"name": "only"}],
        "target": {"confidence": TARGET, "draws": 8, "max_draws": 32}}
    return data


def _overlap(a: Share, interval: list[float]) -> bool:
    return a.low <= interval[1] and interval[0] <= a.high


@pytest.mark.slow
def test_the_recommended_fleet_meets_the_slo_as_often_as_the_plan_says(tmp_path: Path) -> None:
    data = _data()
    document = plan(data, tmp_path, InlineExecutor())
    entry = document["periods"][0]["options"][0]
    n = entry["replicas"]
    assert n is not None and n > 1
    verdicts = {v["replicas"]: v for v in entry["search"]["verdicts"]}
    assert n - 1 in verdicts  # the search showed the smaller fleet infeasible

    spec = load_scenario(data, base_dir=tmp_path).plan
    option = option_specs.load(data, spec, tmp_path)[0]
    fresh = Draws.spawn(np.random.SeedSequence(20_240_601), FRESH_DRAWS)  # never seen
    rates = forecast.demands(spec, fresh.demand_u)[0].peak_draws
    sampled, _ = fresh.sampled(option)
    evaluator = Evaluator(InlineExecutor(), fresh, TARGET)

    def fresh_share(replicas: int) -> Share:
        rows = evaluator.rows(option, replicas, rates, sampled, shaped=True)
        return wilson(met_count(rows), len(rows))

    chosen, smaller = fresh_share(n), fresh_share(n - 1)
    reported = entry["slo_met_probability_ci"]
    assert verdicts[n]["feasible"] and not verdicts[n - 1]["feasible"]
    assert _overlap(chosen, reported), (chosen, reported)
    # What the sequential test vouches for: a fleet it calls feasible is not one whose
    # P(SLO met) is at or below p0 (0.6 for a target of 0.9); fresh runs must not show that.
    p0, _ = SequentialTest(TARGET).zone
    assert chosen.high > p0, chosen
    below = verdicts[n - 1]
    assert _overlap(smaller, below["slo_met_probability_ci"]), (smaller, below)
    if below["slo_met_probability_ci"][1] < TARGET:
        assert smaller.low < TARGET, smaller  # nor show the smaller one meeting it
    assert smaller.probability <= chosen.probability
