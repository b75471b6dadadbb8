"""Blocks beyond Llama's — GPT-J and Falcon's parallel attention with a 2-matrix GELU MLP — and
checkpoints that keep some blocks 16-bit: parameters and weight bytes by hand, the operators a
step runs, and the published rows that now find their model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from builders import PUBLISHED

from sim.hardware import catalog
from sim.hardware.catalog import ModelSpec
from sim.hardware.hfconfig import model_from_config, quant_config_name, unquantised_blocks
from sim.hardware.layout import Layout
from sim.hardware.memory import DTYPE_BYTES, weight_bytes, weight_bytes_per_gpu
from sim.scenario.profiles import RooflineProfile
from sim.steptime import composed, layers, lookup, operators
from sim.steptime.roofline import RooflineStep
from sim.validation.mapping import setup_for_row

CONFIGS = PUBLISHED / "aic" / "model_configs"
NVFP4 = DTYPE_BYTES["fp4"]

# The published config.json files' keys (huggingface.co/EleutherAI/gpt-j-6b,
# huggingface.co/tiiuae/falcon-180B, huggingface.co/tiiuae/falcon-7b), as the hub ships them.
GPT_J_CONFIG = {"model_type": "gptj", "n_embd": 4096, "n_layer": 28, "n_head": 16,
                "n_inner": None, "n_positions": 2048, "rotary_dim": 64, "vocab_size": 50400,
                "activation_function": "gelu_new", "tie_word_embeddings": False}
FALCON_180B_CONFIG = {"model_type": "falcon", "hidden_size": 14848, "num_hidden_layers": 80,
                      "num_attention_heads": 232, "num_kv_heads": 8, "alibi": False,
                      "bias": False, "multi_query": True, "new_decoder_architecture": True,
                      "parallel_attn": True, "vocab_size": 65024}
FALCON_7B_CONFIG = {"model_type": "falcon", "hidden_size": 4544, "num_hidden_layers": 32,
                    "num_attention_heads": 71, "alibi": False, "bias": False,
                    "multi_query": True, "new_decoder_architecture": False,
                    "parallel_attn": True, "vocab_size": 65024}


def _config(config: dict, name: str) -> ModelSpec:
    return model_from_config(config, name, "model.hf_config")


# ---- GPT-J and Falcon: parameters by hand, against the published totals ----------------------

def test_gpt_j_6b_by_hand_and_against_its_model_card() -> None:
    h, ffn, vocab = 4096, 4 * 4096, 50400
    attention = 4 * h * h  # q, k, v, out: 16 heads × 256
    mlp = 2 * h * ffn  # fc_in, fc_out: no gate
    norms = 28 * 2 * h + 2 * h  # one LayerNorm (weight + bias) per layer, and ln_f
    total = 28 * (attention + mlp) + norms + 2 * vocab * h  # wte and an untied lm_head
    m = _config(GPT_J_CONFIG, "gpt-j-6b")
    assert m.params == m.active_params == total
    # The model card's 6,053,381,344 also has the MLP and lm_head biases (0.6M): −0.05%.
    assert total == pytest.approx(6_053_381_344, rel=1e-3)
    assert (m.head_dim, m.kv_heads, m.ffn_intermediate) == (256, 16, ffn)
    assert m.kv_bytes_per_token(2.0) == 2 * 28 * 16 * 256 * 2
    known = catalog.models()["gpt-j-6b"]
    assert (known.params, known.kv_bytes_per_token(2.0)) == (m.params, m.kv_bytes_per_token(2.0))


def test_falcon_180b_by_hand_and_against_its_published_total() -> None:
    h, ffn, vocab = 14848, 4 * 14848, 65024
    attention = h * 232 * 64 + 2 * h * 8 * 64 + 232 * 64 * h  # q, 8 grouped K and V, dense
    mlp = 2 * h * ffn
    norms = 80 * 2 * 2 * h + 2 * h  # ln_attn and ln_mlp (weight + bias), and ln_f
    total = 80 * (attention + mlp) + norms + 2 * vocab * h
    m = _config(FALCON_180B_CONFIG, "falcon-180b")
    assert m.params == total
    assert total / 1e9 == pytest.approx(179.5, abs=0.05)  # TII: 179.5B
    assert m.kv_bytes_per_token(2.0) == 2 * 80 * 8 * 64 * 2  # 8 KV heads, not 232
    assert m.parallel_attention and not m.mlp_gated and m.layer_norms == 2
    assert catalog.models()["falcon-180b"].params == m.params


def test_falcon_7b_is_multi_query_with_one_layer_norm() -> None:
    m = _config(FALCON_7B_CONFIG, "falcon-7b")
    assert (m.kv_heads, m.layer_norms, m.head_dim, m.max_context) == (1, 1, 64, 2048)
    h = 4544
    layer = h * (71 + 2) * 64 + h * h + 2 * h * 4 * h + 2 * h
    assert m.params == 32 * layer + 2 * h + 2 * 65024 * h


def test_a_non_gated_mixture_of_experts_is_refused_by_key() -> None:
    with pytest.raises(ValueError, match="mlp_gated"):
        ModelSpec(layers=2, hidden=64, ffn_intermediate=128, heads=4, kv_heads=4, vocab=100,
                  experts=4, experts_per_token=2, mlp_gated=False)


# ---- the operators a step runs ------------------------------------------------------------

def _names(plan: layers.StepPlan) -> dict[str, layers.Gemm]:
    return {g.name: g for g in plan.gemms}


def test_a_non_gated_mlp_is_two_gemms_and_side_by_side_blocks_one_all_reduce() -> None:
    gptj, llama = catalog.models()["gpt-j-6b"], catalog.models()["llama-2-7b"]
    tp2 = Layout(tensor_parallel=2)
    plan = layers.plan(gptj, tp2, True)
    gemms = _names(plan)
    assert set(gemms) == {"qkv_proj", "o_proj", "up_proj", "down_proj"}
    assert (gemms["up_proj"].n, gemms["up_proj"].k) == (16384 // 2, 4096)
    assert (gemms["down_proj"].n, gemms["down_proj"].k) == (4096, 16384 // 2)
    assert [(c.kind, c.count) for c in plan.collectives] == [("all_reduce", 28)]
    assert {op.name: op.count for op in plan.memory_ops} == {"add_norm": 28, "act": 28}
    assert next(op for op in plan.memory_ops if op.name == "act").bytes_per_token \
        == 2 * 16384 // 2 * 2  # reads up, writes its GELU
    # Llama: gate and up in one GEMM, an all-reduce after attention and after the MLP.
    ref = layers.plan(llama, tp2, True)
    assert _names(ref)["gate_up_proj"].n == 2 * 11008 // 2
    assert sum(c.count for c in ref.collectives) == 2 * 32


def test_falcon_normalises_the_same_input_twice() -> None:
    plan = layers.plan(catalog.models()["falcon-180b"], Layout(tensor_parallel=8), True)
    assert {op.name: op.count for op in plan.memory_ops} == {"add_norm": 80, "norm": 80,
                                                             "act": 80}
    qkv = _names(plan)["qkv_proj"]
    assert qkv.n == 232 // 8 * 64 + 2 * 1 * 64  # 8 KV heads over 8 ranks: one each


def test_the_roofline_reduces_once_per_layer_when_the_blocks_run_side_by_side() -> None:
    falcon = catalog.models()["falcon-180b"]
    serial = falcon.model_copy(update={"parallel_attention": False})
    gpu, tp8 = catalog.gpus()["h100-sxm"], Layout(tensor_parallel=8)
    spec = RooflineProfile(kind="roofline")
    side, after = RooflineStep(spec, falcon, gpu, tp8), RooflineStep(spec, serial, gpu, tp8)
    assert side.allreduce_per_token_s == pytest.approx(after.allreduce_per_token_s / 2)
    assert side.allreduce_fixed_s == pytest.approx(after.allreduce_fixed_s / 2)


def test_gpt_j_and_falcon_compose_from_the_measured_tables() -> None:
    for name, gpu, layout in (("gpt-j-6b", "h100-sxm", Layout(dtype="fp8", engine="trtllm")),
                              ("falcon-180b", "a100-80gb",
                               Layout(tensor_parallel=8, dtype="fp16", engine="trtllm"))):
        t = operators.tables(gpu, "trtllm")
        assert t is not None
        model = catalog.models()[name]
        comp = composed.compose(t, model, catalog.gpus()[gpu], layout, 4096)
        assert not comp.record.fallbacks, comp.record.fallbacks
        # A decode step of one sequence reads at least every weight once.
        bytes_s = weight_bytes(model, layout.dtype) / layout.tensor_parallel / (
            catalog.gpus()[gpu].memory_bandwidth_tb_s * 1e12)
        assert composed.breakdown(comp, 1, 0)["gemm"] > 0.5 * bytes_s


# ---- blocks a checkpoint keeps 16-bit ----------------------------------------------------------

def test_quantisation_lists_name_the_blocks_they_keep() -> None:
    deepseek = {"quantization": {"quant_algo": "NVFP4", "exclude_modules": [
        "lm_head", "model.layers.0.self_attn.kv_a_proj_with_mqa",
        "model.layers.0.self_attn.kv_b_proj", "model.layers.0.self_attn.q_a_proj",
        "model.layers.0.self_attn.q_b_proj", "model.layers.61*"]}}
    assert unquantised_blocks({}, {}, deepseek) == ["attention"]  # o_proj stays NVFP4
    oss = {"quantization_config": {"quant_method": "mxfp4", "modules_to_not_convert": [
        "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens",
        "lm_head"]}}
    assert unquantised_blocks(oss, oss, None) == ["attention", "attention_output", "router"]
    qwen_fp8 = {"quantization_config": {"quant_method": "fp8", "modules_to_not_convert": [
        "model.layers.0.input_layernorm", "model.layers.0.mlp.gate",
        "model.layers.0.post_attention_layernorm", "model.layers.0.mlp.gate_proj", "lm_head"]}}
    assert unquantised_blocks(qwen_fp8, qwen_fp8, None) == ["dense_mlp", "router"]
    shared = {"quantization_config": {"ignore": ["model.layers.3.mlp.shared_expert.up_proj",
                                                 "model.layers.3.mlp.shared_expert_gate",
                                                 "model.layers.3.linear_attn*"]}}
    assert unquantised_blocks(shared, shared, None) == ["attention", "attention_output",
                                                        "shared_experts"]
    assert unquantised_blocks({}, {}, None) == []


def _attention_in_params(m: ModelSpec) -> int:
    """DeepSeek's MLA input projections per layer, by hand."""
    q = 7168 * 1536 + 1536 + 1536 * 128 * (128 + 64)  # q_a, its norm, q_b
    kv = 7168 * (512 + 64) + 512 + 512 * 128 * (128 + 128)  # kv_a, its norm, kv_b
    return m.layers * (q + kv)


def test_deepseek_r1_nvfp4_keeps_its_mla_projections_bf16_by_hand() -> None:
    r1 = catalog.models()["deepseek-r1"]
    nvfp4 = r1.model_copy(update={"unquantised": ["attention"]})
    tp8 = Layout(tensor_parallel=8, dtype="fp4")
    attention = _attention_in_params(r1)
    assert attention == 61 * 69_666_816
    assert r1.params is not None
    embeddings = 2 * 129280 * 7168
    norms = 61 * 2 * 7168 + 7168
    quantised = r1.params - embeddings - norms - attention  # o_proj, MLPs, experts, routers
    whole = 2 * (embeddings + norms + attention) + NVFP4 * quantised
    assert weight_bytes(nvfp4, "fp4") == pytest.approx(whole)
    per_gpu = 2 * embeddings / 8 + 2 * norms + 2 * attention / 8 + NVFP4 * quantised / 8
    assert weight_bytes_per_gpu(nvfp4, tp8) == pytest.approx(per_gpu)
    # 4.25B weights at 2 bytes instead of 0.5625: 0.76 GB more on each of 8 GPUs.
    extra = weight_bytes_per_gpu(nvfp4, tp8) - weight_bytes_per_gpu(r1, tp8)
    assert extra == pytest.approx(attention * (2 - NVFP4) / 8)
    assert extra / 1e9 == pytest.approx(0.764, abs=0.001)
    # In bf16 the list changes nothing.
    bf16 = Layout(tensor_parallel=8)
    assert weight_bytes_per_gpu(nvfp4, bf16) == pytest.approx(weight_bytes_per_gpu(r1, bf16))


def test_the_nvfp4_config_beside_a_deepseek_checkpoint_names_its_attention() -> None:
    stem = "nvidia--DeepSeek-V3.1-NVFP4"
    path = CONFIGS / f"{stem}_config.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent (the shared published data is not checked out)")
    config = json.loads(path.read_text(encoding="utf-8"))
    quant = json.loads((CONFIGS / quant_config_name(path.name)).read_text(encoding="utf-8"))
    m = model_from_config(config, "deepseek-v3.1-nvfp4", str(path), quant_config=quant)
    assert m.unquantised == ["attention"]
    assert model_from_config(config, "deepseek-v3.1-nvfp4", str(path)).unquantised == []


def test_gpt_oss_attention_is_16_bit_in_weights_and_in_the_step() -> None:
    oss = catalog.models()["gpt-oss-120b"]
    assert oss.unquantised == ["attention", "attention_output", "router"]
    fp4 = Layout(dtype="fp4", kv_cache_dtype="fp8")
    blocks = oss.block_params(oss.experts)
    assert blocks["attention"] == 36 * (2880 * 64 * 64 + 2 * 2880 * 8 * 64 + 64 * 64 + 2 * 8 * 64)
    assert blocks["attention_output"] == 36 * 64 * 64 * 2880
    fully = oss.model_copy(update={"unquantised": []})
    kept = blocks["attention"] + blocks["attention_output"] + blocks["router"]
    assert weight_bytes(oss, "fp4") - weight_bytes(fully, "fp4") == pytest.approx(
        kept * (2 - NVFP4))
    gemms = _names(layers.plan(oss, fp4, True))
    assert not gemms["qkv_proj"].quantised and not gemms["o_proj"].quantised
    assert _names(layers.plan(fully, fp4, True))["qkv_proj"].quantised


def test_a_gemm_of_a_block_kept_16_bit_reads_the_16_bit_table() -> None:
    b200 = catalog.gpus()["b200"]
    t = operators.tables("b200", "vllm")
    assert t is not None and {"bf16", "fp4"} <= set(t.gemm)
    llama = catalog.models()["llama-3.1-8b"]
    kept = llama.model_copy(update={"unquantised": ["attention", "attention_output"]})
    fp4, x = Layout(dtype="fp4"), np.array([1.0, 64.0, 1024.0])
    c = composed.Composer(t, kept, b200, fp4, composed.Record(), composed.same_gpu(t))
    qkv = _names(layers.plan(kept, fp4, True))["qkv_proj"]
    found = lookup.gemm_ms(t.gemm["bf16"], qkv.n, qkv.k, x)
    assert found is not None
    assert c.gemm_s(qkv, x) == pytest.approx(found[0] * 1e-3 * qkv.count)
    up = _names(layers.plan(kept, fp4, True))["gate_up_proj"]
    nvfp4 = lookup.gemm_ms(t.gemm["fp4"], up.n, up.k, x)
    assert nvfp4 is not None and c.gemm_s(up, x) == pytest.approx(nvfp4[0] * 1e-3 * up.count)


def test_mla_projections_of_an_nvfp4_deepseek_follow_its_list() -> None:
    nvfp4 = catalog.models()["deepseek-r1"].model_copy(update={"unquantised": ["attention"]})
    gemms = _names(layers.plan(nvfp4, Layout(tensor_parallel=8, dtype="fp4"), False))
    assert [gemms[n].quantised for n in ("mla_down_proj", "q_b_proj", "kv_b_proj")] \
        == [False] * 3
    assert gemms["o_proj"].quantised and gemms["shared_gate_up"].quantised


# ---- published rows -----------------------------------------------------------------------

@pytest.mark.parametrize(("name", "key", "gpus"), [
    ("GPT-J-6B", "gpt-j-6b", 1), ("gptj-99", "gpt-j-6b", 1), ("Falcon-180B", "falcon-180b", 8)])
def test_gpt_j_and_falcon_rows_find_their_catalogue_models(name: str, key: str,
                                                           gpus: int) -> None:
    row = {"id": "r", "model": name, "gpu": "H100", "gpu_count": gpus,
           "parallelism": f"TP{gpus}", "precision": "FP8", "engine": "TensorRT-LLM",
           "scenario": "offline static batch", "isl": 128, "osl": 128, "concurrency": 64,
           "batch_size": 64}
    assert setup_for_row(row).model == key
