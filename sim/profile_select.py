"""Choosing the step-time model a scenario asks for.

`profile: auto` takes, in order: a measured profile for the exact (GPU, model, tensor
parallel, dtype); else a roofline whose efficiencies were fitted on measurements of this GPU
(or of a measured relative, which the provenance names); else the plain roofline defaults.
The result's `profile.source` says which: measured | fitted-roofline | roofline.
"""

from __future__ import annotations

from pathlib import Path

from sim import profile_table
from sim.errors import InputError
from sim.profile_table import TableStep
from sim.profiles import PROFILE_KINDS, RooflineStep, StepTimeModel
from sim.provenance import Provenance
from sim.roofline_fit import fitted_efficiency
from sim.scenario import RooflineProfile, Scenario


def resolve(scenario: Scenario) -> StepTimeModel | TableStep:
    spec = scenario.profile
    if spec == "auto":
        return _auto(scenario)
    if spec == "roofline":
        return RooflineStep(RooflineProfile(kind="roofline"), scenario)
    if isinstance(spec, str):
        return TableStep(_named(spec, scenario), scenario)
    if isinstance(spec, RooflineProfile):
        return RooflineStep(spec, scenario)
    return PROFILE_KINDS[spec.kind](spec)


def _auto(scenario: Scenario) -> StepTimeModel | TableStep:
    d = scenario.deployment
    measured = profile_table.find(scenario.gpu.name, scenario.model.name, d.tensor_parallel,
                                  d.dtype)
    if measured is not None:
        return TableStep(measured, scenario)
    fitted = fitted_efficiency(scenario.gpu.name)
    if fitted is None:
        return RooflineStep(RooflineProfile(kind="roofline"), scenario)
    params, details = fitted
    spec = RooflineProfile(kind="roofline", **params)
    details = {"gpu": scenario.gpu.name, "model": scenario.model.name,
               "tensor_parallel": d.tensor_parallel, "dtype": d.dtype, **params, **details}
    error = details["fit_error"]["mape_pct"]
    return RooflineStep(spec, scenario, Provenance("fitted-roofline", "fitted-roofline", error,
                                                   details))


def _named(name: str, scenario: Scenario) -> profile_table.ProfileFile:
    if name.endswith(".yaml"):
        profile = profile_table.load_profile(Path(name))
    else:
        profile = profile_table.library()[name]
    d = scenario.deployment
    wanted = (scenario.gpu.name, scenario.model.name, d.tensor_parallel, d.dtype)
    have = (profile.gpu, profile.model, profile.tensor_parallel, profile.dtype)
    if wanted != have:
        raise InputError("profile", name, f"a profile for gpu {wanted[0]}, model {wanted[1]}, "
                         f"tensor_parallel {wanted[2]}, dtype {wanted[3]} (this one is for "
                         f"{have[0]}, {have[1]}, tp {have[2]}, {have[3]})")
    return profile
