"""Timing one operator: warm-up, then a median and p10/p90 over repeats.

On a GPU each repeat is bracketed by CUDA events, so what is timed is the kernels, not Python.
Two things keep that honest for an inference engine's point of view:

* L2 flush. A layer's weights are read once per step; timing the same GEMM back to back would
  serve them from L2 (50 MB on an H100, as big as a small layer) and look too fast. A buffer
  larger than L2 is zeroed before every repeat, as Triton's `do_bench` does.
* Launch gaps. Engines replay decode steps as CUDA graphs, so kernels run back to back. Eager
  PyTorch launches a kernel in ~5-10 µs of CPU time, longer than a small kernel runs, so events
  would time the CPU. A short GPU spin (`torch.cuda._sleep`) before each repeat lets the CPU
  queue the whole call first; the events then time pure GPU work. Without `_sleep` (a private
  API) the repeats still run, and the small-op times include launch gaps.

On a CPU torch runs synchronously: `time.perf_counter` around the call is the measurement.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

MIN_REPEATS = 3  # fewer cannot give a p10 and p90 that mean anything
FLUSH_BYTES = 256 * 2**20
MAX_SPIN_S = 0.005


@dataclass(frozen=True)
class Timing:
    median_s: float
    p10_s: float
    p90_s: float
    repeats: int


def summarise(samples_s: list[float]) -> Timing:
    """Median and 10th/90th percentiles (linear interpolation, so p10 ≤ median ≤ p90)."""
    p10, median, p90 = np.percentile(np.asarray(samples_s, dtype=float), [10, 50, 90])
    return Timing(float(median), float(p10), float(p90), len(samples_s))


class CpuTimer:
    """Wall-clock timing of synchronous CPU ops."""

    def sync(self) -> None:
        """CPU ops have finished when they return."""

    def samples(self, fn: Callable[[], object], repeats: int) -> list[float]:
        out = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
        return out

    def per_repeat_overhead_s(self, enqueue_s: float) -> float:
        return 0.0


class CudaTimer:
    """CUDA-event timing with an L2 flush and a spin that hides launch gaps (see module doc)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.flush = torch.empty(FLUSH_BYTES, dtype=torch.uint8, device=device)
        props = torch.cuda.get_device_properties(device)
        clock_khz = getattr(props, "clock_rate", 0)  # cudaDeviceProp.clockRate; newer torch only
        if not 100_000 <= clock_khz <= 5_000_000:  # absent or not in kHz: assume 2 GHz (errs long)
            clock_khz = 2_000_000
        self.cycles_per_s = clock_khz * 1e3
        self.can_spin = hasattr(torch.cuda, "_sleep")
        self.spin_s = 0.0

    def sync(self) -> None:
        torch.cuda.synchronize(self.device)

    def set_enqueue_time(self, enqueue_s: float) -> None:
        """Spin long enough for the CPU to queue one repeat (twice its measured launch time)."""
        self.spin_s = min(MAX_SPIN_S, 2.0 * enqueue_s + 20e-6) if self.can_spin else 0.0

    def per_repeat_overhead_s(self, enqueue_s: float) -> float:
        return self.spin_s + FLUSH_BYTES / 2e12 + enqueue_s

    def samples(self, fn: Callable[[], object], repeats: int) -> list[float]:
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
        for start, end in zip(starts, ends, strict=True):
            self.flush.zero_()
            if self.spin_s:
                torch.cuda._sleep(int(self.spin_s * self.cycles_per_s))
            start.record()
            fn()
            end.record()
        self.sync()
        return [start.elapsed_time(end) / 1e3 for start, end in zip(starts, ends, strict=True)]


Timer = CpuTimer | CudaTimer


def make_timer(device: torch.device) -> Timer:
    return CudaTimer(device) if device.type == "cuda" else CpuTimer()


def measure(fn: Callable[[], object], timer: Timer, warmup: int, repeats: int,
            budget_s: float | None = None) -> Timing:
    """Warm `fn` up, then time it `repeats` times — fewer (down to MIN_REPEATS) if `budget_s`,
    this point's share of the time left, would not cover them."""
    fn()  # first call: allocator, cuBLAS heuristics, kernel selection
    timer.sync()
    start = time.perf_counter()
    for _ in range(warmup):
        fn()
    timer.sync()
    per_call_s = (time.perf_counter() - start) / warmup if warmup else 0.0
    start = time.perf_counter()
    fn()  # CPU-side launch time alone: the GPU is idle, so this returns before the kernels end
    enqueue_s = time.perf_counter() - start
    timer.sync()
    if not warmup:
        per_call_s = enqueue_s
    if isinstance(timer, CudaTimer):
        timer.set_enqueue_time(enqueue_s)
    if budget_s is not None:
        cost_s = per_call_s + timer.per_repeat_overhead_s(enqueue_s)
        affordable = math.floor(budget_s / cost_s) if cost_s > 0 else repeats
        repeats = max(MIN_REPEATS, min(repeats, affordable))
    return summarise(timer.samples(fn, repeats))
