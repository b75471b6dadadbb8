"""A scenario's shared system prompt through the whole stack: `workload.shared_prefix_tokens`
and `deployment.prefix_cache` give the closed-form hit ratio, and TTFT falls by the prefill
the cache saves."""

from __future__ import annotations

import pytest
from builders import scenario

import sim


def _run(cache: bool, engine: str = "vllm") -> dict:
    deployment = {"replicas": 1, "engine": engine}
    if cache:
        deployment["prefix_cache"] = {"enabled": True}
    return sim.run(scenario(
        duration_s=120.0, warmup_s=10.0, deployment=deployment,
        workload={"arrival": {"process": "poisson", "rate_per_s": 1.0},
                  "prompt_tokens": {"dist": "fixed", "value": 3072},
                  "output_tokens": {"dist": "fixed", "value": 64},
                  "shared_prefix_tokens": 2048})).to_dict()


@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm"])
def test_a_2048_token_system_prompt_of_3072_token_prompts_hits_two_thirds(engine: str) -> None:
    # Every request after the first (prefilled in the warm-up) finds the 2,048 shared tokens
    # cached: whole blocks of 16, 1 or 32 tokens all, so exactly 2/3 of each prompt.
    on = _run(True, engine)
    cache = on["prefix_cache"]
    assert cache["enabled"]
    assert cache["hit_ratio"] == pytest.approx(2 / 3, rel=1e-12)
    assert cache["hit_tokens"] > 0 and cache["hit_tokens"] % 2048 == 0
    assert cache["evicted_blocks"] == 0  # one prefix, a cache far larger
    off = _run(False, engine)
    assert off["prefix_cache"] == {"enabled": False, "hit_ratio": 0.0, "hit_tokens": 0,
                                   "evicted_blocks": 0, "reloaded_tokens": 0}
    # A third of the prompt to prefill (with attention over the cached two thirds): TTFT
    # falls by more than half, the input tokens prefilled by two thirds.
    assert on["latency_s"]["ttft"]["p50"] < 0.5 * off["latency_s"]["ttft"]["p50"]
    assert on["throughput"]["input_tokens_per_s"] == pytest.approx(
        off["throughput"]["input_tokens_per_s"] / 3, rel=0.05)
    prices = on["cost"]["usd_per_million_tokens"]
    assert 0 < prices["cached_input"] < prices["input"]
