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
from sim.scenario.profiles import RooflineProfile
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
FORMATS = ("fp8", "fp4")  # GEMM formats with their own compute efficiency, where measured
PARAMS = ("compute_efficiency", "bandwidth_efficiency", "layer_overhead_s", "overhead_s",
          "interconnect_efficiency", "allreduce_latency_s",
          *(f"{k}_{f}" for f in FORMATS for k in fit.LAYER_PARAMS))
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
    params: dict[str, Any]  # PARAMS; a format's efficiency None where it was not measured
    doc: dict[str, Any]
    formats: dict[str, fit.LayerPoints]  # the fp8 / fp4 layer points, where measured

    def errors(self, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Relative errors (%) of a roofline with `params` on this GPU's own tables."""
        return roofline_errors(self.layers, self.links, params)

    def format_errors(self, fmt: str, params: dict[str, Any], suffix: str) -> np.ndarray:
        """Relative errors (%) on this GPU's `fmt` layer points of `params`' layer factors
        named with `suffix` ("_fp8"; "" for the 16-bit ones)."""
        layers = self.formats[fmt]
        f = fit.LayerFit(*(params[k + suffix] for k in fit.LAYER_PARAMS))
        return fit.relative_errors_pct(f.predict_s(layers), layers.measured_s)


@dataclass(frozen=True)
class EngineTables:
    """What one engine's tables of a GPU give: its points and a per-engine layer fit."""

    layers: fit.LayerPoints
    links: fit.LinkPoints
    formats: dict[str, fit.LayerPoints]  # fp8 / fp4 layer points
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
        {f: fit.LayerPoints.of(fit.layer_curves(tables, models, TP_DEGREES, f), gpu, f)
         for f in FORMATS},
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
    formats = {f: fit.LayerPoints.join([e.formats[f] for e in engines.values()])
               for f in FORMATS}
    formats = {f: p for f, p in formats.items() if p.measured_s.size}
    params: dict[str, Any] = {
        "compute_efficiency": linear.compute_efficiency,
        "bandwidth_efficiency": linear.bandwidth_efficiency,
        "layer_overhead_s": linear.layer_overhead_s, "overhead_s": STEP_OVERHEAD_S,
        "interconnect_efficiency": link.interconnect_efficiency,
        "allreduce_latency_s": link.allreduce_latency_s,
        **{f"{k}_{f}": None for f in FORMATS for k in fit.LAYER_PARAMS}}
    for f, points in formats.items():
        own = fit.fit_layers(points)
        params |= {f"{k}_{f}": getattr(own, k) for k in fit.LAYER_PARAMS}
    linear_errors, link_errors = roofline_errors(layers, links, params)
    doc: dict[str, Any] = {
        **params,
        "fit_error": {**fit.error_summary(linear_errors),
                      "method": "in sample: the fit's own bf16 layer points, all engines"},
        "allreduce_fit_error": fit.error_summary(link_errors),
        "engines": {name: e.summary for name, e in engines.items()},
        "measurements": [e.measurements for e in engines.values()],
    }
    measured = Measured(layers, links, params, doc, formats)
    for f in formats:
        doc[f"{f}_check"] = _format_check(measured, f, params)
    return measured


def _format_check(m: Measured, fmt: str, params: dict[str, Any]) -> dict[str, Any]:
    """Errors on the `fmt` GEMM tables of `params` with the format's own compute efficiency,
    and with the 16-bit one (as before formats had their own)."""
    own = m.format_errors(fmt, params, f"_{fmt}")
    shared = m.format_errors(fmt, params, "")
    return {**fit.error_summary(own),
            "method": f"in sample: the {fmt} factors on the {fmt} GEMM tables, with the "
                      f"{fmt.upper()} peak and {fit.WEIGHT_BYTES[fmt]:g}-byte weights",
            "with_bf16_factors": fit.error_summary(shared)}


def median_params(fits: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each parameter over `fits` (a format's over the fits that measured it;
    None when none did)."""
    values = {k: [f[k] for f in fits if f[k] is not None] for k in PARAMS}
    return {k: _sig(float(np.median(v))) if v else None for k, v in values.items()}


def build() -> dict[str, Any]:
    gpus = catalog.gpus()
    names = sorted({g for g, _ in operators.available() if g in gpus})
    measured = {g: measure(gpus[g]) for g in names}

    leave_one_out: dict[str, Any] = {}
    loo_linear, loo_link = [], []
    loo_formats: dict[str, list[np.ndarray]] = {}
    for held_out, m in measured.items():
        sources = [g for g in DATACENTER if g != held_out and g in measured]
        params = median_params([measured[g].params for g in sources])
        linear, link = m.errors(params)
        leave_one_out[held_out] = {"from": sources,
                                   "linear": fit.error_summary(linear),
                                   "allreduce": fit.error_summary(link)}
        for f in m.formats:
            if params[f"compute_efficiency_{f}"] is None:
                continue
            errors = m.format_errors(f, params, f"_{f}")
            shared = m.format_errors(f, params, "")
            leave_one_out[held_out][f] = {**fit.error_summary(errors),
                                          "with_bf16_factors": fit.error_summary(shared)}
            if held_out in DATACENTER:
                loo_formats.setdefault(f, []).append(errors)
        if held_out in DATACENTER:
            loo_linear.append(linear)
            loo_link.append(link)

    def transfer(t: Transfer) -> dict[str, Any]:
        params = median_params([measured[g].params for g in t.sources])
        formats: dict[str, Any] = {}
        if isinstance(t.check, str):  # LOO
            linear, link = np.concatenate(loo_linear), np.concatenate(loo_link)
            method = "leave one datacenter GPU out: the others' median on its tables"
            formats = {f"{f}_fit_error": fit.error_summary(np.concatenate(e))
                       for f, e in loo_formats.items()}
        else:
            pairs = [measured[b].errors(measured[a].params) for a, b in t.check]
            linear = np.concatenate([p[0] for p in pairs])
            link = np.concatenate([p[1] for p in pairs])
            method = "transfer checked on measured relatives: " + ", ".join(
                f"{a} fitted, on {b}" for a, b in t.check)
        return {"from": list(t.sources), "why": t.why, **params,
                "fit_error": {**fit.error_summary(linear), "method": method},
                "allreduce_fit_error": fit.error_summary(link), **formats}

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
            "*_fp8 / *_fp4: the same layers' fp8 / fp4 GEMM tables, with the format's peak and "
            "weight bytes, fitted the same way (null where a GPU has no such tables); "
            "<format>_check gives their error and, as with_bf16_factors, the bf16 factors'",
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
