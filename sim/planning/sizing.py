"""Sizing every option for every period: capacity probe, first guess, search, final runs.

Per option, once: its saturation throughput per replica (one replica run overloaded, the
sweep's probe). Per period: the first guess from that capacity, then the search on the
period's peak rates. What each search learns is kept: a fleet too small at some per-draw
rates is too small at rates at least as high in every draw, and a fleet that was enough at
higher rates is a good place to start. So later periods start from what earlier ones
found, and a period with more demand is never given fewer replicas than one with less.
The chosen fleet is then run at the period's average rates too, when the forecast has them,
for its first `plan.target.draws` draws (they price it; they do not judge it).

Options are sized side by side (one thread each, sharing the executor's workers); periods
of one option in forecast order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sim.montecarlo.capacity import Capacity, measure
from sim.montecarlo.confidence import Share
from sim.planning.forecast import Demand
from sim.planning.options import Option, merge_patch
from sim.planning.runs import EXTENDED_PER_SEARCH, Draws, Evaluator, Verdict
from sim.planning.search import Guess, first_guess, smallest_feasible
from sim.runner import budget
from sim.scenario.planning import Target
from sim.scenario.workload import GammaArrivals, PoissonArrivals

STATIC_PROBE = {"deployment": {"replicas": 1, "failures": None, "spot": None, "outage": None,
                               "autoscaling": None}}


@dataclass(frozen=True)
class Sized:
    demand: Demand
    replicas: int | None  # None: the target is out of reach within the replica limit
    guess: Guess
    evaluated: tuple[int, ...]
    verdicts: tuple[Verdict, ...]  # the rule's verdict on each fleet size evaluated
    share: Share | None  # P(SLO met) of the chosen fleet at the peak, with its interval
    simulations: int  # runs the search made
    average_simulations: int  # runs of the chosen fleet at the average rates
    peak_rows: list[dict[str, Any]]
    average_rows: list[dict[str, Any]] | None


@dataclass(frozen=True)
class OptionSizing:
    option: Option
    capacity: Capacity
    notes: list[str]
    periods: list[Sized] = field(default_factory=list)


def size_all(options: Sequence[Option], demands: Sequence[Demand], target: Target,
             limit: int, evaluator: Evaluator, draws: Draws,
             probe_seed: int) -> list[OptionSizing]:
    def one(option: Option) -> OptionSizing:
        capacity = replica_capacity(option, probe_seed)
        return size_option(option, demands, target, limit, evaluator, draws, capacity)

    with ThreadPoolExecutor(max_workers=len(options)) as threads:
        return list(threads.map(one, options))


def replica_capacity(option: Option, seed: int) -> Capacity:
    """Saturation throughput of one replica of the option, static (no faults, no scaling)."""
    return measure(merge_patch(option.raw, STATIC_PROBE), option.base_dir, seed)


def size_option(option: Option, demands: Sequence[Demand], target: Target, limit: int,
                evaluator: Evaluator, draws: Draws, capacity: Capacity) -> OptionSizing:
    sampled, notes = draws.sampled(option)
    slo = option.scenario.slo
    known: list[tuple[tuple[float, ...], int, bool]] = []  # (per-draw rates, replicas, ok)
    result = OptionSizing(option, capacity, notes)
    for demand in demands:
        rates = demand.peak_draws
        below = [n for r, n, ok in known if not ok and _all_le(r, rates)]
        above = [n for r, n, ok in known if ok and _all_le(rates, r)]
        lo = max(below, default=option.min_replicas - 1)
        guess = first_guess(max(rates), capacity.requests_per_s, target.utilization,
                            slo.ttft_s, slo.percentile, limit)
        start = guess.replicas if not above else min(guess.replicas, min(above))
        runs_before = evaluator.runs.get(option.index, 0)

        decided: dict[int, Verdict] = {}

        def feasible(n: int, rates: tuple[float, ...] = rates,
                     decided: dict[int, Verdict] = decided) -> bool:
            extended = sum(v.share.draws > evaluator.first for v in decided.values())
            decided[n] = evaluator.verdict(option, n, rates, sampled,
                                           extend=extended < EXTENDED_PER_SEARCH)
            return decided[n].feasible

        found = smallest_feasible(feasible, start, lo, limit)
        verdicts = tuple(decided[n] for n in found.evaluated)
        for n in found.evaluated:
            ok = found.replicas is not None and n >= found.replicas
            known.append((rates, n, ok))
        searched = evaluator.runs.get(option.index, 0) - runs_before
        peak_rows, average_rows, share = [], None, None
        if found.replicas is not None:
            known.append((rates, found.replicas - 1, False))
            chosen = decided[found.replicas]
            peak_rows, share = chosen.rows, chosen.share
            if demand.average_draws is not None:
                average_rows = evaluator.rows(option, found.replicas, demand.average_draws,
                                              sampled, evaluator.first)
        else:
            known.append((rates, limit, False))
        result.periods.append(Sized(
            demand, found.replicas, guess, found.evaluated, verdicts, share, searched,
            evaluator.runs.get(option.index, 0) - runs_before - searched, peak_rows,
            average_rows))
    return result


def _all_le(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True))


def max_fleet_sizes(limit: int) -> int:
    """The most fleet sizes `smallest_feasible` tests below `limit` replicas: the first
    guess, a gallop of at most ⌈log2 limit⌉ + 1 steps and a bisection of at most ⌈log2
    limit⌉ (exhaustively, the most for 256 is 16; this bound gives 18)."""
    return 2 * math.ceil(math.log2(limit)) + 2 if limit > 1 else 1


def requests_per_run(option: Option, shaped: bool = False) -> Callable[[float], float]:
    """The expected requests of one of the option's runs at a rate (with `shaped`, the peak
    rate of the plan's day shape and spikes), without validating a scenario per rate."""
    duration_s = option.scenario.duration_s
    if shaped and option.shaping is not None and not option.shaping.stationary:
        unit = PoissonArrivals.model_validate(option.shaping.arrival(1.0))
        return lambda rate: budget.arrival_requests(
            unit.model_copy(update={"rate_per_s": unit.rate_per_s * rate}), duration_s)
    arrival = option.scenario.workload.arrival
    # options.load: a plan's scenario has an open arrival process whose rate it sets
    assert isinstance(arrival, PoissonArrivals | GammaArrivals)
    return lambda rate: budget.arrival_requests(
        arrival.model_copy(update={"rate_per_s": rate}), duration_s)
