"""Vidur's published operator profiles → tokenfactory measurements (in memory).

Vidur (Agrawal et al., MLSys 2024; github.com/microsoft/vidur, MIT licence, data/profiling at
commit 7d47513, 2024-11-19) timed every non-attention operator of one decoder layer on one
GPU with weights sharded as under tensor parallelism (`mlp.csv`: milliseconds, by num_tokens
and num_tensor_parallel_workers) and NCCL all-reduce across a DGX node (`all_reduce.csv`:
milliseconds by message size and workers). This module reads those files from a folder the
caller names; the files themselves are not part of this project, only profiles fitted from them.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from sim.calibrate.measurements import Measurements

SOURCE = "Vidur operator profiles (github.com/microsoft/vidur, MIT, data/profiling @7d47513)"
# Vidur's operator names → ours; `layer_linear` is their sum.
OPS = {
    "attn_pre_proj": "qkv_proj",
    "attn_post_proj": "o_proj",
    "mlp_up_proj": "gate_up_proj",
    "mlp_down_proj": "down_proj",
    "mlp_act": "act",
    "attn_rope": "rope",
    "input_layernorm": "rms_norm",
    "post_attention_layernorm": "rms_norm",
    "add": "add",
}
GPUS = {"h100": ("h100-sxm", "NVIDIA H100 80GB (DGX)"),
        "a100": ("a100-80gb", "NVIDIA A100 80GB (DGX)")}


def read_mlp(path: Path, model: str, tensor_parallel: int, dtype: str = "fp16") -> Measurements:
    """One TP degree of a Vidur `mlp.csv` as `layer_linear` rows (median ms → s)."""
    gpu_dir = path.name.split("__")[1]
    gpu_key, gpu_name = GPUS[gpu_dir]
    tokens, seconds = [], []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if int(row["num_tensor_parallel_workers"]) != tensor_parallel:
                continue
            total_ms = sum(float(row[f"time_stats.{op}.median"]) for op in OPS)
            total_ms += float(row["time_stats.add.median"])  # two residual adds per layer
            tokens.append(int(row["num_tokens"]))
            seconds.append(total_ms / 1e3)
    order = np.argsort(tokens, kind="stable")
    n = len(tokens)
    nan = np.full(n, np.nan)
    header = {"gpu": gpu_name, "gpu_key": gpu_key, "driver": "", "torch": "", "cuda": "",
              "date": "2024-11-19", "model": model, "tensor_parallel": str(tensor_parallel),
              "dtype": dtype, "device": "cuda", "source": SOURCE + f" {path.name}"}
    return Measurements(header=header, op=np.full(n, "layer_linear"),
                        tokens=np.asarray(tokens, dtype=np.float64)[order], batch=nan,
                        context_tokens=nan, seconds=np.asarray(seconds)[order])


def read_all_reduce(path: Path, workers: int) -> tuple[np.ndarray, np.ndarray]:
    """(message bytes, median seconds) of one all-reduce across `workers` GPUs of a node."""
    sizes: dict[int, list[float]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if int(row["num_workers"]) == workers and row["devices_per_node"] == str(workers):
                sizes.setdefault(int(row["size"]), []).append(
                    float(row["time_stats.all_reduce.median"]) / 1e3)
    size_bytes = np.array(sorted(sizes), dtype=np.float64)
    seconds = np.array([float(np.median(sizes[int(s)])) for s in size_bytes])
    return size_bytes, seconds
