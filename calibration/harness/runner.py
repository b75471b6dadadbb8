"""Measure every grid point for one (model, tp) on one device: the harness's engine.

Kept apart from the CLI so tests can run it in-process. It never prints: progress is reported
through a callback, skipped points are returned.
"""

from __future__ import annotations

import datetime
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from calibration.harness import attention, grid
from calibration.harness.csvio import Row
from calibration.harness.layers import LayerOps, random_weights
from calibration.harness.shapes import LayerShape
from calibration.harness.timing import Timer, measure

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
SEED = 0  # weights and inputs are random but reproducible; timing does not depend on them


@dataclass
class Budget:
    """Wall-clock budget shared by all remaining points: each gets an equal share of what is left,
    so cheap points hand their unused share on and only a late run trims repeats."""

    total_s: float | None
    points_left: int
    started_s: float = field(default_factory=time.perf_counter)

    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started_s

    def share_s(self) -> float | None:
        if self.total_s is None:
            return None
        return max(0.0, self.total_s - self.elapsed_s()) / max(1, self.points_left)

    def spent(self) -> None:
        self.points_left -= 1


@dataclass(frozen=True)
class Settings:
    device: torch.device
    dtype: str  # a DTYPES key
    warmup: int
    repeats: int


def environment(device: torch.device) -> dict[str, str]:
    """The provenance lines that describe the machine."""
    on_gpu = device.type == "cuda"
    return {
        "gpu": torch.cuda.get_device_name(device) if on_gpu else "cpu",
        "driver": driver_version() if on_gpu else "",
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def driver_version() -> str:
    """NVIDIA driver version from NVML if installed, else nvidia-smi, else '' (torch lacks it)."""
    try:
        import pynvml  # optional

        pynvml.nvmlInit()
        version = pynvml.nvmlSystemGetDriverVersion()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:  # noqa: BLE001 - any failure just means "unknown"
        pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ""
    try:
        done = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else ""


def measure_shape(shape: LayerShape, points: list[grid.Point], settings: Settings, timer: Timer,
                  budget: Budget, on_point: Callable[[grid.Point], None] = lambda p: None,
                  ) -> tuple[list[Row], list[tuple[grid.Point, str]]]:
    """Time every point for one sharded shape. Returns rows in grid order, and the points that
    could not run (out of device memory) with the reason."""
    device, dtype = settings.device, DTYPES[settings.dtype]
    generator = torch.Generator(device=device).manual_seed(SEED)
    rows: dict[grid.Point, Row] = {}
    skipped: list[tuple[grid.Point, str]] = []
    # Linear points run grouped by token count, so one set of inputs serves every operator.
    order = sorted(points, key=lambda p: (p.op not in grid.LINEAR_OPS, p.tokens or 0))
    with torch.inference_mode():
        weights = random_weights(shape, device, dtype, generator)
        layer: LayerOps | None = None
        for point in order:
            try:
                if point.op in grid.LINEAR_OPS:
                    assert point.tokens is not None
                    if layer is None or layer.x.shape[0] != point.tokens:
                        layer = None  # free the previous token count's inputs first
                        layer = LayerOps(shape, weights, point.tokens, generator)
                    fn = layer.ops()[point.op]
                elif point.op == "attn_prefill":
                    assert point.tokens is not None and point.context_per_seq is not None
                    fn = attention.prefill_op(shape, point.tokens, point.context_per_seq, device,
                                              dtype, generator)
                else:
                    assert point.batch is not None and point.context_per_seq is not None
                    fn = attention.decode_op(shape, point.batch, point.context_per_seq, device,
                                             dtype, generator)
                timing = measure(fn, timer, settings.warmup, settings.repeats, budget.share_s())
            except torch.cuda.OutOfMemoryError as exc:  # torch.OutOfMemoryError in newer torch
                skipped.append((point, f"out of memory: {str(exc).splitlines()[0]}"))
                fn = layer = None
                torch.cuda.empty_cache()
            else:
                rows[point] = Row(point.op, point.tokens, point.batch, point.context_tokens,
                                  timing.median_s, timing.p10_s, timing.p90_s, timing.repeats)
            finally:
                fn = None
                budget.spent()
                on_point(point)
    del weights, layer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return [rows[p] for p in points if p in rows], skipped
