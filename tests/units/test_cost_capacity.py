"""Headroom and capacity-based cost: the closed-form saturation estimate against cases whose
saturation throughput is known exactly, the capacity split's worked example, MFU/MBU by
hand, and the run-level identities (the split adds up to the window cost and, unlike the
phase-time split, keeps its input : output ratio when the load changes)."""

from __future__ import annotations

import numpy as np
import pytest
from builders import scenario

import sim
from sim.metrics.capacity import Mix, saturation
from sim.metrics.cost import capacity_price
from sim.metrics.intensity import Demands, WindowWork, intensity
from sim.scenario.profiles import ConstantProfile, LinearProfile
from sim.steptime.simple import ConstantStep, LinearStep

LINEAR = {"kind": "linear", "base_s": 0.004, "per_prefill_token_s": 2e-6,
          "per_decode_seq_s": 1e-4, "per_kv_token_s": 2e-8}
N_SEQS, PROMPT, OUTPUT = 16, 256, 128


def _fixed_mix(prompt: int, output: int) -> Mix:
    mix = Mix.of(np.full(10, prompt), np.full(10, output))
    assert mix is not None
    return mix


def test_static_batches_of_a_linear_profile_match_the_cycle_by_hand() -> None:
    # One cycle: a prefill step of the whole batch, then O − 1 decode steps with contexts
    # P + 1 … P + O − 1; the batch's N requests take the cycle's time.
    step = LinearStep(LinearProfile.model_validate(LINEAR))
    sat = saturation(step, _fixed_mix(PROMPT, OUTPUT), N_SEQS, 8192, 10**7)
    base, per_prefill = LINEAR["base_s"], LINEAR["per_prefill_token_s"]
    per_seq, per_kv = LINEAR["per_decode_seq_s"], LINEAR["per_kv_token_s"]
    cycle_s = base + per_prefill * N_SEQS * PROMPT + sum(
        base + per_seq * N_SEQS + per_kv * N_SEQS * (PROMPT + g) for g in range(1, OUTPUT))
    assert sat.batch_seqs == N_SEQS
    assert sat.requests_per_s == pytest.approx(N_SEQS / cycle_s, rel=1e-12)


def test_constant_step_capacity_is_batch_over_output_steps() -> None:
    step = ConstantStep(ConstantProfile(kind="constant", step_s=0.01))
    sat = saturation(step, _fixed_mix(20, 10), 8, 4096, 10**6)
    assert sat.requests_per_s == pytest.approx(8 / (10 * 0.01), rel=1e-12)  # 80 req/s
    assert sat.decode_s_per_token == pytest.approx(0.01 / 8)


def test_the_kv_cache_caps_the_batch_at_capacity_over_mean_context() -> None:
    step = LinearStep(LinearProfile.model_validate(LINEAR))
    mix = _fixed_mix(1000, 200)  # mean context 1000 + 200 / 2 = 1100
    assert saturation(step, mix, 256, 8192, 11_000).batch_seqs == 10
    assert saturation(step, mix, 256, 8192, 10_999).batch_seqs == 9
    assert saturation(step, mix, 4, 8192, 10**6).batch_seqs == 4  # max_num_seqs binds
    assert saturation(step, mix, 256, 8192, 10).batch_seqs == 1  # never below one


def test_attention_pairs_follow_the_mean_of_the_square_not_the_square_of_the_mean() -> None:
    mix = Mix.of(np.array([10, 30]), np.array([5, 5]))
    assert mix is not None
    assert mix.prompt_tokens == 20
    assert mix.prompt_attn_pairs == (10 * 11 / 2 + 30 * 31 / 2) / 2
    assert Mix.of(np.array([], dtype=int), np.array([], dtype=int)) is None


def _static_fleet(rate_per_s: float) -> dict:
    return scenario(
        duration_s=30.0, warmup_s=10.0, drain_s=0.0,
        profile={"kind": "constant", "step_s": 0.01},
        deployment={"replicas": 1, "scheduler": {"policy": "static", "max_num_seqs": 8,
                                                 "max_batched_tokens": 4096}},
        workload={"arrival": {"process": "poisson", "rate_per_s": rate_per_s},
                  "prompt_tokens": {"dist": "fixed", "value": 20},
                  "output_tokens": {"dist": "fixed", "value": 10}})


def test_an_overloaded_static_fleet_delivers_its_estimated_capacity() -> None:
    d = sim.run(_static_fleet(100.0)).to_dict()
    util = d["utilization"]
    assert util["capacity_requests_per_s"] == pytest.approx(80.0, rel=1e-12)
    assert d["throughput"]["requests_per_s"] == pytest.approx(80.0, rel=0.02)
    assert util["load_fraction"] == pytest.approx(util["offered_requests_per_s"] / 80.0)
    assert util["load_fraction"] > 1.1  # 100 offered against 80: no headroom
    # Flat out, the delivered tokens needed all of the paid GPU time.
    assert util["capacity_used_fraction"] == pytest.approx(1.0, rel=0.02)


def test_load_fraction_is_offered_over_capacity_and_tracks_the_rate() -> None:
    d = sim.run(_static_fleet(20.0)).to_dict()
    util = d["utilization"]
    arrived = util["offered_requests_per_s"] * 20.0
    assert arrived == pytest.approx(round(arrived))  # a count of arrivals over the window
    assert util["offered_requests_per_s"] == pytest.approx(20.0, rel=0.15)
    assert util["load_fraction"] == pytest.approx(20.0 / 80.0, rel=0.15)
    # Static batches run whatever is queued, so the GPU is busy far more than it is loaded.
    assert util["busy_fraction"] > util["load_fraction"]


def test_capacity_price_worked_example_from_the_docstring() -> None:
    c = capacity_price(gpu_hour_usd=2.0, paid_gpu_s=1800.0, prefill_gpu_s_per_token=5e-5,
                       decode_gpu_s_per_token=1e-3, input_tokens=2e6, output_tokens=501_000,
                       requests=1000)
    assert c.used_fraction == pytest.approx(1 / 3)  # 600 of 1,800 GPU-seconds
    assert c.at_capacity_input == pytest.approx(0.02778, abs=1e-5)
    assert c.at_capacity_output == pytest.approx(0.5544, abs=1e-4)
    assert c.at_capacity_blended == pytest.approx(0.1333, abs=1e-4)
    assert c.split_input == pytest.approx(0.08333, abs=1e-5)
    assert c.split_output == pytest.approx(1.663, abs=1e-3)
    window_usd = 2.0 * 1800 / 3600
    assert 2.0 * c.split_input + 0.501 * c.split_output == pytest.approx(window_usd)


def test_nothing_delivered_has_no_capacity_price() -> None:
    c = capacity_price(2.0, 1800.0, 5e-5, 1e-3, 0.0, 0.0, 0.0)
    assert c.used_fraction == 0.0
    assert (c.at_capacity_input, c.at_capacity_output, c.split_input, c.split_output) == (
        None, None, None, None)


def test_mfu_and_mbu_by_hand() -> None:
    # 1e9 active parameters, 100 GFLOP/s and 1 GB/s of peak: 2 GPU-seconds hold 200 GFLOP
    # and 2 GB. 50 tokens × 2 GFLOP + 1e7 pairs × 400 FLOP = 104 GFLOP; 1 step × 1 GB of
    # weights + 1000 KV tokens read × 1 MB = 2 GB.
    need = Demands(flops_per_token=2e9, attn_flops_per_pair=400.0, weight_bytes=1e9,
                   kv_bytes_per_token=1e6, peak_flops_per_gpu=1e11,
                   peak_bytes_per_s_per_gpu=1e9)
    work = WindowWork(prefill_tokens=40, generated_tokens=10, steps=1,
                      prefill_attn_pairs=1e7 - 1000, kv_tokens_read=1000)
    used = intensity(need, work, gpu_s=2.0)
    assert used is not None
    assert used.mfu == pytest.approx(104e9 / 200e9)
    assert used.mbu == pytest.approx(1.0)
    assert intensity(need, work, gpu_s=0.0) is None


def _h100(rate_per_s: float) -> dict:
    return sim.run(scenario(
        duration_s=60.0, warmup_s=10.0, deployment__replicas=1,
        deployment__scheduler={"policy": "chunked-prefill", "max_num_seqs": 256,
                               "max_batched_tokens": 8192},
        workload__arrival={"process": "poisson", "rate_per_s": rate_per_s})).to_dict()


@pytest.fixture(scope="module")
def two_loads() -> tuple[dict, dict]:
    return _h100(5.0), _h100(10.0)


def test_capacity_split_adds_up_to_the_window_cost(two_loads) -> None:
    for d in two_loads:
        thr, cost = d["throughput"], d["cost"]
        window_s = d["sim"]["window_s"][1] - d["sim"]["window_s"][0]
        split = cost["usd_per_million_tokens_capacity_split"]
        spent = (split["input"] * thr["input_tokens_per_s"]
                 + split["output"] * thr["output_tokens_per_s"]) * window_s / 1e6
        assert spent == pytest.approx(cost["window_usd"], rel=1e-9)
        # The split is the full-load price with the idle capacity charged pro rata.
        used = d["utilization"]["capacity_used_fraction"]
        at = cost["usd_per_million_tokens_at_capacity"]
        assert split["input"] == pytest.approx(at["input"] / used, rel=1e-9)
        assert at["blended"] / used == pytest.approx(
            cost["usd_per_million_tokens"]["blended"], rel=1e-9)


def test_capacity_split_keeps_its_ratio_when_load_changes(two_loads) -> None:
    low, high = two_loads
    ratio = [d["cost"]["usd_per_million_tokens_capacity_split"]["output"]
             / d["cost"]["usd_per_million_tokens_capacity_split"]["input"] for d in two_loads]
    assert ratio[0] == pytest.approx(ratio[1], rel=0.05)
    # Headroom shows where the busy fraction does not: twice the load, about twice the
    # load fraction, capacity used and MFU...
    assert low["utilization"]["busy_fraction"] > 0.95
    for key in ("load_fraction", "mfu", "capacity_used_fraction"):
        assert high["utilization"][key] / low["utilization"][key] == pytest.approx(2.0, rel=0.2)
    assert 0 < low["utilization"]["mfu"] < high["utilization"]["mfu"] < 1
    assert high["utilization"]["load_fraction"] < 1
    # ...but not MBU: a small decode batch still reads every weight each step, so memory
    # is as busy at low load as at high, which is why it is no measure of headroom.
    assert high["utilization"]["mbu"] == pytest.approx(low["utilization"]["mbu"], rel=0.25)


def test_an_overloaded_chunked_prefill_replica_delivers_about_its_estimate() -> None:
    # The estimate prices prefill chunks as steps of their own; riding along decode steps
    # they cost a little less, so the measured rate may be a few percent higher.
    d = sim.run(scenario(
        duration_s=40.0, warmup_s=15.0, drain_s=0.0, deployment__replicas=1,
        deployment__scheduler={"policy": "chunked-prefill", "max_num_seqs": 64,
                               "max_batched_tokens": 8192},
        workload__arrival={"process": "poisson", "rate_per_s": 60.0})).to_dict()
    estimate = d["utilization"]["capacity_requests_per_s"]
    assert d["throughput"]["requests_per_s"] == pytest.approx(estimate, rel=0.08)
    assert d["utilization"]["load_fraction"] > 2
