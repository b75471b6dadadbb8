"""The cheapest split of a fleet into two pools that meets the target, found with few
simulations: a disaggregated fleet's prefill:decode split, or a heterogeneous fleet's two
pools (`deployment.pools` under `pool_split: size`). Below, P counts the first pool's
replicas (prefill), D the second's (decode).

A fleet of two pools has two counts, P and D replicas, and takes P·g_p + D·g_d GPUs (g: one
replica's GPUs in that pool), each pool's at its price per GPU-hour (the scenario's, unless
a pool has its own). The cheapest split costs least per hour; ties go to fewer GPUs, then
to fewer replicas of the first pool. Costs are compared exactly (as fractions), so a tie is
a tie.

What is monotone. A replica added to either pool never makes a request wait longer (the
aggregated search's argument, pool by pool: more prefill replicas hand the decode pool the
same requests, only sooner; under a size split each pool serves the prompts its bound gives
it whatever the counts, so a replica added to one pool leaves the other's requests alone
and shortens its own pool's queues), so "meets the target" does not turn false as P grows
at fixed D, nor as D grows at fixed P. Hence for each P the fewest feasible D*(P) is the
boundary of a monotone predicate (`search.smallest_feasible` finds it), and D*(P) does not
grow with P. (A load split is not searched: there an added replica of a slower pool can
take a request a faster one would have served sooner.)

The search:
1. An anchor: the guess with an ample decode pool, (P0, 2·D0), then both doubled until
   feasible (none up to the limit in both pools: the option cannot meet the target). Its
   decode count is D_hi.
2. The prefill floor: the fewest P feasible beside D_hi decode replicas, by the same gallop
   and bisection in P. Below the floor no D ≤ D_hi is feasible: that is the cheap test of a
   prefill pool too small to meet the TTFT target at any size of decode pool.
3. P by P upward from the floor: D*(P) ≤ D*(P − 1), and only a D whose split beats the
   best so far (fewer GPUs, or as many and fewer prefill) can matter, so D*(P) is sought at
   or below the smaller of the two; when that top D is infeasible no D at this P matters,
   and the step cost one evaluation. It stops when one decode replica beside P prefill
   ones no longer beats the best, or `span` prefill counts past the floor.
4. A P below the floor could only win with more than D_hi decode replicas. When one prefill
   replica and D_hi + 1 decode replicas would beat the best, D_hi rises to the most decode
   replicas such a split could have and steps 2 and 3 run once more (what they tested is
   remembered, so only new fleets cost runs).

Given monotonicity, the split found is the cheapest among every P from 1 to the floor plus
`span` (with `span` ≥ the limit, the cheapest of all) unless the wider round of step 4 moves
the floor down and finds a split so much cheaper that a yet wider one could beat it, which
the search does not try: P below the floor are ruled out by step 4, P in the span each by
its own D*(P) or a failed top. It does not look past the span:
more prefill replicas than that saving more decode replicas than they cost, which a decode
pool whose load does not depend on P (it gets the same requests) rarely allows; nor do two
pools split by size, each with its own requests (only the fleet-wide percentile couples
them: a first pool well under the target leaves the second a little more of the misses).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import partial

from sim.planning.search import smallest_feasible

Split = tuple[int, int]  # (first pool's replicas, second's): (prefill, decode)
SPAN = 3  # first-pool counts past the floor the search compares


@dataclass(frozen=True)
class SplitFound:
    split: Split | None  # None: infeasible up to the limit in both pools
    evaluated: tuple[Split, ...]  # splits tested, in order, each once


def split_text(split: Split) -> str:
    """`1P:2D`: prefill and decode replicas, as disaggregated deployments are named."""
    return f"{split[0]}P:{split[1]}D"


def cheapest_split(feasible: Callable[[int, int], bool], guess: Split,
                   gpus_per_replica: Split, limit: int, span: int = SPAN,
                   gpu_hour_usd: tuple[float, float] = (1.0, 1.0)) -> SplitFound:
    """The cheapest feasible split with both counts in [1, limit], searched as the module
    docstring says from `guess` (first pool, second: prefill, decode); `gpus_per_replica`
    and `gpu_hour_usd` per pool. Each split is asked of `feasible(p, d)` once."""
    known: dict[Split, bool] = {}
    evaluated: list[Split] = []

    def test(split: Split) -> bool:
        if split not in known:
            evaluated.append(split)
            known[split] = feasible(*split)
        return known[split]

    gp, gd = gpus_per_replica
    usd_p, usd_d = (Fraction(usd) * gpus for usd, gpus in zip(gpu_hour_usd,
                                                              gpus_per_replica,
                                                              strict=True))

    def key(split: Split) -> tuple[Fraction, int, int]:
        p, d = split
        return p * usd_p + d * usd_d, p * gp + d * gd, p

    def top_decode(p: int, best: Split | None, hi: int) -> int:
        """The most decode replicas (≤ hi) beside p prefill ones that still beat `best`,
        by bisection: a split's key grows with its decode replicas."""
        if best is None:
            return hi
        lo, up = 0, hi + 1  # (p, lo) beats best or lo is 0; (p, up) does not or up is hi + 1
        while up - lo > 1:
            mid = (lo + up) // 2
            if key((p, mid)) < key(best):
                lo = mid
            else:
                up = mid
        return lo

    p0, d0 = (min(max(n, 1), limit) for n in guess)

    def decode_at(p: int, d: int) -> bool:
        return test((p, d))

    def sized_at(p_hi: int, d_hi: int, best: Split | None) -> tuple[int, Split | None]:
        """Steps 2 and 3 with D_hi decode replicas, (p_hi, d_hi) known feasible: the floor,
        and the best split after."""
        floor = smallest_feasible(lambda p: test((p, d_hi)), min(p0, p_hi), 0,
                                  p_hi).replicas or p_hi
        hi = d_hi  # (floor, d_hi) is feasible, so is (p, d_hi) for every p ≥ floor
        for p in range(floor, min(limit, floor + span) + 1):
            top = top_decode(p, best, hi)
            if top < 1:
                break
            if top < hi and not test((p, top)):
                continue  # D*(p) > top: nothing at this p beats the best
            d = smallest_feasible(partial(decode_at, p), min(d0, top), 0, top).replicas
            if d is None:
                continue  # a draw-to-draw verdict broke monotonicity: keep what is known
            hi = d
            if best is None or key((p, d)) < key(best):
                best = (p, d)
        return floor, best

    scale = 1
    while True:
        p_hi, d_hi = min(limit, p0 * scale), min(limit, 2 * d0 * scale)
        if test((p_hi, d_hi)):
            break
        if (p_hi, d_hi) == (limit, limit):
            return SplitFound(None, tuple(evaluated))
        scale *= 2
    floor, best = sized_at(p_hi, d_hi, None)
    if best is not None and floor > 1:
        wider = top_decode(1, best, limit)
        if wider > d_hi:
            floor, best = sized_at(floor, wider, best)
    return SplitFound(best, tuple(evaluated))
