"""`kv_cache_dtype: auto`: a checkpoint's cache is the format it declares, else its 16-bit
activation dtype, as vLLM, SGLang and TensorRT-LLM choose; a catalogue model's follows its
weights (fp8 for fp4). Checked on the resolver's table, then on scenarios whose model is a
fixture config.json with and without a ModelOpt declaration beside it: the KV capacity of a
replica and of each disaggregated or heterogeneous pool moves with the cache format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from builders import REPO, tiny

import sim
from sim.hardware.layout import resolve_kv_cache_dtype
from sim.runner.build import kv_capacity
from sim.scenario.disaggregation import pool_kv_capacity

FIXTURES = REPO / "tests" / "fixtures"
DENSE, MLA = "tiny--Dense-GQA_config.json", "tiny--MLA-MoE_config.json"
NVFP4_FP8_KV = {"quantization": {"quant_algo": "NVFP4", "kv_cache_quant_algo": "FP8"}}


@pytest.mark.parametrize(("given", "dtype", "checkpoint", "expected"), [
    ("auto", "fp8", "bf16", "bf16"),  # FP8 weights, nothing declared: Qwen3-FP8, DeepSeek-R1
    ("auto", "fp4", "bf16", "bf16"),  # gpt-oss's MXFP4 declares no cache
    ("auto", "fp4", "fp8", "fp8"),  # NVIDIA's NVFP4 checkpoints declare FP8
    ("auto", "bf16", "fp8", "fp8"),  # a declaration wins whatever the weights
    ("auto", "fp8", "fp16", "fp16"),  # an fp16 model's activations
    ("auto", "bf16", None, "bf16"),  # catalogue and inline models: the weights' format
    ("auto", "fp16", None, "fp16"),
    ("auto", "fp8", None, "fp8"),
    ("auto", "fp4", None, "fp8"),  # no fp4 cache: fp8
    ("bf16", "fp4", "fp8", "bf16"),  # an explicit format is the scenario's own
    ("fp8", "bf16", "bf16", "fp8"),
])
def test_auto_resolves_to_the_checkpoints_format_else_the_weights(
        given: str, dtype: str, checkpoint: str | None, expected: str) -> None:
    assert resolve_kv_cache_dtype(given, dtype, checkpoint) == expected


def _checkpoint(tmp_path: Path, file_name: str, quant: dict[str, Any] | None) -> str:
    """The fixture config copied into tmp_path, with ModelOpt's quantisation settings
    beside it when `quant` is given; the path a scenario's `model.hf_config` names."""
    folder = tmp_path / ("declared" if quant else "plain")
    folder.mkdir(exist_ok=True)
    shutil.copy(FIXTURES / file_name, folder / file_name)
    if quant is not None:
        beside = file_name.removesuffix("_config.json") + "_hf_quant_config.json"
        (folder / beside).write_text(json.dumps(quant), encoding="utf-8")
    return str(folder / file_name)


def _capacity(config: str, **deployment: Any) -> tuple[str, int]:
    overrides = {f"deployment__{key}": value for key, value in deployment.items()}
    s = sim.load_scenario(tiny(model={"hf_config": config}, **overrides))
    return s.layout.kv_cache_dtype, kv_capacity(s)


def test_a_declared_fp8_cache_doubles_a_replicas_kv_capacity(tmp_path: Path) -> None:
    # Dense fixture: 2 layers × 2 KV heads × 16 × (K, V) = 128 elements a token, 256 bytes
    # in bf16 and 128 in fp8; its weights are a few hundred kB, so the free memory is the
    # same in both and the capacity doubles (to the 16-token block).
    declared = _checkpoint(tmp_path, DENSE, NVFP4_FP8_KV)
    plain = _checkpoint(tmp_path, DENSE, None)
    fp8 = _capacity(declared, dtype="fp4")
    bf16 = _capacity(plain, dtype="fp4")
    assert fp8 == ("fp8", _capacity(plain, dtype="fp4", kv_cache_dtype="fp8")[1])
    assert bf16 == ("bf16", _capacity(declared, dtype="fp4", kv_cache_dtype="bf16")[1])
    assert abs(fp8[1] / bf16[1] - 2) < 1e-4


def test_fp8_weights_that_declare_no_cache_keep_a_bf16_one(tmp_path: Path) -> None:
    # The MLA fixture is an FP8 checkpoint (quant_method fp8) with no KV declaration, like
    # DeepSeek-R1: under auto its cache is bf16, where the same shape inline would be fp8.
    plain = _checkpoint(tmp_path, MLA, None)
    assert _capacity(plain, dtype="fp8") == _capacity(plain, dtype="fp8", kv_cache_dtype="bf16")
    inline = sim.load_scenario(tiny(model=sim.load_scenario(
        tiny(model={"hf_config": plain})).model.model_dump(exclude={"kv_cache_dtype"}),
        deployment__dtype="fp8"))
    assert inline.layout.kv_cache_dtype == "fp8"


def test_pools_resolve_auto_for_the_checkpoint_too(tmp_path: Path) -> None:
    declared = _checkpoint(tmp_path, DENSE, NVFP4_FP8_KV)
    link = {"bandwidth_gb_s": 50}
    s = sim.load_scenario(tiny(model={"hf_config": declared}, deployment__dtype="fp4",
                               deployment__disaggregation={
                                   "prefill": {}, "decode": {"kv_cache_dtype": "bf16"},
                                   "kv_transfer": link}))
    assert s.pools is not None
    prefill, decode = s.pools
    assert (prefill.layout.kv_cache_dtype, decode.layout.kv_cache_dtype) == ("fp8", "bf16")
    assert abs(pool_kv_capacity(s.model, prefill) / pool_kv_capacity(s.model, decode) - 2) \
        < 1e-4
    fleet = sim.load_scenario(tiny(model={"hf_config": declared}, deployment__dtype="fp4",
                                   deployment__pools=[{"name": "a", "replicas": 1},
                                                      {"name": "b", "dtype": "bf16"}]))
    assert fleet.fleet_pools is not None
    assert [p.layout.kv_cache_dtype for p in fleet.fleet_pools] == ["fp8", "fp8"]
