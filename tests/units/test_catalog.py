"""Catalogue and memory: figures against the published totals, KV capacity by hand (the GPU
figures against the published specs file are in tests/validation/test_published_specs.py)."""

from __future__ import annotations

import pytest
from builders import scenario

import sim
from sim.hardware import catalog
from sim.runner.build import kv_capacity as kv_capacity_tokens

REQUIRED_GPUS = {"h100-sxm", "h200", "a100-80gb", "b200", "l40s", "mi300x"}
REQUIRED_MODELS = {"llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "qwen2.5-72b",
                   "mixtral-8x7b"}


def test_required_entries_exist_and_cite_sources() -> None:
    assert set(catalog.gpus()) >= REQUIRED_GPUS
    assert set(catalog.models()) >= REQUIRED_MODELS
    for entry in [*catalog.gpus().values(), *catalog.models().values()]:
        assert entry.sources, f"{entry.name} cites no source"


def test_parameter_counts_match_the_published_totals() -> None:
    m = catalog.models()
    assert m["llama-3.1-8b"].params == pytest.approx(8.03e9, rel=0.005)
    assert m["llama-3.1-70b"].params == pytest.approx(70_553_706_496, rel=1e-6)
    assert m["llama-3.1-405b"].params == pytest.approx(404_650_311_680, rel=0.005)
    assert m["mixtral-8x7b"].params == pytest.approx(46.7e9, rel=0.01)
    assert m["mixtral-8x7b"].active_params == pytest.approx(12.9e9, rel=0.01)


def test_kv_bytes_per_token_by_hand() -> None:
    # Llama-3.1-8B: 2 (K and V) × 32 layers × 8 KV heads × 128 dims × 2 bytes = 128 KiB.
    assert catalog.models()["llama-3.1-8b"].kv_bytes_per_token(2.0) == 131072
    # Llama-3.1-70B: 2 × 80 × 8 × 128 × 2 = 320 KiB.
    assert catalog.models()["llama-3.1-70b"].kv_bytes_per_token(2.0) == 327680


def test_kv_capacity_formula_by_hand() -> None:
    s = sim.load_scenario(scenario(deployment={"gpu_memory_utilization": 0.9}))
    # Less the 1 GiB activation reserve and h100-sxm's runtime reserve (calibration/gpus.yaml:
    # 0.513 GiB from NVIDIA's AIConfigurator sheet; one GPU holds no NCCL buffers).
    usable = 80 * 2**30 * 0.9 - s.model.params * 2 - 1 * 2**30 - 0.513 * 2**30
    expected = int(usable // (131072 * 16)) * 16
    assert kv_capacity_tokens(s) == expected
    assert 400_000 < expected < 500_000
    tp2 = sim.load_scenario(scenario(deployment={"tensor_parallel": 2}))
    assert kv_capacity_tokens(tp2) > 2 * kv_capacity_tokens(s)  # weights are paid once


