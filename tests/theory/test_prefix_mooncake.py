"""The simulated prefix cache on the Mooncake conversation trace, replayed on 4 replicas,
against the plain LRU reference (tests/prefix_reference.py) fed the same requests: per
replica, at that replica's KV capacity, the requests the simulation routed to it in arrival
order. The reference has the whole capacity to itself and caches a request's blocks as it
arrives; the simulated cache shares memory with the running requests, caches a prompt when
its prefill completes (two requests missing the same prefix together both compute it) and
takes whole 16-token blocks short of the last prompt token — so the two should agree within
a band, the simulation never above the unbounded cache, and cache-aware routing should beat
random routing."""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pytest
from builders import TRACES
from prefix_reference import lru_hit_ratio

import sim
from sim.scenario.traces import MOONCAKE_BLOCK_TOKENS

TRACE = TRACES / "mooncake_conversation_trace.jsonl"
MINUTES = 20.0
REPLICAS = 4
# How far from the reference the simulated ratio may come, as a share of the reference. The
# reference counts a partial last block as a whole one against its capacity and caches a
# request's blocks on arrival rather than when its prefill completes, so the simulation may
# also land a little above it; measured from 4.2% below to 3.8% above on H100 and B200 under
# three routers (benchmarks/prefix_cache.py prints the same comparison).
BAND = 0.15


def _rows() -> tuple[list[list[int]], list[list[int]]]:
    if not TRACE.is_file():
        pytest.skip(f"public trace {TRACE.name} not found in {TRACES} (the shared data folder "
                    "sits beside the checkout)")
    rows, tokens = [], []
    for line in TRACE.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["timestamp"] >= MINUTES * 60_000:
            break
        ids, prompt = row["hash_ids"], row["input_length"]
        rows.append(ids)
        tokens.append([min(MOONCAKE_BLOCK_TOKENS, prompt - MOONCAKE_BLOCK_TOKENS * j)
                       for j in range(len(ids))])
    return rows, tokens


@cache
def _run(router: str, gpu: str = "h100-sxm") -> sim.Result:
    return sim.run({
        "name": "mooncake-prefix", "seed": 1, "duration_s": MINUTES * 60.0, "warmup_s": 60.0,
        "model": "llama-3.1-8b", "gpu": gpu, "profile": "auto",
        "deployment": {"replicas": REPLICAS, "router": router,
                       "prefix_cache": {"enabled": True}},
        "workload": {"trace": {"path": str(TRACE), "format": "mooncake",
                               "duration_s": MINUTES * 60.0}},
        "slo": {"ttft_s": 10.0, "tpot_s": 0.1}, "cost": {"gpu_hour_usd": 2.5},
    }, warn_window=False)


def _simulated_ratio(result: sim.Result) -> float:
    """Over every request, as the reference counts them (not the metrics window)."""
    cached = result.engine.cached_tokens
    assert cached is not None
    return float(cached.sum() / result.workload.prompt_tokens.sum())


def _reference_ratio(result: sim.Result, rows: list[list[int]],
                     tokens: list[list[int]]) -> float:
    capacity_blocks = result.to_dict()["fleet"]["kv_capacity_tokens_per_replica"] \
        // MOONCAKE_BLOCK_TOKENS
    hit = total = 0.0
    routed = result.engine.replica
    for r in range(REPLICAS):
        mine = np.flatnonzero(routed == r).tolist()
        prompt = sum(sum(tokens[i]) for i in mine)
        hit += prompt * lru_hit_ratio([rows[i] for i in mine], [tokens[i] for i in mine],
                                      capacity_blocks)
        total += prompt
    return hit / total


@pytest.mark.parametrize("router", ["random", "least-loaded", "cache-aware"])
@pytest.mark.parametrize("gpu", ["h100-sxm", "b200"])
def test_the_simulated_hit_ratio_tracks_an_lru_reference_of_the_same_capacity(
        router: str, gpu: str) -> None:
    rows, tokens = _rows()
    result = _run(router, gpu)
    assert len(result.engine.replica) == len(rows)
    simulated = _simulated_ratio(result)
    reference = _reference_ratio(result, rows, tokens)
    unbounded = lru_hit_ratio(rows, tokens, None)
    assert simulated <= unbounded
    assert abs(simulated - reference) <= BAND * reference, (simulated, reference)


def test_cache_aware_routing_beats_random_routing() -> None:
    _rows()
    aware, scattered = _run("cache-aware"), _run("random")
    assert _simulated_ratio(aware) > 1.2 * _simulated_ratio(scattered)
    ttft = [r.to_dict()["latency_s"]["ttft"]["p99"] for r in (aware, scattered)]
    assert ttft[0] < ttft[1]


def test_caching_cuts_the_prefill_work_and_prices_cached_tokens_low() -> None:
    _rows()
    on = _run("least-loaded").to_dict()
    scenario = _run("least-loaded").scenario.model_dump(mode="json")
    del scenario["deployment"]["prefix_cache"]
    off = sim.run(scenario, warn_window=False).to_dict()
    # The same requests, the same tokens generated; fewer prompt tokens prefilled, by what
    # the cache served.
    assert on["tokens"]["output"] == off["tokens"]["output"]
    assert on["throughput"]["input_tokens_per_s"] < off["throughput"]["input_tokens_per_s"]
    assert on["prefix_cache"]["hit_ratio"] > 0.03
    prices = on["cost"]["usd_per_million_tokens"]
    # A cached token is charged only the attention that reads it: far below a fresh one.
    assert 0 < prices["cached_input"] < 0.5 * prices["input"]
    assert "cached_input" not in off["cost"]["usd_per_million_tokens"]
