"""Model FLOP and bandwidth utilisation (MFU, MBU): how hard the paid GPUs worked.

Busy time says a step was running; MFU and MBU say how much of the GPUs' peak the work in
those steps needed, over every paid GPU-second of the window (idle ones included), so they
fall with load where the busy fraction does not. Computed after the run from the window's
counts and the model's shape, never in the engine:

    FLOPs = 2 × active params × (prefill + generated tokens)
            + 4 × layers × heads × head_dim × (prefill attention pairs + KV tokens read)
    bytes = weight bytes × steps + KV bytes per token × KV tokens read
    MFU   = FLOPs / (GPU-seconds × peak FLOP/s)     MBU = bytes / (GPU-seconds × peak B/s)

What is counted: the linear layers at two FLOPs per parameter per token, causal attention
(QKᵀ and AV, two FLOPs each per query-key pair and head dimension), the whole weights read
once per step and each decoding sequence's KV cache read once per step, with the KV tokens
read estimated as the mean KV held while busy × the window's steps. What is not: the
embedding lookup's and lm_head's difference from the other parameters (they count as
parameters), activations, all-reduce traffic, an MoE step reading only the experts its
tokens touch (all weights count: MBU is an upper bound there), and recomputation counts
as work (it is work the GPUs did). Peaks are the catalogue's dense tensor-core figures in
the deployment's dtype (fp8 where the GPU has one and the weights are fp8, else bf16).
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.hardware.catalog import GpuSpec, ModelSpec
from sim.hardware.memory import kv_bytes_per_token, weight_bytes


@dataclass(frozen=True)
class Demands:
    """What the model asks of the hardware per unit of work, and what one GPU offers."""

    flops_per_token: float  # 2 × active parameters
    attn_flops_per_pair: float  # 4 × layers × heads × head_dim
    weight_bytes: float  # one replica's weights, read once per step
    kv_bytes_per_token: float
    peak_flops_per_gpu: float
    peak_bytes_per_s_per_gpu: float


def demands(model: ModelSpec, gpu: GpuSpec, dtype: str) -> Demands:
    assert model.active_params is not None and model.head_dim is not None  # derived
    tflops = gpu.peak_tflops(dtype)
    return Demands(
        flops_per_token=2.0 * model.active_params,
        attn_flops_per_pair=4.0 * model.layers * model.heads * model.head_dim,
        weight_bytes=weight_bytes(model, dtype),
        kv_bytes_per_token=kv_bytes_per_token(model, dtype),
        peak_flops_per_gpu=tflops * 1e12,
        peak_bytes_per_s_per_gpu=gpu.memory_bandwidth_tb_s * 1e12,
    )


@dataclass(frozen=True)
class WindowWork:
    """What the replicas did inside the metrics window, summed over the fleet."""

    prefill_tokens: float
    generated_tokens: float
    steps: float
    prefill_attn_pairs: float
    kv_tokens_read: float  # Σ over steps of the decode context read


@dataclass(frozen=True)
class Intensity:
    mfu: float
    mbu: float


def intensity(need: Demands, work: WindowWork, gpu_s: float) -> Intensity | None:
    """MFU and MBU over `gpu_s` paid GPU-seconds; None when no GPU was paid for."""
    if gpu_s <= 0:
        return None
    flops = (need.flops_per_token * (work.prefill_tokens + work.generated_tokens)
             + need.attn_flops_per_pair * (work.prefill_attn_pairs + work.kv_tokens_read))
    moved = need.weight_bytes * work.steps + need.kv_bytes_per_token * work.kv_tokens_read
    return Intensity(flops / (gpu_s * need.peak_flops_per_gpu),
                     moved / (gpu_s * need.peak_bytes_per_s_per_gpu))
