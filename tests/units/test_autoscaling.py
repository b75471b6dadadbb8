"""The autoscaler's three inputs: a replica's capacity where the KV cache binds, capacity that
a request may not get, and a load signal averaged over the interval.

Closed-form capacities (KV tokens ÷ tokens per sequence), a run where the old reading of
capacity (max_num_seqs) could never have asked for a replica, retries that land exactly on
the retry grid, and bursts that a reading at the tick alone would chase.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from builders import DELETE, Case, derive, params, scenario, tiny

import sim
from sim.hardware.memory import KV_BLOCK_TOKENS
from sim.runner import build, fleet_events
from sim.runner.single import SEED_STREAMS
from sim.scenario import load_scenario

SCALING = {"policy": "target-utilization", "target": 0.5, "min_replicas": 1, "max_replicas": 4}


def _settings(data: dict[str, Any]) -> Any:
    s = load_scenario(data)
    streams = dict(zip(SEED_STREAMS, np.random.SeedSequence(1).spawn(len(SEED_STREAMS)),
                       strict=True))
    plan = fleet_events.build(s, streams, build.kv_capacity(s))
    assert plan is not None and plan.autoscaling is not None
    return s, plan.autoscaling


def _fixed(prompt: int, output: int) -> dict[str, Any]:
    return {"prompt_tokens": {"dist": "fixed", "value": prompt},
            "output_tokens": {"dist": "fixed", "value": output}}


# 70B on two H100s: ~35,000 KV tokens, about eleven 3,000-token chats of 200-token answers.
KV_BOUND = scenario(
    duration_s=40.0, warmup_s=0.0, model="llama-3.1-70b",
    profile={"kind": "constant", "step_s": 0.03},
    deployment={"replicas": 1, "tensor_parallel": 2,
                "scheduler": {"max_num_seqs": 256, "max_batched_tokens": 8192},
                "autoscaling": {**SCALING, "interval_s": 5.0, "provisioning_delay_s": 5.0}},
    workload={"arrival": {"process": "poisson", "rate_per_s": 4.0}, **_fixed(3000, 200)})


def test_capacity_is_what_the_kv_cache_holds_at_the_mean_context() -> None:
    s, settings = _settings(KV_BOUND)
    kv_tokens = build.kv_capacity(s)
    # Halfway through its answer a sequence holds 3,000 + 100 tokens and a block of slack.
    expected = kv_tokens // (3000 + 200 // 2 + KV_BLOCK_TOKENS)
    assert settings.concurrency_per_replica == expected
    assert 8 <= expected <= 14  # "about ten", far below max_num_seqs 256


def test_capacity_is_max_num_seqs_where_the_kv_cache_does_not_bind() -> None:
    # 8B on one H100 holds ~450,000 tokens: thousands of 300-token sequences, so the rule is
    # the one before KV was counted, ⌈outstanding ÷ (target × max_num_seqs)⌉.
    data = scenario(deployment__autoscaling=SCALING, workload=_fixed(200, 200) | {
        "arrival": {"process": "poisson", "rate_per_s": 1.0}})
    _, settings = _settings(data)
    assert settings.concurrency_per_replica == 64


def test_lengths_cut_at_max_tokens_count_at_most_the_cut() -> None:
    data = scenario(deployment__autoscaling=SCALING, workload={
        "arrival": {"process": "poisson", "rate_per_s": 1.0},
        "prompt_tokens": {"dist": "lognormal", "mean": 1e6, "sigma": 0.5, "max_tokens": 8000},
        "output_tokens": {"dist": "fixed", "value": 2000}})
    s, settings = _settings(data)
    assert settings.concurrency_per_replica == min(
        64, build.kv_capacity(s) // (8000 + 1000 + KV_BLOCK_TOKENS))


def _outstanding_at(result: sim.Result, times_s: np.ndarray) -> np.ndarray:
    """Requests arrived and not finished at each time (the old, instantaneous signal)."""
    arrived = np.searchsorted(np.sort(result.workload.arrival_s), times_s, side="right")
    finish = np.sort(np.nan_to_num(result.engine.finish_s, nan=np.inf))
    return arrived - np.searchsorted(finish, times_s, side="right")


def test_kv_bound_fleet_scales_out_where_counting_max_num_seqs_never_would() -> None:
    # One replica holds ~11 sequences and 4 req/s of 6 s requests need ~24: the queue grows.
    static = sim.run(derive(KV_BOUND, deployment__autoscaling=DELETE))
    ticks_s = np.arange(5.0, 40.0, 5.0)
    # Counting 256 slots, no tick would ever want a second replica: ⌈n ÷ 128⌉ = 1.
    assert _outstanding_at(static, ticks_s).max() <= 0.5 * 256
    scaled = sim.run(KV_BOUND).to_dict()
    assert scaled["availability"]["scale_ups"] >= 2
    assert scaled["latency_s"]["queue"]["p99"] < static.to_dict()["latency_s"]["queue"]["p99"]


def _bursts(interval_s: float, burst_s: float, every: int, ticks: int) -> list[list[float]]:
    """A rate curve that is zero except for the last burst_s before every `every`-th tick."""
    curve = [[0.0, 0.0]]
    for k in range(every, ticks + 1, every):
        end = k * interval_s
        curve += [[end - burst_s, 0.0], [end - burst_s, 1.0], [end, 1.0], [end, 0.0]]
    return curve


def test_bursts_just_before_a_tick_cause_no_scaling_churn() -> None:
    # 20 requests arrive in the last second before every third tick (30 s apart) and are
    # served within a few seconds. A reading at such a tick sees ~20 outstanding and wants
    # ⌈20 ÷ (0.5 × 8)⌉ = 5 replicas, the two calm ticks after it want 1 and drain one (the
    # stabilisation window is two ticks), the next burst asks again: churn. Averaged over
    # the interval ~2 are outstanding, which one replica of 8 slots at target 0.5 holds.
    interval_s, every, ticks = 30.0, 3, 60
    data = scenario(
        duration_s=interval_s * ticks, warmup_s=0.0,
        profile={"kind": "constant", "step_s": 0.01},
        deployment={"replicas": 1, "scheduler": {"max_num_seqs": 8},
                    "autoscaling": {**SCALING, "interval_s": interval_s,
                                    "provisioning_delay_s": 10.0,
                                    "scale_in_stabilization_s": 2 * interval_s}},
        workload={"arrival": {"process": "poisson", "rate_per_s": 20.0 / (every * interval_s),
                              "rate_curve": _bursts(interval_s, 1.0, every, ticks)},
                  **_fixed(10, 100)})
    result = sim.run(data)
    burst_ticks_s = interval_s * np.arange(every, ticks, every)
    at_tick = _outstanding_at(result, burst_ticks_s)
    assert np.median(at_tick) > 2 * 0.5 * 8  # the instantaneous rule would want 3 or more
    a = result.to_dict()["availability"]
    assert (a["scale_ups"], a["scale_downs"]) == (0, 0)


def _loaded(seed: int, provisioning: dict[str, float]) -> dict[str, Any]:
    """One replica of 4 slots under 20 req/s of long answers: it wants a second replica at
    the first tick (10 s) and keeps wanting it."""
    return scenario(
        seed=seed, duration_s=120.0, warmup_s=0.0,
        workload={"arrival": {"process": "poisson", "rate_per_s": 20.0}, **_fixed(100, 200)},
        deployment={"replicas": 1, "scheduler": {"max_num_seqs": 4}, "autoscaling": {
            "policy": "queue", "target": 2, "min_replicas": 1, "max_replicas": 2,
            "provisioning_delay_s": 25.0, "interval_s": 10.0, "provisioning": provisioning}})


def test_a_failed_request_is_asked_again_retry_s_later_until_it_gets_capacity() -> None:
    # Asked for at 10 s; each failure moves the next attempt 7 s on (the ticks in between do
    # not ask twice): the replica is billed from 10 + 7k s and serves 25 s after that.
    failures = []
    for seed in range(1, 7):
        result = sim.run(_loaded(seed, {"success_probability": 0.3, "retry_s": 7.0}))
        timeline, a = result.engine.timeline, result.to_dict()["availability"]
        billed_at = timeline.time_s[np.argmax(timeline.billed >= 2)]
        working_at = timeline.time_s[np.argmax(timeline.working >= 2)]
        assert a["scale_ups"] == 1
        assert billed_at == pytest.approx(10.0 + 7.0 * a["provisioning_failures"])
        assert working_at == pytest.approx(billed_at + 25.0)
        failures.append(a["provisioning_failures"])
    assert sum(failures) > 0


def test_capacity_that_is_always_there_draws_nothing() -> None:
    # success_probability 1 (the default) gives the run without the key, bit for bit.
    always = sim.run(_loaded(3, {"success_probability": 1.0, "retry_s": 5.0})).to_dict()
    data = _loaded(3, {})
    del data["deployment"]["autoscaling"]["provisioning"]
    plain = sim.run(data).to_dict()
    for key in ("requests", "latency_s", "availability", "cost"):
        assert always[key] == plain[key], key
    assert always["availability"]["provisioning_failures"] == 0


def test_the_share_of_requests_that_get_capacity_is_the_probability() -> None:
    _, settings = _settings(_loaded(1, {"success_probability": 0.8}))
    n = 20_000
    got = sum(settings.provisioning_succeeds() for _ in range(n))
    assert abs(got / n - 0.8) < 4 * math.sqrt(0.8 * 0.2 / n)


BAD = [
    Case("provisioning-never-succeeds",
         tiny(deployment__autoscaling={**SCALING, "provisioning": {"success_probability": 0}}),
         "deployment.autoscaling.provisioning.success_probability", "0", ("> 0",)),
    Case("provisioning-probability-above-one",
         tiny(deployment__autoscaling={**SCALING,
                                       "provisioning": {"success_probability": 1.5}}),
         "deployment.autoscaling.provisioning.success_probability", "1.5", ("≤ 1",)),
    Case("provisioning-retry-every-microsecond",
         tiny(deployment__autoscaling={**SCALING, "provisioning": {"retry_s": 1e-6}}),
         "deployment.autoscaling.provisioning.retry_s", "1e-06", ("≥ 0.1",)),
    Case("provisioning-unknown-key",
         tiny(deployment__autoscaling={**SCALING, "provisioning": {"success": 0.5}}),
         "deployment.autoscaling.provisioning.success", "0.5"),
]


@pytest.mark.parametrize("case", params(BAD))
def test_bad_provisioning_keys_are_refused(case: Case,
                                           check_rejected: Callable[[Case], None]) -> None:
    check_rejected(case)
