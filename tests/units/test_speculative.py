"""Speculative decoding's step cost and scenario key: τ in closed form, a verify step at
B·(K + 1) tokens plus K draft forwards, and the runner's wiring (without the key nothing
changes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from builders import Case, tiny

import sim
from sim.montecarlo import design
from sim.provenance import Provenance
from sim.report.result_schema import RUN, walk
from sim.report.run_text import format_summary
from sim.runner import build
from sim.scenario.profiles import ConstantProfile, LinearProfile
from sim.steptime.library import Table
from sim.steptime.simple import ConstantStep, LinearStep
from sim.steptime.speculative import (
    LayerDraft,
    SpeculativeSteps,
    expected_tokens_per_step,
    speculative_steps,
)
from sim.steptime.table import StepTerms, TableStep

MTP3 = {"method": "mtp", "num_tokens": 3, "acceptance_rate": 0.8}

# ---- τ ---------------------------------------------------------------------------------


def test_tokens_per_step_worked_example() -> None:
    assert expected_tokens_per_step(0.8, 3) == pytest.approx(1 + 0.8 + 0.64 + 0.512)
    assert expected_tokens_per_step(0.8, 3) == pytest.approx(2.952)


@pytest.mark.parametrize("alpha", [0.3, 0.6, 0.85, 0.99])
@pytest.mark.parametrize("k", [1, 2, 5, 16])
def test_one_rate_is_the_geometric_sum(alpha: float, k: int) -> None:
    assert expected_tokens_per_step(alpha, k) == pytest.approx(
        (1 - alpha ** (k + 1)) / (1 - alpha))


@pytest.mark.parametrize("k", [1, 3, 8])
def test_every_draft_accepted_gives_k_plus_one(k: int) -> None:
    assert expected_tokens_per_step(1.0, k) == k + 1
    assert expected_tokens_per_step([1.0] * k, k) == k + 1


def test_per_position_rates_multiply_along_the_draft() -> None:
    # Draft 2 counts only when draft 1 was accepted: 1 + 0.9 + 0.9 × 0.5.
    assert expected_tokens_per_step([0.9, 0.5], 2) == pytest.approx(2.35)
    # Equal rates as a list give the scalar's τ.
    assert expected_tokens_per_step([0.7] * 4, 4) == pytest.approx(
        expected_tokens_per_step(0.7, 4))


def test_a_list_must_have_one_rate_per_draft_token() -> None:
    with pytest.raises(ValueError, match="2 acceptance rates for 3"):
        expected_tokens_per_step([0.9, 0.8], 3)


# ---- step cost on hand-built bases ----------------------------------------------------------

BASE_S, PER_SEQ_S, PER_KV_S, PER_PREFILL_S = 0.010, 2e-4, 3e-8, 5e-5
LAYERS = 10


def _linear() -> LinearStep:
    return LinearStep(LinearProfile(kind="linear", base_s=BASE_S, per_decode_seq_s=PER_SEQ_S,
                                    per_kv_token_s=PER_KV_S,
                                    per_prefill_token_s=PER_PREFILL_S))


def _mtp(target: Any, k: int) -> SpeculativeSteps:
    return speculative_steps(target, LAYERS, "mtp", k, 0.8)


@pytest.mark.parametrize("batch", [1, 7, 64])
@pytest.mark.parametrize("k", [1, 3])
def test_decode_is_a_verify_at_b_times_k_plus_one_plus_k_one_layer_drafts(batch: int,
                                                                         k: int) -> None:
    step = _mtp(_linear(), k)
    verify_s = BASE_S + PER_SEQ_S * batch * (k + 1)
    one_layer_s = (BASE_S + PER_SEQ_S * batch) / LAYERS  # no lm_head table: 1/layers
    assert step.decode_fixed_s(batch) == pytest.approx(verify_s + k * one_layer_s)
    # The KV is read once a sequence by the verify, and once more by each draft's layer.
    assert step.per_kv_token_s == pytest.approx(PER_KV_S * (1 + k / LAYERS))


@pytest.mark.parametrize("batch,kv", [(1, 500), (16, 40_000), (200, 1_000_000)])
def test_a_pure_decode_step_keeps_the_form_event_skipping_needs(batch: int, kv: int) -> None:
    step = _mtp(_linear(), 3)
    assert sum(step.step_s(0, 0.0, batch, kv)) == pytest.approx(
        step.decode_fixed_s(batch) + step.per_kv_token_s * kv)
    assert step.step_s(0, 0.0, batch, kv)[0] == 0.0


def test_a_constant_base_pays_its_step_plus_k_layers_of_it() -> None:
    target = ConstantStep(ConstantProfile(kind="constant", step_s=0.02))
    step = _mtp(target, 4)
    assert step.decode_fixed_s(32) == pytest.approx(0.02 + 4 * 0.02 / LAYERS)
    assert step.per_kv_token_s == 0.0


def test_a_tabled_lm_head_is_charged_whole_to_each_draft() -> None:
    x = [0.0, 1.0, 1000.0]
    linear = Table(x=x, y=[0.0, 0.010, 0.010 + 999 * 1e-5])  # 10 ms + 10 µs a token
    lm_head = Table(x=x, y=[0.0, 0.001, 0.001 + 999 * 2e-6])  # 1 ms + 2 µs a logit
    terms = StepTerms(linear=((linear, 1.0),), lm_head_s=lm_head, overhead_s=0.0,
                      prefill_fixed_s=0.0, prefill_per_token_s=0.0, prefill_per_pair_s=0.0,
                      decode_fixed_s=0.0, decode_per_seq_s=0.0, decode_per_kv_token_s=1e-8)
    target = TableStep(terms, Provenance("hand", "inline"), 1000)
    batch = 8
    layer_s = (0.010 + 7 * 1e-5) / LAYERS
    lm_head_s = 0.001 + 7 * 2e-6
    assert LayerDraft(target, LAYERS).decode_fixed_s(batch) == pytest.approx(
        layer_s + lm_head_s)
    verify_s = 0.010 + 31 * 1e-5 + 0.001 + 31 * 2e-6  # B·(K + 1) = 32 tokens and logits
    assert _mtp(target, 3).decode_fixed_s(batch) == pytest.approx(
        verify_s + 3 * (layer_s + lm_head_s))


def test_a_draft_model_is_run_k_times_at_the_batch() -> None:
    target = _linear()
    draft = ConstantStep(ConstantProfile(kind="constant", step_s=0.003))
    step = speculative_steps(target, LAYERS, "draft", 2, 0.7, draft)
    assert step.decode_fixed_s(10) == pytest.approx(BASE_S + PER_SEQ_S * 30 + 2 * 0.003)
    assert step.per_kv_token_s == PER_KV_S  # a constant draft reads no KV
    assert "draft model (constant" in step.provenance.details["speculative"]["draft"]


def test_a_mixed_step_drafts_its_decodes_and_passes_its_prompt_through_the_draft() -> None:
    target = _linear()
    step = _mtp(target, 3)
    prefill_tokens, batch, kv = 1000, 20, 50_000
    prefill_s, decode_s = step.step_s(prefill_tokens, 5e5, batch, kv)
    verify_p, verify_d = target.step_s(prefill_tokens, 5e5, batch * 4, kv)
    draft_prompt_s = target.step_s(prefill_tokens, 5e5, 0, 0)[0] / LAYERS
    assert prefill_s == pytest.approx(verify_p + draft_prompt_s)
    one_layer_s = (BASE_S + PER_SEQ_S * batch) / LAYERS
    assert decode_s == pytest.approx(verify_d + 3 * (one_layer_s + PER_KV_S / LAYERS * kv))


def test_speculating_costs_more_a_step_but_less_a_token_at_small_batch() -> None:
    target = _linear()
    step = _mtp(target, 3)
    tau = expected_tokens_per_step(0.8, 3)
    assert step.decode_fixed_s(4) > target.decode_fixed_s(4)
    assert step.decode_fixed_s(4) / tau < target.decode_fixed_s(4)


# ---- the runner's wiring ------------------------------------------------------------------


def test_without_the_key_the_runner_does_not_wrap() -> None:
    scenario = sim.load_scenario(tiny())
    assert not isinstance(build.step_model(scenario), SpeculativeSteps)
    cfg = build.engine_config(scenario, 100_000, False, None)
    assert (cfg.tokens_per_step, cfg.lookahead_tokens) == (1.0, 0)


def test_the_key_wraps_the_step_model_and_sets_the_engine() -> None:
    scenario = sim.load_scenario(tiny(deployment__speculative=MTP3))
    step = build.step_model(scenario)
    assert isinstance(step, SpeculativeSteps)
    assert isinstance(step.draft, LayerDraft) and step.draft.layers == scenario.model.layers
    cfg = build.engine_config(scenario, 100_000, False, None)
    assert cfg.tokens_per_step == pytest.approx(2.952)
    assert cfg.lookahead_tokens == 3
    # The verify step's B·(K + 1) tokens are within the expanded tables.
    seqs = scenario.deployment.scheduler.max_num_seqs
    assert step.decode_fixed_s(seqs) > step.target.decode_fixed_s(seqs)


def test_method_draft_builds_its_draft_model_on_the_same_gpu() -> None:
    spec = {"method": "draft", "num_tokens": 2, "acceptance_rate": [0.8, 0.6],
            "draft_model": "llama-3.1-8b"}
    scenario = sim.load_scenario(tiny(model="llama-3.1-70b", deployment__tensor_parallel=4,
                                      deployment__speculative=spec))
    step = build.step_model(scenario)
    assert isinstance(step, SpeculativeSteps) and not isinstance(step.draft, LayerDraft)
    draft = build.draft_step_model(scenario, scenario.gpu, scenario.layout,
                                   scenario.deployment.scheduler)
    assert draft is not None and draft.provenance.details["model"] == "llama-3.1-8b"
    assert draft.provenance.details["tensor_parallel"] == 4
    assert step.decode_fixed_s(8) == pytest.approx(
        step.target.decode_fixed_s(24) + 2 * draft.decode_fixed_s(8))


def test_a_run_reports_tau_and_speeds_up_a_lightly_loaded_decode() -> None:
    plain = sim.run(tiny(), warn_window=False).to_dict()
    doc = sim.run(tiny(deployment__speculative=MTP3), warn_window=False).to_dict()
    walk(RUN, doc, "", "result")
    assert doc["speculative"] == {"method": "mtp", "num_tokens": 3, "acceptance_rate": 0.8,
                                  "tokens_per_step": pytest.approx(2.952)}
    assert "speculative" not in plain
    assert "2.952 tokens per decode step" in format_summary(doc)
    # A batch of about one sequence: a verify of 4 tokens costs far less than 2.952 steps.
    assert doc["latency_s"]["tpot"]["mean"] < plain["latency_s"]["tpot"]["mean"] / 1.5


def test_a_run_is_deterministic_with_speculation() -> None:
    data = tiny(deployment__speculative={**MTP3, "acceptance_rate": [0.9, 0.7, 0.5]})
    first, second = (sim.run(data, warn_window=False).to_dict() for _ in range(2))
    assert first["latency_s"] == second["latency_s"]
    assert first["speculative"]["acceptance_rate"] == [0.9, 0.7, 0.5]


def test_the_uncertainty_block_draws_an_acceptance_rate_per_run() -> None:
    """α as a distribution: a sweep's `uncertainty:` draws it per replication, and each
    run's engine gets that draw's τ."""
    key = "deployment.speculative.acceptance_rate"
    raw = tiny(deployment__speculative=MTP3, step_time_scale=1.0,
               sweep={"grid": {"deployment.replicas": [1]}, "replications": 4},
               uncertainty={key: {"dist": "uniform", "low": 0.6, "high": 0.9},
                            "step_time_scale": {"dist": "uniform", "low": 1.0, "high": 1.0}})
    runs = design.build(raw, Path(".")).runs
    rates = [r.values[key] for r in runs]
    assert len(set(rates)) == 4 and all(0.6 <= a <= 0.9 for a in rates)
    for run, rate in zip(runs, rates, strict=True):
        assert build.tokens_per_step(run.scenario) == pytest.approx(
            expected_tokens_per_step(rate, 3))


# ---- bad input (the key's rows are in the bad-input table, tests/contracts) ----------------


def test_a_draft_model_must_split_over_the_targets_tensor_parallel_gpus(
        check_rejected: Callable[[Case], None]) -> None:
    spec = {"method": "draft", "num_tokens": 2, "acceptance_rate": 0.7,
            "draft_model": "gpt-j-6b"}  # 16 heads: not over 32 GPUs
    check_rejected(Case("draft-over-tp32", tiny(model="llama-3.1-405b",
                                                deployment__tensor_parallel=32,
                                                deployment__speculative=spec),
                        "deployment.speculative.draft_model", "gpt-j-6b",
                        ("tensor_parallel 32", "16 attention heads")))
