"""The `workload:` block of a scenario: arrivals, length distributions, trace replay.

Validated here like every other block (`Strict` models, errors naming the key); the numbers
are drawn in `sim.workload`, and trace files are read at scenario-loading time.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, PrivateAttr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from sim.scenario.base import NonNeg, Pos, PosInt, Strict, check_order

# ---- lengths -------------------------------------------------------------------------------


class _Lengths(Strict):
    max_tokens: PosInt | None = None  # named cap: longer samples are cut to it and counted


class FixedLengths(_Lengths):
    dist: Literal["fixed"]
    value: PosInt


class UniformLengths(_Lengths):
    dist: Literal["uniform"]
    low: PosInt
    high: PosInt

    @model_validator(mode="after")
    def _ordered(self) -> UniformLengths:
        check_order(self.low, self.high, "high", "low")
        return self


class LognormalLengths(_Lengths):
    dist: Literal["lognormal"]
    mean: Pos  # mean of the distribution, in tokens (not the log-space mu)
    sigma: NonNeg  # standard deviation of log(tokens)


class GeometricLengths(_Lengths):
    dist: Literal["geometric"]
    mean: Annotated[float, Field(ge=1)]  # support 1, 2, ...; success probability 1/mean


class EmpiricalLengths(_Lengths):
    dist: Literal["empirical"]
    path: str  # text file, one positive integer per line ('#' comments allowed)
    values: np.ndarray | None = Field(default=None, exclude=True)


class LognormalMixtureLengths(_Lengths):
    """Component k is drawn with probability weights[k] (normalised to sum 1): a lognormal
    with mean means[k] tokens and log-space spread sigmas[k]. Multi-modal traces need it."""

    dist: Literal["lognormal_mixture"]
    weights: Annotated[list[Pos], Field(min_length=1)]
    means: Annotated[list[Pos], Field(min_length=1)]
    sigmas: Annotated[list[NonNeg], Field(min_length=1)]

    @model_validator(mode="after")
    def _same_length(self) -> LognormalMixtureLengths:
        for field in ("means", "sigmas"):
            if len(getattr(self, field)) != len(self.weights):
                raise PydanticCustomError(
                    "order", "one entry per component",
                    {"field": field, "expected": f"{len(self.weights)} entries, one per weight"})
        return self


class EmpiricalCdfLengths(_Lengths):
    """Inline empirical CDF: [[tokens, P(length ≤ tokens)], ...], linear in between; the
    first point's probability is a point mass at its length. `trace fit` writes these."""

    dist: Literal["empirical_cdf"]
    cdf: Annotated[list[list[NonNeg]], Field(min_length=2)]

    @field_validator("cdf")
    @classmethod
    def _monotone(cls, points: list[list[float]]) -> list[list[float]]:
        if any(len(point) != 2 for point in points):
            raise PydanticCustomError("cdf", "pairs", {"expected": "[tokens, probability] pairs"})
        tokens = [t for t, _ in points]
        probs = [p for _, p in points]
        ordered = all(b > a for a, b in pairwise(probs)) and all(
            b >= a for a, b in pairwise(tokens))
        if tokens[0] < 1 or probs[-1] != 1 or not ordered:
            raise PydanticCustomError(
                "cdf", "not a CDF",
                {"expected": "[tokens, probability] pairs with tokens ≥ 1 and non-decreasing, "
                 "probabilities increasing and the last one 1"})
        return points


LengthSpec = Annotated[
    FixedLengths | UniformLengths | LognormalLengths | GeometricLengths | EmpiricalLengths
    | LognormalMixtureLengths | EmpiricalCdfLengths,
    Field(discriminator="dist"),
]
LENGTH_DISTS = ("fixed", "uniform", "lognormal", "geometric", "empirical", "lognormal_mixture",
                "empirical_cdf")


# ---- arrivals ------------------------------------------------------------------------------


class Spike(Strict):
    """The rate is multiplied by `multiplier` over [at_s, at_s + duration_s)."""

    at_s: NonNeg
    duration_s: Pos
    multiplier: NonNeg


class PoissonArrivals(Strict):
    """Poisson arrivals; with `profile`, `rate_curve` or `spikes` the rate varies in time
    (a non-homogeneous Poisson process) and `rate_per_s` is its mean: over the 24-hour
    cycle for `profile: diurnal`, over the curve's span (first to last point) for
    `rate_curve`, which is rescaled to that mean. Spikes multiply on top."""

    process: Literal["poisson"]
    rate_per_s: Pos
    profile: Literal["diurnal"] | None = None
    peak_to_trough: Annotated[float, Field(ge=1, allow_inf_nan=False)] | None = None
    peak_hour: Annotated[float, Field(ge=0, lt=24)] | None = None
    start_hour: Annotated[float, Field(ge=0, lt=24)] | None = None  # clock hour at t = 0
    rate_curve: Annotated[list[list[NonNeg]], Field(min_length=2)] | None = None
    spikes: list[Spike] = []

    @model_validator(mode="after")
    def _one_shape(self) -> PoissonArrivals:
        diurnal = ("peak_to_trough", "peak_hour", "start_hour")
        for field in diurnal:
            if self.profile is None and getattr(self, field) is not None:
                raise PydanticCustomError("order", "needs profile", {
                    "field": field, "expected": "this key only with profile: diurnal"})
        if self.profile == "diurnal":
            for field in ("peak_to_trough", "peak_hour"):
                if getattr(self, field) is None:
                    raise PydanticCustomError("order", "needed by profile", {
                        "field": field, "expected": "a value (profile: diurnal needs it)"})
            if self.rate_curve is not None:
                raise PydanticCustomError("order", "one shape", {
                    "field": "rate_curve", "expected": "either profile or rate_curve, not both"})
        if self.rate_curve is not None:
            curve = self.rate_curve
            pairs = all(len(point) == 2 for point in curve)
            ordered = pairs and curve[-1][0] > curve[0][0] and all(
                b[0] >= a[0] for a, b in pairwise(curve))
            area = sum((b[0] - a[0]) * (a[1] + b[1]) for a, b in pairwise(curve)) if pairs else 0
            if not (ordered and area > 0):
                raise PydanticCustomError("order", "not a rate curve", {
                    "field": "rate_curve", "expected": "[t_s, rate_per_s] pairs with t_s "
                    "non-decreasing (repeat a time for a step), a positive span and a "
                    "positive rate somewhere"})
        return self


class GammaArrivals(Strict):
    """Renewal process with gamma gaps: cv > 1 is burstier than Poisson, cv < 1 smoother."""

    process: Literal["gamma"]
    rate_per_s: Pos
    cv: Pos


ArrivalSpec = Annotated[PoissonArrivals | GammaArrivals, Field(discriminator="process")]


# ---- traces --------------------------------------------------------------------------------

TRACE_FORMATS = ("auto", "azure", "mooncake", "burstgpt", "csv")


@dataclass(frozen=True, eq=False)
class Trace:
    """A trace file's requests, sorted by arrival; times are seconds after the first one."""

    arrival_s: np.ndarray  # float64
    prompt_tokens: np.ndarray  # int64 ≥ 1
    output_tokens: np.ndarray  # int64 ≥ 1
    source: str  # the file, for messages
    format: str  # the format it was read as

    def __eq__(self, other: object) -> bool:  # arrays compare whole, so scenarios can too
        if not isinstance(other, Trace):
            return NotImplemented
        columns = ("arrival_s", "prompt_tokens", "output_tokens")
        return (self.source, self.format) == (other.source, other.format) and all(
            np.array_equal(getattr(self, c), getattr(other, c)) for c in columns)

    __hash__ = None  # mutable arrays inside


class TraceColumns(Strict):
    """Which header names hold what, for `format: csv`."""

    timestamp: str = "timestamp"
    prompt_tokens: str = "prompt_tokens"
    output_tokens: str = "output_tokens"


class TraceSpec(Strict):
    """Replay a trace: requests in the trace window [start_s, start_s + duration_s) (seconds
    after the trace's first request; default the whole trace) arrive at (t − start_s) /
    speedup; `scale` thins (< 1) or replicates (> 1) them. Requests that would arrive at or
    after the scenario's duration_s are not replayed."""

    path: str
    format: Literal["auto", "azure", "mooncake", "burstgpt", "csv"] = "auto"
    speedup: Pos = 1.0
    scale: Pos = 1.0
    start_s: NonNeg = 0.0
    duration_s: Pos | None = None
    columns: TraceColumns | None = None
    timestamp_unit: Literal["s", "ms", "us", "datetime"] | None = None
    _requests: Trace | None = PrivateAttr(default=None)  # not a YAML key: see with_requests

    @property
    def requests(self) -> Trace | None:
        """The file's requests, once load_scenario has read them."""
        return self._requests

    def with_requests(self, requests: Trace) -> TraceSpec:
        """A copy of this spec holding the requests read from its file."""
        spec = self.model_copy()
        spec._requests = requests
        return spec

    @model_validator(mode="after")
    def _csv_only(self) -> TraceSpec:
        for field in ("columns", "timestamp_unit"):
            if getattr(self, field) is not None and self.format not in ("auto", "csv"):
                raise PydanticCustomError("order", "csv only", {
                    "field": field, "expected": f"this key only with format: csv (the "
                    f"{self.format} format has fixed columns)"})
        return self


class WorkloadSpec(Strict):
    """Synthetic (arrival, prompt_tokens, output_tokens) or replayed (trace), never both."""

    arrival: ArrivalSpec | None = None
    prompt_tokens: LengthSpec | None = None
    output_tokens: LengthSpec | None = None
    trace: TraceSpec | None = None

    @model_validator(mode="after")
    def _trace_or_synthetic(self) -> WorkloadSpec:
        # "order" errors name a sibling key and say what it accepts.
        for field in ("arrival", "prompt_tokens", "output_tokens"):
            given = getattr(self, field) is not None
            if self.trace is not None and given:
                raise PydanticCustomError("order", "trace replaces it", {
                    "field": field, "expected": "no such key when workload.trace is given "
                    "(a trace brings its own arrivals and lengths)"})
            if self.trace is None and not given:
                raise PydanticCustomError("order", "required", {
                    "field": field, "expected": "a value (required unless workload.trace is "
                    "given)"})
        return self
