"""The step-time model's error as validation measured it end to end, per family.

`calibration/validation_errors.yaml` (rebuilt by `python -m calibration.sources.
validation_errors` from the CSV `tokenfactory validate` writes) holds, per family — GPU ×
engine × model class (dense, moe, mla), with `all` at coarser levels — the distribution of
ln(measured / simulated) over the measured rows: n, median, 10th/90th percentiles and the
lognormal σ those percentiles imply. The ratio is the factor that would have corrected each
simulated TPOT, so a sweep that samples `step_time_scale` from it samples the model error
the way it showed on real deployments, bias included (a model that runs 10% fast samples
scales around 1.1), not the operator fit's in-sample error.

A family is used when it has at least `MIN_ROWS` rows; otherwise the next coarser one is
(`fallbacks`, finest first), and every skipped family is named with its reason. The table
was measured with the operator-composed model (`VALIDATED_SOURCES`): only that model takes
its error from here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from sim.hardware.catalog import ModelSpec
from sim.scenario.uncertain import Lognormal

TABLE_FILE = "validation_errors.yaml"
TABLE_PATH = f"calibration/{TABLE_FILE}"
MIN_ROWS = 20  # fewer rows than this say too little about a spread: use a coarser family
ALL = "all"
STEP_METRIC = "tpot"  # TPOT is decode step time over the batch: its ratio is the step scale
VALIDATED_SOURCES = ("measured-operators",)  # the step models the table's rows were run with


def model_class(model: ModelSpec) -> str:
    """mla (latent attention, DeepSeek: also MoE, but its attention kernels differ most),
    moe (routed experts), else dense."""
    if model.kv_lora_rank is not None:
        return "mla"
    return "moe" if model.is_moe else "dense"


def family_key(gpu: str, engine: str, klass: str) -> str:
    return f"{gpu}/{engine}/{klass}"


def fallbacks(gpu: str, engine: str, klass: str) -> tuple[str, ...]:
    """The families to try, finest first: this one, the GPU and engine over every model
    class, the GPU over every engine, then every row."""
    return (family_key(gpu, engine, klass), family_key(gpu, engine, ALL),
            family_key(gpu, ALL, ALL), family_key(ALL, ALL, ALL))


@dataclass(frozen=True)
class Spread:
    """ln(measured / simulated) over one family's rows of one metric."""

    n: int
    median_log: float
    sigma_log: float

    def lognormal(self) -> Lognormal:
        """The lognormal with this median and σ (`Lognormal` takes the mean of the value)."""
        return Lognormal(dist="lognormal", mean=math.exp(self.median_log + self.sigma_log**2 / 2),
                         sigma=self.sigma_log)


@dataclass(frozen=True)
class Found:
    """The family a lookup settled on, and why each finer one was passed over."""

    family: str
    metric: str
    spread: Spread
    passed_over: tuple[str, ...]  # "<family>: <reason>", finest first

    def note(self) -> str:
        s = self.spread
        text = (f"step_time_scale ~ lognormal(median {math.exp(s.median_log):.3g}, sigma "
                f"{s.sigma_log:.3g}) from validation: measured/simulated {self.metric.upper()} "
                f"of family {self.family} (n {s.n}, {TABLE_PATH})")
        if self.passed_over:
            text += "; fell back past " + "; ".join(self.passed_over)
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"table": TABLE_PATH, "metric": self.metric, "family": self.family,
                "n": self.spread.n, "median_log": self.spread.median_log,
                "sigma_log": self.spread.sigma_log, "passed_over": list(self.passed_over)}


def lookup(families: Mapping[str, Any], gpu: str, engine: str, klass: str,
           metric: str = STEP_METRIC) -> tuple[Found | None, list[str]]:
    """The finest family with at least `MIN_ROWS` rows of `metric`; None (and every reason)
    when not even the table's `all` family has them."""
    passed: list[str] = []
    for key in fallbacks(gpu, engine, klass):
        entry = (families.get(key) or {}).get(metric)
        if entry is None:
            passed.append(f"{key}: not in the table")
            continue
        if entry["n"] < MIN_ROWS:
            passed.append(f"{key}: n {entry['n']} < {MIN_ROWS}")
            continue
        spread = Spread(int(entry["n"]), float(entry["median_log"]), float(entry["sigma_log"]))
        return Found(key, metric, spread, tuple(passed)), passed
    return None, passed


@cache
def table() -> dict[str, Any]:
    """The shipped table (read once per process)."""
    text = resources.files("calibration").joinpath(TABLE_FILE).read_text("utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def step_scale(gpu: str, engine: str, model: ModelSpec) -> tuple[Found | None, list[str]]:
    """The validation distribution of the step scale for this GPU, engine and model."""
    return lookup(table()["families"], gpu, engine, model_class(model))
