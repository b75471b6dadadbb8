"""Small scenario mappings for tests: a valid base, changed with dotted-key overrides."""

from __future__ import annotations

import copy
from typing import Any

BASE: dict[str, Any] = {
    "name": "test",
    "seed": 11,
    "duration_s": 60.0,
    "warmup_s": 5.0,
    "model": "llama-3.1-8b",
    "gpu": "h100-sxm",
    "profile": "auto",
    "deployment": {
        "replicas": 2,
        "tensor_parallel": 1,
        "scheduler": {"policy": "chunked-prefill", "max_num_seqs": 64, "max_batched_tokens": 4096},
        "router": "least-loaded",
    },
    "workload": {
        "arrival": {"process": "poisson", "rate_per_s": 10.0},
        "prompt_tokens": {"dist": "lognormal", "mean": 800, "sigma": 0.8},
        "output_tokens": {"dist": "lognormal", "mean": 150, "sigma": 0.7},
    },
    "slo": {"ttft_s": 2.0, "tpot_s": 0.05},
    "cost": {"gpu_hour_usd": 2.5},
}


def scenario(**overrides: Any) -> dict[str, Any]:
    """BASE with overrides; keys use '__' for nesting: workload__arrival={...}."""
    data = copy.deepcopy(BASE)
    for key, value in overrides.items():
        *parents, leaf = key.split("__")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return data
