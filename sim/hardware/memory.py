"""KV-cache capacity of one replica.

capacity = (GPU memory × tp × gpu_memory_utilization − weight bytes − activation reserve)
           / kv_bytes_per_token,  kv_bytes_per_token = 2 × layers × kv_heads × head_dim × bytes,
rounded down to whole `KV_BLOCK_TOKENS`-token blocks (the paged-attention block engines use).
"""

from __future__ import annotations

from sim.errors import InputError
from sim.hardware.catalog import BYTES_PER_GIB, GpuSpec, ModelSpec

KV_BLOCK_TOKENS = 16  # vLLM's default page; each sequence also reserves one as slack
DTYPE_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0}  # weights and KV cache, per element


def weight_bytes(model: ModelSpec, dtype: str) -> float:
    assert model.params is not None  # ModelSpec derives it at construction when omitted
    return model.params * DTYPE_BYTES[dtype]


def kv_bytes_per_token(model: ModelSpec, dtype: str) -> float:
    return model.kv_bytes_per_token(DTYPE_BYTES[dtype])


def kv_capacity_tokens(model: ModelSpec, gpu: GpuSpec, tensor_parallel: int, dtype: str,
                       gpu_memory_utilization: float, activation_reserve_gib: float) -> int:
    """Tokens of KV cache one replica can hold; `InputError` when the weights do not fit."""
    usable = gpu.memory_bytes * tensor_parallel * gpu_memory_utilization
    reserve = activation_reserve_gib * BYTES_PER_GIB * tensor_parallel
    weights = weight_bytes(model, dtype)
    blocks = int((usable - weights - reserve) // (kv_bytes_per_token(model, dtype)
                                                  * KV_BLOCK_TOKENS))
    if blocks < 1:
        raise InputError(
            "deployment.tensor_parallel",
            tensor_parallel,
            f"enough GPUs for the weights: {model.name} needs "
            f"{weights / BYTES_PER_GIB:.1f} GiB in {dtype} but "
            f"{tensor_parallel} × {gpu.name} × {gpu_memory_utilization} leaves "
            f"{usable / BYTES_PER_GIB:.1f} GiB",
        )
    return blocks * KV_BLOCK_TOKENS
