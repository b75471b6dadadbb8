"""The roofline's own factors for FP8 and FP4 GEMMs: which format's apply, and that a step
at that format uses them (worked by hand), not the 16-bit ones."""

from __future__ import annotations

import pytest

from sim.hardware import catalog
from sim.hardware.layout import Layout
from sim.scenario.profiles import RooflineProfile
from sim.steptime.fitted import fitted_efficiency
from sim.steptime.roofline import RooflineStep, peak_format

LLAMA_8B = catalog.models()["llama-3.1-8b"]
H100 = catalog.gpus()["h100-sxm"]


def test_unset_format_factors_fall_back_to_the_16_bit_ones() -> None:
    spec = RooflineProfile(kind="roofline", compute_efficiency=0.8, compute_efficiency_fp8=0.5,
                           layer_overhead_s_fp8=2e-5)
    assert spec.gemm_factors("bf16") == (0.8, spec.bandwidth_efficiency, 0.0)
    assert spec.gemm_factors("fp8") == (0.5, spec.bandwidth_efficiency, 2e-5)
    assert spec.gemm_factors("fp4") == (0.8, spec.bandwidth_efficiency, 0.0)


def test_fp4_weights_run_at_the_fp8_peak_where_there_are_no_fp4_tensor_cores() -> None:
    assert H100.fp4_tflops is None
    assert peak_format(H100, "fp4") == "fp8"
    assert peak_format(catalog.gpus()["b200"], "fp4") == "fp4"
    assert peak_format(H100, "bf16") == "bf16"


def test_an_fp8_step_uses_the_fp8_compute_efficiency() -> None:
    """A long prefill is compute bound: its linear time is FLOPs / (peak · η_c), so halving
    the fp8 efficiency doubles it, and the bf16 one does not move it."""
    layout = Layout(dtype="fp8", kv_cache_dtype="fp8")
    base = dict(kind="roofline", overhead_s=0.0, compute_efficiency=0.8)
    shared = RooflineStep(RooflineProfile(**base), LLAMA_8B, H100, layout)
    own = RooflineStep(RooflineProfile(**base, compute_efficiency_fp8=0.4), LLAMA_8B, H100,
                       layout)
    other = RooflineStep(RooflineProfile(**{**base, "compute_efficiency": 0.3},
                                         compute_efficiency_fp8=0.4), LLAMA_8B, H100, layout)
    tokens = 8192
    assert own.flops_per_s == pytest.approx(H100.fp8_tflops * 1e12 * 0.4)
    assert own._linear_s(tokens, 1) == pytest.approx(2 * shared._linear_s(tokens, 1))
    assert other._linear_s(tokens, 1) == pytest.approx(own._linear_s(tokens, 1))
    # A bf16 step of the same profile keeps the 16-bit efficiency.
    bf16 = RooflineStep(RooflineProfile(**base, compute_efficiency_fp8=0.4), LLAMA_8B, H100,
                        Layout())
    assert bf16.flops_per_s == pytest.approx(H100.bf16_tflops * 1e12 * 0.8)


def test_the_fp8_bandwidth_factor_prices_weights_and_not_the_kv_cache() -> None:
    layout = Layout(dtype="fp8", kv_cache_dtype="fp8")
    plain = RooflineStep(RooflineProfile(kind="roofline"), LLAMA_8B, H100, layout)
    slow = RooflineStep(RooflineProfile(kind="roofline", bandwidth_efficiency_fp8=0.4),
                        LLAMA_8B, H100, layout)
    assert slow.bytes_per_s == pytest.approx(plain.bytes_per_s * 0.4 / 0.8)
    assert slow.per_kv_token_s == plain.per_kv_token_s


def test_fitted_format_factors_where_the_gpu_has_those_tables() -> None:
    h100 = fitted_efficiency("h100-sxm")
    a100 = fitted_efficiency("a100-80gb")
    assert h100 is not None and a100 is not None
    # Measured FP8 GEMMs reach a smaller share of their peak than BF16 ones (fp8_check).
    assert h100[0]["compute_efficiency_fp8"] < h100[0]["compute_efficiency"]
    assert h100[0]["compute_efficiency_fp4"] is None  # Hopper: no FP4 tables
    assert a100[0]["compute_efficiency_fp8"] is None  # Ampere: no FP8 tensor cores
    RooflineProfile(kind="roofline", **h100[0])
