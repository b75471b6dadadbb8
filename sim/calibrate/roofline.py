"""Fitting roofline efficiencies to measured linear-layer timings of one GPU type.

The roofline prices a decoder layer's non-attention operators at
``t(T) = t₀ + max(weight bytes / (BW·η_bw), 2·params·T / (peak·η_c))`` per layer, with weights
and FLOPs divided by the tensor-parallel degree. Given measurements of several models and TP
degrees on one GPU, a grid search over (η_bw, η_c) with t₀ set to the median residual finds
the factors that make the roofline fit them all; those factors then stand in for that GPU
(and, transferred with the GPU's own peaks, for its unmeasured relatives) wherever no
measured profile exists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.calibrate.measurements import Measurements
from sim.hardware.catalog import GpuSpec, ModelSpec

GRID = np.linspace(0.2, 1.0, 81)


@dataclass(frozen=True)
class LinearSet:
    """layer_linear timings of one model at one TP degree, with its roofline terms."""

    tokens: np.ndarray
    seconds: np.ndarray
    weight_bytes: float  # one layer's non-attention weights on one GPU
    flops_per_token: float  # 2 × those weights' parameters

    @classmethod
    def from_measurements(cls, m: Measurements, model: ModelSpec, bytes_per_param: float
                          ) -> LinearSet:
        rows = m.select("layer_linear")
        params = layer_params(model) / m.tensor_parallel
        return cls(m.tokens[rows], m.seconds[rows], params * bytes_per_param, 2.0 * params)


def layer_params(model: ModelSpec) -> float:
    """Parameters one decoder layer reads for one token (active experts only for MoE)."""
    assert model.active_params is not None  # ModelSpec derives it at construction when omitted
    embeddings = model.vocab * model.hidden * (1 if model.tied_embeddings else 2)
    return (model.active_params - embeddings - model.hidden) / model.layers


@dataclass(frozen=True)
class EfficiencyFit:
    bandwidth_efficiency: float
    compute_efficiency: float
    layer_overhead_s: float
    mape_pct: float
    worst_pct: float
    points: int


def roofline_core_s(sets: list[LinearSet], gpu: GpuSpec, eta_bw: float, eta_c: float
                    ) -> list[np.ndarray]:
    bw = gpu.memory_bandwidth_tb_s * 1e12 * eta_bw
    peak = gpu.bf16_tflops * 1e12 * eta_c
    return [np.maximum(s.weight_bytes / bw, s.flops_per_token * s.tokens / peak) for s in sets]


def fit_efficiency(sets: list[LinearSet], gpu: GpuSpec) -> EfficiencyFit:
    """The (η_bw, η_c, t₀) minimising mean relative error over every measured point."""
    measured = np.concatenate([s.seconds for s in sets])
    best = None
    for eta_bw in GRID:
        for eta_c in GRID:
            core = np.concatenate(roofline_core_s(sets, gpu, eta_bw, eta_c))
            t0 = max(float(np.median(measured - core)), 0.0)
            rel = np.abs(core + t0 - measured) / measured
            score = float(rel.mean())
            if best is None or score < best[0]:
                best = (score, eta_bw, eta_c, t0, float(rel.max()))
    assert best is not None  # GRID is not empty: the first point sets it
    score, eta_bw, eta_c, t0, worst = best
    return EfficiencyFit(float(eta_bw), float(eta_c), t0, 100 * score, 100 * worst,
                         int(measured.size))
