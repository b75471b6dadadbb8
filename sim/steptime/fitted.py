"""Roofline efficiencies fitted on measured GPUs (`calibration/roofline_fits.yaml`).

`calibration.sources.aic_roofline` fits them (with `sim.calibrate.roofline`) on the shipped
operator tables; this module only reads them: a measured GPU's own fit, a spec-only GPU's
transfer from measured relatives, or, for any other GPU (one given inline), the default
transfer: the median over the measured datacenter GPUs. A transfer's fit error is the error
that transfer showed on measured GPUs standing in for it (a leave-one-GPU-out check), not a
measurement of the GPU itself, and its provenance says so.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

PARAMS = ("compute_efficiency", "bandwidth_efficiency", "layer_overhead_s", "overhead_s",
          "interconnect_efficiency", "allreduce_latency_s")
# Fitted only where the GPU's tables have fp8 / fp4 GEMMs (null otherwise: the roofline then
# uses compute_efficiency).
FORMAT_PARAMS = tuple(f"{k}_{f}" for f in ("fp8", "fp4") for k in (
    "compute_efficiency", "bandwidth_efficiency", "layer_overhead_s"))


@cache
def _fits() -> dict[str, Any]:
    text = resources.files("calibration").joinpath("roofline_fits.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def fitted_efficiency(gpu_name: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Roofline parameters for this GPU (fitted on it, or transferred from measured relatives),
    with provenance; None only when the shipped file has no default transfer."""
    doc = _fits()
    fit = doc["fits"].get(gpu_name)
    transfer = None if fit else doc["transfers"].get(gpu_name, doc.get("default"))
    entry = fit or transfer
    if entry is None:
        return None
    if transfer is not None:
        fitted_on = ", ".join(transfer["from"])
        measurements = [f"{g}: " + "; ".join(doc["fits"][g]["measurements"])
                        for g in transfer["from"]]
    else:
        fitted_on, measurements = gpu_name, [f"{gpu_name}: " + "; ".join(entry["measurements"])]
    provenance = {"efficiencies_fitted_on": fitted_on, "fitted_tables": measurements,
                  "measurements": doc["source"], "fit_error": entry["fit_error"],
                  "allreduce_fit_error": entry["allreduce_fit_error"]}
    if transfer is not None:
        provenance["transferred"] = transfer["why"]
    params = {k: entry[k] for k in PARAMS} | {k: entry.get(k) for k in FORMAT_PARAMS}
    return params, provenance
