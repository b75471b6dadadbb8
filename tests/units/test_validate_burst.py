"""Rows measured on a 2024 vLLM with `benchmark_serving.py --request-rate inf`: the burst of
prompts, the V0 engine's scheduler defaults, its host time per step and its KV format.

Worked examples on a small burst: with all requests sent at t = 0 the sequence of steps does
not depend on how long each takes, so a constant step gives the timeline by hand and a host
overhead adds exactly its value once per step.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import sim
from sim.steptime import library
from sim.validation.burst import burst_mapping, measure_burst, simulate_burst
from sim.validation.engine_versions import HOST_STEP_S, vllm_v0
from sim.validation.host_overhead import with_host_overhead
from sim.validation.mapping import RowSetup, Uncovered, setup_for_row
from sim.validation.simulate import scenario_mapping


def _row(**changes: object) -> dict:
    row = {"id": "lambda/r", "model": "Llama-3.1-8B-Instruct", "gpu": "H100", "gpu_count": 1,
           "parallelism": "TP1", "precision": "BF16", "engine": "vLLM v0.5.4",
           "scenario": "benchmark_serving.py, num-prompts=4, request rate inf",
           "isl": 10, "osl": 5, "concurrency": 4, "batch_size": 2}
    row.update(changes)
    return row


# ---- reading the row -----------------------------------------------------------------------


@pytest.mark.parametrize(("scenario", "load", "count"), [
    ("benchmark_serving.py, num-prompts=320, request rate inf", "burst", 320),
    ("rps=inf, num-prompts=5000, max-num-seq=256, max-seq-len=2048", "burst", 5000),
    ("benchmark_serving.py, num-prompts=320", "closed", 4),  # no infinite rate: not a burst
])
def test_a_burst_is_read_from_the_scenario_text(scenario: str, load: str, count: int) -> None:
    setup = setup_for_row(_row(scenario=scenario))
    assert (setup.load, setup.concurrency) == (load, count)


PERF_OVERVIEW = {"repo_path": "NVIDIA/TensorRT-LLM:docs/source/performance/perf-overview.md"
                 "@00f37686aa854010d68bcbd0f4ab000221541ca6"}


@pytest.mark.parametrize(("isl", "osl", "load", "count"), [
    (128, 128, "burst", 30000),  # the source's $num_requests table
    (20000, 2000, "burst", 1000),
    (100, 100, "offline", None),  # a length pair the table does not list
])
def test_trtllm_bench_rows_are_the_sources_stated_bursts(isl: int, osl: int, load: str,
                                                         count: int | None) -> None:
    row = _row(engine="TensorRT-LLM (trtllm-bench, PyTorch backend)", isl=isl, osl=osl,
               scenario="offline max-throughput", concurrency="unbounded", batch_size=None,
               source=PERF_OVERVIEW)
    setup = setup_for_row(row)
    assert (setup.load, setup.concurrency) == (load, count)
    assert setup.host_overhead_s == 0.0
    if count is not None:
        assert any("$num_requests" in note for note in setup.assumptions)
    other = setup_for_row({**row, "source": {"repo_path": "someone/else:perf.md@1"}})
    assert other.load == "offline"


@pytest.mark.parametrize(("precision", "kv"), [("FP8", "fp8"), ("FP4", "fp8"), ("BF16", "auto")])
def test_the_perf_overviews_quantised_checkpoints_keep_their_declared_fp8_cache(
        precision: str, kv: str) -> None:
    # Its FP8 and FP4 models are NVIDIA's ModelOpt checkpoints, which declare an FP8 cache;
    # the row names the base model, whose config declares none.
    row = _row(engine="TensorRT-LLM (trtllm-bench, PyTorch backend)", precision=precision,
               scenario="offline max-throughput", concurrency="unbounded", batch_size=None,
               gpu="B200", source=PERF_OVERVIEW)
    setup = setup_for_row(row)
    assert setup.kv_cache_dtype == kv
    assert any("ModelOpt" in note for note in setup.assumptions) == (kv == "fp8")
    elsewhere = setup_for_row({**row, "source": {"repo_path": "someone/else:perf.md@1"}})
    assert elsewhere.kv_cache_dtype == "auto"


@pytest.mark.parametrize(("engine", "policy", "budget", "host_s"), [
    ("vLLM v0.5.4", "prefill-first", 2048, HOST_STEP_S),
    ("vLLM v0.5.4 chunked-prefill", "chunked-prefill", 512, HOST_STEP_S),
    ("vLLM v0.6.0 steps=1", "prefill-first", 2048, HOST_STEP_S),
    ("vLLM v0.6.0 steps=10", "prefill-first", 2048, HOST_STEP_S / 10),
    ("vLLM v0.6.0 (--num-scheduler-steps 10)", "prefill-first", 2048, HOST_STEP_S / 10),
])
def test_v0_vllm_defaults(engine: str, policy: str, budget: int, host_s: float) -> None:
    defaults = vllm_v0(_row(engine=engine), "bf16")
    assert defaults is not None
    assert (defaults.policy, defaults.max_batched_tokens) == (policy, budget)
    assert defaults.host_overhead_s == pytest.approx(host_s)


def test_v0_budget_follows_a_stated_max_model_len() -> None:
    defaults = vllm_v0(_row(scenario="rps=inf, num-prompts=10, max-seq-len=4096"), "bf16")
    assert defaults is not None and defaults.max_batched_tokens == 4096


@pytest.mark.parametrize("engine", ["vLLM", "vLLM v0.10.1", "vLLM v0.4.0", "TensorRT-LLM 0.5"])
def test_other_engine_versions_keep_the_current_defaults(engine: str) -> None:
    assert vllm_v0(_row(engine=engine), "bf16") is None
    setup = setup_for_row(_row(engine=engine))
    assert setup.host_overhead_s == 0.0 and setup.kv_cache_dtype == "auto"


def test_fp8_checkpoint_on_v0_vllm_keeps_a_16_bit_kv_cache() -> None:
    fp8 = setup_for_row(_row(precision="FP8"))
    assert (fp8.dtype, fp8.kv_cache_dtype) == ("fp8", "bf16")
    assert any("kv-cache-dtype auto" in note for note in fp8.assumptions)
    assert setup_for_row(_row()).kv_cache_dtype == "auto"  # bf16 weights: bf16 cache anyway


def test_the_setup_reaches_the_scenario() -> None:
    setup = setup_for_row(_row(precision="FP8"))
    deployment = scenario_mapping(setup, 1.0, 0.0, 1.0, None)["deployment"]
    assert deployment["kv_cache_dtype"] == "bf16"
    assert deployment["scheduler"]["policy"] == "prefill-first"


def test_the_harness_memory_setting_reaches_the_scenario() -> None:
    source = {"repo_path": "LambdaLabsML/vllm-benchmark:benchmark_v0.md@0e8fc5d"}
    setup = setup_for_row(_row(source=source))
    assert setup.gpu_memory_utilization == 0.95
    assert any("--gpu-memory-utilization 0.95" in note for note in setup.assumptions)
    deployment = scenario_mapping(setup, 1.0, 0.0, 1.0, None)["deployment"]
    assert deployment["gpu_memory_utilization"] == 0.95
    other = setup_for_row(_row(source={"repo_path": "NVIDIA/TensorRT-LLM:docs/perf.md@1"}))
    assert other.gpu_memory_utilization is None
    assert "gpu_memory_utilization" not in scenario_mapping(other, 1.0, 0.0, 1.0,
                                                            None)["deployment"]


# ---- the burst -----------------------------------------------------------------------------


def _constant(setup: RowSetup) -> RowSetup:
    return dataclasses.replace(setup, profile={"kind": "constant", "step_s": 0.01},
                               host_overhead_s=0.0)


def test_burst_throughput_is_tokens_over_the_time_to_the_last_finish() -> None:
    """4 prompts of 10 tokens, 5 output tokens each, at most 2 in the batch, 10 ms a step,
    prefill-first. The first arrival starts a step alone (the others, sent at the same
    instant, join at its end): r0 prefills in [0, 0.01], r1 in [0.01, 0.02], both decode
    their 4 remaining tokens in [0.02, 0.06]; r2 and r3 prefill together in [0.06, 0.07] and
    decode until 0.11. 20 tokens in 0.11 s; TTFT 10, 20, 70, 70 ms; TPOT (finish − first
    token) / 4 = 12.5, 10, 10, 10 ms."""
    result = sim.run(burst_mapping(_constant(setup_for_row(_row()))), warn_window=False)
    assert len(result.workload.arrival_s) == 4  # one request per client, none after
    measured = measure_burst(result)
    assert measured.output_tokens_per_s == pytest.approx(20 / 0.11)
    assert measured.latency_ms["ttft"]["mean"] == pytest.approx((10 + 20 + 70 + 70) / 4)
    assert measured.latency_ms["tpot"]["mean"] == pytest.approx((12.5 + 10 + 10 + 10) / 4)
    assert measured.unfinished == 0
    # requests admitted, time-weighted (Little's law): (0.06 + 0.05 + 0.05 + 0.05) / 0.11
    assert measured.batch_mean == pytest.approx(0.21 / 0.11)


def test_host_overhead_adds_its_value_once_per_step() -> None:
    """The same burst on the measured-operator model, with and without the V0 host time:
    11 steps (as in the worked example above), so the last finish moves by 11 × HOST_STEP_S."""
    setup = setup_for_row(_row())
    plain = sim.run(burst_mapping(dataclasses.replace(setup, host_overhead_s=0.0)),
                    warn_window=False)
    with with_host_overhead(setup) as ready:
        assert ready.profile != "auto" and Path(ready.profile).is_file()
        profile = library.load_profile(Path(ready.profile))
        assert isinstance(profile, library.AdjustedProfileFile)
        assert (profile.overhead_s, profile.step_time_scale, profile.prefill_scale) == (
            HOST_STEP_S, 1.0, 1.0)
        slowed = sim.run(burst_mapping(ready), warn_window=False)
    assert not Path(ready.profile).exists()  # removed with its folder
    assert slowed.record.profile_source == "adjusted"
    shift_s = slowed.engine.finish_s.max() - plain.engine.finish_s.max()
    assert shift_s == pytest.approx(11 * HOST_STEP_S)


def test_a_setup_without_overhead_runs_on_auto() -> None:
    setup = dataclasses.replace(setup_for_row(_row(engine="vLLM")), load="burst")
    with with_host_overhead(setup) as ready:
        assert ready is setup and ready.profile == "auto"


def test_simulate_burst_checks_the_fit_first() -> None:
    setup = setup_for_row(_row(model="Llama-3.1-405B-Instruct"))
    with pytest.raises(Uncovered, match="does not fit"):
        simulate_burst(setup)
