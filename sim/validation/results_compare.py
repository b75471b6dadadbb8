"""A team's own benchmark results (`sim.validation.results_json`) simulated the way they ran
and compared: one `SiliconComparison` per point and measured metric, the same records and
CSV as the measured-row path.

The result files do not say what served them, so the deployment comes from the command's
flags (`Deployment`): one replica of that GPU, engine, tensor parallel degree and dtype, the
engine's default batch limits. A closed-loop point (vLLM's `--max-concurrency` with an
unlimited rate, GuideLLM's concurrent or synchronous strategy, AIPerf's `--concurrency`)
runs as that many clients with no think time, sized in request lifetimes as the measured-row
path does (`sim.validation.silicon`); an open-loop point at its rate, Poisson (gamma with
vLLM's `--burstiness`), for `POISSON_REQUESTS` arrivals. Lengths are fixed at the file's
means (the files summarise lengths by their mean) and said so in each comparison's
assumptions. TTFT is measured from the request's send, TPOT = (E2E − TTFT) / (OSL − 1), as
the tools compute them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import sim
from sim.calibrate.fit_e2e import Simulate, Simulated, Target
from sim.errors import MISSING, InputError
from sim.hardware import catalog
from sim.hardware.catalog import ModelSpec
from sim.hardware.layout import ENGINES, WEIGHT_DTYPES
from sim.runner.build import kv_capacity
from sim.validation.compare import COMPARED, matches
from sim.validation.results_json import BenchmarkPoint
from sim.validation.silicon import SiliconComparison, mean_lifetime_s, window
from sim.validation.silicon_mapping import ModelFinder, Skip, preset_note

WARMUP_LIFETIMES = 16.0  # closed loops: as the measured-row path (sim.validation.silicon)
WINDOW_LIFETIMES = 16.0
ATTEMPTS = 3
POISSON_REQUESTS = 2000  # open loops: arrivals in the window (percentiles to a few %)
POISSON_WARMUP_FRACTION = 0.1
SEED = 1
METRICS = ("ttft_ms", "tpot_ms", "ttft_ms_median", "tpot_ms_median", "ttft_ms_p99",
           "tpot_ms_p99", "output_tokens_per_s")


@dataclass(frozen=True)
class Deployment:
    """What served the benchmark, from the command's flags (`gpu`, `engine`: None when not
    given, which `check` refuses)."""

    gpu: str | None
    engine: str | None
    tensor_parallel: int = 1
    dtype: str = "bf16"
    model: str | None = None  # overrides the files' model names

    def check(self) -> None:
        """`InputError` naming the first flag that is missing or not accepted."""
        gpus = catalog.gpus()
        if self.gpu is None or self.gpu not in gpus:
            raise InputError("--gpu", self.gpu or MISSING, "the catalogue GPU the results were "
                             "measured on (not in result files): " + ", ".join(gpus))
        if self.engine is None or self.engine not in ENGINES:
            raise InputError("--engine", self.engine or MISSING, "the engine that served "
                             "them (not in result files): " + ", ".join(ENGINES))
        if self.tensor_parallel < 1:
            raise InputError("--tensor-parallel", self.tensor_parallel, "an integer ≥ 1")
        if self.dtype not in WEIGHT_DTYPES:
            raise InputError("--dtype", self.dtype, "one of " + ", ".join(WEIGHT_DTYPES))


@dataclass(frozen=True)
class PointPlan:
    """A point ready to run: the scenario mapping less its run length, and the sizes."""

    id: str
    base: dict[str, Any]
    concurrency: int | None
    rate_per_s: float | None
    isl: int
    osl: int
    model: ModelSpec
    lifetime_hint_s: float  # one request's measured lifetime, sizing the first run only
    assumptions: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    """What one simulation of a point gave (metric → value), or why it gave nothing."""

    values: dict[str, float]
    profile_source: str = ""
    observed: str = ""
    skip: str | None = None


def plan_point(point: BenchmarkPoint, deployment: Deployment, models: ModelFinder,
               profile: str = "auto") -> PointPlan:
    """The scenario for one point; `Skip` naming the first thing the simulator lacks;
    `InputError` when neither the file nor --model names the model."""
    if point.skip is not None:
        raise Skip(point.skip)
    name = deployment.model or point.model
    if name is None:
        raise InputError("--model", MISSING, f"the served model ({point.id} does not name "
                         "it): a catalogue name, or org/name with --models DIR")
    notes: list[str] = []
    found = models.lookup(name, notes)
    if found is None:
        raise Skip(f"model {name!r} in neither the catalogue nor --models (give --model)")
    model_ref, spec = found
    isl, osl = round(point.prompt_tokens_mean), round(point.output_tokens_mean)
    if isl < 1 or osl < 2:
        raise Skip(f"mean lengths {point.prompt_tokens_mean:g} / {point.output_tokens_mean:g}"
                   ": no TPOT to compare (it needs two output tokens)")
    # Checked (Deployment.check) before planning.
    assert deployment.engine is not None and deployment.gpu is not None
    notes.append(f"lengths fixed at the file's means (ISL {isl}, OSL {osl})")
    notes.append(preset_note(deployment.engine, deployment.gpu))
    if point.concurrency is not None:
        arrival: dict[str, Any] = {"process": "closed", "concurrency": point.concurrency,
                                   "think_time_s": 0}
        scheduler = {"max_num_seqs": max(point.concurrency, 1)}
    else:
        assert point.rate_per_s is not None  # a point without a skip has a load
        arrival = {"process": "poisson", "rate_per_s": point.rate_per_s}
        if point.arrival_cv != 1.0:
            arrival = {"process": "gamma", "rate_per_s": point.rate_per_s,
                       "cv": point.arrival_cv}
        scheduler = {}
    deployment_keys: dict[str, Any] = {
        "replicas": 1, "tensor_parallel": deployment.tensor_parallel,
        "dtype": deployment.dtype, "engine": deployment.engine,
        "scheduler": scheduler}
    base = {
        "name": point.id, "seed": SEED, "drain_s": None, "model": model_ref,
        "gpu": deployment.gpu, "profile": profile, "deployment": deployment_keys,
        "workload": {"arrival": arrival,
                     "prompt_tokens": {"dist": "fixed", "value": isl},
                     "output_tokens": {"dist": "fixed", "value": osl}},
        "slo": {"ttft_s": 60.0, "tpot_s": 1.0}, "cost": {"gpu_hour_usd": 0.0},
    }
    ttft_ms, tpot_ms = point.measured["ttft_ms"], point.measured["tpot_ms"]
    lifetime_s = max(ttft_ms + (osl - 1) * tpot_ms, 1.0) / 1000.0
    return PointPlan(point.id, base, point.concurrency, point.rate_per_s, isl, osl, spec,
                     lifetime_s, tuple(notes))


def with_profile(plan: PointPlan, profile: str) -> PointPlan:
    """The same point under another `profile:` (the knobs a fit tries)."""
    return PointPlan(plan.id, {**plan.base, "profile": profile}, plan.concurrency,
                     plan.rate_per_s, plan.isl, plan.osl, plan.model, plan.lifetime_hint_s,
                     plan.assumptions)


def simulate_point(plan: PointPlan) -> Outcome:
    """Run the point long enough (see the module's docstring) and read off every metric."""
    lifetime_s = plan.lifetime_hint_s
    for _attempt in range(ATTEMPTS):
        try:
            scenario = sim.load_scenario({**plan.base, **_lengths(plan, lifetime_s)})
            kv_tokens = kv_capacity(scenario)
            if plan.isl + plan.osl > kv_tokens:
                return Outcome({}, skip=f"one request (ISL + OSL = {plan.isl + plan.osl} "
                               f"tokens) needs more KV cache than the replica's {kv_tokens}")
            result = sim.run(scenario, warn_window=False)
        except InputError as exc:
            return Outcome({}, skip=f"scenario rejected: {exc}")
        simulated_s = mean_lifetime_s(result)
        if simulated_s <= lifetime_s / 0.8:
            break
        lifetime_s = simulated_s
    return _outcome(result, plan)


def _lengths(plan: PointPlan, lifetime_s: float) -> dict[str, float]:
    if plan.rate_per_s is None:
        warmup_s = WARMUP_LIFETIMES * lifetime_s
        return {"warmup_s": warmup_s, "duration_s": warmup_s + WINDOW_LIFETIMES * lifetime_s}
    window_s = max(POISSON_REQUESTS / plan.rate_per_s, WINDOW_LIFETIMES * lifetime_s)
    warmup_s = max(POISSON_WARMUP_FRACTION * window_s, 2 * lifetime_s)
    return {"warmup_s": warmup_s, "duration_s": warmup_s + window_s}


def _outcome(result: sim.Result, plan: PointPlan) -> Outcome:
    e, sent_s = result.engine, result.workload.arrival_s
    chosen = window(result)
    if not chosen.any():
        return Outcome({}, skip="the simulation finished no request in its metrics window")
    ttft_ms = (e.first_token_s[chosen] - sent_s[chosen]) * 1000.0
    tpot_ms = (e.finish_s[chosen] - e.first_token_s[chosen]) / (plan.osl - 1) * 1000.0
    values = {"output_tokens_per_s": result.record.output_tokens_per_s}
    for metric, sample in (("ttft_ms", ttft_ms), ("tpot_ms", tpot_ms)):
        p50, p99 = np.percentile(sample, (50, 99))
        values.update({metric: float(sample.mean()), f"{metric}_median": float(p50),
                       f"{metric}_p99": float(p99)})
    load = (f"{plan.concurrency} clients" if plan.concurrency is not None
            else f"{plan.rate_per_s:g} requests/s")
    observed = (f"sim: {load}, mean batch {result.record.batch_size_mean:.0f}, "
                f"{int(chosen.sum())} requests in the window")
    return Outcome(values, result.record.profile_source, observed)


def compare_points(points: Iterable[BenchmarkPoint], deployment: Deployment,
                   models_dir: Path | None, pattern: str | None = None,
                   profile: str = "auto") -> list[SiliconComparison]:
    """Every point matching `pattern`, each measured metric compared or skipped."""
    deployment.check()
    finder = ModelFinder(models_dir)
    out: list[SiliconComparison] = []
    for point in points:
        if not matches(point.id, pattern):
            continue
        plan: PointPlan | None = None
        try:
            plan = plan_point(point, deployment, finder, profile)
            outcome = simulate_point(plan)
        except Skip as exc:
            outcome = Outcome({}, skip=str(exc))
        out.extend(_comparisons(point, plan, outcome, deployment))
    return out


def _comparisons(point: BenchmarkPoint, plan: PointPlan | None, outcome: Outcome,
                 deployment: Deployment) -> list[SiliconComparison]:
    out = []
    for metric in (m for m in METRICS if m in point.measured):
        measured = point.measured[metric]
        simulated = outcome.values.get(metric)
        if outcome.skip is not None:
            status = f"skipped: {outcome.skip}"
        elif measured <= 0:
            status = f"skipped: measured value {measured!r} is not a number > 0"
        else:
            status = COMPARED
        compared = status == COMPARED
        out.append(SiliconComparison(
            point.id, metric, measured,
            round(simulated, 3) if compared and simulated is not None else None, status,
            outcome.profile_source if compared else "",
            plan.assumptions if plan is not None and compared else (),
            outcome.observed if compared else "", gpu=deployment.gpu or "",
            engine=deployment.engine or "",
            model=plan.model.name if plan is not None else (point.model or ""),
            kind="result", load=point.concurrency or point.rate_per_s,
            precision=deployment.dtype, concurrency=point.concurrency))
    return out


# ---- fitting (tokenfactory calibrate fit-e2e) ----------------------------------------------


def fit_plans(points: Iterable[BenchmarkPoint], deployment: Deployment,
              models_dir: Path | None) -> tuple[list[tuple[PointPlan, Target]],
                                                list[tuple[str, str]]]:
    """The points a fit can use, each with its measured means, and (id, reason) for the
    others: those the simulator cannot run, or that do not run with the base model."""
    deployment.check()
    finder = ModelFinder(models_dir)
    usable: list[tuple[PointPlan, Target]] = []
    skipped: list[tuple[str, str]] = []
    for point in points:
        try:
            plan = plan_point(point, deployment, finder)
        except Skip as exc:
            skipped.append((point.id, str(exc)))
            continue
        outcome = simulate_point(plan)
        if outcome.skip is not None:
            skipped.append((point.id, outcome.skip))
            continue
        usable.append((plan, Target(point.id, point.measured["ttft_ms"],
                                    point.measured["tpot_ms"])))
    return usable, skipped


def simulator(plans: list[PointPlan]) -> Simulate:
    """A fit's `Simulate`: every plan under the trial profile file, its mean TTFT and TPOT."""

    def simulate(profile: Path) -> list[Simulated]:
        out: list[Simulated] = []
        for plan in plans:
            values = simulate_point(with_profile(plan, str(profile))).values
            out.append((values.get("ttft_ms"), values.get("tpot_ms")))
        return out

    return simulate
