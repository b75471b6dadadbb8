"""The `plan:` and `stress:` blocks of a scenario (read by `tokenfactory plan` / `stress`).

    plan:
      periods: [{name, peak_rate_per_s, average_rate_per_s?, uncertainty?}]   # or growth:
      growth: {start: {name, peak_rate_per_s, ...}, months: 12, growth_per_month: 0.08}
      shape: {profile: diurnal, peak_to_trough: 3, peak_hour: 15}    # or rate_curve: [[t_s, r]]
      spikes: [{multiplier: 2, duration_s: 60, at_s: 120}]          # in every sizing run
      options: [{name, <any scenario keys, merged into the scenario>}]
      target: {confidence: 0.95, draws: 8, max_draws?, slo: {...}?, utilization: 0.8}
      run: {duration_s?, warmup_s?}          # runs of the search (default: see RunSettings)
      max_replicas: 256
      mix: {reserved: reserved, on_demand: on_demand}   # names among the options' cost.prices

A period's `uncertainty` is a distribution of a multiplier on its rates (e.g. lognormal
with mean 1), one of the sweep's distributions (`sim.scenario.uncertain`).
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from sim.scenario.base import (
    MAX_LIST_ITEMS,
    MAX_MONTHS,
    MAX_MULTIPLIER,
    MAX_RATE_PER_S,
    Draws,
    Multiplier,
    NonNeg,
    NonNegSeconds,
    Rate,
    Replicas,
    Seconds,
    Strict,
    check_curve_bounds,
)
from sim.scenario.uncertain import UncertainSpec

Fraction = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
DEFAULT_MAX_DRAWS = 64  # plan.target.max_draws when not given (and draws is below it)


class Period(Strict):
    name: str
    peak_rate_per_s: Rate
    average_rate_per_s: Rate | None = None  # the period's mean rate (cost at average load)
    uncertainty: UncertainSpec | None = None  # multiplier on both rates, drawn per draw

    @model_validator(mode="after")
    def _average_below_peak(self) -> Period:
        if self.average_rate_per_s is not None and self.average_rate_per_s > self.peak_rate_per_s:
            raise PydanticCustomError("order", "average above peak", {
                "field": "average_rate_per_s",
                "expected": f"a rate ≤ peak_rate_per_s ({self.peak_rate_per_s:g})"})
        return self


class Growth(Strict):
    """`months` periods from `start`, each `growth_per_month` above the one before."""

    start: Period
    months: Annotated[int, Field(gt=0, le=MAX_MONTHS)] = 12
    growth_per_month: Annotated[float, Field(gt=-1, le=MAX_MULTIPLIER, allow_inf_nan=False)]

    @model_validator(mode="after")
    def _last_month_in_range(self) -> Growth:
        # The last month's peak is start × (1 + g)^(months − 1): in logs, as it may overflow
        # (and the factor alone is computed too, so it must stay a float).
        factor = (self.months - 1) * math.log1p(self.growth_per_month)
        last = math.log(self.start.peak_rate_per_s) + factor
        if abs(factor) > 700 or last > math.log(MAX_RATE_PER_S) or last < math.log(1e-300):
            shown = f"1e{last / math.log(10):+.0f}"
            raise PydanticCustomError("order", "rate out of range", {
                "field": "growth_per_month", "expected": f"a growth that keeps the last "
                f"month's peak_rate_per_s within (0, {MAX_RATE_PER_S:g}]: after "
                f"{self.months} months it would be about {shown}/s"})
        return self


class Shape(Strict):
    """Demand within a day, as the arrival keys of the same names describe it: `profile:
    diurnal` (1 + a·cos, peak_to_trough = highest ÷ lowest rate) or a `rate_curve` of
    [t_s, rate] points (linear in between). Only its average ÷ peak ratio and its
    hour-by-hour form are used here."""

    profile: Literal["diurnal"] | None = None
    peak_to_trough: Annotated[float, Field(ge=1, le=MAX_MULTIPLIER,
                                           allow_inf_nan=False)] | None = None
    peak_hour: Annotated[float, Field(ge=0, lt=24)] | None = None
    rate_curve: Annotated[list[list[NonNeg]], Field(min_length=2)] | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> Shape:
        if (self.profile is None) == (self.rate_curve is None):
            raise PydanticCustomError("order", "one shape", {
                "field": "profile", "expected": "exactly one of profile: diurnal (with "
                "peak_to_trough and peak_hour) or rate_curve: [[t_s, rate], ...]"})
        if self.profile is not None:
            for field in ("peak_to_trough", "peak_hour"):
                if getattr(self, field) is None:
                    raise PydanticCustomError("order", "needed", {
                        "field": field, "expected": "a value (profile: diurnal needs it)"})
        if self.rate_curve is not None:
            pairs = all(len(p) == 2 for p in self.rate_curve)
            times = [p[0] for p in self.rate_curve] if pairs else []
            ordered = pairs and all(b >= a for a, b in pairwise(times)) and times[-1] > times[0]
            if not (ordered and max(p[1] for p in self.rate_curve) > 0):
                raise PydanticCustomError("order", "not a rate curve", {
                    "field": "rate_curve", "expected": "[t_s, rate] pairs with t_s "
                    "non-decreasing, a positive span and a positive rate somewhere"})
            check_curve_bounds(self.rate_curve)
        return self


class Target(Strict):
    """A fleet is feasible when a sequential test on its draws' SLO verdicts says its P(SLO
    met at the period's peak) reaches `confidence` (`sim.planning.runs`): up to `draws`
    draws for every fleet tried, up to `most_draws` for the close ones."""

    confidence: Fraction = 0.95  # P(SLO met at the period's peak) required
    draws: Draws = 8  # draws any candidate fleet may get; the close ones go on to max_draws
    max_draws: Draws | None = None  # draws a close candidate may get; default max(draws, 64)
    slo: dict[str, Any] | None = None  # overrides the scenario's slo keys
    utilization: Fraction = 0.8  # the first guess sizes the fleet to this share of capacity

    @property
    def most_draws(self) -> int:
        return self.max_draws if self.max_draws is not None else max(self.draws,
                                                                     DEFAULT_MAX_DRAWS)

    @model_validator(mode="after")
    def _max_at_least_draws(self) -> Target:
        if self.max_draws is not None and self.max_draws < self.draws:
            raise PydanticCustomError("order", "max below draws", {
                "field": "max_draws", "expected": f"a whole number ≥ draws ({self.draws})"})
        return self


class RunSettings(Strict):
    """The search's runs. Unset, warmup_s is `auto` (MSER-5 on the run's own output) and
    duration_s follows the workload (`sim.montecarlo.capacity.run_length_s`: the scenario's
    duration, or 12 saturated E2E times when longer, at most an hour); set them for shorter
    runs than that (a stated trade of precision)."""

    duration_s: Seconds | None = None
    warmup_s: NonNegSeconds | Literal["auto"] | None = None


class Mix(Strict):
    reserved: str = "reserved"  # names of two of each option's cost.prices
    on_demand: str = "on_demand"


class Spike(Strict):
    """The arrival rate × `multiplier` for `duration_s`, from `at_s` seconds into the run."""

    multiplier: Annotated[float, Field(gt=1, le=MAX_MULTIPLIER, allow_inf_nan=False)]
    duration_s: Seconds
    at_s: NonNegSeconds | None = None  # default: the start of the metrics window


class PlanSpec(Strict):
    periods: Annotated[list[Period], Field(min_length=1, max_length=MAX_MONTHS)] | None = None
    growth: Growth | None = None
    shape: Shape | None = None
    spikes: Annotated[list[Spike], Field(max_length=MAX_LIST_ITEMS)] = []
    options: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=MAX_LIST_ITEMS)]
    target: Target = Target()
    run: RunSettings = RunSettings()
    max_replicas: Replicas = 256  # the search gives up above this many replicas
    mix: Mix | None = None

    @model_validator(mode="after")
    def _one_forecast(self) -> PlanSpec:
        if (self.periods is None) == (self.growth is None):
            raise PydanticCustomError("order", "one forecast", {
                "field": "periods", "expected": "exactly one of periods: [{name, "
                "peak_rate_per_s}, ...] or growth: {start, months, growth_per_month}"})
        return self


class StressSpec(Strict):
    """Stress cases for the scenario's own fleet and load."""

    multipliers: Annotated[list[Multiplier],  # demand × k
                           Field(max_length=MAX_LIST_ITEMS)] = [1.25, 1.5, 2.0]
    spike: Spike | None = None
    replicas_down: Replicas | None = 1  # loss of capacity for the whole metrics window
    confidence: Fraction = 0.95
    draws: Draws = 4
    max_replicas: Replicas = 256
