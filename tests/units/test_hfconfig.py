"""Models from Hugging Face config.json files: the hand-written fixtures of each attention kind
(tests/fixtures/tiny--*_config.json) counted by hand — parameters, KV bytes per token, what a
sequence holds, KV capacity — then the `model: {hf_config}` key, its bad input and
`tokenfactory catalog models --models DIR`. The published models are in test_params.py."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from builders import REPO, Case, params, tiny

import sim
from sim.cli import main
from sim.errors import InputError
from sim.hardware import catalog
from sim.hardware.catalog import BYTES_PER_GIB, GpuSpec, ModelSpec
from sim.hardware.hfconfig import display_name, model_from_config, model_name
from sim.hardware.layout import Layout
from sim.hardware.memory import KV_BLOCK_TOKENS, kv_capacity_tokens

FIXTURES = REPO / "tests" / "fixtures"
DENSE, MLA, WINDOW, HYBRID = (f"tiny--{kind}_config.json" for kind in
                              ("Dense-GQA", "MLA-MoE", "Window-MoE", "Hybrid-Linear"))


def fixture(file_name: str) -> ModelSpec:
    config = json.loads((FIXTURES / file_name).read_text(encoding="utf-8"))
    return model_from_config(config, model_name(file_name), "model.hf_config",
                             display_name(file_name))


# ---- parameters, counted by hand ------------------------------------------------------------

def test_dense_gqa_parameters_by_hand() -> None:
    # 2 layers, hidden 64, 4 heads × 16, 2 KV heads, MLP 128, vocab 100 (untied).
    attention = 64 * 64 + 2 * 64 * 32 + 64 * 64  # q, k and v, o
    mlp = 3 * 64 * 128  # gate, up, down
    total = 2 * (attention + mlp + 2 * 64) + 2 * 100 * 64 + 64  # + norms, embed/unembed, final
    m = fixture(DENSE)
    assert m.params == m.active_params == total == 86_848
    assert (m.name, m.display_name) == ("dense-gqa", "Dense-GQA")


def test_mla_moe_parameters_by_hand() -> None:
    # 3 layers, hidden 32, 2 heads; q_lora 8, kv_lora 12, nope 6 + rope 4, v 5.
    q = 32 * 8 + 8 + 8 * 2 * (6 + 4)  # down, its norm, up to every head's query
    kv = 32 * (12 + 4) + 12 + 12 * 2 * (6 + 5)  # down to latent + rope key, norm, up to K, V
    attention = q + kv + 2 * 5 * 32  # + output
    expert = 3 * 32 * 16
    dense_mlp = 3 * 32 * 64  # first_k_dense_replace 1: layer 0 is dense at intermediate 64
    moe = lambda routed: routed * expert + 1 * expert + 32 * 4  # noqa: E731  + shared, router
    rest = 3 * 2 * 32 + 2 * 50 * 32 + 32  # norms, embeddings, final norm (MTP layer left out)
    m = fixture(MLA)
    assert m.params == 3 * attention + dense_mlp + 2 * moe(4) + rest == 29_780
    assert m.active_params == 3 * attention + dense_mlp + 2 * moe(2) + rest == 23_636
    assert (m.moe_layers, m.attention_kind, m.weights_dtype) == (2, "mla", "fp8")


def test_window_moe_parameters_by_hand() -> None:
    # gpt-oss layout: 4 layers, hidden 16, 4 heads × 4, 2 KV heads, q/k/v biases, 4 experts
    # of width 8, 2 per token.
    attention = 16 * 16 + 2 * 16 * 8 + 16 * 16 + (16 + 2 * 8)
    per_layer = lambda routed: attention + routed * 3 * 16 * 8 + 16 * 4 + 2 * 16  # noqa: E731
    rest = 2 * 20 * 16 + 16
    m = fixture(WINDOW)
    assert m.params == 4 * per_layer(4) + rest == 10_384
    assert m.active_params == 4 * per_layer(2) + rest == 7_312
    assert (m.sliding_layers, m.sliding_window, m.weights_dtype) == (2, 8, "mxfp4")


def test_hybrid_linear_parameters_by_hand() -> None:
    # Qwen3.5-MoE layout under text_config: 3 linear layers, 1 full; hidden 16.
    full = 16 * (16 + 16) + 2 * 16 * 8 + 16 * 16  # q and its output gate, k and v, o
    # Gated delta rule: 1 key head × 4, 2 value heads × 4; conv over q, k, v (4 + 4 + 8).
    linear = (16 * (16 + 8 + 2 * 2)  # in: q, k, v, z, and the two per-head gates b, a
              + 16 * 4 + 2 * 2 + 4 + 8 * 16)  # conv kernel 4, dt_bias + A_log, norm, out
    moe = lambda routed: routed * 3 * 16 * 8 + 3 * 16 * 8 + 16 * 4  # noqa: E731
    rest = 4 * 2 * 16 + 2 * 30 * 16 + 16
    m = fixture(HYBRID)
    assert m.params == full + 3 * linear + 4 * moe(4) + rest == 12_008
    assert m.active_params == full + 3 * linear + 4 * moe(2) + rest == 8_936


# ---- KV bytes per token and per sequence, by hand ---------------------------------------------

def test_gqa_kv_bytes_by_hand() -> None:
    # 2 (K and V) × 2 layers × 2 KV heads × 16 dims × 2 bytes.
    m = fixture(DENSE)
    assert m.kv_bytes_per_token(2.0) == 2 * 2 * 2 * 16 * 2 == 256
    assert m.kv_bytes_per_sequence(100, 2.0) == 256 * 100


def test_mla_kv_bytes_by_hand() -> None:
    # (kv_lora_rank 12 + qk_rope_head_dim 4) × 3 layers × 2 bytes: no per-head K and V.
    m = fixture(MLA)
    assert m.kv_bytes_per_token(2.0) == (12 + 4) * 3 * 2 == 96
    assert m.kv_bytes_per_token(1.0) == 48  # an fp8 cache


def test_sliding_window_layers_hold_at_most_their_window() -> None:
    # 2 full layers and 2 windowed (8 tokens), each 2 × 2 KV heads × 4 dims × 2 bytes = 32.
    m = fixture(WINDOW)
    assert m.kv_bytes_per_token(2.0) == 2 * 32
    assert m.window_kv_bytes_per_token(2.0) == 2 * 32
    assert m.kv_bytes_per_sequence(5, 2.0) == 64 * 5 + 64 * 5  # under the window: all count
    assert m.kv_bytes_per_sequence(100, 2.0) == 64 * 100 + 64 * 8  # over: capped at 8


def test_linear_attention_state_is_fixed_per_sequence() -> None:
    # One full layer: 2 × 1 KV head × 8 dims × 2 bytes = 32 per token. Each linear layer:
    # a 2 heads × 4 × 4 state in fp32 (128 bytes) + the conv's last 3 inputs of its 16
    # channels in 16 bits (96 bytes).
    m = fixture(HYBRID)
    assert m.kv_bytes_per_token(2.0) == 32
    assert m.state_bytes_per_sequence == 3 * (2 * 4 * 4 * 4 + 3 * 16 * 2) == 672
    assert m.kv_bytes_per_sequence(1, 2.0) == 32 + 672
    assert m.kv_bytes_per_sequence(1000, 2.0) == 32 * 1000 + 672


def test_kv_capacity_sets_aside_what_each_sequence_holds() -> None:
    # 1 GiB at 0.5 utilisation, no reserve, bf16: the weights, then 10 sequences' windows
    # (64 bytes × 8 tokens each), and the rest in 16-token blocks of the full layers.
    gpu = GpuSpec(memory_gib=1.0, memory_bandwidth_tb_s=1.0, bf16_tflops=1.0)
    m = fixture(WINDOW)
    free = 0.5 * BYTES_PER_GIB - 2 * m.params - 10 * 64 * 8
    expected = int(free // (64 * KV_BLOCK_TOKENS)) * KV_BLOCK_TOKENS
    assert kv_capacity_tokens(m, gpu, Layout(), 0.5, 0.0, max_num_seqs=10) == expected
    hybrid = fixture(HYBRID)
    free = 0.5 * BYTES_PER_GIB - 2 * hybrid.params - 10 * 672
    expected = int(free // (32 * KV_BLOCK_TOKENS)) * KV_BLOCK_TOKENS
    assert kv_capacity_tokens(hybrid, gpu, Layout(), 0.5, 0.0, max_num_seqs=10) == expected


def test_a_model_with_only_windowed_layers_counts_them_per_token() -> None:
    # Mistral-7B-v0.1 style: every layer windowed, so no full-attention bytes per token.
    config = json.loads((FIXTURES / DENSE).read_text(encoding="utf-8"))
    config |= {"model_type": "mistral", "sliding_window": 32}
    m = model_from_config(config, "windowed", "model.hf_config")
    gpu = GpuSpec(memory_gib=1.0, memory_bandwidth_tb_s=1.0, bf16_tflops=1.0)
    free = 0.5 * BYTES_PER_GIB - 2 * m.params
    expected = int(free // (256 * KV_BLOCK_TOKENS)) * KV_BLOCK_TOKENS
    assert m.kv_bytes_per_token(2.0) == 0 and m.window_kv_bytes_per_token(2.0) == 256
    assert kv_capacity_tokens(m, gpu, Layout(), 0.5, 0.0, max_num_seqs=10) == expected


# ---- the KV cache format a checkpoint asks for under `auto` ---------------------------------

# (what is added to a fixture's config.json, its *_hf_quant_config.json or None, the format).
# ModelOpt's export and compressed tensors write the declaration in these shapes (NVIDIA's
# NVFP4 checkpoints: kv_cache_quant_algo FP8 beside, a kv_cache_scheme of 8-bit floats inside).
FP8_SCHEME = {"dynamic": False, "num_bits": 8, "type": "float"}
DECLARED_KV = [
    pytest.param({}, None, "bf16", id="nothing-declared"),
    pytest.param({"torch_dtype": "float16"}, None, "fp16", id="fp16-activations"),
    pytest.param({"quantization_config": {"quant_method": "fp8"}}, None, "bf16",
                 id="fp8-weights-declare-no-cache"),
    pytest.param({"quantization_config": {"quant_method": "mxfp4"}}, None, "bf16",
                 id="mxfp4-weights-declare-no-cache"),
    pytest.param({}, {"quantization": {"quant_algo": "NVFP4", "kv_cache_quant_algo": "FP8"}},
                 "fp8", id="modelopt-beside"),
    pytest.param({}, {"quantization": {"quant_algo": "MIXED_PRECISION",
                                       "kv_cache_quant_algo": None}}, "bf16",
                 id="modelopt-beside-null"),
    pytest.param({"quantization_config": {"quant_method": "modelopt",
                                          "kv_cache_scheme": FP8_SCHEME}}, None, "fp8",
                 id="scheme-of-8-bit-floats"),
    pytest.param({"quantization_config": {"kv_cache_scheme": "FP8"}}, None, "fp8",
                 id="scheme-named"),
    pytest.param({"text_config": {"quantization_config": {"kv_cache_quant_algo": "FP8"}}},
                 None, "fp8", id="nested-under-text-config"),
    pytest.param({"quantization_config": {"kv_cache_scheme": {"num_bits": 8, "type": "int"}}},
                 None, "bf16", id="int8-cache-not-modelled"),
    pytest.param({}, {"quantization": {"kv_cache_quant_algo": "NVFP4"}}, "bf16",
                 id="nvfp4-cache-not-modelled"),
]


@pytest.mark.parametrize(("added", "beside", "expected"), DECLARED_KV)
def test_a_checkpoints_kv_format_is_what_it_declares_else_its_activations(
        added: dict[str, object], beside: dict[str, object] | None, expected: str) -> None:
    config = json.loads((FIXTURES / DENSE).read_text(encoding="utf-8"))
    if "text_config" in added:
        config = {"model_type": "llama4", "text_config": config | added["text_config"]}
    else:
        config |= added
    m = model_from_config(config, "dense", "model.hf_config", quant_config=beside)
    assert m.kv_cache_dtype == expected


def test_the_fixtures_declare_no_kv_format_and_catalogue_models_are_no_checkpoint() -> None:
    # The MLA fixture has FP8 weights and the windowed one MXFP4: neither declares a cache.
    assert [fixture(name).kv_cache_dtype for name in (DENSE, MLA, WINDOW, HYBRID)] == [
        "bf16"] * 4
    assert {m.kv_cache_dtype for m in catalog.models().values()} == {None}


# ---- the scenario key ---------------------------------------------------------------------------

def _with_config(tmp_path: Path, file_name: str, **overrides: object) -> Path:
    """A scenario in tmp_path naming a fixture config copied beside it, by relative path."""
    (tmp_path / "models").mkdir(exist_ok=True)
    shutil.copy(FIXTURES / file_name, tmp_path / "models" / file_name)
    data = tiny(model={"hf_config": f"models/{file_name}"}, **overrides)
    path = tmp_path / "scenario.yaml"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_hf_config_path_is_relative_to_the_scenario(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    path = _with_config(tmp_path, MLA)
    monkeypatch.chdir(REPO)  # not the scenario's folder
    s = sim.load_scenario(path)
    assert s.model == fixture(MLA)


def test_quantisation_settings_beside_the_config_name_the_blocks_kept_16_bit(
        tmp_path: Path) -> None:
    # ModelOpt writes org--name_hf_quant_config.json beside config.json; its exclude list
    # keeps the whole attention block (input and output projections) in BF16, which the
    # scenario's model then records.
    path = _with_config(tmp_path, MLA)
    config = tmp_path / "models" / MLA
    beside = config.with_name(config.name.removesuffix("_config.json") + "_hf_quant_config.json")
    beside.write_text(json.dumps({"quantization": {
        "quant_algo": "NVFP4", "exclude_modules": ["model.layers.*.self_attn*", "lm_head"]}}),
        encoding="utf-8")
    assert fixture(MLA).unquantised == []
    assert sim.load_scenario(path).model.unquantised == ["attention", "attention_output"]


def test_moe_model_from_a_config_runs_end_to_end_on_the_roofline(tmp_path: Path) -> None:
    path = _with_config(
        tmp_path, MLA, profile="roofline", deployment__tensor_parallel=2,
        workload__prompt_tokens={"dist": "fixed", "value": 100},
        workload__output_tokens={"dist": "fixed", "value": 20})
    result = sim.run(sim.load_scenario(path))
    record = result.to_dict()
    assert record["requests"]["completed"] > 0
    assert record["requests"]["completed"] + record["requests"]["unfinished"] \
        == record["requests"]["arrived"]
    assert record["profile"]["source"] == "roofline"
    assert record["latency_s"]["ttft"]["p50"] > 0


def _config_case(id: str, where: str, value: str, text: str, *also: str,
                 **overrides: object) -> Case:
    return Case(id, tiny(model={"hf_config": "m_config.json"}, **overrides), where, value,
                also, setup={"m_config.json": text})


ARCHITECTURE_LIST = "model_type one of deepseek_v2"
BAD_HF_CONFIG = [
    Case("missing-file", tiny(model={"hf_config": "none_config.json"}), "model.hf_config",
         "none_config.json", ("an existing config.json file",)),
    Case("not-a-string", tiny(model={"hf_config": 3}), "model.hf_config", "3",
         ("a path to a Hugging Face config.json",)),
    Case("other-key", tiny(model={"hf_config": "m_config.json", "layers": 4}), "model.layers",
         "4", ("no other key beside hf_config",)),
    _config_case("not-json", "model.hf_config", "m_config.json", "{not json",
                 "a JSON file (line 1"),
    _config_case("not-an-object", "model.hf_config", "m_config.json", "[1, 2]",
                 "a JSON object"),
    _config_case("unsupported-architecture", "model.hf_config", "nemotron_h",
                 json.dumps({"model_type": "nemotron_h", "num_hidden_layers": 4}),
                 ARCHITECTURE_LIST),
    _config_case("no-model-type", "model.hf_config", "None", json.dumps({"hidden_size": 8}),
                 ARCHITECTURE_LIST),
    _config_case("key-missing", "model.hf_config", "no 'num_attention_heads'",
                 json.dumps({"model_type": "llama", "num_hidden_layers": 2}),
                 "the keys of its architecture (llama)"),
    _config_case("impossible-shape", "model.hf_config", "kv_heads (num_key_value_heads) = 3",
                 (FIXTURES / DENSE).read_text(encoding="utf-8").replace(
                     '"num_key_value_heads": 2', '"num_key_value_heads": 3'),
                 "a divisor of heads"),
    _config_case("negative-layers", "model.hf_config", "layers",
                 (FIXTURES / DENSE).read_text(encoding="utf-8").replace(
                     '"num_hidden_layers": 2', '"num_hidden_layers": -2'),
                 "greater than 0", "num_hidden_layers"),
    # The serving checks use what the config says: 4 heads split over 3 GPUs, a prompt
    # longer than max_position_embeddings (512), weights larger than the GPUs.
    _config_case("tp-not-dividing-heads", "deployment.tensor_parallel", "3",
                 (FIXTURES / DENSE).read_text(encoding="utf-8"), "one of 1, 2",
                 deployment__tensor_parallel=3),
    _config_case("prompt-over-context", "workload.prompt_tokens.value", "600",
                 (FIXTURES / DENSE).read_text(encoding="utf-8"), "context of 512 tokens",
                 workload__prompt_tokens={"dist": "fixed", "value": 600}),
    _config_case("weights-do-not-fit", "deployment.tensor_parallel", "1",
                 (FIXTURES / DENSE).read_text(encoding="utf-8").replace(
                     '"hidden_size": 64, "intermediate_size": 128',
                     '"hidden_size": 262144, "intermediate_size": 1000000'),
                 "enough GPUs for the weights"),
]


# The same keys given inline (an inline model takes every ModelSpec field).
INLINE = {"layers": 4, "hidden": 64, "ffn_intermediate": 128, "heads": 4, "kv_heads": 2,
          "vocab": 100}
BAD_INLINE_MODEL = [
    Case("window-without-size", tiny(model=INLINE | {"sliding_layers": 2}),
         "model.sliding_window", "missing", ("sliding_layers needs sliding_window",)),
    Case("mla-without-rope", tiny(model=INLINE | {"kv_lora_rank": 64, "qk_nope_head_dim": 16,
                                                  "v_head_dim": 16}),
         "model.qk_rope_head_dim", "missing", ("kv_lora_rank needs",)),
    Case("linear-without-heads", tiny(model=INLINE | {"linear_layers": 3}),
         "model.linear_key_heads", "missing", ("linear_layers needs",)),
    Case("more-kinds-than-layers", tiny(model=INLINE | {
        "sliding_layers": 3, "sliding_window": 8, "linear_layers": 2, "linear_key_heads": 1,
        "linear_value_heads": 1, "linear_key_head_dim": 4, "linear_value_head_dim": 4}),
        "model.linear_layers", "2", ("at most layers − sliding_layers (1)",)),
    Case("no-moe-layer-left", tiny(model=INLINE | {"experts": 4, "experts_per_token": 2,
                                                   "dense_layers": 4}),
         "model.dense_layers", "4", ("a number < layers (4)",)),
    Case("moe-step-past-the-layers", tiny(model=INLINE | {"experts": 4, "experts_per_token": 2,
                                                          "dense_layers": 1,
                                                          "moe_layer_step": 4}),
         "model.moe_layer_step", "4", ("at most layers − dense_layers (3)",)),
    Case("negative-shared-experts", tiny(model=INLINE | {"shared_experts": -1}),
         "model.shared_experts", "-1", ("a number ≥ 0",)),
    Case("non-gated-experts", tiny(model=INLINE | {"experts": 4, "experts_per_token": 2,
                                                   "mlp_gated": False}),
         "model.mlp_gated", "False", ("true for a mixture-of-experts model",)),
    Case("unknown-unquantised-block", tiny(model=INLINE | {"unquantised": ["lm_head"]}),
         "model.unquantised.0", "lm_head", ("attention_output", "routed_experts")),
    Case("no-layer-norm", tiny(model=INLINE | {"layer_norms": 0}),
         "model.layer_norms", "0", ("≥ 1",)),
]


@pytest.mark.parametrize("case", params(BAD_INLINE_MODEL))
def test_bad_inline_model_shape_names_the_key(case: Case, check_rejected) -> None:
    check_rejected(case)


@pytest.mark.parametrize("case", params(BAD_HF_CONFIG))
def test_bad_hf_config_is_one_line_naming_the_key(case: Case, check_rejected) -> None:
    check_rejected(case)


def test_unsupported_architecture_names_what_is_supported() -> None:
    with pytest.raises(InputError) as info:
        model_from_config({"model_type": "deepseek_v4"}, "v4", "model.hf_config")
    assert info.value.where == "model.hf_config"
    for family in ("deepseek_v3", "gpt_oss", "llama4_text", "qwen3_5_moe_text", "mixtral"):
        assert family in info.value.expected


# ---- tokenfactory catalog models --models DIR ----------------------------------------------------

def test_catalog_lists_the_configs_of_a_folder(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    for name in (DENSE, MLA, WINDOW, HYBRID):
        shutil.copy(FIXTURES / name, tmp_path / name)
    (tmp_path / "tiny--MLA-MoE_hf_quant_config.json").write_text("{}", encoding="utf-8")
    (tmp_path / "odd--Thing_config.json").write_text('{"model_type": "mamba"}',
                                                     encoding="utf-8")
    assert main(["catalog", "models", "--models", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]
            if not line.startswith("skipped")}
    assert "llama-3.1-8b" in rows  # the catalogue is listed too
    # name, params B, active B, layers, KV KiB/token (bf16), attention …
    assert rows["mla-moe"][1:6] == ["0.0", "0.0", "3", f"{96 / 1024:.0f}", "mla"]
    assert rows["window-moe"][5:7] == ["gqa+window,", "2"]
    assert rows["hybrid-linear"][5] == "gqa+linear,"
    assert "dense-gqa" in rows
    assert "skipped odd--Thing_config.json: model_type 'mamba'" in out
    assert "hf_quant" not in out  # quantisation settings beside a config are not models


def test_catalog_kv_column_is_kib_per_token_at_16_bits(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    assert main(["catalog", "models"]) == 0
    line = next(row for row in capsys.readouterr().out.splitlines()
                if row.startswith("llama-3.1-70b "))
    assert line.split()[4] == "320"  # 2 × 80 layers × 8 KV heads × 128 × 2 bytes / 1024


@pytest.mark.parametrize("folder", ["missing", "a_file_config.json"])
def test_catalog_models_bad_folder_exits_2(folder: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a_file_config.json").write_text("{}", encoding="utf-8")
    assert main(["catalog", "models", "--models", str(tmp_path / folder)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert "--models" in err and folder in err and "a directory" in err


def test_capacity_of_todays_models_is_unchanged_by_the_sequence_reserve() -> None:
    # Full-attention models hold nothing per sequence: max_num_seqs changes nothing.
    s = sim.load_scenario(tiny())
    gpu, m = s.gpu, s.model
    one = kv_capacity_tokens(m, gpu, Layout(), 0.9, 1.0, max_num_seqs=1)
    assert one == kv_capacity_tokens(m, gpu, Layout(), 0.9, 1.0, max_num_seqs=1024)
    # h100-sxm's runtime reserve (0.513 GiB, no NCCL on one GPU) and the 1 GiB for activations.
    usable = gpu.memory_bytes * 0.9 - 2 * m.params - 1.513 * BYTES_PER_GIB
    assert one == math.floor(usable / (m.kv_bytes_per_token(2.0) * 16)) * 16
