"""KV-cache capacity of one replica.

capacity = (GPU memory × tp × gpu_memory_utilization − weight bytes − activation reserve)
           / kv_bytes_per_token,  kv_bytes_per_token = 2 × layers × kv_heads × head_dim × bytes,
rounded down to whole 16-token blocks (the paged-attention block size engines use).
"""

from __future__ import annotations

from sim.catalog import BYTES_PER_GIB
from sim.errors import InputError
from sim.scenario import DTYPE_BYTES, Scenario

KV_BLOCK_TOKENS = 16


def weight_bytes(scenario: Scenario) -> float:
    return scenario.model.params * DTYPE_BYTES[scenario.deployment.dtype]


def kv_bytes_per_token(scenario: Scenario) -> float:
    return scenario.model.kv_bytes_per_token(DTYPE_BYTES[scenario.deployment.dtype])


def kv_capacity_tokens(scenario: Scenario) -> int:
    """Tokens of KV cache one replica can hold; `InputError` when the weights do not fit."""
    d = scenario.deployment
    usable = scenario.gpu.memory_bytes * d.tensor_parallel * d.gpu_memory_utilization
    reserve = d.activation_reserve_gib * BYTES_PER_GIB * d.tensor_parallel
    free = usable - weight_bytes(scenario) - reserve
    blocks = int(free // (kv_bytes_per_token(scenario) * KV_BLOCK_TOKENS))
    if blocks < 1:
        raise InputError(
            "deployment.tensor_parallel",
            d.tensor_parallel,
            f"enough GPUs for the weights: {scenario.model.name} needs "
            f"{weight_bytes(scenario) / BYTES_PER_GIB:.1f} GiB in {d.dtype} but "
            f"{d.tensor_parallel} × {scenario.gpu.name} × {d.gpu_memory_utilization} leaves "
            f"{usable / BYTES_PER_GIB:.1f} GiB",
        )
    return blocks * KV_BLOCK_TOKENS
