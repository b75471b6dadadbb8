"""Small scenario mappings for tests: a valid base, changed with dotted-key overrides."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
FIXTURES = TESTS / "fixtures"
SHARED_DATA = REPO.parent / "shared" / "data"  # the shared measured data, where it is present

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


# One kind of fleet change each, frequent enough to happen several times in 90 s.
DYNAMIC = {
    "failures": {"deployment": {"failures": {"mtbf_h": 0.02, "mttr_h": 0.005}}},
    "spot": {"deployment": {"spot": {"preemptions_per_h": 60.0, "notice_s": 1.0,
                                     "replace_s": 10.0}}},
    "outage": {"deployment": {"outage": {"replicas": 2, "at_s": 30.0, "duration_s": 20.0}}},
    "autoscaling": {"deployment": {"replicas": 2, "autoscaling": {
        "policy": "target-utilization", "target": 0.1, "min_replicas": 1, "max_replicas": 5,
        "provisioning_delay_s": {"dist": "uniform", "low": 5.0, "high": 15.0},
        "interval_s": 10.0}}},
    "queue-autoscaling": {"deployment": {"replicas": 1, "autoscaling": {
        "policy": "queue", "target": 1, "min_replicas": 1, "max_replicas": 4,
        "provisioning_delay_s": 8.0, "interval_s": 5.0}}},
}


def dynamic(kind: str, policy: str) -> dict[str, Any]:
    """A small busy fleet with one kind of change (a key of DYNAMIC) under `policy`."""
    data = scenario(
        duration_s=90.0,
        deployment={"replicas": 3, "scheduler": {"policy": policy, "max_num_seqs": 16,
                                                 "max_batched_tokens": 2048}},
        workload={"arrival": {"process": "gamma", "rate_per_s": 8.0, "cv": 2.0},
                  "prompt_tokens": {"dist": "lognormal", "mean": 900, "sigma": 1.0},
                  "output_tokens": {"dist": "uniform", "low": 1, "high": 400}})
    data["deployment"].update(DYNAMIC[kind]["deployment"])
    return data
