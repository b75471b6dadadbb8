"""Measured step-time profiles: the files, their schema and the shipped library.

A profile is a fitted model of one (GPU, model, tensor parallel, dtype).

A profile file (`calibration/profiles/*.yaml`) holds, per decoder layer, the time of every
non-attention operator as an interpolation table over tokens in the step, all-reduce time
over tokens (tensor parallel), attention coefficients, a per-step overhead, the provenance of
the measurements and the fit error. A step of T tokens then takes

    overhead + layers · (linear(T) + all_reduces · all_reduce(T)) + lm_head(logits)
      + layers · (prefill_a + prefill_per_pair · pairs)             if it prefills
      + layers · (decode_a + decode_per_seq · B + decode_per_kv · KV)  if it decodes

so the pure-decode part is F(B) + c·KV, as event skipping requires. Tables are linear between
knots and extrapolate the last segment; `sim.steptime.table` evaluates them.

A profile file with `kind: adjusted` (`AdjustedProfileFile`, written by `tokenfactory
calibrate fit-e2e`) holds no tables: it names a base model (`auto`, …) and the end-to-end
knobs fitted on one deployment's measurements (`sim.steptime.adjusted`), with what they were
fitted on.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import Field, ValidationError, model_validator

from sim.errors import InputError
from sim.scenario import yamlfile
from sim.scenario.base import Multiplier, NonNeg, NonNegSeconds, PosInt, Strict


class Table(Strict):
    """y(x), linear between knots; x strictly increasing."""

    x: list[float] = Field(min_length=2)
    y: list[float] = Field(min_length=2)

    @model_validator(mode="after")
    def _shape(self) -> Table:
        if len(self.x) != len(self.y) or np.any(np.diff(self.x) <= 0):
            raise ValueError("x must increase strictly and match y in length")
        return self

    def expand(self, upto: int) -> list[float]:
        """Values at 0, 1, …, upto (0 at x = 0; the last segment extended beyond the table)."""
        x, y = np.asarray(self.x), np.asarray(self.y)
        points = np.arange(upto + 1, dtype=np.float64)
        values = np.interp(points, x, y)
        slope = (y[-1] - y[-2]) / (x[-1] - x[-2])
        beyond = points > x[-1]
        values[beyond] = y[-1] + slope * (points[beyond] - x[-1])
        values[0] = 0.0
        return values.tolist()

    def at(self, x: float) -> float:
        return self.expand(int(x))[int(x)] if x >= 1 else 0.0


class StepCoefficients(Strict):
    layers: PosInt
    layer_linear_s: Table  # per layer, x = tokens in the step
    all_reduce_s: Table | None = None  # per call, x = tokens (activations of hidden width)
    all_reduces_per_layer: int = 2
    lm_head_s: Table  # x = sequences that produce a token
    prefill_attention_s: NonNeg  # per layer, per prefilling step
    prefill_attention_s_per_pair: NonNeg  # per layer, per causal query-key pair
    decode_attention_s: NonNeg  # per layer, per decoding step
    decode_attention_s_per_seq: NonNeg
    decode_attention_s_per_kv_token: NonNeg
    overhead_s: NonNeg  # per step: scheduling, sampling, what no operator timing shows


class ProfileFile(Strict):
    name: str
    gpu: str
    model: str
    tensor_parallel: PosInt
    dtype: str
    source: str  # measured | fitted-roofline
    provenance: dict[str, Any]
    step: StepCoefficients
    fit_error: dict[str, Any]

    @property
    def fit_error_pct(self) -> float | None:
        step = self.fit_error.get("step", {})
        return step.get("mape_pct")


ParsedT = TypeVar("ParsedT", bound=Strict)


class AdjustedProfileFile(Strict):
    """A base model with end-to-end knobs, for the deployment it was fitted on."""

    kind: Literal["adjusted"]
    name: str
    base: Literal["auto", "operators", "fitted-roofline", "roofline"] = "auto"
    gpu: str
    model: str
    engine: str
    tensor_parallel: PosInt
    dtype: str
    step_time_scale: Multiplier  # on every step
    overhead_s: NonNegSeconds  # added to every step
    prefill_scale: Multiplier  # on the prefill part of a step, after step_time_scale
    fit_error: dict[str, Any]  # median |error| % of TTFT and TPOT before and after the fit
    fitted_on: dict[str, Any]  # files, points, simulations

    @property
    def fit_error_pct(self) -> float | None:
        value = self.fit_error.get("after", {}).get("mean_of_medians_pct")
        return None if value is None else float(value)


@cache
def load_profile(path: Path) -> ProfileFile | AdjustedProfileFile:
    """A profile file, read once per process (sweeps and plans name the same one often)."""
    try:
        text = yamlfile.read_text(path, "a profile file")
    except (OSError, UnicodeDecodeError):
        raise InputError(str(path), "unreadable", "a profile YAML file") from None
    raw = yamlfile.loads(text, str(path), "a profile YAML file")
    if isinstance(raw, dict) and raw.get("kind") == "adjusted":
        return parse_adjusted(raw, str(path))
    return parse_profile(raw, str(path))


def parse_adjusted(raw: Any, where: str) -> AdjustedProfileFile:
    return _validated(AdjustedProfileFile, raw, where)


def parse_profile(raw: Any, where: str) -> ProfileFile:
    return _validated(ProfileFile, raw, where)


def _validated(schema: type[ParsedT], raw: Any, where: str) -> ParsedT:
    """`raw` as `schema`; the first problem as an `InputError` naming its key."""
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(p) for p in error["loc"])
        raise InputError(f"{where}: {key}", error.get("input"), error["msg"]) from None


@cache
def library() -> dict[str, ProfileFile]:
    """The profiles shipped in calibration/profiles, by name."""
    folder = resources.files("calibration").joinpath("profiles")
    found = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            raw = yamlfile.loads(entry.read_text(encoding="utf-8"), entry.name)
            profile = parse_profile(raw, entry.name)
            found[profile.name] = profile
    return found


def find(gpu: str, model: str, tensor_parallel: int, dtype: str) -> ProfileFile | None:
    for profile in library().values():
        if (profile.gpu, profile.model, profile.tensor_parallel, profile.dtype) == (
                gpu, model, tensor_parallel, dtype):
            return profile
    return None
