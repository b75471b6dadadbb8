"""Step-time models: the decode form event skipping relies on, and roofline sanity."""

from __future__ import annotations

import pytest
from builders import scenario

import sim
from sim.runner.build import step_model

LINEAR = {"kind": "linear", "base_s": 0.004, "per_prefill_token_s": 2e-6,
          "per_decode_seq_s": 1e-4, "per_kv_token_s": 2e-8}


def _model(**overrides):
    return step_model(sim.load_scenario(scenario(**overrides)))


def _roofline(**overrides):
    """The plain roofline (default efficiencies), whatever `auto` would pick."""
    return _model(profile="roofline", **overrides)


@pytest.mark.parametrize("profile", [
    {"kind": "constant", "step_s": 0.02}, LINEAR, "auto", "roofline", {"kind": "roofline"},
    "h100-sxm_llama-2-7b_tp1_bf16"])
@pytest.mark.parametrize("batch", [1, 7, 64])
def test_pure_decode_step_has_the_skippable_form(profile, batch: int) -> None:
    model = "llama-2-7b" if str(profile).startswith("h100-sxm_llama-2-7b") else "llama-3.1-8b"
    m = _model(profile=profile, model=model)
    for kv in (0, 10_000, 300_000):
        prefill_s, decode_s = m.step_s(0, 0.0, batch, kv)
        assert prefill_s == 0.0
        assert decode_s == pytest.approx(m.decode_fixed_s(batch) + m.per_kv_token_s * kv)


def test_roofline_is_monotone_in_tokens_batch_and_context() -> None:
    m = _roofline()
    def total(*args):
        return sum(m.step_s(*args))
    assert total(1000, 5e5, 8, 8000) < total(2000, 2e6, 8, 8000)
    # Small batches are weight-bandwidth bound (flat), large ones compute bound (rising).
    assert total(0, 0, 8, 8000) <= total(0, 0, 64, 8000) < total(0, 0, 1024, 8000)
    assert total(0, 0, 8, 8000) < total(0, 0, 8, 80_000)
    assert total(512, 512 * 256.5, 0, 0) < total(512, 512 * 4000, 0, 0)  # longer prior context


def test_roofline_small_batch_decode_is_weight_bandwidth_bound() -> None:
    # Batch 1 on Llama-3.1-8B/H100: reading the non-embedding weights once at 80% of 3.35 TB/s.
    m = _roofline()
    weight_bytes = (8_030_261_248 - 128256 * 4096) * 2
    expected = 0.003 + weight_bytes / (3.35e12 * 0.8)
    assert m.decode_fixed_s(1) == pytest.approx(expected, rel=1e-6)


def test_tensor_parallel_and_fp8_speed_up_decode() -> None:
    tp2 = _roofline(model="llama-3.1-70b", deployment={"tensor_parallel": 2})
    tp4 = _roofline(model="llama-3.1-70b", deployment={"tensor_parallel": 4})
    assert tp4.decode_fixed_s(16) < tp2.decode_fixed_s(16)
    bf16 = _roofline(deployment={"dtype": "bf16"})
    fp8 = _roofline(deployment={"dtype": "fp8"})
    assert fp8.decode_fixed_s(1) - 0.003 == pytest.approx((bf16.decode_fixed_s(1) - 0.003) / 2)


def test_moe_reads_only_the_experts_a_small_batch_touches() -> None:
    m = _roofline(model="mixtral-8x7b", deployment={"tensor_parallel": 2})
    # One token touches 2 of 8 experts per layer; 64 tokens touch essentially all of them.
    assert m.decode_fixed_s(1) < 0.5 * m.decode_fixed_s(64)


def test_profile_provenance_reaches_the_result() -> None:
    def profile(**overrides):
        return sim.run(scenario(duration_s=10.0, warmup_s=1.0, **overrides)).to_dict()["profile"]

    # auto: the operators composed where the GPU has tables for the engine...
    composed = profile()
    assert composed["source"] == "measured-operators"
    assert composed["name"] == "operators:h100-sxm_vllm"
    assert 0 < composed["fit_error_pct"] < 20
    # ...a measured Vidur profile by name, for its exact GPU, model, TP and dtype...
    measured = profile(model="llama-3.1-70b", deployment={"tensor_parallel": 4},
                       profile="h100-sxm_llama-3.1-70b_tp4_bf16")
    assert measured["source"] == "measured"
    assert 0 < measured["fit_error_pct"] < 10
    assert measured["details"]["components"]["layer_linear"] == "measured"
    # ...else a roofline with this GPU's fitted efficiencies, or a relative's...
    fitted = profile(profile="fitted-roofline")
    assert fitted["source"] == "fitted-roofline" and fitted["fit_error_pct"] > 0
    assert "transferred" not in fitted["details"]
    assert "transferred" in profile(gpu="gb300", profile="fitted-roofline")["details"]
    # ...a GPU given inline borrows the measured datacenter GPUs' median factors...
    custom = {"name": "x1", "memory_gib": 80, "memory_bandwidth_tb_s": 2, "bf16_tflops": 500}
    on_spec_sheet = profile(gpu=custom)
    assert on_spec_sheet["source"] == "fitted-roofline"
    assert "spec sheet" in on_spec_sheet["details"]["transferred"]
    # ...and the plain roofline is there when asked for.
    assert profile(profile="roofline")["source"] == "roofline"
    inline = profile(profile=LINEAR)
    assert inline["source"] == "inline" and inline["name"] == "linear"


def test_a_named_profile_must_match_the_scenario() -> None:
    with pytest.raises(sim.InputError) as info:
        sim.run(scenario(profile="h100-sxm_llama-2-7b_tp1_bf16"))  # scenario model: 3.1-8b
    assert info.value.where == "profile"
