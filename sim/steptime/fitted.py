"""Roofline efficiencies fitted on measured GPUs (`calibration/roofline_fits.yaml`).

`sim.calibrate.roofline` fits them; this module only reads the shipped fits, for a GPU
measured itself or transferred from a measured relative.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml


@cache
def _fits() -> dict[str, Any]:
    text = resources.files("calibration").joinpath("roofline_fits.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def fitted_efficiency(gpu_name: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Roofline parameters fitted for this GPU (or transferred from a measured relative), with
    provenance; None for GPUs nothing was fitted for."""
    doc = _fits()
    transfer = doc["transfers"].get(gpu_name)
    measured_on = transfer["from"] if transfer else gpu_name
    fit = doc["fits"].get(measured_on)
    if fit is None:
        return None
    params = {k: fit[k] for k in ("compute_efficiency", "bandwidth_efficiency",
                                  "layer_overhead_s", "overhead_s")}
    provenance = {"efficiencies_fitted_on": f"{measured_on}: " + ", ".join(fit["measurements"]),
                  "measurements": doc["source"], "fit_error": fit["fit_error"]}
    if transfer:
        provenance["transferred"] = transfer["why"]
    return params, provenance
