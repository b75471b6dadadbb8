"""`deployment.engine` picks its engine's admission, preemption and batching defaults
(`sim.engine.scheduler.ENGINE_PRESETS`); a scheduler key the scenario sets wins."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from builders import DELETE, Case, scenario, tiny

from sim.scenario import load_scenario


def _scheduler(**overrides: object) -> dict[str, object]:
    data = scenario(**{"deployment__scheduler": DELETE, **overrides})
    return load_scenario(data).deployment.scheduler.model_dump()


def test_vllm_keeps_the_long_standing_defaults() -> None:
    # What a scenario without scheduler keys always got: 256 sequences, 8192 tokens,
    # chunked prefill; admission by the prompt's blocks.
    assert _scheduler() == {"policy": "chunked-prefill", "max_num_seqs": 256,
                            "max_batched_tokens": 8192, "admission": "prompt",
                            "reserve_ratio": 0.0, "chunked_prefill": True}


def test_trtllm_reserves_the_whole_output_and_prefills_whole_prompts() -> None:
    s = _scheduler(deployment__engine="trtllm")
    assert s == {"policy": "chunked-prefill", "max_num_seqs": 2048, "max_batched_tokens": 8192,
                 "admission": "reserve-output", "reserve_ratio": 1.0, "chunked_prefill": False}


SMALL_GPU = {"name": "small", "memory_gib": 24, "memory_bandwidth_tb_s": 1.0,
             "bf16_tflops": 100.0}


@pytest.mark.parametrize(("gpu", "tokens"), [(SMALL_GPU, 2048), ("l40s", 8192),
                                             ("h200", 8192), ("b200", 16384)])
def test_sglang_chunk_size_follows_gpu_memory(gpu: object, tokens: int) -> None:
    # SGLang's chunked_prefill_size: 2048 below 35 GiB, 8192 below 160 GiB, 16384 above.
    s = _scheduler(deployment__engine="sglang", gpu=gpu)
    assert s["max_batched_tokens"] == tokens
    assert (s["policy"], s["admission"], s["reserve_ratio"]) == (
        "prefill-first", "reserve-ratio", 0.7)


def test_explicit_keys_win_key_by_key() -> None:
    s = _scheduler(deployment__engine="trtllm",
                   deployment__scheduler={"max_num_seqs": 64, "chunked_prefill": True,
                                          "max_batched_tokens": None})
    assert s["max_num_seqs"] == 64 and s["chunked_prefill"] is True
    # null is the preset, like a key left out
    assert s["max_batched_tokens"] == 8192 and s["admission"] == "reserve-output"


@pytest.mark.parametrize(("key", "value", "shown"), [
    ("admission", "greedy", "'greedy'"),
    ("reserve_ratio", 1.5, "1.5"),
    ("chunked_prefill", "no", "'no'"),
])
def test_bad_scheduler_keys_are_refused(key: str, value: object, shown: str,
                                        check_rejected: Callable[[Case], None]) -> None:
    check_rejected(Case(f"{key}-{value}", tiny(**{f"deployment__scheduler__{key}": value}),
                        f"deployment.scheduler.{key}", shown))
