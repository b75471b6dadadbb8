"""Choosing the step-time model a scenario's `profile:` asks for.

`profile: auto` takes, in order: the operator-composed model where measured operator tables
exist for the GPU and the layout's engine (`sim.steptime.composed`); else a roofline whose
efficiencies were fitted on measurements of this GPU (or of a measured relative, which the
provenance names); else the plain roofline defaults. The result's `profile.source` says
which: measured-operators | fitted-roofline | roofline. `auto_kind` tells which of the three
`auto` gives without building it, so a plan can give every option the same kind of model.
The Vidur profiles (`calibration/profiles`, whole-model fits for one model) stay selectable
by name; `operators` pins the composed model. A profile file of `kind: adjusted` (fitted end
to end by `tokenfactory calibrate fit-e2e`) wraps its base model with its knobs.

Models are built once per process for the same inputs (`select` is cached): a sweep or a plan
runs many scenarios that differ only in traffic, and composing or expanding tables takes a
few milliseconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.errors import InputError
from sim.hardware.catalog import GpuSpec, ModelSpec
from sim.hardware.layout import Layout
from sim.provenance import Provenance
from sim.scenario.profiles import PROFILE_NAMES, ProfileSpec, RooflineProfile
from sim.steptime import composed, library, operators
from sim.steptime.adjusted import AdjustedStep
from sim.steptime.fitted import fitted_efficiency
from sim.steptime.model import StepTimeModel
from sim.steptime.roofline import RooflineStep
from sim.steptime.simple import ConstantStep, LinearStep
from sim.steptime.table import TableStep

INLINE_KINDS = {"constant": ConstantStep, "linear": LinearStep}
# What `auto` can give, most measured first (`auto_kind`).
AUTO_KINDS = ("measured-operators", "fitted-roofline", "roofline")

_BUILT: dict[tuple[Any, ...], StepTimeModel] = {}  # the per-process cache behind `select`
_BUILT_MAX = 64


def select(profile: str | ProfileSpec, model: ModelSpec, gpu: GpuSpec, layout: Layout,
           max_step_tokens: int) -> StepTimeModel:
    """The step model for one replica (`layout`) of `gpu` serving `model`;
    `max_step_tokens` bounds the tokens plus sequences of one step (tables expand to it).
    `InputError` naming `profile` when a named profile is unknown or is for other hardware."""
    key = (profile, model.model_dump_json(), gpu.model_dump_json(), layout, max_step_tokens)
    built = _BUILT.get(key)
    if built is None:
        if len(_BUILT) >= _BUILT_MAX:
            _BUILT.clear()
        built = _BUILT[key] = _build(profile, model, gpu, layout, max_step_tokens)
    return built


def auto_kind(gpu_name: str, engine: str) -> str:
    """The kind of model `profile: auto` gives for this GPU and engine (one of AUTO_KINDS)."""
    if (gpu_name, engine) in operators.available():
        return "measured-operators"
    return "fitted-roofline" if fitted_efficiency(gpu_name) is not None else "roofline"


def _build(profile: str | ProfileSpec, model: ModelSpec, gpu: GpuSpec, layout: Layout,
           max_step_tokens: int) -> StepTimeModel:
    if profile == "auto":
        return _auto(model, gpu, layout, max_step_tokens)
    if profile == "operators":
        return _operators(model, gpu, layout, max_step_tokens)
    if profile == "fitted-roofline":
        return _fitted(model, gpu, layout)
    if profile == "roofline":
        return RooflineStep(RooflineProfile(kind="roofline"), model, gpu, layout)
    if isinstance(profile, str):
        named = _named(profile, model, gpu, layout)
        if isinstance(named, library.AdjustedProfileFile):
            return _adjusted(named, model, gpu, layout, max_step_tokens)
        return TableStep.of_profile(named, max_step_tokens)
    if isinstance(profile, RooflineProfile):
        return RooflineStep(profile, model, gpu, layout)
    return INLINE_KINDS[profile.kind](profile)


def _auto(model: ModelSpec, gpu: GpuSpec, layout: Layout,
          max_step_tokens: int) -> StepTimeModel:
    tables = operators.tables(gpu.name, layout.engine)
    if tables is not None:
        return composed.build(tables, model, gpu, layout, max_step_tokens)
    return _fitted(model, gpu, layout, f"no measured operator tables for {gpu.name} "
                   f"{layout.engine}")


def _operators(model: ModelSpec, gpu: GpuSpec, layout: Layout,
               max_step_tokens: int) -> StepTimeModel:
    tables = operators.tables(gpu.name, layout.engine)
    if tables is None:
        have = ", ".join(f"{g} {e}" for g, e in operators.available()) or "none yet"
        raise InputError("profile", "operators", f"a GPU and engine with measured operator "
                         f"tables (not {gpu.name} {layout.engine}; tables exist for: {have})")
    return composed.build(tables, model, gpu, layout, max_step_tokens)


def _fitted(model: ModelSpec, gpu: GpuSpec, layout: Layout, why: str = "") -> StepTimeModel:
    """A roofline with this GPU's fitted efficiencies (or a relative's); the plain one when
    nothing was fitted for it — the provenance says which, and `why` it is a roofline."""
    fitted = fitted_efficiency(gpu.name)
    reason = {"why_roofline": why} if why else {}
    if fitted is None:
        plain = RooflineProfile(kind="roofline")
        return RooflineStep(plain, model, gpu, layout, Provenance(
            "roofline", "roofline", None,
            {"gpu": gpu.name, "model": model.name, "tensor_parallel": layout.tensor_parallel,
             "dtype": layout.dtype, **plain.model_dump(exclude={"kind"}), **reason}))
    params, details = fitted
    spec = RooflineProfile(kind="roofline", **params)
    details = {"gpu": gpu.name, "model": model.name,
               "tensor_parallel": layout.tensor_parallel, "dtype": layout.dtype,
               "engine": layout.engine, **params, **details, **reason}
    error = details["fit_error"]["mape_pct"]
    return RooflineStep(spec, model, gpu, layout,
                        Provenance("fitted-roofline", "fitted-roofline", error, details))


def _adjusted(profile: library.AdjustedProfileFile, model: ModelSpec, gpu: GpuSpec,
              layout: Layout, max_step_tokens: int) -> StepTimeModel:
    """The profile's base model with its fitted knobs (`sim.steptime.adjusted`)."""
    inner = _build(profile.base, model, gpu, layout, max_step_tokens)
    knobs = {"step_time_scale": profile.step_time_scale, "overhead_s": profile.overhead_s,
             "prefill_scale": profile.prefill_scale}
    details = {"base": profile.base, "base_source": inner.provenance.source, **knobs,
               "fit_error": profile.fit_error, "base_details": inner.provenance.details}
    return AdjustedStep(inner, profile.step_time_scale, profile.overhead_s,
                        profile.prefill_scale,
                        Provenance(profile.name, "adjusted", profile.fit_error_pct, details))


def _named(name: str, model: ModelSpec, gpu: GpuSpec,
           layout: Layout) -> library.ProfileFile | library.AdjustedProfileFile:
    """A profile file or a shipped profile, checked to be for this deployment (an adjusted
    one for its engine too: its knobs were fitted on that engine's measurements)."""
    profile: library.ProfileFile | library.AdjustedProfileFile
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
    wanted = (gpu.name, model.name, layout.tensor_parallel, layout.dtype)
    have = (profile.gpu, profile.model, profile.tensor_parallel, profile.dtype)
    if wanted != have:
        raise InputError("profile", name, f"a profile for gpu {wanted[0]}, model {wanted[1]}, "
                         f"tensor_parallel {wanted[2]}, dtype {wanted[3]} (this one is for "
                         f"{have[0]}, {have[1]}, tp {have[2]}, {have[3]})")
    if isinstance(profile, library.AdjustedProfileFile) and profile.engine != layout.engine:
        raise InputError("profile", name, f"a profile fitted on engine {layout.engine} (this "
                         f"one was fitted on {profile.engine})")
    return profile
