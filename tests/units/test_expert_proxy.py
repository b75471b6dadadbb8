"""Routed experts read from another engine's tables of the same GPU when the deployment's
engine has none for the dtype (or lacks the model's shape), named in the provenance; and
which tables MXFP4 checkpoints read."""

from __future__ import annotations

import numpy as np

from sim.hardware import catalog
from sim.hardware.layout import Layout
from sim.steptime import composed, operators
from sim.steptime.operators import OperatorTables

QWEN3_235B = catalog.models()["qwen3-235b-a22b"]  # hidden 4096, inter 1536, top-8 of 128
GPT_OSS = catalog.models()["gpt-oss-120b"]  # MXFP4 experts: hidden 2880, top-4 of 128
MAX_STEP = 4096


def _tables(gpu: str, engine: str) -> OperatorTables:
    t = operators.tables(gpu, engine)
    assert t is not None, f"calibration/operators/{gpu}_{engine}.json.gz is shipped"
    return t


def _moe(gpu: str, layout: Layout, model: catalog.ModelSpec = QWEN3_235B,
         relatives: composed.Relatives | None = None) -> composed.Composition:
    return composed.compose(_tables(gpu, layout.engine), model, catalog.gpus()[gpu], layout,
                            MAX_STEP, relatives)


def test_a_missing_expert_dtype_is_read_from_another_engine_and_named() -> None:
    # B200's TensorRT-LLM tables hold only w4a8_mxfp4_mxfp8 experts: no fp8 ones.
    assert "fp8" not in _tables("b200", "trtllm").moe
    layout = Layout(tensor_parallel=4, dtype="fp8", engine="trtllm")
    proxy = _moe("b200", layout)
    assert "vllm's fp8 table stands in" in proxy.record.fallbacks["moe"]
    # The expert time is exactly what the stand-in engine's own composition reads.
    own_vllm = _moe("b200", Layout(tensor_parallel=4, dtype="fp8", engine="vllm"))
    np.testing.assert_allclose(proxy.linear["moe"], own_vllm.linear["moe"])
    assert "moe" not in own_vllm.record.fallbacks


def test_the_roofline_stays_only_when_no_engine_has_the_dtype() -> None:
    layout = Layout(tensor_parallel=4, dtype="fp8", engine="trtllm")
    alone = _moe("b200", layout, relatives=lambda engine: None)
    assert alone.record.fallbacks["moe"].endswith("roofline")
    proxied = _moe("b200", layout)
    assert not np.allclose(alone.linear["moe"], proxied.linear["moe"])


def test_an_engine_lacking_the_model_shape_borrows_one_that_has_it() -> None:
    # GB200 TensorRT-LLM w4a8 tables hold DeepSeek-like shapes only; SGLang's hold gpt-oss's.
    layout = Layout(tensor_parallel=4, dtype="fp4", engine="trtllm")
    c = _moe("gb200", layout, GPT_OSS)
    assert "sglang's, which hold it, stand in" in c.record.fallbacks["moe"]
    assert "moe.shape" not in c.record.status  # measured at its own shape, not scaled


def test_mxfp4_checkpoints_read_mxfp4_experts_and_16_bit_gemms() -> None:
    blackwell = catalog.gpus()["b200"]
    trtllm = composed.dtype_keys(Layout(dtype="fp4", engine="trtllm"), GPT_OSS, blackwell)
    vllm = composed.dtype_keys(Layout(dtype="fp4", engine="vllm"), GPT_OSS, blackwell)
    assert trtllm.moe[0] == "w4a8_mxfp4_mxfp8" and vllm.moe[0] == "w4a16_mxfp4"
    assert trtllm.gemm[0] == vllm.gemm[0] == "bf16"
    # A checkpoint quantised to NVFP4 (or a 16-bit one run as fp4) keeps the NVFP4 tables.
    nvfp4 = composed.dtype_keys(Layout(dtype="fp4", engine="trtllm"), QWEN3_235B, blackwell)
    assert nvfp4.moe[0] == nvfp4.gemm[0] == "fp4"
