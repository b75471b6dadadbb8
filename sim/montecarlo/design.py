"""A sweep's design: every run it will make, fully validated before the first one starts.

A sweep is grid points × R replications. Each point is a utilisation (arrival rate = that
fraction of the measured capacity) or one combination of `grid` values. Each replication r
draws every uncertain input once (Latin hypercube or plain Monte Carlo over the R
replications) and uses that draw at every grid point: common random numbers, so differences
between points come from the grid, not from different price or length draws. The same goes
for the run seed: replication r has one seed at every point, so the same arrival and length
streams (scaled to the point's rate) and the same routing and failure draws:

    SeedSequence(seed).spawn(3) → capacity probe, input sampling, runs
    runs.spawn(R)[replication] → the seed of every run of that replication

Adjacent points then differ by the grid, not by luck of the draw (common random numbers),
and their difference is far less noisy than either alone. Every point's replications are
still independent of one another, so each point's statistics are as before. Any run can be
repeated alone from its row in runs.csv, and the design is the same whichever executor runs
it and however often it is resumed (the fingerprint names this seeding, so a sweep folder
written with seeds per run is not resumed with seeds per replication).

Its size is checked before it is built (`sim.runner.budget`): at most `max_runs` runs, each
within the per-run limits, and at most `max_total_requests` requests in all, so a grid of a
million points or a rate that cannot fit is refused before any scenario is kept per run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import MISSING, InputError
from sim.montecarlo import model_error
from sim.montecarlo.capacity import RATE_KEY, Capacity, measure
from sim.montecarlo.overrides import validated
from sim.provenance import resolve_seed
from sim.runner import budget
from sim.runner import build as run_inputs
from sim.scenario import Scenario, load_scenario
from sim.scenario.uncertain import Lognormal, sample

STEP_SCALE_KEY = "step_time_scale"
SEEDING = "one per replication"  # how run seeds are drawn, part of the resume fingerprint


@dataclass(frozen=True)
class RunSpec:
    """One run: where it sits in the sweep, its seed, and the scenario it simulates."""

    index: int  # point × replications + replication: its row in runs.csv
    point: int
    replication: int
    seed: int
    values: dict[str, Any]  # scenario key path → value this run sets (grid and sampled)
    scenario: Scenario


@dataclass(frozen=True)
class SweepDesign:
    name: str
    seed: int
    replications: int
    sampling: str
    axis: str  # utilization | grid
    labels: list[dict[str, Any]]  # per point: what the user swept (utilization or grid values)
    overrides: list[dict[str, Any]]  # per point: scenario key path → value it sets
    sampled_keys: tuple[str, ...]
    uncertainty: dict[str, dict[str, Any]]  # key path → distribution, as sampled
    capacity: Capacity | None
    slo_confidence: float
    fingerprint: str  # scenario, seed and replications: what --resume must match
    notes: list[str] = field(default_factory=list)
    model_error: dict[str, Any] | None = None  # the validation family step_time_scale came from
    runs: list[RunSpec] = field(default_factory=list)

    @property
    def label_keys(self) -> tuple[str, ...]:
        return tuple(self.labels[0])

    @property
    def override_keys(self) -> tuple[str, ...]:
        """The columns of runs.csv that are scenario key paths (what a replay sets)."""
        return (*self.overrides[0], *self.sampled_keys)


def build(raw: Mapping[str, Any], base_dir: Path, *, replications: int | None = None,
          seed: int | None = None, capacity: Capacity | None = None,
          max_requests: int = budget.DEFAULT_MAX_REQUESTS,
          max_total_requests: int = budget.DEFAULT_MAX_TOTAL_REQUESTS,
          max_runs: int = budget.DEFAULT_MAX_RUNS) -> SweepDesign:
    """Validate the sweep and uncertainty blocks and every run's scenario; measure the
    capacity for a utilisation sweep unless it is given (a resumed sweep reuses its own).
    Refuse (`InputError`) a sweep beyond the limits of `sim.runner.budget`: more runs than
    `max_runs`, a run beyond `max_requests`, more than `max_total_requests` in all."""
    base = load_scenario(raw, base_dir=base_dir)
    sweep = base.sweep
    if sweep is None:
        raise InputError("sweep", MISSING, "a sweep: block with utilization: [fractions] or "
                         "grid: {key.path: [values]} (see the README)")
    replications_key = "sweep.replications" if replications is None else "--replications"
    replications = replications or sweep.replications
    axis_key, axis_value = (("sweep.utilization", sweep.utilization)
                            if sweep.utilization is not None else ("sweep.grid", sweep.grid))
    points = (len(sweep.utilization) if sweep.utilization is not None
              else math.prod(len(values) for values in (sweep.grid or {}).values()))
    size = _Size(points, replications, replications_key, axis_key, axis_value)
    size.check_runs(max_runs)
    seed = resolve_seed(seed, base.seed)
    inputs = uncertain_inputs(base)
    specs, notes = inputs.specs, inputs.notes
    where = {key: f"uncertainty.{key}" for key in specs}
    for key, spec in specs.items():  # each input alone first, so its own key is blamed
        for value in spec.probes():
            validated(raw, {key: value}, where, base_dir)

    capacity_seq, sampling_seq, runs_seq = np.random.SeedSequence(seed).spawn(3)
    if sweep.utilization is not None:
        if RATE_KEY in specs:
            raise InputError(where[RATE_KEY], specs[RATE_KEY].model_dump(exclude_none=True),
                             "no uncertainty on the arrival rate in a utilization sweep, which "
                             f"sets it (sweep a grid over {RATE_KEY} to sample demand)")
        where[RATE_KEY] = "sweep.utilization"
        # Any positive rate shows whether the scenario can take one; the first utilisation
        # is the value a refusal should show the user.
        validated(raw, {RATE_KEY: sweep.utilization[0]}, where, base_dir)
        capacity = capacity or measure(raw, base_dir, int_seed(capacity_seq))
        notes.insert(0, f"utilization = arrival rate ÷ the nominal scenario's "
                        f"{capacity.describe()}")
        labels = [{"utilization": u} for u in sweep.utilization]
        overrides = [{RATE_KEY: u * capacity.requests_per_s} for u in sweep.utilization]
    else:
        assert sweep.grid is not None  # Sweep's validator: utilization or grid
        for key, values in sweep.grid.items():
            if key in specs:
                raise InputError(where[key], specs[key].model_dump(exclude_none=True),
                                 f"a key the grid does not also set (sweep.grid.{key})")
            where[key] = f"sweep.grid.{key}"
            for value in values:
                validated(raw, {key: value}, where, base_dir)
        keys = list(sweep.grid)
        labels = [dict(zip(keys, combo, strict=True))
                  for combo in itertools.product(*sweep.grid.values())]
        overrides = labels

    draws = sample(specs, replications, sweep.sampling, np.random.default_rng(sampling_seq))
    seeds = [int_seed(s) for s in runs_seq.spawn(replications)]
    design = SweepDesign(
        name=base.name, seed=seed, replications=replications, sampling=sweep.sampling,
        axis="utilization" if sweep.utilization is not None else "grid", labels=labels,
        overrides=overrides, sampled_keys=tuple(specs),
        uncertainty={k: s.model_dump(exclude_none=True) for k, s in specs.items()},
        capacity=capacity,
        slo_confidence=sweep.slo_confidence,
        fingerprint=fingerprint(raw, seed, replications, inputs.model_error),
        notes=notes, model_error=inputs.model_error)
    total = 0.0
    for point, point_values in enumerate(overrides):
        for rep, draw in enumerate(draws):
            index = point * replications + rep
            run_values = {**point_values, **draw}
            scenario = _run_scenario(raw, run_values, where, base_dir)
            try:
                work = budget.check_run(scenario, max_requests)
            except InputError as exc:
                raise budget.renamed(exc, where) from None
            total += work.requests.count
            # Over the limit already: stop building, the rest cannot make it fit.
            size.check_total(total, index + 1, max_total_requests)
            design.runs.append(RunSpec(index, point, rep, seeds[rep], run_values, scenario))
    return design


@dataclass(frozen=True)
class _Size:
    """A sweep's points × replications, and which key to name when there are too many."""

    points: int
    replications: int
    replications_key: str  # sweep.replications, or --replications when the flag set them
    axis_key: str  # sweep.utilization or sweep.grid
    axis_value: Any

    @property
    def runs(self) -> int:
        return self.points * self.replications

    def _blamed(self) -> tuple[str, Any]:
        """The larger factor: the replications, or the points."""
        if self.replications >= self.points:
            return self.replications_key, self.replications
        return self.axis_key, self.axis_value

    def check_runs(self, max_runs: int) -> None:
        budget.check_runs(self.runs, max_runs, *self._blamed(),
                          f"{budget.counted(self.points, 'point')} × "
                          f"{budget.counted(self.replications, 'replication')}",
                          "fewer points or replications", "a sweep")

    def check_total(self, total: float, built: int, max_total_requests: int) -> None:
        """`InputError` when the first `built` runs already need more than the limit; the
        message shows the whole sweep's total at their average."""
        if total <= max_total_requests:
            return
        per_run = total / built
        budget.check_total(max(total, per_run * self.runs), max_total_requests,
                           *self._blamed(), f"{budget.counted(self.points, 'point')} × "
                           f"{budget.counted(self.replications, 'replication')} × about "
                           f"{budget.count_text(per_run)} requests per run",
                           "fewer points or replications, or shorter runs", "a sweep")


@dataclass(frozen=True)
class UncertainInputs:
    """What a sweep or plan samples, what the output should say of it, and where the
    default step-time error came from (None: the user's, the profile's fit, or none)."""

    specs: dict[str, Any]
    notes: list[str]
    model_error: dict[str, Any] | None = None


def uncertain_inputs(base: Scenario) -> UncertainInputs:
    """The uncertainty block, plus the step-time error when the user gave none: measured
    end to end by validation for the model's family (`sim.montecarlo.model_error`) where
    the step model is the one validation ran; else the profile's fit error when known."""
    specs = dict(base.uncertainty or {})
    if STEP_SCALE_KEY in specs:
        return UncertainInputs(specs, [])
    provenance = run_inputs.step_model(base).provenance
    if provenance.source in model_error.VALIDATED_SOURCES:
        found, passed = model_error.step_scale(base.gpu.name, base.layout.engine, base.model)
        if found is not None:
            specs[STEP_SCALE_KEY] = found.spread.lognormal()
            return UncertainInputs(specs, [found.note()], found.to_dict())
        fallback = (f"no family of {model_error.TABLE_PATH} has {model_error.MIN_ROWS} rows "
                    f"({'; '.join(passed)}), so the profile's fit error is used")
    else:
        validated = ", ".join(model_error.VALIDATED_SOURCES)
        fallback = (f"the {provenance.source} model was not validated end to end "
                    f"({model_error.TABLE_PATH} measured {validated})")
    if provenance.fit_error_pct is None:
        return UncertainInputs(specs, [
            f"step_time_scale not sampled: {fallback} and the {provenance.name} profile has "
            "no measured fit error (give uncertainty.step_time_scale to add one)"])
    sigma = provenance.fit_error_pct / 100
    specs[STEP_SCALE_KEY] = Lognormal(dist="lognormal", mean=1.0, sigma=sigma)
    return UncertainInputs(specs, [
        f"step_time_scale ~ lognormal(mean 1, sigma {sigma:g}) from the {provenance.name} "
        f"profile's fit error of {provenance.fit_error_pct:g}% (in-sample: {fallback})"])


def _run_scenario(raw: Mapping[str, Any], values: Mapping[str, Any], where: Mapping[str, str],
                  base_dir: Path) -> Scenario:
    try:
        return validated(raw, values, where, base_dir)
    except InputError as exc:
        if not exc.where.startswith("uncertainty."):
            raise
        raise InputError(exc.where, exc.value, f"{exc.expected} (a value drawn from this "
                         "distribution; nothing is clipped, so choose one that stays in "
                         "range)") from None


def scenario_for(raw: Mapping[str, Any], base_dir: Path,
                 values: Mapping[str, Any]) -> Scenario:
    """The scenario of one recorded run: the sweep's values applied to the scenario file."""
    return validated(raw, values, {key: f"runs.csv column {key}" for key in values}, base_dir)


def fingerprint(raw: Mapping[str, Any], seed: int, replications: int,
                model_error: Mapping[str, Any] | None = None) -> str:
    """What --resume must match; the default model error's family and spread are part of
    it, so a sweep is not resumed with draws from a rebuilt table."""
    stamped: dict[str, Any] = {"scenario": raw, "seed": seed, "replications": replications,
                               "run_seeds": SEEDING}
    if model_error is not None:
        stamped["model_error"] = model_error
    text = json.dumps(stamped, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def int_seed(sequence: np.random.SeedSequence) -> int:
    """A 64-bit integer seed for `sim.run`, recorded in runs.csv."""
    return int(sequence.generate_state(1, dtype=np.uint64)[0])
