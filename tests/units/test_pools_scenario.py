"""`deployment.pools`: the pools a scenario resolves (a key a pool leaves out is the
deployment's), each pool's step model on its own GPU, the fleet's cost as the sum of its
pools' GPUs at their prices, and the result's `pools` list against the engine's routing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from builders import tiny

import sim
from sim.montecarlo.overrides import with_values
from sim.report.document import compose
from sim.report.load import from_run_data
from sim.report.result_schema import RUN, walk
from sim.report.run_text import format_summary
from sim.runner import build


def pooled(*pools: dict[str, Any], split: str = "size", **others: Any) -> dict[str, Any]:
    return tiny(deployment__pools=list(pools), deployment__pool_split=split, **others)


SHORT = {"name": "short", "replicas": 2, "max_prompt_tokens": 200, "gpu_hour_usd": 2.0}
LONG = {"name": "long", "replicas": 1, "gpu": "h200", "gpu_hour_usd": 3.5}


def test_a_key_a_pool_leaves_out_is_the_deployments() -> None:
    s = sim.load_scenario(pooled({"name": "a", "replicas": 1},
                                 {"name": "b", "gpu": "b200", "tensor_parallel": 1},
                                 split="load", deployment__replicas=3,
                                 deployment__tensor_parallel=2, deployment__dtype="fp8"))
    assert s.fleet_pools is not None and s.pools is None
    a, b = s.fleet_pools
    assert (a.replicas, a.layout.tensor_parallel, a.gpu.name) == (1, 2, "h100-sxm")
    assert (b.replicas, b.layout.tensor_parallel, b.gpu.name) == (3, 1, "b200")
    assert a.layout.dtype == b.layout.dtype == "fp8"
    assert (a.router, b.router) == ("least-loaded", "least-loaded")  # the deployment's default
    assert [p.key for p in s.fleet_pools] == ["deployment.pools.0", "deployment.pools.1"]
    assert s.gpu_count == 1 * 2 + 3 * 1


def test_scheduler_presets_follow_each_pools_gpu() -> None:
    # SGLang's chunked_prefill_size: 8192 below 160 GiB of GPU memory (H100), 16384 above.
    s = sim.load_scenario(pooled({"name": "a"}, {"name": "b", "gpu": "b300"}, split="load",
                                 deployment__engine="sglang",
                                 deployment__scheduler={"max_num_seqs": 48}))
    assert s.fleet_pools is not None
    a, b = (pool.scheduler for pool in s.fleet_pools)
    assert (a.max_batched_tokens, b.max_batched_tokens) == (8192, 16384)
    assert a.max_num_seqs == b.max_num_seqs == 48  # the deployment's explicit key


def test_each_pool_has_its_own_step_model_and_kv_cache() -> None:
    s = sim.load_scenario(pooled(SHORT, LONG))
    each = build.fleet_sides(s)
    assert each is not None
    short, long = each
    # H200 has more memory (141 vs 80 GB) and bandwidth (4.8 vs 3.35 TB/s) than H100.
    assert long.kv_capacity_tokens > 1.5 * short.kv_capacity_tokens
    assert long.step_model.decode_fixed_s(8) < short.step_model.decode_fixed_s(8)


def test_the_fleet_costs_its_pools_gpus_at_their_prices() -> None:
    data = pooled(SHORT, {**LONG, "gpu_hour_usd": None}, duration_s=30, warmup_s=5,
                  cost={"gpu_hour_usd": 3.0})
    d = sim.run(data, warn_window=False).to_dict()
    # 2 H100 at $2.00 and 1 H200 at the scenario's $3.00.
    assert d["cost"]["fleet_usd_per_hour"] == pytest.approx(2 * 2.0 + 3.0)
    assert d["cost"]["gpu_hour_usd"] == pytest.approx(7.0 / 3)
    assert [p["usd_per_hour"] for p in d["pools"]] == pytest.approx([4.0, 3.0])
    assert d["cost"]["window_usd"] == pytest.approx(7.0 * 25 / 3600)
    assert d["fleet"]["gpus"] == 3 and d["fleet"]["gpu"] == "h100-sxm+h200"


def test_the_pools_list_matches_the_engines_routing() -> None:
    done = sim.run(pooled(SHORT, LONG, duration_s=40, warmup_s=5), warn_window=False)
    d = done.to_dict()
    walk(RUN, d, "", "run")
    short, long = d["pools"]
    measured = done.measured
    prompts = done.workload.prompt_tokens
    on_short = done.engine.replica < 2
    assert np.array_equal(on_short[~done.engine.rejected], (prompts <= 200)[~done.engine.rejected])
    assert short["requests_measured"] == int((measured & on_short).sum()) > 0
    assert long["requests_measured"] == int((measured & ~on_short).sum()) > 0
    assert short["requests_measured"] + long["requests_measured"] == d["requests"]["measured"]
    text = format_summary(d)
    assert "pool short" in text and "pool long" in text and "in 2 pools" in text
    report = compose(from_run_data(d))
    tables = {b.name: b for s in report.sections for b in s.blocks if hasattr(b, "rows")}
    rows = tables["pools.csv"].rows
    assert [(row[0], row[1], row[5]) for row in rows] == [
        ("short", "h100-sxm", short["requests_measured"]),
        ("long", "h200", long["requests_measured"])]


def test_a_run_of_pools_is_deterministic_and_exact_equals_skipping() -> None:
    data = pooled(SHORT, LONG, split="size", duration_s=30, warmup_s=5)
    a, b = sim.run(data, seed=4, warn_window=False), sim.run(data, seed=4, warn_window=False)
    assert a.record == b.record and a.pools == b.pools
    exact = sim.run(data, seed=4, exact=True, warn_window=False)
    np.testing.assert_allclose(exact.engine.finish_s, a.engine.finish_s, rtol=0, atol=1e-9)


def test_a_sweep_key_path_indexes_a_pool() -> None:
    raw = pooled(SHORT, LONG)
    changed = with_values(raw, {"deployment.pools.1.replicas": 4},
                          {"deployment.pools.1.replicas": "sweep.grid.deployment.pools.1.replicas"})
    assert [p["replicas"] for p in changed["deployment"]["pools"]] == [2, 4]
    assert [p["replicas"] for p in raw["deployment"]["pools"]] == [2, 1]  # a copy
    s = sim.load_scenario(changed)
    assert s.fleet_pools is not None and s.fleet_pools[1].replicas == 4
