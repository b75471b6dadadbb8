"""Engine properties: conservation, determinism, exact = event skipping, closed-form
saturation throughput and preemption under KV pressure."""

from __future__ import annotations

import numpy as np
import pytest
from builders import DYNAMIC, dynamic, scenario

import sim

POLICIES = ["chunked-prefill", "prefill-first", "static"]


def _without_wall(d: dict) -> dict:
    d = dict(d)
    d["sim"] = {k: v for k, v in d["sim"].items() if k not in ("wall_s", "requests_per_wall_s")}
    return d


def test_conservation_of_requests_and_tokens() -> None:
    result = sim.run(scenario(duration_s=120.0))
    d = result.to_dict()
    req, tok = d["requests"], d["tokens"]
    assert req["arrived"] == len(result.workload) > 500
    assert req["completed"] + req["unfinished"] == req["arrived"]
    assert req["unfinished"] == 0  # drained to the end
    assert tok["input"] == result.workload.prompt_tokens.sum()
    assert tok["output"] == result.workload.output_tokens.sum()
    # The engine's own count of tokens it produced, step by step, matches what was asked for.
    assert tok["generated"] == tok["output"]
    assert tok["prefilled"] == tok["input"]  # no preemption here, so no recomputation
    assert req["preempted"] == 0


def test_cut_off_run_reports_unfinished() -> None:
    # Overloaded and stopped at the horizon: nothing vanishes, the rest is unfinished.
    result = sim.run(scenario(duration_s=60.0, drain_s=0.0,
                              workload__arrival={"process": "poisson", "rate_per_s": 200.0}))
    req = result.to_dict()["requests"]
    assert req["unfinished"] > 0
    assert req["completed"] + req["unfinished"] == req["arrived"]
    assert np.isnan(result.engine.finish_s).sum() == req["unfinished"]


def test_same_seed_same_result_and_other_seed_differs() -> None:
    a = sim.run(scenario(seed=5)).to_dict()
    b = sim.run(scenario(seed=5)).to_dict()
    c = sim.run(scenario(seed=6)).to_dict()
    assert _without_wall(a) == _without_wall(b)
    assert a["latency_s"] != c["latency_s"]


def test_unseeded_run_records_a_seed_that_reproduces_it() -> None:
    data = scenario()
    del data["seed"]
    first = sim.run(data).to_dict()
    again = sim.run(data, seed=first["seed"]).to_dict()
    assert _without_wall(first) == _without_wall(again)


def _compare_modes(data: dict) -> tuple[sim.Result, sim.Result]:
    fast = sim.run(data)
    exact = sim.run(data, exact=True)
    for column in ("admit_s", "first_token_s", "finish_s"):
        a, b = getattr(fast.engine, column), getattr(exact.engine, column)
        assert np.array_equal(np.isnan(a), np.isnan(b))
        assert np.allclose(a, b, rtol=1e-9, atol=1e-9, equal_nan=True), column
    assert np.array_equal(fast.engine.preemptions, exact.engine.preemptions)
    assert np.array_equal(fast.engine.replica, exact.engine.replica)
    assert np.array_equal(fast.engine.requeues, exact.engine.requeues)
    for f, e in zip(fast.engine.replicas, exact.engine.replicas, strict=True):
        assert f.generated_tokens == e.generated_tokens
        assert f.prefill_tokens == e.prefill_tokens
        assert f.busy_s == pytest.approx(e.busy_s, rel=1e-9, abs=1e-9)
        assert f.decode_s == pytest.approx(e.decode_s, rel=1e-9, abs=1e-9)
    # Skipping is the point: far fewer events for the same answer.
    assert fast.engine.events < exact.engine.events
    return fast, exact


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("router", ["least-loaded", "power-of-two"])
def test_exact_mode_equals_event_skipping(policy: str, router: str) -> None:
    data = scenario(
        duration_s=90.0,
        deployment={"replicas": 3, "router": router,
                    "scheduler": {"policy": policy, "max_num_seqs": 48,
                                  "max_batched_tokens": 2048}},
        workload={"arrival": {"process": "gamma", "rate_per_s": 6.0, "cv": 2.0},
                  "prompt_tokens": {"dist": "lognormal", "mean": 900, "sigma": 1.0},
                  "output_tokens": {"dist": "uniform", "low": 1, "high": 400}},
    )
    _compare_modes(data)


@pytest.mark.parametrize("policy", POLICIES)
def test_exact_mode_equals_event_skipping_when_the_run_is_cut_off(policy: str) -> None:
    # drain_s 0: the run stops at duration_s with decode runs in progress; the steps of
    # them that ended before the stop count (whole-run and window totals) in both modes.
    data = scenario(
        duration_s=60.0, warmup_s=5.0, drain_s=0.0,
        deployment={"replicas": 2, "scheduler": {"policy": policy, "max_num_seqs": 16,
                                                 "max_batched_tokens": 2048}},
        workload={"arrival": {"process": "poisson", "rate_per_s": 40.0},
                  "prompt_tokens": {"dist": "lognormal", "mean": 500, "sigma": 0.5},
                  "output_tokens": {"dist": "uniform", "low": 50, "high": 400}},
    )
    _compare_modes(data)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("kind", list(DYNAMIC))
def test_exact_mode_equals_event_skipping_when_the_fleet_changes(kind: str, policy: str) -> None:
    # Replicas die mid-run, with decode runs cut short; the steps already done must be
    # booked exactly as exact mode booked them one by one.
    fast, exact = _compare_modes(dynamic(kind, policy))
    fd, ed = fast.to_dict(), exact.to_dict()
    assert fd["availability"] == ed["availability"]
    assert fd["cost"]["gpu_hours"] == pytest.approx(ed["cost"]["gpu_hours"], rel=1e-12)
    # Something did happen, or the comparison proves nothing.
    a = fd["availability"]
    changes = a["failures"] + a["spot_preemptions"] + a["outages"] + a["scale_ups"] \
        + a["scale_downs"]
    assert changes > 0
    if kind in ("failures", "spot", "outage"):
        assert fd["requests"]["requeued"] > 0


def _closed_loop(policy: str, think: float | dict) -> dict:
    """More clients than sequence slots, so requests queue and decode runs get cut."""
    return scenario(
        duration_s=60.0,
        deployment={"replicas": 2, "router": "power-of-two",
                    "scheduler": {"policy": policy, "max_num_seqs": 16,
                                  "max_batched_tokens": 2048}},
        workload={"arrival": {"process": "closed", "concurrency": 40, "think_time_s": think},
                  "prompt_tokens": {"dist": "lognormal", "mean": 900, "sigma": 1.0},
                  "output_tokens": {"dist": "uniform", "low": 1, "high": 400}},
    )


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("think", [0.0, {"dist": "uniform", "low": 0.0, "high": 2.0}],
                         ids=["back-to-back", "uniform-think"])
def test_exact_mode_equals_event_skipping_for_closed_loop_clients(
        policy: str, think: float | dict) -> None:
    # Arrival times now follow finish times: the two modes must send the same requests at
    # the same instants.
    fast, exact = _compare_modes(_closed_loop(policy, think))
    assert len(fast.workload) == len(exact.workload) > 200
    assert np.allclose(fast.workload.arrival_s, exact.workload.arrival_s, rtol=1e-9, atol=1e-9)
    assert fast.to_dict()["latency_s"]["queue"]["mean"] > 0.0  # the clients did queue


def test_exact_mode_equals_event_skipping_for_closed_loop_clients_on_a_failing_fleet() -> None:
    data = _closed_loop("chunked-prefill", 0.5)
    data["duration_s"] = 90.0
    data["deployment"].update(DYNAMIC["failures"]["deployment"])
    fast, exact = _compare_modes(data)
    assert np.allclose(fast.workload.arrival_s, exact.workload.arrival_s, rtol=1e-9, atol=1e-9)
    d = fast.to_dict()
    assert d["availability"]["failures"] > 0 and d["requests"]["requeued"] > 0


@pytest.mark.parametrize("policy", POLICIES)
def test_exact_mode_equals_event_skipping_under_kv_pressure(policy: str) -> None:
    fast, _ = _compare_modes(_kv_pressure(policy))
    assert fast.to_dict()["requests"]["preempted"] > 0


def _kv_pressure(policy: str) -> dict:
    # A tiny inline GPU: Llama-3.1-8B's 16 GB of weights leave ~1.5 GiB for KV (~12k tokens).
    gpu = {"name": "tiny", "memory_gib": 18.5, "memory_bandwidth_tb_s": 3.35,
           "bf16_tflops": 989.0}
    return scenario(
        duration_s=60.0, gpu=gpu,
        deployment={"replicas": 1, "gpu_memory_utilization": 1.0, "activation_reserve_gib": 2.0,
                    "scheduler": {"policy": policy, "max_num_seqs": 64,
                                  "max_batched_tokens": 4096}},
        workload={"arrival": {"process": "poisson", "rate_per_s": 3.0},
                  "prompt_tokens": {"dist": "uniform", "low": 200, "high": 1200},
                  "output_tokens": {"dist": "uniform", "low": 200, "high": 1500}},
    )


@pytest.mark.parametrize("policy", POLICIES)
def test_kv_pressure_preempts_and_still_completes_everything(policy: str) -> None:
    result = sim.run(_kv_pressure(policy))
    d = result.to_dict()
    capacity = d["fleet"]["kv_capacity_tokens_per_replica"]
    assert capacity < 15_000
    req, tok = d["requests"], d["tokens"]
    assert req["preempted"] > 0
    assert req["preempted_requests"] <= req["preempted"]
    assert req["completed"] + req["rejected"] == req["arrived"]
    assert req["rejected"] == 0  # every request fits the cache on its own
    # Recomputed prompts are extra prefill work; generated tokens are never generated twice.
    assert tok["prefilled"] > tok["input"]
    assert tok["generated"] == tok["output"]
    assert d["utilization"]["kv_cache_fraction_mean"] <= 1.0


def test_requests_larger_than_the_kv_cache_are_rejected_and_counted() -> None:
    data = _kv_pressure("chunked-prefill")
    data["workload"]["prompt_tokens"] = {"dist": "uniform", "low": 100, "high": 16000}
    d = sim.run(data).to_dict()["requests"]
    assert d["rejected"] > 0
    assert d["completed"] + d["unfinished"] == d["arrived"]
    assert d["unfinished"] == d["rejected"]


LINEAR = {"kind": "linear", "base_s": 0.004, "per_prefill_token_s": 2e-6,
          "per_decode_seq_s": 1e-4, "per_kv_token_s": 2e-8}


N_SEQS, PROMPT, OUTPUT = 16, 256, 128


def _saturated(policy: str, profile: dict) -> float:
    """Output tokens/s of one overloaded replica with fixed lengths."""
    result = sim.run(scenario(
        duration_s=300.0, warmup_s=30.0, drain_s=0.0, profile=profile,
        deployment={"replicas": 1, "scheduler": {"policy": policy, "max_num_seqs": N_SEQS,
                                                 "max_batched_tokens": 8192}},
        workload={"arrival": {"process": "poisson", "rate_per_s": 100.0},
                  "prompt_tokens": {"dist": "fixed", "value": PROMPT},
                  "output_tokens": {"dist": "fixed", "value": OUTPUT}},
    ))
    assert result.to_dict()["utilization"]["batch_size_mean"] > 0.9 * N_SEQS
    return result.to_dict()["throughput"]["output_tokens_per_s"]


def _closed_form_rate(profile: dict, prefill_groups: int) -> float:
    """Batch-limited output tokens/s when the N sequences are admitted in `prefill_groups`
    groups (N·P ≤ max_batched_tokens, so each group's prefill is one step).

    Per cycle every sequence is prefilled once and decoded O − 1 times, and each decode step
    carries the whole batch with contexts prompt + g, g = 1 … O − 1. Only the fixed cost per
    step depends on the grouping: one base_s per prefill step."""
    base, per_prefill = profile["base_s"], profile["per_prefill_token_s"]
    per_seq, per_kv = profile["per_decode_seq_s"], profile["per_kv_token_s"]
    prefill_s = prefill_groups * base + per_prefill * N_SEQS * PROMPT
    decode_s = sum(base + per_seq * N_SEQS + per_kv * N_SEQS * (PROMPT + g)
                   for g in range(1, OUTPUT))
    return N_SEQS * OUTPUT / (prefill_s + decode_s)


def test_static_saturation_throughput_matches_closed_form() -> None:
    # Static batching admits a batch only when the last one is done: one group per cycle.
    assert _saturated("static", LINEAR) == pytest.approx(_closed_form_rate(LINEAR, 1), rel=0.02)


def test_prefill_first_saturation_throughput_matches_closed_form() -> None:
    # Prefill-first keeps whatever grouping the start-up trickle of arrivals gave it, so with
    # no fixed per-step cost the rate is independent of grouping and exactly the closed form...
    no_base = {**LINEAR, "base_s": 0.0}
    measured = _saturated("prefill-first", no_base)
    assert measured == pytest.approx(_closed_form_rate(no_base, 1), rel=0.02)
    # ...and with one, it lies between one prefill step per cycle and one per sequence.
    measured = _saturated("prefill-first", LINEAR)
    assert _closed_form_rate(LINEAR, N_SEQS) < measured < _closed_form_rate(LINEAR, 1)


def test_more_replicas_cut_latency_under_the_same_load() -> None:
    # Metamorphic: doubling the fleet at the same arrival rate cannot make queueing worse.
    load = {"process": "poisson", "rate_per_s": 25.0}
    small = sim.run(scenario(workload__arrival=load, deployment__replicas=2)).to_dict()
    large = sim.run(scenario(workload__arrival=load, deployment__replicas=4)).to_dict()
    assert large["latency_s"]["ttft"]["p99"] < small["latency_s"]["ttft"]["p99"]
    assert large["cost"]["fleet_usd_per_hour"] == 2 * small["cost"]["fleet_usd_per_hour"]
