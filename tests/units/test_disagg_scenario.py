"""`deployment.disaggregation`: the pools a scenario resolves (a key a pool leaves out is the
deployment's), the runner's two sides on their own GPUs, the cost of both pools' GPUs in a
worked example, and whole runs whose KV transfers obey the link's closed form."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from builders import DELETE, tiny

import sim
from sim.engine.records import ReplicaCounters
from sim.report.result_schema import RUN, walk
from sim.report.run_text import format_summary
from sim.runner import build, result
from sim.scenario.disaggregation import DEFAULT_POOL_ROUTER

LINK = {"bandwidth_gb_s": 50, "latency_s": 0.002}
# Llama-3.1-8B's KV per token in bf16: 2 (K and V) × 32 layers × 8 KV heads × 128 × 2 bytes.
LLAMA_8B_KV_BYTES = 2 * 32 * 8 * 128 * 2


def split(prefill: dict[str, Any] | None = None, decode: dict[str, Any] | None = None,
          link: dict[str, Any] | None = None, **others: Any) -> dict[str, Any]:
    """The tiny base served by a prefill pool and a decode pool."""
    return tiny(deployment__disaggregation={"prefill": prefill or {}, "decode": decode or {},
                                            "kv_transfer": link or LINK}, **others)


# ---- the scenario key ---------------------------------------------------------------------


def test_a_key_a_pool_leaves_out_is_the_deployments() -> None:
    s = sim.load_scenario(split(prefill={"replicas": 1},
                                decode={"tensor_parallel": 1, "gpu": "h200"},
                                deployment__replicas=3, deployment__tensor_parallel=2,
                                deployment__dtype="fp8"))
    assert s.pools is not None
    prefill, decode = s.pools
    assert (prefill.replicas, prefill.layout.tensor_parallel, prefill.gpu.name) == (
        1, 2, "h100-sxm")  # tensor_parallel and gpu: the deployment's and the scenario's
    assert (decode.replicas, decode.layout.tensor_parallel, decode.gpu.name) == (3, 1, "h200")
    assert prefill.layout.dtype == decode.layout.dtype == "fp8"
    assert prefill.layout.kv_cache_dtype == decode.layout.kv_cache_dtype == "fp8"  # auto
    assert [p.key for p in s.pools] == ["deployment.disaggregation.prefill",
                                        "deployment.disaggregation.decode"]
    assert s.gpu_count == 1 * 2 + 3 * 1


def test_scheduler_keys_inherit_key_by_key_then_the_pools_gpu_preset() -> None:
    # SGLang's chunked_prefill_size: 8192 below 160 GiB (H100: 80), 16384 above (B300).
    s = sim.load_scenario(split(decode={"gpu": "b300", "scheduler": {"policy": "chunked-prefill"}},
                                deployment__engine="sglang",
                                deployment__scheduler={"max_num_seqs": 48}))
    assert s.pools is not None
    prefill, decode = (pool.scheduler for pool in s.pools)
    assert (prefill.policy, prefill.max_num_seqs, prefill.max_batched_tokens) == (
        "prefill-first", 48, 8192)
    assert (decode.policy, decode.max_num_seqs, decode.max_batched_tokens) == (
        "chunked-prefill", 48, 16384)
    assert s.deployment.scheduler.max_batched_tokens == 8192  # the aggregated fill as before


def test_routers_default_to_least_pending_tokens_unless_the_scenario_says() -> None:
    unset = sim.load_scenario(split(decode={"router": "round-robin"},
                                    deployment__router=DELETE)).pools
    assert unset is not None
    assert (unset.prefill.router, unset.decode.router) == (DEFAULT_POOL_ROUTER, "round-robin")
    given = sim.load_scenario(split(deployment__router="power-of-two")).pools
    assert given is not None
    assert given.prefill.router == given.decode.router == "power-of-two"


def test_an_aggregated_deployment_has_no_pools() -> None:
    s = sim.load_scenario(tiny())
    assert s.pools is None and build.sides(s) is None
    assert s.gpu_count == s.deployment.replicas * s.gpus_per_replica


# ---- the runner -----------------------------------------------------------------------------


def test_the_runner_builds_each_pool_on_its_own_gpu() -> None:
    s = sim.load_scenario(split(prefill={"replicas": 1}, decode={"replicas": 3, "gpu": "h200"}))
    both = build.sides(s)
    assert both is not None
    assert (both.prefill.pool.gpu.name, both.decode.pool.gpu.name) == ("h100-sxm", "h200")
    # H200: 141 GiB and 4.8 TB/s against 80 GiB and 3.35 TB/s: more cache, faster decodes.
    assert both.decode.kv_capacity_tokens > 1.5 * both.prefill.kv_capacity_tokens
    batch, context = 32, 32 * 1000
    decode_h200 = both.decode.step_model.step_s(0, 0.0, batch, context)
    decode_h100 = both.prefill.step_model.step_s(0, 0.0, batch, context)
    assert sum(decode_h200) < sum(decode_h100)
    assert build.pool_engine_config(s, both.prefill, exact=False).replicas == 1
    pool = build.decode_pool(s, both, exact=False)
    assert pool.config.replicas == 3
    assert pool.config.kv_capacity_tokens == both.decode.kv_capacity_tokens
    assert pool.kv_bytes_per_token == LLAMA_8B_KV_BYTES
    assert (pool.link_bytes_per_s, pool.link_latency_s) == (50e9, 0.002)


def test_the_budget_refuses_an_oversized_pool() -> None:
    big = split(decode={"replicas": 1000, "scheduler": {"max_num_seqs": 32768}})
    with pytest.raises(sim.InputError) as info:
        sim.run(big)
    assert info.value.where == "deployment.disaggregation.decode.scheduler.max_num_seqs"


# ---- cost and utilisation: a worked example ----------------------------------------------


def _counters(busy_s: float, batch: float, kv_tokens: float, prefilled: int,
              generated: int) -> ReplicaCounters:
    return ReplicaCounters(busy_s=busy_s, prefill_s=busy_s if prefilled else 0.0,
                           decode_s=0.0 if prefilled else busy_s, batch_s=batch * busy_s,
                           kv_token_s=kv_tokens * busy_s, steps=1, preemptions=0,
                           generated_tokens=generated, prefill_tokens=prefilled,
                           window_prefill_tokens=prefilled, window_generated_tokens=generated,
                           window_steps=1)


def test_cost_counts_both_pools_worked_example() -> None:
    """Prefill: 1 replica of TP2 (2 GPUs), busy 9 of the window's 18 s; decode: 2 replicas
    of TP1, busy all 18 s: 4 GPUs at $2.50/h are $10/h, $0.05 for the window. Input is
    priced by the prefill pool's 9 × 2 = 18 busy GPU-seconds, output by the decode pool's
    2 × 18 = 36: a third and two thirds of $0.05. 1M input tokens cost $0.016667/1M; 1,000
    first tokens and 99,000 decoded ones $0.33333/1M; blended $0.05 / 1.1M."""
    scenario = sim.load_scenario(split(prefill={"replicas": 1, "tensor_parallel": 2},
                                       decode={"replicas": 2}))
    run = sim.run(scenario)
    both = build.sides(scenario)
    assert both is not None
    kv_prefill, kv_decode = both.prefill.kv_capacity_tokens, both.decode.kv_capacity_tokens
    engine = replace(run.engine, replicas=(
        _counters(9.0, 2.0, 0.01 * kv_prefill, 1_000_000, 1_000),
        _counters(18.0, 10.0, 0.2 * kv_decode, 0, 49_500),
        _counters(18.0, 30.0, 0.4 * kv_decode, 0, 49_500)),
        kv_transfer_s=np.full(len(run.engine.kv_transfer_s), 0.01))
    r = result.build(scenario, 1, run.workload, engine, both.prefill.step_model, kv_prefill,
                     0.0, False, None, both).record
    assert r.window_end_s - r.window_start_s == 18.0
    assert r.fleet_gpus == 4
    assert r.fleet_usd_per_hour == pytest.approx(10.0)
    assert r.window_usd == pytest.approx(0.05)
    assert r.usd_per_million_input == pytest.approx(0.05 / 3)
    assert r.usd_per_million_output == pytest.approx(0.05 * 2 / 3 / 0.1)
    assert r.usd_per_million_blended == pytest.approx(0.05 / 1.1)
    assert r.busy_fraction == pytest.approx((18 + 36) / (4 * 18))
    assert (r.prefill_pool_busy_fraction, r.decode_pool_busy_fraction) == (0.5, 1.0)
    assert r.decode_pool_batch_size_mean == r.batch_size_mean == pytest.approx(20.0)
    assert r.prefill_pool_kv_cache_fraction_mean == pytest.approx(0.01 * 9 / 18)
    assert r.decode_pool_kv_cache_fraction_mean == pytest.approx((0.2 + 0.4) / 2)
    assert (r.prefill_pool_gpus, r.decode_pool_gpus) == (2, 2)
    assert r.kv_transfer_mean_s == pytest.approx(0.01)
    # No one-replica saturation for two pools: no full-load price is quoted.
    assert r.usd_per_million_input_at_capacity is None
    assert r.usd_per_million_output_capacity_split is None


# ---- whole runs -----------------------------------------------------------------------------


def _transfers_obey_the_link(run: sim.Result, link: dict[str, float]) -> None:
    """Each transfer takes at least latency + bytes / bandwidth (overlapping ones share the
    link), its bytes those of the prompt and first token, and all of them add up."""
    e, w = run.engine, run.workload
    assert e.decode_replica is not None and e.kv_transfer_s is not None
    moved = e.decode_replica >= 0
    assert moved.any() and np.isfinite(e.kv_transfer_s[moved]).all()
    tokens = w.prompt_tokens[moved] + 1
    alone_s = link["latency_s"] + tokens * LLAMA_8B_KV_BYTES / (link["bandwidth_gb_s"] * 1e9)
    assert (e.kv_transfer_s[moved] >= alone_s - 1e-9).all()
    assert e.kv_transfer_bytes == pytest.approx(float(tokens.sum()) * LLAMA_8B_KV_BYTES)


def test_a_disaggregated_run_reports_both_pools() -> None:
    link = {"bandwidth_gb_s": 25.0, "latency_s": 0.003}
    run = sim.run(split(prefill={"replicas": 1}, decode={"replicas": 2, "gpu": "h200"},
                        link=link, deployment__router=DELETE))
    d = run.to_dict()
    walk(RUN, d, "", "result")
    block = d["disaggregation"]
    assert (block["prefill"]["replicas"], block["decode"]["replicas"]) == (1, 2)
    assert d["fleet"]["gpus"] == 3 and d["fleet"]["replicas"] == 3
    assert d["fleet"]["gpu"] == "h200"  # the fleet block describes the decode pool
    assert d["cost"]["fleet_usd_per_hour"] == pytest.approx(3 * 2.5)
    for pool in ("prefill", "decode"):
        assert 0 < block[pool]["busy_fraction"] <= 1
        assert 0 < block[pool]["kv_cache_fraction_mean"] < 1
    moved = block["kv_transfer"]
    assert link["latency_s"] <= moved["mean_s"] <= moved["p99_s"] < 1.0
    assert moved["bytes"] == run.engine.kv_transfer_bytes > 0
    assert d["requests"]["completed"] == d["requests"]["arrived"] > 0
    _transfers_obey_the_link(run, link)
    # TTFT ends on the prefill side, before the KV has moved and the decode has begun.
    e = run.engine
    assert e.kv_transfer_s is not None
    done = np.isfinite(e.finish_s) & (run.workload.output_tokens > 1)
    assert (e.first_token_s[done] + e.kv_transfer_s[done] < e.finish_s[done]).all()
    text = format_summary(d)
    assert "prefill pool 1 replicas, 1 GPUs" in text and "decode pool  2 replicas" in text
    assert "KV transfer" in text


def test_a_plain_closed_loop_runs_disaggregated_and_obeys_the_closed_system_law() -> None:
    """X = N / (R + Z) for N clients, response time R and think time Z (within 10%: the
    window's edges cut requests in flight)."""
    clients, think_s = 8, 0.5
    run = sim.run(split(duration_s=60, warmup_s=10,
                        workload__arrival={"process": "closed", "concurrency": clients,
                                           "think_time_s": think_s}))
    d = run.to_dict()
    throughput = d["throughput"]["requests_per_s"]
    law = clients / (d["latency_s"]["e2e"]["mean"] + think_s)
    assert throughput == pytest.approx(law, rel=0.1)
    assert d["disaggregation"]["kv_transfer"]["bytes"] > 0


def test_the_same_seed_gives_the_same_disaggregated_record() -> None:
    scenario = sim.load_scenario(split(decode={"replicas": 3}))
    first, again = sim.run(scenario, seed=5), sim.run(scenario, seed=5)
    assert first.record == again.record
    assert first.record.kv_transfer_p99_s is not None
    assert math.isfinite(first.record.kv_transfer_p99_s)


def test_a_disaggregated_scenario_pickles_for_sweep_workers() -> None:
    # Sweeps and Dask ship scenarios to other processes: the pool models must pickle.
    import pickle

    scenario = sim.load_scenario(split({"replicas": 2}, {"tensor_parallel": 2}))
    again = pickle.loads(pickle.dumps(scenario))
    assert again == scenario
    assert again.pools is not None and again.pools.decode.layout.tensor_parallel == 2
