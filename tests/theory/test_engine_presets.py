"""Each engine preset's admission under KV pressure: vLLM admits by the prompt and preempts,
TensorRT-LLM reserves prompt + output and never evicts, SGLang reserves a share of the output;
and event skipping stays exact under every preset."""

from __future__ import annotations

import numpy as np
import pytest
from builders import DELETE, scenario

import sim
from sim.hardware.memory import KV_BLOCK_TOKENS
from sim.runner.single import WindowWarning

ENGINES = ["vllm", "sglang", "trtllm"]
# Llama-3.1-8B's 16 GB of weights leave this tiny inline GPU ~12.6k tokens of KV cache.
TINY_GPU = {"name": "tiny", "memory_gib": 18.5, "memory_bandwidth_tb_s": 3.35,
            "bf16_tflops": 989.0}
PROMPT, OUTPUT = 500, 1500


def _pressure(engine: str, **workload: object) -> dict:
    """Long outputs on a small cache, one replica, the engine's preset for everything."""
    return scenario(
        duration_s=120.0, warmup_s=10.0, gpu=TINY_GPU,
        deployment={"replicas": 1, "engine": engine, "gpu_memory_utilization": 1.0,
                    "activation_reserve_gib": 2.0},
        workload={"arrival": {"process": "poisson", "rate_per_s": 1.0},
                  "prompt_tokens": {"dist": "fixed", "value": PROMPT},
                  "output_tokens": {"dist": "fixed", "value": OUTPUT}, **workload})


def _run(engine: str) -> dict:
    with pytest.warns(WindowWarning):  # requests outlive a third of the window: expected
        return sim.run(_pressure(engine)).to_dict()


def test_trtllm_admits_what_the_cache_holds_to_the_last_token() -> None:
    # A request reserves its prompt, its whole output and one block of page slack: with C
    # tokens of cache, floor(C / (P + O + block)) run at once, never more, and none is evicted.
    d = _run("trtllm")
    capacity = d["fleet"]["kv_capacity_tokens_per_replica"]
    at_once = capacity // (PROMPT + OUTPUT + KV_BLOCK_TOKENS)
    assert at_once == 6  # 12,624 // 2,016: the worked example of the README
    assert d["requests"]["preempted"] == 0
    # Saturated from the first seconds: the mean batch is that many, to rounding.
    assert d["utilization"]["batch_size_mean"] == pytest.approx(at_once, abs=0.05)
    assert d["utilization"]["kv_cache_fraction_mean"] <= at_once * (PROMPT + OUTPUT) / capacity


def test_vllm_preempts_and_runs_more_at_once_than_trtllm() -> None:
    vllm, sglang, trtllm = (_run(engine) for engine in ENGINES)
    assert vllm["requests"]["preempted"] > 0
    assert trtllm["requests"]["preempted"] == 0
    # Admitting by the prompt packs more sequences into the same cache; SGLang's partial
    # reservation sits between the two.
    batch = {e: d["utilization"]["batch_size_mean"] for e, d in zip(ENGINES, (vllm, sglang,
                                                                           trtllm), strict=True)}
    assert batch["vllm"] > batch["sglang"] > batch["trtllm"]
    assert vllm["utilization"]["kv_cache_fraction_mean"] > \
        trtllm["utilization"]["kv_cache_fraction_mean"]
    for d in (vllm, sglang, trtllm):
        assert d["requests"]["completed"] + d["requests"]["unfinished"] == d["requests"]["arrived"]


def _compare_modes(data: dict) -> sim.Result:
    fast = sim.run(data)
    exact = sim.run(data, exact=True)
    for column in ("admit_s", "first_token_s", "finish_s"):
        a, b = getattr(fast.engine, column), getattr(exact.engine, column)
        assert np.allclose(a, b, rtol=1e-9, atol=1e-9, equal_nan=True), column
    assert np.array_equal(fast.engine.preemptions, exact.engine.preemptions)
    for f, e in zip(fast.engine.replicas, exact.engine.replicas, strict=True):
        assert f.generated_tokens == e.generated_tokens
        assert f.prefill_tokens == e.prefill_tokens
        assert f.busy_s == pytest.approx(e.busy_s, rel=1e-9, abs=1e-9)
    assert fast.engine.events < exact.engine.events
    return fast


@pytest.mark.parametrize("engine", ENGINES)
def test_exact_mode_equals_event_skipping_under_kv_pressure(engine: str) -> None:
    data = _pressure(engine, arrival={"process": "gamma", "rate_per_s": 2.0, "cv": 2.0},
                     prompt_tokens={"dist": "uniform", "low": 200, "high": 1200},
                     output_tokens={"dist": "uniform", "low": 200, "high": 1500})
    data["duration_s"], data["drain_s"] = 60.0, 0.0
    if engine == "sglang":  # a low reserve, so that decoding runs out of room and retracts
        data["deployment"]["scheduler"] = {"reserve_ratio": 0.2}
    with pytest.warns(WindowWarning):
        d = _compare_modes(data).to_dict()
    assert (d["requests"]["preempted"] > 0) == (engine != "trtllm")


@pytest.mark.parametrize("engine", ENGINES)
def test_exact_mode_equals_event_skipping_with_long_prompts(engine: str) -> None:
    # Prompts past the 8192-token budget: split over steps (vLLM, SGLang) or, without
    # chunked prefill (TensorRT-LLM), each prefilled whole in a step of its own.
    data = scenario(
        duration_s=60.0, deployment__scheduler=DELETE, deployment__engine=engine,
        workload={"arrival": {"process": "poisson", "rate_per_s": 3.0},
                  "prompt_tokens": {"dist": "uniform", "low": 100, "high": 12000},
                  "output_tokens": {"dist": "uniform", "low": 1, "high": 300}})
    _compare_modes(data)
