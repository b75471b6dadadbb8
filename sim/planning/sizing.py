"""Sizing every option for every period: capacity probe, first guess, search, final runs.

Per option, once: its saturation throughput per replica (one replica run overloaded, the
sweep's probe). Per period: the first guess from that capacity, then the search on the
period's peak rates. What each search learns is kept: a fleet too small at some per-draw
rates is too small at rates at least as high in every draw, and a fleet that was enough at
higher rates is a good place to start. So later periods start from what earlier ones
found, and a period with more demand is never given fewer replicas than one with less.
The chosen fleet is then run at the period's average rates too, when the forecast has them,
for its first `plan.target.draws` draws (they price it; they do not judge it).

A disaggregated option with `split: search` is sized in both pools instead
(`sim.planning.split`): its first guess per pool from the closed-form capacity of one
replica of each (`sim.planning.poolcapacity`, no probe run), then the split search on the
period's peak rates, with the same draws, rule and confidence as every other option, so
the comparison is fair. Every split it tries may go on past the first look (no cut-off
calls a close split infeasible), as its moves in two dimensions lean on every verdict: a
close split wrongly cut off sends the search to dearer splits (so it costs more runs than
an aggregated search, which rations close calls). Its periods are searched each on its
own (a split learnt at one rate does not bound another's in two dimensions as simply). A
`split: ratio` option is sized like an aggregated one, in units of its pools
(`Option.split_of`).

A heterogeneous option (`deployment.pools`: two pools split by prompt size) is sized by the
same split search over its two pools' counts, from each pool's closed-form guess on its
share of the prompts (`sim.planning.poolshares`), likewise with no probe run.

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
from sim.montecarlo.overrides import with_values
from sim.planning.forecast import Demand
from sim.planning.options import (
    DECODE_REPLICAS_KEY,
    PREFILL_REPLICAS_KEY,
    Fleet,
    Option,
    merge_patch,
)
from sim.planning.poolcapacity import PoolCapacity, pool_capacity, split_guess
from sim.planning.poolshares import PoolShares, pool_shares, pools_guess
from sim.planning.runs import EXTENDED_PER_SEARCH, Draws, Evaluator, Verdict
from sim.planning.search import Guess, first_guess, smallest_feasible
from sim.planning.split import SPAN, Split, cheapest_split
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
    evaluated: tuple[Fleet, ...]
    verdicts: tuple[Verdict, ...]  # the rule's verdict on each fleet size evaluated
    share: Share | None  # P(SLO met) of the chosen fleet at the peak, with its interval
    simulations: int  # runs the search made
    average_simulations: int  # runs of the chosen fleet at the average rates
    peak_rows: list[dict[str, Any]]
    average_rows: list[dict[str, Any]] | None
    split: Split | None = None  # a searched split or pools' counts (`replicas`: their sum)
    second_guess: Guess | None = None  # a searched split's second pool's guess (decode, or
    # the fleet's second pool; `guess` is the first pool's)

    @property
    def fleet(self) -> Fleet | None:
        """What the option was sized to: its split, else its replicas (or units)."""
        return self.split if self.split is not None else self.replicas


@dataclass(frozen=True)
class OptionSizing:
    option: Option
    capacity: Capacity | PoolCapacity | PoolShares
    notes: list[str]
    periods: list[Sized] = field(default_factory=list)


def size_all(options: Sequence[Option], demands: Sequence[Demand], target: Target,
             limit: int, evaluator: Evaluator, draws: Draws,
             probe_seed: int) -> list[OptionSizing]:
    def one(option: Option) -> OptionSizing:
        if option.searched:
            return size_split_option(option, demands, target, limit, evaluator, draws,
                                     probe_seed)
        capacity = replica_capacity(option, probe_seed)
        return size_option(option, demands, target, option.fleet_limit(limit), evaluator,
                           draws, capacity)

    with ThreadPoolExecutor(max_workers=len(options)) as threads:
        return list(threads.map(one, options))


def replica_capacity(option: Option, seed: int) -> Capacity:
    """Saturation throughput of one replica of the option, static (no faults, no scaling);
    of one unit of its pools for a disaggregated option."""
    probe = merge_patch(option.raw, STATIC_PROBE)
    if option.unit is not None:
        probe = with_values(probe, {PREFILL_REPLICAS_KEY: option.unit[0],
                                    DECODE_REPLICAS_KEY: option.unit[1]}, {})
    return measure(probe, option.base_dir, seed)


def size_split_option(option: Option, demands: Sequence[Demand], target: Target, limit: int,
                      evaluator: Evaluator, draws: Draws, seed: int) -> OptionSizing:
    """A `split: search` option sized in both pools for every period, or a heterogeneous
    one in its two pools (module docstring); `seed` draws the pools' shares."""
    sampled, notes = draws.sampled(option)
    slo = option.scenario.slo
    capacity: PoolCapacity | PoolShares = (pool_shares(option, seed) if option.pooled
                                           else pool_capacity(option))
    result = OptionSizing(option, capacity, notes)
    for demand in demands:
        rates = demand.peak_draws
        if isinstance(capacity, PoolShares):
            first, second = pools_guess(max(rates), capacity, target, slo.ttft_s,
                                        slo.percentile, limit)
        else:
            first, second = split_guess(max(rates), capacity, target, slo.ttft_s,
                                        slo.percentile, limit)
        runs_before = evaluator.runs.get(option.index, 0)
        decided: dict[Split, Verdict] = {}

        def feasible(p: int, d: int, rates: tuple[float, ...] = rates,
                     decided: dict[Split, Verdict] = decided) -> bool:
            decided[(p, d)] = evaluator.verdict(option, (p, d), rates, sampled)
            return decided[(p, d)].feasible

        found = cheapest_split(feasible, (first.replicas, second.replicas),
                               option.pool_gpus, limit,
                               gpu_hour_usd=option.pool_gpu_hour_usd)
        searched = evaluator.runs.get(option.index, 0) - runs_before
        peak_rows, average_rows, share = [], None, None
        if found.split is not None:
            chosen = decided[found.split]
            peak_rows, share = chosen.rows, chosen.share
            if demand.average_draws is not None:
                average_rows = evaluator.rows(option, found.split, demand.average_draws,
                                              sampled, evaluator.first)
        result.periods.append(Sized(
            demand, None if found.split is None else sum(found.split), first,
            found.evaluated, tuple(decided[s] for s in found.evaluated), share, searched,
            evaluator.runs.get(option.index, 0) - runs_before - searched, peak_rows,
            average_rows, found.split, second))
    return result


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


def max_splits(limit: int, span: int = SPAN) -> int:
    """The most splits `split.cheapest_split` tests: the anchor's doublings, then two rounds
    (the first, and the wider one) of a floor search and up to span + 1 decode searches,
    each at most `max_fleet_sizes(limit)` fleets."""
    return math.ceil(math.log2(limit)) + 1 + 2 * (span + 2) * max_fleet_sizes(limit)


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
