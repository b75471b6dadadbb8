"""Choosing the step-time model a scenario's `profile:` asks for.

`profile: auto` takes, in order: a measured profile for the exact (GPU, model, tensor
parallel, dtype); else a roofline whose efficiencies were fitted on measurements of this GPU
(or of a measured relative, which the provenance names); else the plain roofline defaults.
The result's `profile.source` says which: measured | fitted-roofline | roofline.

Models are built once per process for the same inputs (`select` is cached): a sweep or a plan
runs many scenarios that differ only in traffic, and a measured profile's tables take a few
milliseconds to expand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.errors import InputError
from sim.hardware.catalog import GpuSpec, ModelSpec
from sim.provenance import Provenance
from sim.scenario.schema import PROFILE_NAMES, ProfileSpec, RooflineProfile
from sim.steptime import library
from sim.steptime.fitted import fitted_efficiency
from sim.steptime.model import StepTimeModel
from sim.steptime.roofline import RooflineStep
from sim.steptime.simple import ConstantStep, LinearStep
from sim.steptime.table import TableStep

INLINE_KINDS = {"constant": ConstantStep, "linear": LinearStep}

_BUILT: dict[tuple[Any, ...], StepTimeModel] = {}  # the per-process cache behind `select`
_BUILT_MAX = 64


def select(profile: str | ProfileSpec, model: ModelSpec, gpu: GpuSpec, tensor_parallel: int,
           dtype: str, max_step_tokens: int) -> StepTimeModel:
    """The step model for a replica of `tensor_parallel` × `gpu` serving `model` in `dtype`;
    `max_step_tokens` bounds the tokens plus sequences of one step (tables expand to it).
    `InputError` naming `profile` when a named profile is unknown or is for other hardware."""
    key = (profile, model.model_dump_json(), gpu.model_dump_json(), tensor_parallel, dtype,
           max_step_tokens)
    built = _BUILT.get(key)
    if built is None:
        if len(_BUILT) >= _BUILT_MAX:
            _BUILT.clear()
        built = _BUILT[key] = _build(profile, model, gpu, tensor_parallel, dtype,
                                     max_step_tokens)
    return built


def _build(profile: str | ProfileSpec, model: ModelSpec, gpu: GpuSpec, tp: int, dtype: str,
           max_step_tokens: int) -> StepTimeModel:
    if profile == "auto":
        return _auto(model, gpu, tp, dtype, max_step_tokens)
    if profile == "roofline":
        return RooflineStep(RooflineProfile(kind="roofline"), model, gpu, tp, dtype)
    if isinstance(profile, str):
        return TableStep(_named(profile, model, gpu, tp, dtype), max_step_tokens)
    if isinstance(profile, RooflineProfile):
        return RooflineStep(profile, model, gpu, tp, dtype)
    return INLINE_KINDS[profile.kind](profile)


def _auto(model: ModelSpec, gpu: GpuSpec, tp: int, dtype: str,
          max_step_tokens: int) -> StepTimeModel:
    measured = library.find(gpu.name, model.name, tp, dtype)
    if measured is not None:
        return TableStep(measured, max_step_tokens)
    fitted = fitted_efficiency(gpu.name)
    if fitted is None:
        return RooflineStep(RooflineProfile(kind="roofline"), model, gpu, tp, dtype)
    params, details = fitted
    spec = RooflineProfile(kind="roofline", **params)
    details = {"gpu": gpu.name, "model": model.name, "tensor_parallel": tp, "dtype": dtype,
               **params, **details}
    error = details["fit_error"]["mape_pct"]
    return RooflineStep(spec, model, gpu, tp, dtype,
                        Provenance("fitted-roofline", "fitted-roofline", error, details))


def _named(name: str, model: ModelSpec, gpu: GpuSpec, tp: int,
           dtype: str) -> library.ProfileFile:
    if name.endswith(".yaml"):
        profile = library.load_profile(Path(name))
    else:
        shipped = library.library()
        if name not in shipped:
            names = (*PROFILE_NAMES, *shipped)
            raise InputError("profile", name, "one of " + ", ".join(names) + ", a profile "
                             "file path (*.yaml), or a mapping with kind: constant | linear | "
                             "roofline")
        profile = shipped[name]
    wanted = (gpu.name, model.name, tp, dtype)
    have = (profile.gpu, profile.model, profile.tensor_parallel, profile.dtype)
    if wanted != have:
        raise InputError("profile", name, f"a profile for gpu {wanted[0]}, model {wanted[1]}, "
                         f"tensor_parallel {wanted[2]}, dtype {wanted[3]} (this one is for "
                         f"{have[0]}, {have[1]}, tp {have[2]}, {have[3]})")
    return profile
