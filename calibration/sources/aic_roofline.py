"""Rebuild `calibration/roofline_fits.yaml` from the shipped operator tables.

    python -m calibration.sources.aic_roofline [--out calibration]

Fits the roofline's efficiencies (`sim.calibrate.roofline`) on every GPU that has derived
operator tables (`calibration/operators/*.json.gz`, from NVIDIA AIConfigurator's measured
database), on the union of its engines' tables: the roofline has no engine of its own, so the
factors it borrows should be the ones that fit whichever engine a scenario names; the
per-engine fits are written beside them to show the spread. GPUs known only by their spec
sheet get a measured relative's factors, or the median over the measured datacenter GPUs,
each with the error that transfer showed where it could be checked (a leave-one-GPU-out
test). Needs no parquet: the tables shipped are the input, so a rebuild is exact.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sim.calibrate import roofline as fit
from sim.hardware import catalog
from sim.hardware.catalog import GpuSpec
from sim.scenario.schema import RooflineProfile
from sim.steptime import operators

TP_DEGREES = (1, 2, 4, 8)
# Tensor-parallel all-reduce messages are tokens × hidden × 2 bytes: 1 token of a 4096-wide
# model to 16,384 tokens of a 16,384-wide one.
ALLREDUCE_BYTES = (4096 * 2, 16384 * 16384 * 2)
# Kernel tables say nothing about the engine's per-step cost (scheduling, sampling): the
# roofline's documented default stands.
STEP_OVERHEAD_S = RooflineProfile.model_fields["overhead_s"].default
# The measured HBM + NVLink parts: the pool a GPU with no measured relative borrows from
# (L40S and RTX PRO 6000 are PCIe cards with GDDR memory, a different balance).
DATACENTER = ("a100-80gb", "h100-sxm", "h200", "b200", "gb200", "b300")
PARAMS = ("compute_efficiency", "bandwidth_efficiency", "layer_overhead_s", "overhead_s",
          "interconnect_efficiency", "allreduce_latency_s")
LOO = "leave-one-out"


@dataclass(frozen=True)
class Transfer:
    """Factors for a spec-only GPU: the median over `sources`' fits, checked on `check`:
    (fitted GPU, measured GPU) pairs that stand in for it, or LOO for the leave-one-GPU-out
    errors of the datacenter GPUs."""

    sources: tuple[str, ...]
    why: str
    check: tuple[tuple[str, str], ...] | str


TRANSFERS = {
    "gb300": Transfer(("b300",), "same Blackwell Ultra die as the B300 (measured), with "
                      "GB300's own peaks and bandwidth", (("b200", "gb200"),)),
    "h20": Transfer(("h100-sxm", "h200"), "a cut-down Hopper: the median of the measured "
                    "H100 and H200 factors, with H20's own (much lower) compute peak",
                    (("h100-sxm", "h200"), ("h200", "h100-sxm"))),
    **{gpu: Transfer(DATACENTER, f"no AMD measurements: the median over the measured NVIDIA "
                     f"datacenter GPUs, with {name}'s own peaks", LOO)
       for gpu, name in (("mi300x", "MI300X"), ("mi325x", "MI325X"), ("mi355x", "MI355X"))},
}
DEFAULT = Transfer(DATACENTER, "a GPU known only by its spec sheet: the median over the "
                   "measured datacenter GPUs, with its own peaks", LOO)


def roofline_errors(layers: fit.LayerPoints, links: fit.LinkPoints, params: dict[str, float]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Relative errors (%) of a roofline with `params` on measured layer and all-reduce points."""
    linear = fit.LayerFit(params["compute_efficiency"], params["bandwidth_efficiency"],
                          params["layer_overhead_s"])
    link = fit.LinkFit(params["interconnect_efficiency"], params["allreduce_latency_s"])
    return (fit.relative_errors_pct(linear.predict_s(layers), layers.measured_s),
            fit.relative_errors_pct(link.predict_s(links), links.measured_s))


@dataclass(frozen=True)
class Measured:
    """One GPU's points (all engines), its fitted parameters and their yaml entry."""

    layers: fit.LayerPoints
    links: fit.LinkPoints
    params: dict[str, float]
    doc: dict[str, Any]

    def errors(self, params: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """Relative errors (%) of a roofline with `params` on this GPU's own tables."""
        return roofline_errors(self.layers, self.links, params)


@dataclass(frozen=True)
class EngineTables:
    """What one engine's tables of a GPU give: its points and a per-engine layer fit."""

    layers: fit.LayerPoints
    links: fit.LinkPoints
    fp8_layers: fit.LayerPoints
    summary: dict[str, float]
    measurements: str


def _engine(tables: operators.OperatorTables, gpu: GpuSpec) -> EngineTables:
    models = {k: m for k, m in catalog.models().items() if not m.is_moe}
    curves = fit.layer_curves(tables, models, TP_DEGREES)
    points = fit.LayerPoints.of(curves, gpu)
    own = fit.fit_layers(points)
    errors = fit.relative_errors_pct(own.predict_s(points), points.measured_s)
    version = tables.provenance.get("tables", {}).get("gemm/gemm_perf", {}).get("version")
    groups = ", ".join(sorted(tables.all_reduce, key=int))
    return EngineTables(
        points, fit.allreduce_points(tables, gpu, *ALLREDUCE_BYTES),
        fit.LayerPoints.of(fit.layer_curves(tables, models, TP_DEGREES, "fp8"), gpu, "fp8"),
        {"compute_efficiency": own.compute_efficiency,
         "bandwidth_efficiency": own.bandwidth_efficiency,
         "layer_overhead_s": own.layer_overhead_s,
         "median_pct": round(float(np.median(errors)), 2)},
        f"{tables.engine} {version}: gemm bf16 ({len(curves)} layer shapes), all-reduce over "
        f"{groups} GPUs")


def measure(gpu: GpuSpec) -> Measured:
    """Fit `gpu` on the union of its engines' tables (module docstring for why)."""
    engines = {}
    for g, engine in operators.available():
        tables = operators.tables(g, engine) if g == gpu.name else None
        if tables is not None:
            engines[engine] = _engine(tables, gpu)
    layers = fit.LayerPoints.join([e.layers for e in engines.values()])
    links = fit.LinkPoints.join([e.links for e in engines.values()])
    linear, link = fit.fit_layers(layers), fit.fit_allreduce(links)
    params = {"compute_efficiency": linear.compute_efficiency,
              "bandwidth_efficiency": linear.bandwidth_efficiency,
              "layer_overhead_s": linear.layer_overhead_s, "overhead_s": STEP_OVERHEAD_S,
              "interconnect_efficiency": link.interconnect_efficiency,
              "allreduce_latency_s": link.allreduce_latency_s}
    linear_errors, link_errors = roofline_errors(layers, links, params)
    doc: dict[str, Any] = {
        **params,
        "fit_error": {**fit.error_summary(linear_errors),
                      "method": "in sample: the fit's own bf16 layer points, all engines"},
        "allreduce_fit_error": fit.error_summary(link_errors),
        "engines": {name: e.summary for name, e in engines.items()},
        "measurements": [e.measurements for e in engines.values()],
    }
    fp8 = fit.LayerPoints.join([e.fp8_layers for e in engines.values()])
    if fp8.measured_s.size:
        fp8_errors = fit.relative_errors_pct(linear.predict_s(fp8), fp8.measured_s)
        doc["fp8_check"] = {**fit.error_summary(fp8_errors), "method": "the bf16 factors on "
                            "the fp8 GEMM tables, with the FP8 peak and 1-byte weights"}
    return Measured(layers, links, params, doc)


def median_params(fits: list[dict[str, float]]) -> dict[str, float]:
    return {k: _sig(float(np.median([f[k] for f in fits]))) for k in PARAMS}


def build() -> dict[str, Any]:
    gpus = catalog.gpus()
    names = sorted({g for g, _ in operators.available() if g in gpus})
    measured = {g: measure(gpus[g]) for g in names}

    leave_one_out: dict[str, Any] = {}
    loo_linear, loo_link = [], []
    for held_out, m in measured.items():
        sources = [g for g in DATACENTER if g != held_out and g in measured]
        linear, link = m.errors(median_params([measured[g].params for g in sources]))
        leave_one_out[held_out] = {"from": sources,
                                   "linear": fit.error_summary(linear),
                                   "allreduce": fit.error_summary(link)}
        if held_out in DATACENTER:
            loo_linear.append(linear)
            loo_link.append(link)

    def transfer(t: Transfer) -> dict[str, Any]:
        params = median_params([measured[g].params for g in t.sources])
        if isinstance(t.check, str):  # LOO
            linear, link = np.concatenate(loo_linear), np.concatenate(loo_link)
            method = "leave one datacenter GPU out: the others' median on its tables"
        else:
            pairs = [measured[b].errors(measured[a].params) for a, b in t.check]
            linear = np.concatenate([p[0] for p in pairs])
            link = np.concatenate([p[1] for p in pairs])
            method = "transfer checked on measured relatives: " + ", ".join(
                f"{a} fitted, on {b}" for a, b in t.check)
        return {"from": list(t.sources), "why": t.why, **params,
                "fit_error": {**fit.error_summary(linear), "method": method},
                "allreduce_fit_error": fit.error_summary(link)}

    return {
        "about": "Roofline efficiencies fitted on the measured operator tables "
                 "(sim.calibrate.roofline); rebuilt by python -m calibration.sources.aic_roofline.",
        "source": "NVIDIA AIConfigurator measured operator database (github.com/ai-dynamo/"
                  "aiconfigurator, Apache-2.0), as derived in calibration/operators",
        "method": [
            "linear layers: qkv, o, gate_up and down GEMMs of the dense catalogue models at "
            f"TP {'/'.join(map(str, TP_DEGREES))}, bf16, summed per layer at each measured m; "
            "fitted t0 + max(weight bytes / (BW·bandwidth_efficiency), FLOPs / (peak·"
            "compute_efficiency)) minimising the median relative error",
            "all-reduce: the engines' custom all-reduce, messages of "
            f"{ALLREDUCE_BYTES[0]:,}–{ALLREDUCE_BYTES[1]:,} bytes; fitted latency + "
            "2(g−1)/g · bytes / (one-way link bandwidth · interconnect_efficiency)",
            f"overhead_s: not in kernel tables; the roofline default {STEP_OVERHEAD_S} s",
            "layer_overhead_s: the GEMM kernels' fixed cost per layer only (norms, activation "
            "and attention launches are not in the GEMM tables)",
            "leave_one_out: each measured GPU's own tables against the median of the factors "
            "fitted on the `from` GPUs (the datacenter GPUs but itself); a transfer's fit_error "
            "is that check on the GPUs that stand in for it",
        ],
        "fits": {g: m.doc for g, m in measured.items()},
        "leave_one_out": leave_one_out,
        "transfers": {g: transfer(t) for g, t in TRANSFERS.items()},
        "default": transfer(DEFAULT),
    }


def render(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False, width=100, allow_unicode=True)


def _sig(value: float) -> float:
    return float(f"{value:.4g}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args(argv)
    path = args.out / "roofline_fits.yaml"
    path.write_text(render(build()), encoding="utf-8")
    sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
