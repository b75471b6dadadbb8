"""The operator-composed step model: its form, its bounds and which terms each layout adds."""

from __future__ import annotations

import json

import numpy as np
import pytest
from builders import PUBLISHED

import sim
from sim.hardware import catalog
from sim.hardware.catalog import GpuSpec, ModelSpec
from sim.hardware.hfconfig import model_from_config, model_name
from sim.hardware.layout import Layout
from sim.steptime import composed, lookup, operators
from sim.steptime.operators import AttentionFit, GemmGrid
from sim.steptime.select import auto_kind, select

MODEL_CONFIGS = PUBLISHED / "aic" / "model_configs"
MAX_STEP = 4096 + 256


def _hf(file_name: str) -> ModelSpec:
    path = MODEL_CONFIGS / file_name
    if not path.is_file():
        pytest.skip(f"{path} is absent (the shared published data is not checked out)")
    return model_from_config(json.loads(path.read_text()), model_name(file_name), file_name)


def _gpu(name: str) -> GpuSpec:
    return catalog.gpus()[name]


def _tables(gpu: str, engine: str = "vllm") -> operators.OperatorTables:
    t = operators.tables(gpu, engine)
    assert t is not None, f"calibration/operators/{gpu}_{engine}.json is shipped"
    return t


def _step(model: ModelSpec, gpu: str, layout: Layout):
    return select("auto", model, _gpu(gpu), layout, MAX_STEP)


def _composition(model: ModelSpec, gpu: str, layout: Layout) -> composed.Composition:
    return composed.compose(_tables(gpu, layout.engine), model, _gpu(gpu), layout, MAX_STEP)


LLAMA_8B = catalog.models()["llama-3.1-8b"]
LLAMA_70B = catalog.models()["llama-3.1-70b"]
FP8 = {"dtype": "fp8", "kv_cache_dtype": "fp8"}


def _cases() -> list[tuple[str, str, str, Layout]]:
    """(label, model source, gpu, layout): dense, GQA tp4, MoE, MLA, window + fp4, hybrid."""
    return [("dense", "llama-3.1-8b", "h100-sxm", Layout()),
            ("dense-tp4", "llama-3.1-70b", "h100-sxm", Layout(tensor_parallel=4)),
            ("moe", "Qwen--Qwen3-30B-A3B_config.json", "h100-sxm", Layout()),
            ("mla", "deepseek-ai--DeepSeek-V3_config.json", "h200",
             Layout(tensor_parallel=8, **FP8)),
            ("window-fp4", "openai--gpt-oss-120b_config.json", "h200",
             Layout(dtype="fp4", kv_cache_dtype="fp8")),
            ("linear", "Qwen--Qwen3.5-35B-A3B_config.json", "h100-sxm", Layout())]


def _model(source: str) -> ModelSpec:
    return _hf(source) if source.endswith(".json") else catalog.models()[source]


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c[0])
def test_pure_decode_steps_have_the_skippable_form(case) -> None:
    _, source, gpu, layout = case
    step = _step(_model(source), gpu, layout)
    assert step.provenance.source == "measured-operators"
    for batch in (1, 7, 256):
        for kv in (0, 10_000, 400_000):
            prefill_s, decode_s = step.step_s(0, 0.0, batch, kv)
            assert prefill_s == 0.0
            assert decode_s == pytest.approx(step.decode_fixed_s(batch)
                                             + step.per_kv_token_s * kv, rel=1e-12)


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c[0])
def test_a_step_is_never_faster_than_its_weight_bytes_or_its_flops(case) -> None:
    _, source, gpu, layout = case
    m, g = _model(source), _gpu(gpu)
    step = _step(m, g.name, layout)
    assert m.params is not None and m.active_params is not None
    bytes_per_param = {"bf16": 2.0, "fp8": 1.0, "fp4": 0.5}[layout.dtype]
    embedding = m.vocab * m.hidden
    # Every GPU reads its share of the weights that every token uses (all but routed
    # experts and the embedding table), once per step, at most at peak bandwidth...
    always_read = (m.params - m.routed_expert_params - embedding) * bytes_per_param
    bandwidth_s = always_read / layout.gpus / (g.memory_bandwidth_tb_s * 1e12)
    assert step.decode_fixed_s(1) > bandwidth_s
    # ...and does its share of 2 FLOPs per active weight and token at most at peak.
    peak = {"bf16": g.bf16_tflops, "fp8": g.fp8_tflops,
            "fp4": g.fp4_tflops or g.fp8_tflops}[layout.dtype]
    assert peak is not None
    tokens = 4096
    flops_s = 2.0 * (m.active_params - 2 * embedding) * tokens / layout.gpus / (peak * 1e12)
    assert sum(step.step_s(tokens, tokens * (tokens + 1) / 2, 0, 0)) > flops_s


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c[0])
def test_a_step_grows_with_tokens_batch_and_context(case) -> None:
    _, source, gpu, layout = case
    step = _step(_model(source), gpu, layout)
    linear = np.asarray(step.linear_s)
    assert np.all(np.diff(linear) >= 0)
    decode = [step.decode_fixed_s(b) for b in range(1, 257)]
    assert np.all(np.diff(decode) >= 0) and decode[-1] > decode[0]
    prefill = [sum(step.step_s(t, t * (t + 1) / 2, 0, 0)) for t in (128, 512, 2048, 4096)]
    assert np.all(np.diff(prefill) > 0)
    assert step.per_kv_token_s > 0 or "linear" in case[0]


def test_each_term_is_there_only_when_its_layers_are() -> None:
    dense = _composition(LLAMA_8B, "h100-sxm", Layout())
    assert set(dense.linear) == {"gemm", "elementwise"}  # no experts, no collectives at tp 1
    dense_tp = _composition(LLAMA_70B, "h100-sxm", Layout(tensor_parallel=4))
    assert set(dense_tp.linear) == {"gemm", "elementwise", "all_reduce"}
    qwen = _hf("Qwen--Qwen3-30B-A3B_config.json")
    assert set(_composition(qwen, "h100-sxm", Layout()).linear) == {"gemm", "moe",
                                                                    "elementwise"}
    ep = _composition(qwen, "h100-sxm", Layout(tensor_parallel=2, expert_parallel=2))
    assert {"moe", "all_to_all", "all_reduce"} <= set(ep.linear)
    assert dense.attention.prefill_per_pair_s > 0 and dense.attention.decode_per_kv_token_s > 0


def test_expert_parallelism_swaps_the_expert_all_reduce_for_an_all_to_all() -> None:
    qwen = _hf("Qwen--Qwen3-30B-A3B_config.json")
    tp2 = _composition(qwen, "h100-sxm", Layout(tensor_parallel=2))
    ep2 = _composition(qwen, "h100-sxm", Layout(tensor_parallel=2, expert_parallel=2))
    assert "all_to_all" not in tp2.linear
    # tp 2 alone: two all-reduces per layer (attention, experts); with ep 2 only attention's.
    np.testing.assert_allclose(ep2.linear["all_reduce"], tp2.linear["all_reduce"] / 2)
    assert np.all(ep2.linear["all_to_all"] > 0)


def test_attention_data_parallel_ranks_each_hold_a_share_of_the_sequences() -> None:
    qwen = _hf("Qwen--Qwen3-30B-A3B_config.json")
    one = _composition(qwen, "h100-sxm", Layout(expert_parallel=1))
    two = _composition(qwen, "h100-sxm", Layout(data_parallel_attention=2, expert_parallel=2))
    a, b = one.attention, two.attention
    assert b.decode_per_kv_token_s == pytest.approx(a.decode_per_kv_token_s / 2)
    assert b.decode_per_seq_s == pytest.approx(a.decode_per_seq_s / 2)
    assert b.prefill_per_pair_s == pytest.approx(a.prefill_per_pair_s / 2)
    assert b.decode_fixed_s == pytest.approx(a.decode_fixed_s)  # every rank launches it
    # The routed experts see every token of the step across the expert-parallel group:
    # 2 ranks × 1/2 of the experts each, read at the step's tokens, as the tables time them.
    assert np.all(two.linear["moe"] > 0) and "all_to_all" in two.linear


def test_sliding_window_layers_are_charged_their_window_per_sequence() -> None:
    oss = _hf("openai--gpt-oss-120b_config.json")
    comp = _composition(oss, "h200", Layout())
    full = _composition(oss.model_copy(update={"sliding_layers": 0, "sliding_window": None}),
                        "h200", Layout())
    # Half the layers windowed: half the per-KV-token cost, the window paid per sequence.
    assert comp.attention.decode_per_kv_token_s == pytest.approx(
        full.attention.decode_per_kv_token_s / 2, rel=1e-6)
    assert comp.attention.decode_per_seq_s > full.attention.decode_per_seq_s


def test_fp4_on_hopper_is_weight_only_and_native_on_blackwell() -> None:
    oss = _hf("openai--gpt-oss-120b_config.json")
    fp4 = Layout(dtype="fp4", kv_cache_dtype="fp8")
    hopper = composed.dtype_keys(fp4, oss, _gpu("h200"))
    assert hopper.moe[0] == "w4a16_mxfp4" and hopper.gemm[0] == "bf16"
    assert "w4a16_mxfp4" in _tables("h200").moe
    blackwell = composed.dtype_keys(fp4, LLAMA_8B, _gpu("b200"))
    assert blackwell.gemm[0] == "fp4" and "fp4" in _tables("b200").gemm
    # gpt-oss keeps attention in bf16 (modules_to_not_convert): only its experts are MXFP4.
    assert composed.dtype_keys(fp4, oss, _gpu("b200")).gemm[0] == "bf16"
    deepseek = _hf("deepseek-ai--DeepSeek-V3_config.json")
    assert composed.dtype_keys(Layout(**FP8), deepseek, _gpu("h200")).gemm[0] == "fp8_block"
    assert composed.dtype_keys(Layout(**FP8), LLAMA_8B, _gpu("h200")).gemm[0] == "fp8"


def test_the_provenance_names_the_tables_the_error_and_the_overhead() -> None:
    p = _step(LLAMA_8B, "h100-sxm", Layout()).provenance
    assert p.name == "operators:h100-sxm_vllm" and p.source == "measured-operators"
    assert p.fit_error_pct is not None and 0 < p.fit_error_pct < 20
    assert p.details["tables"] == "calibration/operators/h100-sxm_vllm.json.gz"
    assert "27614" in p.details["overhead"]
    assert p.details["fallbacks"] == {}
    hybrid = _step(_hf("Qwen--Qwen3.5-35B-A3B_config.json"), "h100-sxm", Layout()).provenance
    assert "linear_attention" in hybrid.details["fallbacks"]


def test_without_tables_auto_falls_back_to_a_roofline_and_says_why() -> None:
    custom = GpuSpec(name="x1", memory_gib=80, memory_bandwidth_tb_s=2.0, bf16_tflops=500)
    plain = select("auto", LLAMA_8B, custom, Layout(), MAX_STEP)
    assert plain.provenance.source == "fitted-roofline"  # the measured GPUs' median factors
    assert "no measured operator tables for x1" in plain.provenance.details["why_roofline"]
    assert auto_kind("x1", "vllm") == "fitted-roofline"
    assert auto_kind("h100-sxm", "vllm") == "measured-operators"
    with pytest.raises(sim.InputError) as info:
        select("operators", LLAMA_8B, custom, Layout(), MAX_STEP)
    assert info.value.where == "profile" and "h100-sxm vllm" in info.value.expected


# ---- table lookups ---------------------------------------------------------------------------

def _grid() -> GemmGrid:
    """Latency = 2 µs + m·n·k / 1e12 ms-ish: a power law in each size."""
    m, n, k = [1, 16, 256], [256, 1024, 4096], [256, 1024, 4096]
    ms = [[[0.002 + a * b * c / 1e9 for c in k] for b in n] for a in m]
    return GemmGrid(m=m, n=n, k=k, ms=ms)


def test_gemm_lookup_is_exact_on_measured_points_and_between_them() -> None:
    grid = _grid()
    found = lookup.gemm_ms(grid, 1024, 4096, np.array([1.0, 16.0, 256.0]))
    assert found is not None
    np.testing.assert_allclose(found[0], [grid.ms[i][1][2] for i in range(3)])
    assert found[1] == lookup.MEASURED
    between = lookup.gemm_ms(grid, 2048, 2048, np.array([64.0]))
    assert between is not None and between[1] == lookup.INTERPOLATED
    low = lookup.gemm_ms(grid, 1024, 1024, np.array([64.0]))
    high = lookup.gemm_ms(grid, 4096, 4096, np.array([64.0]))
    assert low is not None and high is not None
    assert low[0][0] < between[0][0] < high[0][0]
    beyond = lookup.gemm_ms(grid, 16384, 4096, np.array([256.0]))
    assert beyond is not None and beyond[1] == lookup.EXTRAPOLATED
    # Past the grid no steeper than proportional: 4 × n at most 4 × the time.
    assert grid.ms[2][2][2] < beyond[0][0] <= 4 * grid.ms[2][2][2] * (1 + 1e-9)


def test_a_gemm_with_holes_all_around_is_left_to_the_roofline() -> None:
    holes = GemmGrid(m=[1, 2], n=[256, 512], k=[256, 512],
                     ms=[[[None, None], [None, None]], [[None, None], [None, None]]])
    assert lookup.gemm_ms(holes, 300, 300, np.array([1.0])) is None


def test_leave_one_out_of_a_power_law_is_exact() -> None:
    x = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    assert max(lookup.leave_one_out_pct(x, 3.0 * x**0.7)) == pytest.approx(0.0, abs=1e-9)


def test_an_attention_fit_of_another_head_shape_is_scaled_by_heads() -> None:
    fit = AttentionFit(heads=8, kv_heads=2, head_dim=128, fixed_ms=0.01, ms_per_seq=1e-4,
                       ms_per_kv_token=1e-7, points=10, fit_error_pct=3.0)
    exact = lookup.pick_fit([fit], 8, 2, 128, 0)
    assert exact is not None and exact.status == lookup.MEASURED
    assert (exact.compute, exact.memory) == (1.0, 1.0)
    scaled = lookup.pick_fit([fit], 16, 2, 128, 0)
    assert scaled is not None and scaled.status == lookup.EXTRAPOLATED
    assert (scaled.compute, scaled.memory) == (2.0, 1.0)

