"""Fitting the end-to-end knobs of a step-time model to one deployment's own measurements.

The operator tables predict a step from measured kernels; a real deployment adds what they
do not hold (host scheduling and sampling per step, a different kernel choice, a slower
prefill path). Three knobs absorb it (`sim.steptime.adjusted`): `step_time_scale` on every
step, `overhead_s` added to every step and `prefill_scale` on the prefill part. They are
fitted by simulating every measured point with the knobs applied (the caller's `Simulate`,
so this layer knows nothing of benchmark files) and minimising

    score = (median |rel. error of TTFT| + median |rel. error of TPOT|) / 2
            + TIE_BREAK × mean |rel. error| over both

— median errors, TTFT and TPOT weighted alike, with a small mean term so
that among knobs of equal medians (a median ignores all but the middle points) the fit
prefers the one that is closer everywhere.

The search, a few hundred simulations for a handful of points (each takes tens of ms):
a coarse grid over scale × overhead at prefill 1 (TPOT pins those two: it barely depends on
prefill), then prefill factors at the best of it, then a pattern search over all three (steps
halved until below `FINAL_STEPS`). Each distinct setting is simulated once.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

SCALES = (0.5, 0.63, 0.8, 1.0, 1.25, 1.6, 2.0)  # a common factor: geometric grid
OVERHEADS_S = (0.0, 0.001, 0.002, 0.004, 0.008, 0.016)
PREFILL_SCALES = (0.5, 0.71, 1.0, 1.41, 2.0)
# Pattern search: first and last steps of (log scale, overhead s, log prefill scale).
FIRST_STEPS = (0.1, 0.001, 0.15)
FINAL_STEPS = (0.003, 0.00003, 0.005)
BOUNDS = ((0.2, 5.0), (0.0, 0.05), (0.2, 5.0))  # scale, overhead s, prefill scale
MAX_EVALUATIONS = 400
TIE_BREAK = 0.1
FAILED_ERROR = 1.0  # a simulation that measured nothing counts as 100 % off

Simulated = tuple[float | None, float | None]  # (TTFT ms, TPOT ms) of one point
# A profile file's path → the simulated (TTFT, TPOT) of every target, in order.
Simulate = Callable[[Path], list[Simulated]]


@dataclass(frozen=True)
class Knobs:
    step_time_scale: float = 1.0
    overhead_s: float = 0.0
    prefill_scale: float = 1.0


@dataclass(frozen=True)
class Target:
    """One measured point: its mean TTFT and TPOT (ms)."""

    id: str
    ttft_ms: float
    tpot_ms: float


@dataclass(frozen=True)
class Identity:
    """The deployment a profile is fitted for (a scenario must match it to use it)."""

    name: str
    gpu: str
    model: str
    engine: str
    tensor_parallel: int
    dtype: str
    base: str = "auto"


@dataclass(frozen=True)
class Errors:
    """Median |relative error| (%) of TTFT and TPOT, and the score the search minimises."""

    ttft_median_pct: float
    tpot_median_pct: float
    mean_of_medians_pct: float
    score: float


@dataclass(frozen=True)
class Fit:
    knobs: Knobs
    before: Errors
    after: Errors
    simulated_before: list[Simulated]
    simulated_after: list[Simulated]
    settings: int  # distinct knob settings simulated
    simulations: int  # settings × points


def errors(targets: Sequence[Target], simulated: Sequence[Simulated]) -> Errors:
    ttft = [_relative(s[0], t.ttft_ms) for t, s in zip(targets, simulated, strict=True)]
    tpot = [_relative(s[1], t.tpot_ms) for t, s in zip(targets, simulated, strict=True)]
    med_ttft, med_tpot = statistics.median(ttft), statistics.median(tpot)
    score = (med_ttft + med_tpot) / 2 + TIE_BREAK * statistics.fmean(ttft + tpot)
    return Errors(100 * med_ttft, 100 * med_tpot, 50 * (med_ttft + med_tpot), score)


def _relative(simulated: float | None, measured: float) -> float:
    if simulated is None or not math.isfinite(simulated):
        return FAILED_ERROR
    return abs(simulated - measured) / measured


def fit(targets: Sequence[Target], identity: Identity, simulate: Simulate,
        folder: Path) -> Fit:
    """The knobs of the lowest score (see the module's docstring); `folder` receives one
    trial profile file per setting tried (the simulations read them as a scenario would)."""
    tried: dict[tuple[float, float, float], tuple[Errors, list[Simulated]]] = {}

    def score(knobs: Knobs) -> float:
        key = _key(knobs)
        if key not in tried:
            path = folder / f"trial-{len(tried):04d}.yaml"
            path.write_text(profile_yaml(identity, knobs, {}, {}), encoding="utf-8")
            simulated = simulate(path)
            tried[key] = errors(targets, simulated), simulated
        return tried[key][0].score

    start = Knobs()
    best = min((Knobs(s, o, 1.0) for s in SCALES for o in OVERHEADS_S), key=score)
    best = min((Knobs(best.step_time_scale, best.overhead_s, p) for p in PREFILL_SCALES),
               key=score)
    best = _pattern_search(best, score, lambda: len(tried) >= MAX_EVALUATIONS)
    score(start)
    before, simulated_before = tried[_key(start)]
    after, simulated_after = tried[_key(best)]
    return Fit(best, before, after, simulated_before, simulated_after, len(tried),
               len(tried) * len(targets))


def _pattern_search(knobs: Knobs, score: Callable[[Knobs], float],
                    spent: Callable[[], bool]) -> Knobs:
    """Coordinate moves in (log scale, overhead, log prefill), each step halved once no
    move along any coordinate improves, until every step is below FINAL_STEPS."""
    point = [math.log(knobs.step_time_scale), knobs.overhead_s, math.log(knobs.prefill_scale)]
    steps = list(FIRST_STEPS)
    best = score(knobs)
    while any(s >= f for s, f in zip(steps, FINAL_STEPS, strict=True)) and not spent():
        moved = False
        for axis in range(3):
            for sign in (1.0, -1.0):
                trial = list(point)
                trial[axis] += sign * steps[axis]
                candidate = _knobs(trial)
                value = score(candidate)
                if value < best:
                    best, point, moved = value, _coordinates(candidate), True
                    break
        if not moved:
            steps = [s / 2 for s in steps]
    return _knobs(point)


def _knobs(point: list[float]) -> Knobs:
    """Knobs at a point of the search, clipped to BOUNDS."""
    (s_lo, s_hi), (o_lo, o_hi), (p_lo, p_hi) = BOUNDS
    return Knobs(min(max(math.exp(point[0]), s_lo), s_hi), min(max(point[1], o_lo), o_hi),
                 min(max(math.exp(point[2]), p_lo), p_hi))


def _coordinates(knobs: Knobs) -> list[float]:
    return [math.log(knobs.step_time_scale), knobs.overhead_s, math.log(knobs.prefill_scale)]


def _key(knobs: Knobs) -> tuple[float, float, float]:
    """Settings that differ below the final steps are the same setting."""
    return (round(knobs.step_time_scale, 4), round(knobs.overhead_s, 6),
            round(knobs.prefill_scale, 4))


def profile_yaml(identity: Identity, knobs: Knobs, fit_error: dict[str, Any],
                 fitted_on: dict[str, Any]) -> str:
    """The `kind: adjusted` profile file (`sim.steptime.library.AdjustedProfileFile`)."""
    mapping = {"kind": "adjusted", "name": identity.name, "base": identity.base,
               "gpu": identity.gpu, "model": identity.model, "engine": identity.engine,
               "tensor_parallel": identity.tensor_parallel, "dtype": identity.dtype,
               "step_time_scale": round(knobs.step_time_scale, 4),
               "overhead_s": round(knobs.overhead_s, 6),
               "prefill_scale": round(knobs.prefill_scale, 4),
               "fit_error": fit_error, "fitted_on": fitted_on}
    return yaml.safe_dump(mapping, sort_keys=False, width=100)


def fitted_profile(result: Fit, identity: Identity, targets: Sequence[Target],
                   files: Sequence[str]) -> str:
    """The profile file of a fit: the knobs, the errors before and after, the points."""
    points = [{"id": t.id, "measured_ms": {"ttft": t.ttft_ms, "tpot": t.tpot_ms},
               "simulated_before_ms": _pair(before), "simulated_after_ms": _pair(after)}
              for t, before, after in zip(targets, result.simulated_before,
                                          result.simulated_after, strict=True)]
    fit_error = {"before": _rounded(asdict(result.before)),
                 "after": _rounded(asdict(result.after))}
    fitted_on = {"files": list(files), "points": points, "settings": result.settings,
                 "simulations": result.simulations,
                 "objective": "(median |error| of TTFT + median |error| of TPOT) / 2 "
                              f"+ {TIE_BREAK:g} × mean |error|"}
    return profile_yaml(identity, result.knobs, fit_error, fitted_on)


def _pair(simulated: Simulated) -> dict[str, float | None]:
    ttft, tpot = simulated
    return {"ttft": None if ttft is None else round(ttft, 3),
            "tpot": None if tpot is None else round(tpot, 4)}


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in values.items()}
