"""KV-cache capacity of one replica.

capacity = (GPU memory × tp × gpu_memory_utilization − weight bytes − activation reserve
            − max_num_seqs × per-sequence bytes) / kv_bytes_per_token,
rounded down to whole `KV_BLOCK_TOKENS`-token blocks (the paged-attention block engines use).
kv_bytes_per_token covers the layers that keep every token (GQA 2 × layers × kv_heads ×
head_dim × bytes, MLA (kv_lora_rank + qk_rope_head_dim) × layers × bytes). What a sequence
holds whatever its length — sliding-window layers' `sliding_window` tokens, linear-attention
layers' state — is set aside for `max_num_seqs` sequences, the most that run at once: the
engine counts tokens, and this keeps one token of capacity one token of a full-attention
cache. A model without full-attention layers (every layer windowed) counts its windowed
layers per token instead, which over-states what a long sequence needs but never fits more
than the memory holds.
"""

from __future__ import annotations

import math

from sim.errors import InputError
from sim.hardware.catalog import BYTES_PER_GIB, GpuSpec, ModelSpec

KV_BLOCK_TOKENS = 16  # vLLM's default page; each sequence also reserves one as slack
DTYPE_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0}  # weights and KV cache, per element


def weight_bytes(model: ModelSpec, dtype: str) -> float:
    assert model.params is not None  # ModelSpec derives it at construction when omitted
    return model.params * DTYPE_BYTES[dtype]


def kv_bytes_per_token(model: ModelSpec, dtype: str) -> float:
    """Bytes per token of the cache's growing part (see the module's docstring)."""
    per_token = model.kv_bytes_per_token(DTYPE_BYTES[dtype])
    return per_token or model.window_kv_bytes_per_token(DTYPE_BYTES[dtype])


def sequence_bytes(model: ModelSpec, dtype: str) -> float:
    """Bytes one sequence holds whatever its length: windowed layers filled to their window
    (when full-attention layers carry the per-token count) and linear-attention state."""
    window = (model.window_kv_bytes_per_token(DTYPE_BYTES[dtype]) * (model.sliding_window or 0)
              if model.kv_bytes_per_token(DTYPE_BYTES[dtype]) else 0.0)
    return window + model.state_bytes_per_sequence


def kv_capacity_tokens(model: ModelSpec, gpu: GpuSpec, tensor_parallel: int, dtype: str,
                       gpu_memory_utilization: float, activation_reserve_gib: float,
                       max_num_seqs: int) -> int:
    """Tokens of KV cache one replica can hold; `InputError` when the weights do not fit."""
    usable = gpu.memory_bytes * tensor_parallel * gpu_memory_utilization
    reserve = activation_reserve_gib * BYTES_PER_GIB * tensor_parallel
    fixed = weight_bytes(model, dtype) + max_num_seqs * sequence_bytes(model, dtype)
    block = kv_bytes_per_token(model, dtype) * KV_BLOCK_TOKENS
    blocks = int((usable - fixed - reserve) // block)
    if blocks < 1:
        raise _no_room(model, gpu, tensor_parallel, dtype, gpu_memory_utilization,
                       activation_reserve_gib, max_num_seqs)
    return blocks * KV_BLOCK_TOKENS


def _no_room(model: ModelSpec, gpu: GpuSpec, tensor_parallel: int, dtype: str,
             gpu_memory_utilization: float, activation_reserve_gib: float,
             max_num_seqs: int) -> InputError:
    """Why no KV block fits, blaming the key that can fix it: the activation reserve when it
    alone takes what a GPU leaves (more GPUs cannot help: each keeps its own reserve), else
    tensor_parallel (with the reserve below a GPU's memory, enough GPUs always fit). Every
    figure in the message is one the arithmetic used."""
    tp, util = tensor_parallel, gpu_memory_utilization
    per_gpu = gpu.memory_bytes * util
    reserve_per_gpu = activation_reserve_gib * BYTES_PER_GIB
    weights = weight_bytes(model, dtype)
    # One block, and what every sequence that may run at once holds whatever its length.
    sequences = max_num_seqs * sequence_bytes(model, dtype)
    block = kv_bytes_per_token(model, dtype) * KV_BLOCK_TOKENS + sequences
    if reserve_per_gpu >= per_gpu:
        return InputError(
            "deployment.activation_reserve_gib", activation_reserve_gib,
            f"a reserve below what each GPU leaves: {gpu.name} × {util} = "
            f"{per_gpu / BYTES_PER_GIB:.1f} GiB, which must also hold its share of the "
            f"weights ({weights / tp / BYTES_PER_GIB:.1f} GiB of {model.name} in {dtype} "
            f"at tensor_parallel {tp})")
    usable = per_gpu * tp
    left = usable - reserve_per_gpu * tp
    gpus = math.ceil((weights + block) / (per_gpu - reserve_per_gpu))
    after = (f", {left / BYTES_PER_GIB:.1f} GiB after the activation reserve "
             f"({tp} × {activation_reserve_gib:g} GiB)" if reserve_per_gpu else "")
    state = (f" and the fixed state of {max_num_seqs} sequences (deployment.scheduler."
             "max_num_seqs)" if sequences else "")
    short = (f", too little for one KV-cache block{state} ({block / 2**20:.1f} MiB) beside "
             "them" if left >= weights else "")
    # The reserve is the other way out when the weights would fit without it.
    smaller = (" (or a smaller deployment.activation_reserve_gib)"
               if reserve_per_gpu and weights + block <= usable else "")
    return InputError(
        "deployment.tensor_parallel", tp,
        f"enough GPUs for the weights: {model.name} needs {weights / BYTES_PER_GIB:.1f} GiB "
        f"in {dtype} but {tp} × {gpu.name} × {util} leaves {usable / BYTES_PER_GIB:.1f} GiB"
        f"{after}{short}; at least {gpus} GPUs would hold them{smaller}")
