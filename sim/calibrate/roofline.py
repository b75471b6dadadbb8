"""Fitting roofline efficiencies to measured timings of one GPU type.

The roofline prices a decoder layer's non-attention operators at
``t(T) = t₀ + max(weight bytes / (BW·η_bw), 2·params·T / (peak·η_c))`` per layer, with weights
and FLOPs divided by the tensor-parallel degree, and a tensor-parallel all-reduce of S bytes at
``latency + 2(tp − 1)/tp · S / (one-way link bandwidth · η_ic)``. The factors found for a
measured GPU stand in for it, and (with the GPU's own peaks) for its unmeasured relatives,
wherever no measured operator tables exist. Two sources:

- Vidur's whole-layer timings (`LinearSet`, `fit_efficiency`): mean relative error, the per-layer
  fixed cost set to the median residual. The Vidur profiles' roofline terms use these.
- The derived operator tables (`sim.steptime.operators`): a decoder layer's GEMMs of real
  shapes (`layer_curves`) read from the bf16 GEMM grid, and the all-reduce curves
  (`allreduce_points`); `fit_layers` and `fit_allreduce` minimise the *median* relative error,
  so a few odd kernel choices at one shape do not drag the factors every GPU borrows.
  The tables time kernels, not engine steps: the per-step overhead is not in them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.calibrate.measurements import Measurements
from sim.hardware.catalog import GpuSpec, ModelSpec
from sim.hardware.layout import Layout
from sim.steptime import layers, lookup
from sim.steptime.operators import OperatorTables

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


# --- from the derived operator tables ------------------------------------------------------

PCIE_GEN4_GB_S = 64.0  # as the roofline step, for GPUs the catalogue gives no interconnect for
WEIGHT_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "fp4": 0.5}
# Efficiencies are searched at 0.05 steps, then at 0.01 around the best; fixed costs at 2 µs
# steps up to 100 µs, then at 0.1 µs around the best. Coarse-to-fine keeps a rebuild to
# seconds, and fixed steps keep it deterministic. GEMMs below 30% of both peaks would be a
# broken table; links can be far below theirs (PCIe cards without peer-to-peer).
ETA_COARSE = np.round(np.arange(1, 21) * 0.05, 2)
GEMM_ETA_COARSE = ETA_COARSE[ETA_COARSE >= 0.3]
OFFSET_COARSE_S = np.arange(0, 51) * 2e-6


@dataclass(frozen=True)
class LayerCurve:
    """The summed GEMM times of one decoder layer (a model at one TP degree) over the tokens
    a table measured, from one engine's tables."""

    label: str
    tokens: np.ndarray
    seconds: np.ndarray
    weight_params: float  # Σ n·k over the layer's GEMMs, on one GPU


def layer_curves(tables: OperatorTables, models: dict[str, ModelSpec],
                 tp_degrees: tuple[int, ...], dtype: str = "bf16") -> list[LayerCurve]:
    """Every dense model × TP degree whose layer GEMMs all lie inside the `dtype` grid's
    measured (n, k) range, read at the grid's own m values (interpolated in n and k only)."""
    grid = tables.gemm.get(dtype)
    if grid is None:
        return []
    tokens = np.asarray(grid.m, float)
    curves = []
    for name, model in models.items():
        for tp in tp_degrees:
            gemms = layers.plan(model, Layout(tensor_parallel=tp), False).gemms
            inside = all(grid.n[0] <= g.n <= grid.n[-1] and grid.k[0] <= g.k <= grid.k[-1]
                         for g in gemms)
            read = [lookup.gemm_ms(grid, g.n, g.k, tokens) for g in gemms] if inside else []
            found = [r[0] for r in read if r is not None]
            if not gemms or len(found) != len(gemms):
                continue
            seconds = np.sum(found, axis=0) * 1e-3
            curves.append(LayerCurve(f"{name} tp{tp}", tokens, seconds,
                                     float(sum(g.n * g.k for g in gemms))))
    return curves


@dataclass(frozen=True)
class LayerPoints:
    """Measured layer times with the roofline's two terms at efficiency 1, point by point."""

    memory_s: np.ndarray
    compute_s: np.ndarray
    measured_s: np.ndarray

    @classmethod
    def of(cls, curves: list[LayerCurve], gpu: GpuSpec, dtype: str = "bf16") -> LayerPoints:
        bytes_per_s = gpu.memory_bandwidth_tb_s * 1e12
        flops_per_s = gpu.peak_tflops(dtype) * 1e12
        memory = [np.full(c.tokens.size, c.weight_params * WEIGHT_BYTES[dtype] / bytes_per_s)
                  for c in curves]
        compute = [2.0 * c.weight_params * c.tokens / flops_per_s for c in curves]
        return cls(_cat(memory), _cat(compute), _cat([c.seconds for c in curves]))

    @classmethod
    def join(cls, parts: list[LayerPoints]) -> LayerPoints:
        return cls(_cat([p.memory_s for p in parts]), _cat([p.compute_s for p in parts]),
                   _cat([p.measured_s for p in parts]))


LAYER_PARAMS = ("compute_efficiency", "bandwidth_efficiency", "layer_overhead_s")  # LayerFit's


@dataclass(frozen=True)
class LayerFit:
    compute_efficiency: float
    bandwidth_efficiency: float
    layer_overhead_s: float

    def predict_s(self, p: LayerPoints) -> np.ndarray:
        core = np.maximum(p.memory_s / self.bandwidth_efficiency,
                          p.compute_s / self.compute_efficiency)
        return core + self.layer_overhead_s


def fit_layers(p: LayerPoints) -> LayerFit:
    """(η_c, η_bw, t₀) minimising the median relative error over every point."""
    def search(c_grid: np.ndarray, bw_grid: np.ndarray, offsets_s: np.ndarray
               ) -> tuple[float, float, float, float]:
        best = (np.inf, 0.0, 0.0, 0.0)
        for eta_c in c_grid:
            for eta_bw in bw_grid:
                core = np.maximum(p.memory_s / eta_bw, p.compute_s / eta_c)
                score, offset = _best_offset(core, p.measured_s, offsets_s)
                if score < best[0]:
                    best = (score, float(eta_c), float(eta_bw), offset)
        return best

    _, eta_c, eta_bw, t0 = search(GEMM_ETA_COARSE, GEMM_ETA_COARSE, OFFSET_COARSE_S)
    _, eta_c, eta_bw, t0 = search(_finer(eta_c), _finer(eta_bw), _finer_offset(t0))
    return LayerFit(eta_c, eta_bw, round(t0, 9))


@dataclass(frozen=True)
class LinkPoints:
    """Measured all-reduce times with the ring transfer at interconnect efficiency 1."""

    transfer_s: np.ndarray
    measured_s: np.ndarray

    @classmethod
    def join(cls, parts: list[LinkPoints]) -> LinkPoints:
        return cls(_cat([p.transfer_s for p in parts]), _cat([p.measured_s for p in parts]))


def allreduce_points(tables: OperatorTables, gpu: GpuSpec, min_bytes: float,
                     max_bytes: float) -> LinkPoints:
    """The all-reduce curves' points with messages in [min_bytes, max_bytes], every group
    size, against 2(g − 1)/g of the message over the one-way link (catalogue figures are
    bidirectional), as the roofline step prices them."""
    one_way_bytes_per_s = (gpu.interconnect_gb_s or PCIE_GEN4_GB_S) / 2 * 1e9
    transfer, measured = [], []
    for gpus, curve in sorted(tables.all_reduce.items()):
        x, ms = np.asarray(curve.x, float), np.asarray(curve.ms, float)
        keep = (x >= min_bytes) & (x <= max_bytes)
        ring = 2.0 * (int(gpus) - 1) / int(gpus)
        transfer.append(ring * x[keep] / one_way_bytes_per_s)
        measured.append(ms[keep] * 1e-3)
    return LinkPoints(_cat(transfer), _cat(measured))


@dataclass(frozen=True)
class LinkFit:
    interconnect_efficiency: float
    allreduce_latency_s: float

    def predict_s(self, p: LinkPoints) -> np.ndarray:
        return self.allreduce_latency_s + p.transfer_s / self.interconnect_efficiency


def fit_allreduce(p: LinkPoints) -> LinkFit:
    """(η_ic, latency) minimising the median relative error over every point."""
    def search(grid: np.ndarray, offsets_s: np.ndarray) -> tuple[float, float, float]:
        best = (np.inf, 0.0, 0.0)
        for eta in grid:
            score, offset = _best_offset(p.transfer_s / eta, p.measured_s, offsets_s)
            if score < best[0]:
                best = (score, float(eta), offset)
        return best

    _, eta, latency = search(ETA_COARSE, OFFSET_COARSE_S)
    _, eta, latency = search(_finer(eta), _finer_offset(latency))
    return LinkFit(eta, round(latency, 9))


def relative_errors_pct(predicted_s: np.ndarray, measured_s: np.ndarray) -> np.ndarray:
    errors: np.ndarray = 100.0 * np.abs(predicted_s - measured_s) / measured_s
    return errors


def error_summary(errors_pct: np.ndarray) -> dict[str, float | int]:
    """Median, 90th percentile and mean (MAPE) of |relative error|, in percent."""
    return {"median_pct": round(float(np.median(errors_pct)), 2),
            "p90_pct": round(float(np.percentile(errors_pct, 90)), 2),
            "mape_pct": round(float(np.mean(errors_pct)), 2), "points": int(errors_pct.size)}


def _best_offset(core_s: np.ndarray, measured_s: np.ndarray, offsets_s: np.ndarray
                 ) -> tuple[float, float]:
    """The offset (of `offsets_s`) that minimises the median relative error of core + offset."""
    rel = np.abs(core_s[None, :] + offsets_s[:, None] - measured_s[None, :]) / measured_s
    scores = np.median(rel, axis=1)
    i = int(np.argmin(scores))
    return float(scores[i]), float(offsets_s[i])


def _finer(eta: float) -> np.ndarray:
    values: np.ndarray = np.unique(np.round(np.clip(eta + np.arange(-5, 6) * 0.01, 0.01, 1.0), 2))
    return values


def _finer_offset(offset_s: float) -> np.ndarray:
    values: np.ndarray = np.unique(np.clip(offset_s + np.arange(-20, 21) * 1e-7, 0.0, None))
    return values


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0)
