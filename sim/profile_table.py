"""Measured step-time profiles: a fitted model of one (GPU, model, tensor parallel, dtype).

A profile file (`calibration/profiles/*.yaml`) holds, per decoder layer, the time of every
non-attention operator as an interpolation table over tokens in the step, all-reduce time
over tokens (tensor parallel), attention coefficients, a per-step overhead, the provenance of
the measurements and the fit error. A step of T tokens then takes

    overhead + layers · (linear(T) + all_reduces · all_reduce(T)) + lm_head(logits)
      + layers · (prefill_a + prefill_per_pair · pairs)             if it prefills
      + layers · (decode_a + decode_per_seq · B + decode_per_kv · KV)  if it decodes

so the pure-decode part is F(B) + c·KV, as event skipping requires. Tables are linear between
knots and extrapolate the last segment; they are expanded once per run into a list indexed by
tokens, so a step costs a few list lookups.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml
from pydantic import Field, ValidationError, model_validator

from sim.config_base import NonNeg, PosInt, Strict
from sim.errors import InputError
from sim.provenance import Provenance

if TYPE_CHECKING:
    from sim.scenario import Scenario


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


def load_profile(path: Path) -> ProfileFile:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        raise InputError(str(path), "unreadable", "a profile YAML file") from None
    return parse_profile(raw, str(path))


def parse_profile(raw: Any, where: str) -> ProfileFile:
    try:
        return ProfileFile.model_validate(raw)
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
            profile = parse_profile(yaml.safe_load(entry.read_text(encoding="utf-8")), entry.name)
            found[profile.name] = profile
    return found


def find(gpu: str, model: str, tensor_parallel: int, dtype: str) -> ProfileFile | None:
    for profile in library().values():
        if (profile.gpu, profile.model, profile.tensor_parallel, profile.dtype) == (
                gpu, model, tensor_parallel, dtype):
            return profile
    return None


class TableStep:
    """A step-time model evaluated from a profile file."""

    def __init__(self, profile: ProfileFile, scenario: Scenario) -> None:
        s = profile.step
        sched = scenario.deployment.scheduler
        upto = sched.max_batched_tokens + sched.max_num_seqs
        layers = s.layers
        linear = np.asarray(s.layer_linear_s.expand(upto)) * layers
        if s.all_reduce_s is not None and profile.tensor_parallel > 1:
            linear += np.asarray(s.all_reduce_s.expand(upto)) * layers * s.all_reduces_per_layer
        self.linear_s = linear.tolist()
        self.lm_head_s = s.lm_head_s.expand(upto)
        self.overhead_s = s.overhead_s
        self.prefill_a_s = layers * s.prefill_attention_s
        self.per_pair_s = layers * s.prefill_attention_s_per_pair
        self.decode_a_s = layers * s.decode_attention_s
        self.per_seq_s = layers * s.decode_attention_s_per_seq
        self.per_kv_token_s = layers * s.decode_attention_s_per_kv_token
        self.provenance = Provenance(profile.name, profile.source, profile.fit_error_pct,
                                     dict(profile.provenance))

    def decode_fixed_s(self, batch: int) -> float:
        return (self.overhead_s + self.linear_s[batch] + self.lm_head_s[batch]
                + self.decode_a_s + self.per_seq_s * batch)

    def step_s(self, prefill_tokens: int, prefill_attn_pairs: float, decode_seqs: int,
               decode_kv_tokens: int) -> tuple[float, float]:
        tokens = prefill_tokens + decode_seqs
        logits = decode_seqs + (1 if prefill_tokens else 0)
        shared_s = self.overhead_s + self.linear_s[tokens] + self.lm_head_s[logits]
        share = prefill_tokens / tokens
        prefill_s = shared_s * share
        if prefill_tokens:
            prefill_s += self.prefill_a_s + self.per_pair_s * prefill_attn_pairs
        decode_s = shared_s * (1.0 - share)
        if decode_seqs:
            decode_s += (self.decode_a_s + self.per_seq_s * decode_seqs
                         + self.per_kv_token_s * decode_kv_tokens)
        return prefill_s, decode_s
