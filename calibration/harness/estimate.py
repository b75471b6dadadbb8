"""How long a measurement run will take on a catalogue GPU, before renting one.

A roofline guess per point (FLOPs at a fraction of peak, bytes at a fraction of bandwidth, a
floor per kernel), times the calls the harness makes (first call + warm-up + repeats), plus
what every timed repeat adds on a GPU (the L2 flush and the launch-hiding spin) and a fixed
start-up cost. It errs long: it is there to size `--repeats` and `--time-budget-s`.
No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass

from calibration.harness import grid
from calibration.harness.shapes import LayerShape
from sim.hardware.catalog import GpuSpec

GEMM_EFFICIENCY = 0.6
ATTENTION_EFFICIENCY = 0.4  # torch SDPA's FlashAttention-2 on Hopper
BANDWIDTH_EFFICIENCY = 0.7
KERNEL_FLOOR_S = 4e-6
LAUNCH_CPU_S = 8e-6  # eager PyTorch, per kernel
PYTHON_PER_POINT_S = 3e-3  # building inputs, events, bookkeeping
FLUSH_BYTES = 256 * 2**20
STARTUP_S = 20.0  # interpreter, torch import, CUDA context


@dataclass(frozen=True)
class Estimate:
    points: int
    gpu_s: float
    total_s: float


def _gemm_s(gpu: GpuSpec, tokens: int, k: int, n: int, elem: int) -> float:
    flops = 2.0 * tokens * k * n
    bytes_moved = (k * n + tokens * k + tokens * n) * elem
    return max(flops / (gpu.bf16_tflops * 1e12 * GEMM_EFFICIENCY),
               bytes_moved / (gpu.memory_bandwidth_tb_s * 1e12 * BANDWIDTH_EFFICIENCY),
               KERNEL_FLOOR_S)


def _stream_s(gpu: GpuSpec, bytes_moved: float, kernels: int = 1) -> float:
    return max(bytes_moved / (gpu.memory_bandwidth_tb_s * 1e12 * BANDWIDTH_EFFICIENCY),
               kernels * KERNEL_FLOOR_S)


def point_s(gpu: GpuSpec, s: LayerShape, p: grid.Point, elem: int = 2) -> tuple[float, int]:
    """(GPU seconds of one call, kernels launched) for point `p`."""
    t = p.tokens or 0
    h = s.hidden
    ops = {
        "qkv_proj": (_gemm_s(gpu, t, h, s.qkv_out, elem), 1),
        "o_proj": (_gemm_s(gpu, t, s.attn_out, h, elem), 1),
        "gate_up_proj": (_gemm_s(gpu, t, h, 2 * s.ffn_per_gpu, elem), 1),
        "down_proj": (_gemm_s(gpu, t, s.ffn_per_gpu, h, elem), 1),
        "rms_norm": (_stream_s(gpu, 2 * t * h * elem), 1),
        "act": (_stream_s(gpu, 3 * t * s.ffn_per_gpu * elem, 2), 2),
        "rope": (_stream_s(gpu, 8 * t * (s.q_heads + s.kv_heads) * s.head_dim * elem, 10), 10),
        "lm_head": (_gemm_s(gpu, t, h, s.vocab_per_gpu, elem), 1),
    }
    if p.op in ops:
        return ops[p.op]
    if p.op == "layer_linear":
        parts = [ops[name] for name in ("qkv_proj", "o_proj", "gate_up_proj", "down_proj",
                                         "rms_norm", "rms_norm", "act", "rope")]
        adds = _stream_s(gpu, 3 * t * h * elem, 2)
        return sum(x for x, _ in parts) + adds, sum(n for _, n in parts) + 2
    c = p.context_per_seq or 0
    if p.op == "attn_prefill":
        pairs = t * (c + (t + 1) / 2)
        flops = 4.0 * s.q_heads * s.head_dim * pairs
        return max(flops / (gpu.bf16_tflops * 1e12 * ATTENTION_EFFICIENCY), 2e-5), 1
    assert p.batch is not None
    kv_bytes = p.batch * c * s.kv_bytes_per_token(elem)
    return _stream_s(gpu, kv_bytes) + 5e-6, 1


def estimate(gpu: GpuSpec, jobs: list[tuple[LayerShape, list[grid.Point]]], warmup: int,
             repeats: int) -> Estimate:
    """Seconds for the whole run of `jobs` on `gpu` at these settings."""
    gpu_total = wall = 0.0
    n = 0
    flush_s = FLUSH_BYTES / (gpu.memory_bandwidth_tb_s * 1e12 * BANDWIDTH_EFFICIENCY)
    for shape, points in jobs:
        for p in points:
            call_s, kernels = point_s(gpu, shape, p)
            enqueue_s = kernels * LAUNCH_CPU_S
            spin_s = 2 * enqueue_s + 20e-6
            untimed = (warmup + 2) * max(call_s, enqueue_s)
            timed = repeats * (call_s + flush_s + spin_s)
            gpu_total += (warmup + 2 + repeats) * call_s
            wall += untimed + timed + PYTHON_PER_POINT_S
            n += 1
    return Estimate(points=n, gpu_s=gpu_total, total_s=wall + STARTUP_S)
