"""The GPU catalogue against the published specs file: compute, memory bandwidth and memory
of each GPU both name (the catalogue's own checks are in tests/units/test_catalog.py)."""

from __future__ import annotations

import pytest
import yaml
from builders import PUBLISHED

from sim.hardware import catalog


@pytest.mark.skipif(not PUBLISHED.is_dir(), reason="published data folder (../shared) absent")
def test_gpu_figures_agree_with_the_published_specs() -> None:
    published = yaml.safe_load((PUBLISHED / "gpus.yaml").read_text())["gpus"]
    by_name = {g["name"]: g for g in published}
    pairs = {"h100-sxm": "H100-SXM5-80GB", "h200": "H200-SXM-141GB", "mi300x": "MI300X",
             "a100-80gb": "A100-80GB-SXM", "l40s": "L40S"}
    for ours, theirs in pairs.items():
        g, p = catalog.gpus()[ours], by_name[theirs]
        assert g.bf16_tflops == pytest.approx(p["bf16_dense_tflops"])
        assert g.memory_bandwidth_tb_s == pytest.approx(p["hbm_bw_tb_s"])
        assert g.memory_gib == pytest.approx(p["hbm_gb"])
