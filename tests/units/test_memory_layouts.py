"""Memory per layout, worked by hand: weights and KV cache per GPU for each attention kind
(GQA split and copied, MLA replicated, attention data parallelism with experts spread,
sliding windows, a linear-attention hybrid), FP4 weight bytes, and the GPU reserves.

The models are the published config.json files (../shared), their shapes typed out in the
arithmetic below so that each expected figure is computed from the config, not from the
code under test; Llama-3.1-8B is the catalogue's own.
"""

from __future__ import annotations

import json
import math

import pytest
from builders import PUBLISHED, tiny

import sim
from sim.hardware import catalog
from sim.hardware.catalog import BYTES_PER_GIB, GpuSpec, ModelSpec
from sim.hardware.hfconfig import model_from_config, model_name
from sim.hardware.layout import Layout
from sim.hardware.memory import (
    KV_BLOCK_TOKENS,
    kv_bytes_per_token_per_gpu,
    kv_capacity_tokens,
    sequence_bytes_per_gpu,
    weight_bytes,
    weight_bytes_per_gpu,
)
from sim.report.run_text import format_summary

CONFIGS = PUBLISHED / "aic" / "model_configs"
needs_configs = pytest.mark.skipif(not CONFIGS.is_dir(), reason=f"the published model "
                                   f"configs are not at {CONFIGS} (the shared data folder)")
GIB = BYTES_PER_GIB
NVFP4 = 0.5 + 1 / 16  # 4 bits and one FP8 scale per 16 elements
# The AIConfigurator sheets' per-GPU reserves (misc.nccl_mem at 8 GPUs, misc.other_mem)
# plus the scenario's default activation reserve of 1 GiB.
RUNTIME_GIB = 0.513  # misc.other_mem's measured 551 MB (calibration/gpus.yaml)
RESERVE_8_GPUS = 392 / 1024 + RUNTIME_GIB + 1.0


def published(file_stem: str) -> ModelSpec:
    path = CONFIGS / f"{file_stem}_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    return model_from_config(config, model_name(path.name), str(path))


def tokens(free_bytes: float, kv_per_token_per_gpu: float, groups: int = 1) -> int:
    """Whole 16-token blocks in one GPU's free bytes, times the attention groups."""
    return int(free_bytes // (kv_per_token_per_gpu * KV_BLOCK_TOKENS)) * KV_BLOCK_TOKENS \
        * groups


# ---- GQA: split over the ranks, copied past the key-value heads -----------------------------

LLAMA_8B_EMBEDDINGS = 2 * 128_256 * 4096  # embedding and lm_head, untied
LLAMA_8B_NORMS = 32 * 2 * 4096 + 4096
LLAMA_8B_LINEAR = 8_030_261_248 - LLAMA_8B_EMBEDDINGS - LLAMA_8B_NORMS


def test_llama_8b_tp8_splits_its_8_kv_heads_and_tp16_copies_them() -> None:
    m, h100 = catalog.models()["llama-3.1-8b"], catalog.gpus()["h100-sxm"]
    # tp 4: two of the 8 KV heads per GPU; tp 8: one; tp 16: still one (each head on two).
    for tp, heads_per_gpu in ((4, 2), (8, 1), (16, 1)):
        assert kv_bytes_per_token_per_gpu(m, Layout(tensor_parallel=tp)) \
            == 32 * 2 * heads_per_gpu * 128 * 2
    tp8 = Layout(tensor_parallel=8)
    weights = 2 * (LLAMA_8B_EMBEDDINGS + LLAMA_8B_LINEAR) / 8 + 2 * LLAMA_8B_NORMS
    assert weight_bytes_per_gpu(m, tp8) == weights == 2_008_031_232
    free = 80 * GIB * 0.9 - RESERVE_8_GPUS * GIB - weights
    assert kv_capacity_tokens(m, h100, tp8, 0.9, 1.0, 256) == tokens(free, 16_384)
    # Twice the GPUs hold barely more: the copies of the heads take the room.
    tp16 = kv_capacity_tokens(m, h100, Layout(tensor_parallel=16), 0.9, 1.0, 256)
    free16 = 80 * GIB * 0.9 - RESERVE_8_GPUS * GIB - (weights - 2 * LLAMA_8B_NORMS) / 2 \
        - 2 * LLAMA_8B_NORMS
    assert tp16 == tokens(free16, 16_384) < 1.02 * tokens(free, 16_384)


def test_kv_cache_dtype_sets_the_cache_bytes_not_the_weights_dtype() -> None:
    m = catalog.models()["llama-3.1-8b"]
    fp8_cache = Layout(tensor_parallel=8, dtype="bf16", kv_cache_dtype="fp8")
    assert kv_bytes_per_token_per_gpu(m, fp8_cache) == 32 * 2 * 1 * 128 * 1
    assert weight_bytes_per_gpu(m, fp8_cache) == weight_bytes_per_gpu(m, Layout(tensor_parallel=8))


# ---- MLA: the latent on every rank; attention data parallelism with experts spread ----------

DSV3_EMBEDDINGS = 2 * 129_280 * 7168
DSV3_NORMS = 61 * 2 * 7168 + 7168
DSV3_ROUTED = 58 * 256 * 3 * 7168 * 2048  # 58 MoE layers after 3 dense ones
DSV3_ATTENTION = 61 * (7168 * 1536 + 1536 + 1536 * 128 * (128 + 64)  # q down, norm, q up
                       + 7168 * (512 + 64) + 512 + 512 * 128 * (128 + 128)  # kv down and up
                       + 128 * 128 * 7168)  # o
DSV3_DENSE = (DSV3_ATTENTION + 3 * 3 * 7168 * 18_432  # the 3 dense MLPs
              + 58 * (3 * 7168 * 2048 + 7168 * 256))  # a shared expert and a router each


@needs_configs
def test_deepseek_v3_mla_tp8_keeps_the_whole_latent_on_every_gpu() -> None:
    m, h200 = published("deepseek-ai--DeepSeek-V3"), catalog.gpus()["h200"]
    tp8 = Layout(tensor_parallel=8, dtype="fp8", kv_cache_dtype="fp8")
    # (kv_lora_rank 512 + qk_rope_head_dim 64) × 61 layers × 1 byte, at any tp.
    assert kv_bytes_per_token_per_gpu(m, tp8) == 61 * 576 == 35_136
    assert kv_bytes_per_token_per_gpu(m, Layout(tensor_parallel=1, kv_cache_dtype="fp8")) \
        == 35_136
    weights = (2 * DSV3_EMBEDDINGS + DSV3_DENSE + DSV3_ROUTED) / 8 + 2 * DSV3_NORMS
    assert weight_bytes_per_gpu(m, tp8) == pytest.approx(weights, abs=1)
    free = 141 * GIB * 0.9 - RESERVE_8_GPUS * GIB - weights
    assert kv_capacity_tokens(m, h200, tp8, 0.9, 1.0, 256) == tokens(free, 35_136)


@needs_configs
def test_tensorrt_llm_gives_the_cache_a_fraction_of_what_is_left_free() -> None:
    # TensorRT-LLM's free_gpu_memory_fraction takes 0.9 of the memory the weights and
    # reserves leave; vLLM's gpu_memory_utilization 0.9 of the whole GPU. DeepSeek-V3 in FP8
    # nearly fills 4 × B200 (157 of 180 GiB each), so there the two differ several-fold.
    m, b200 = published("deepseek-ai--DeepSeek-V3"), catalog.gpus()["b200"]
    vllm = Layout(tensor_parallel=4, dtype="fp8", kv_cache_dtype="fp8")
    trtllm = Layout(tensor_parallel=4, dtype="fp8", kv_cache_dtype="fp8", engine="trtllm")
    weights = weight_bytes_per_gpu(m, trtllm)
    assert weights == weight_bytes_per_gpu(m, vllm)
    reserve = (b200.reserve_bytes(4) / GIB + 1.0) * GIB
    left = b200.memory_bytes - reserve - weights
    assert kv_capacity_tokens(m, b200, trtllm, 0.9, 1.0, 16) == tokens(0.9 * left, 35_136)
    assert kv_capacity_tokens(m, b200, vllm, 0.9, 1.0, 16) \
        == tokens(0.9 * b200.memory_bytes - reserve - weights, 35_136)
    assert kv_capacity_tokens(m, b200, trtllm, 0.9, 1.0, 16) \
        > 3 * kv_capacity_tokens(m, b200, vllm, 0.9, 1.0, 16)


@needs_configs
def test_deepseek_v3_attention_dp8_with_ep8_holds_eight_groups_of_sequences() -> None:
    m, h200 = published("deepseek-ai--DeepSeek-V3"), catalog.gpus()["h200"]
    dp8 = Layout(tensor_parallel=1, data_parallel_attention=8, expert_parallel=8, dtype="fp8",
                 kv_cache_dtype="fp8")
    assert dp8.gpus == 8 and dp8.moe_tensor_parallel == 1
    # Each GPU holds all of attention and the dense layers (tp 1), an eighth of the experts.
    weights = 2 * DSV3_EMBEDDINGS + 2 * DSV3_NORMS + DSV3_DENSE + DSV3_ROUTED / 8
    assert weight_bytes_per_gpu(m, dp8) == pytest.approx(weights, abs=1)
    free = 141 * GIB * 0.9 - RESERVE_8_GPUS * GIB - weights
    capacity = kv_capacity_tokens(m, h200, dp8, 0.9, 1.0, 256)
    assert capacity == tokens(free, 35_136, groups=8)
    # The same 8 GPUs as tp 8 hold ~5× the tokens: the latent is no longer copied 8 times.
    tp8 = Layout(tensor_parallel=8, dtype="fp8", kv_cache_dtype="fp8")
    assert 4 < capacity / kv_capacity_tokens(m, h200, tp8, 0.9, 1.0, 256) < 6
    # The replica's weights in all are the same whichever way it is laid out.
    assert weight_bytes(m, "fp8") == pytest.approx(
        2 * (DSV3_EMBEDDINGS + DSV3_NORMS) + DSV3_DENSE + DSV3_ROUTED, abs=1)


# ---- sliding windows, FP4 weights on a GPU without FP4 tensor cores --------------------------

OSS_EMBEDDINGS = 2 * 201_088 * 2880
OSS_NORMS = 36 * 2 * 2880 + 2880
OSS_ROUTED = 36 * 128 * 3 * 2880 * 2880
OSS_DENSE = 36 * (2 * 2880 * 64 * 64 + 2 * 2880 * 8 * 64 + 64 * 64 + 2 * 8 * 64  # qkvo, bias
                  + 2880 * 128)  # router


@needs_configs
def test_gpt_oss_120b_fp4_tp2_on_h100_counts_windows_per_sequence() -> None:
    m, h100 = published("openai--gpt-oss-120b"), catalog.gpus()["h100-sxm"]
    assert h100.fp4_tflops is None  # served weight-only: 4-bit weights, 16-bit compute
    tp2 = Layout(tensor_parallel=2, dtype="fp4", kv_cache_dtype="bf16")
    # 18 full layers × 2 × (8 KV heads / 2) × 64 × 2 bytes per token and GPU; the 18
    # windowed layers hold 128 tokens of each sequence.
    assert kv_bytes_per_token_per_gpu(m, tp2) == 18 * 2 * 4 * 64 * 2 == 18_432
    assert sequence_bytes_per_gpu(m, tp2) == 18 * 2 * 4 * 64 * 2 * 128
    # Its config keeps attention and the router 16-bit (modules_to_not_convert): only the
    # routed experts are 4-bit.
    weights = 2 * OSS_EMBEDDINGS / 2 + 2 * OSS_NORMS + 2 * OSS_DENSE / 2 + NVFP4 * OSS_ROUTED / 2
    assert weight_bytes_per_gpu(m, tp2) == pytest.approx(weights, abs=1)
    reserve = (342 / 1024 + RUNTIME_GIB + 1.0) * GIB  # misc.nccl_mem at 2 GPUs
    free = 80 * GIB * 0.9 - reserve - weights - 256 * 18 * 2 * 4 * 64 * 2 * 128
    assert kv_capacity_tokens(m, h100, tp2, 0.9, 1.0, 256) == tokens(free, 18_432)


def test_fp4_weights_quantise_the_linear_layers_only() -> None:
    # A Mixtral: embeddings, lm_head and norms stay 16-bit; the rest takes 0.5625 bytes.
    m = catalog.models()["mixtral-8x7b"]
    assert m.params is not None
    embeddings, norms = 2 * 32_000 * 4096, 32 * 2 * 4096 + 4096
    linear = m.params - embeddings - norms
    assert weight_bytes(m, "fp4") == pytest.approx(2 * (embeddings + norms) + NVFP4 * linear)
    assert weight_bytes(m, "fp8") == pytest.approx(2 * (embeddings + norms) + linear)
    assert weight_bytes(m, "bf16") == 2 * m.params
    # Tensor and expert parallelism over 8 GPUs: the same total, not the same GPU share.
    tp8, ep8 = Layout(tensor_parallel=8), Layout(data_parallel_attention=8, expert_parallel=8)
    assert weight_bytes_per_gpu(m, tp8) < weight_bytes_per_gpu(m, ep8)
    assert weight_bytes_per_gpu(m, ep8) - weight_bytes_per_gpu(m, tp8) == pytest.approx(
        2 * (linear - m.routed_expert_params + embeddings) * (1 - 1 / 8))


# ---- hybrid linear attention ---------------------------------------------------------------


@needs_configs
def test_qwen3_5_27b_hybrid_splits_its_state_over_the_ranks() -> None:
    m, h100 = published("Qwen--Qwen3.5-27B"), catalog.gpus()["h100-sxm"]
    tp4 = Layout(tensor_parallel=4)
    # 16 of 64 layers full attention: 2 × (4 KV heads / 4) × 256 × 2 bytes each.
    assert kv_bytes_per_token_per_gpu(m, tp4) == 16 * 2 * 1 * 256 * 2
    # 48 gated-delta-rule layers: 48 value heads × 128 × 128 in fp32, the conv's last 3
    # inputs of 2 × 16 × 128 + 48 × 128 channels in 16 bits; the 16 key heads split 4 ways.
    state = 48 * (48 * 128 * 128 * 4 + 3 * (2 * 16 * 128 + 48 * 128) * 2)
    assert sequence_bytes_per_gpu(m, tp4) == state / 4
    free = 80 * GIB * 0.9 - (392 / 1024 + RUNTIME_GIB + 1.0) * GIB - weight_bytes_per_gpu(m, tp4) \
        - 256 * state / 4
    assert kv_capacity_tokens(m, h100, tp4, 0.9, 1.0, 256) == tokens(free, 16_384)
    # Two attention groups of tp 2: each holds half the sequences, at twice the state each.
    dp2 = Layout(tensor_parallel=2, data_parallel_attention=2)
    free = 80 * GIB * 0.9 - (392 / 1024 + RUNTIME_GIB + 1.0) * GIB - weight_bytes_per_gpu(m, dp2) \
        - 128 * state / 2
    assert kv_capacity_tokens(m, h100, dp2, 0.9, 1.0, 256) == tokens(free, 32_768, groups=2)


# ---- reserves, the scenario keys ------------------------------------------------------------


def test_gpu_reserves_by_the_replicas_gpus() -> None:
    h100 = catalog.gpus()["h100-sxm"]
    assert h100.reserve_bytes(1) == RUNTIME_GIB * GIB  # no NCCL on one GPU
    assert h100.reserve_bytes(2) == (342 / 1024 + RUNTIME_GIB) * GIB
    assert h100.reserve_bytes(64) == (392 / 1024 + RUNTIME_GIB) * GIB  # the largest count listed
    inline = GpuSpec(memory_gib=10.0, memory_bandwidth_tb_s=1.0, bf16_tflops=1.0)
    assert inline.reserve_bytes(8) == 0.0


def test_fp4_tensor_cores_only_where_the_sheets_give_them() -> None:
    gpus = catalog.gpus()
    with_fp4 = {name for name, g in gpus.items() if g.fp4_tflops is not None}
    assert with_fp4 == {"b200", "gb200", "b300", "gb300", "rtx-pro-6000", "mi355x"}
    assert gpus["b200"].fp4_tflops == 2 * gpus["b200"].fp8_tflops  # type: ignore[operator]


def test_scenario_layout_resolves_the_deployment_keys() -> None:
    s = sim.load_scenario(tiny(model="mixtral-8x7b", deployment__tensor_parallel=2,
                               deployment__data_parallel_attention=4,
                               deployment__expert_parallel=8, deployment__dtype="fp4",
                               deployment__engine="sglang"))
    assert s.layout == Layout(tensor_parallel=2, data_parallel_attention=4, expert_parallel=8,
                              dtype="fp4", kv_cache_dtype="fp8", engine="sglang")
    assert s.gpus_per_replica == 8 and s.gpu_count == 2 * 8
    result = sim.run(s).to_dict()
    fleet = result["fleet"]
    assert fleet["gpus_per_replica"] == 8 and fleet["gpus"] == 16
    assert (fleet["tensor_parallel"], fleet["data_parallel_attention"],
            fleet["expert_parallel"], fleet["engine"], fleet["kv_cache_dtype"]) \
        == (2, 4, 8, "sglang", "fp8")
    assert fleet["kv_capacity_tokens_per_replica"] % (4 * KV_BLOCK_TOKENS) == 0
    # The fleet line shows the layout, as it is more than tensor parallelism.
    assert "on 8 × h100-sxm (TP2 × DP4 attention, EP8)  = 16 GPUs" \
        in format_summary(result).splitlines()[1]
    # The fleet pays for its 16 GPUs (2 replicas × 8), not for 2 × tensor_parallel.
    per_gpu_hour = result["cost"]["fleet_usd_per_hour"] / fleet["gpus"]
    assert math.isclose(per_gpu_hour, 2.5)
