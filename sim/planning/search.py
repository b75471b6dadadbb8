"""The fewest replicas that meet the target, found with few simulations.

P(SLO met) grows with the fleet (more replicas under the same traffic never make queueing
worse), so "meets the target" is a monotone predicate in the replica count and its boundary
can be found by galloping then bisection: from a first guess, step down (or up) by 1, 2, 4, …
until the predicate flips, then halve the gap. A good guess costs two evaluations (the
answer and the one below it); a guess k off costs about 2·log2(k) more.

The first guess comes from queueing theory. Each replica's saturation throughput μ (requests
per second, measured once per option by an overloaded run) gives c₁ = ⌈λ / (μ·u)⌉ replicas at
target utilisation u. Treating the fleet as c servers of rate μ (an M/M/c stand-in for the
M/G/c it is), Erlang's C formula gives the probability a request waits, and
P(wait > t) = C(c, λ/μ) · exp(−(cμ − λ)·t); c₂ is the fewest replicas keeping that below
1 − percentile/100 for t = the TTFT target. The guess is max(c₁, c₂).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Found:
    replicas: int | None  # None: infeasible up to the limit
    evaluated: tuple[int, ...]  # fleet sizes tested, in order


def smallest_feasible(feasible: Callable[[int], bool], guess: int, infeasible_up_to: int,
                      limit: int) -> Found:
    """The smallest n in (infeasible_up_to, limit] with feasible(n), assuming feasible is
    monotone and every n ≤ infeasible_up_to is already known to be infeasible."""
    evaluated: list[int] = []

    def test(n: int) -> bool:
        evaluated.append(n)
        return feasible(n)

    lo = infeasible_up_to
    if lo >= limit:
        return Found(None, ())
    n = min(max(guess, lo + 1), limit)
    if test(n):
        hi, step = n, 1
        while hi - 1 > lo:
            m = max(hi - step, lo + 1)
            if not test(m):
                lo = m
                break
            hi, step = m, step * 2
    else:
        lo, step = n, 1
        while True:
            if lo >= limit:
                return Found(None, tuple(evaluated))
            m = min(lo + step, limit)
            if test(m):
                hi = m
                break
            lo, step = m, step * 2
    while hi - lo > 1:
        m = (lo + hi) // 2
        if test(m):
            hi = m
        else:
            lo = m
    return Found(hi, tuple(evaluated))


def erlang_c(servers: int, offered: float) -> float:
    """Probability an arrival waits in M/M/c with c servers and offered load a = λ/μ < c
    (Erlang B by its stable recursion, then C from B)."""
    b = 1.0
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    rho = offered / servers
    return b / (1.0 - rho * (1.0 - b))


@dataclass(frozen=True)
class Guess:
    replicas: int
    by_utilization: int  # c₁
    by_waiting: int  # c₂


def first_guess(rate_per_s: float, capacity_per_s: float, utilization: float,
                wait_s: float, percentile: float, limit: int) -> Guess:
    """max(c₁, c₂) as described above, capped at `limit`."""
    c1 = max(1, math.ceil(rate_per_s / (capacity_per_s * utilization)))
    offered = rate_per_s / capacity_per_s
    tail = 1.0 - percentile / 100.0
    c2 = max(1, math.floor(offered) + 1)
    while c2 < limit and erlang_c(c2, offered) * math.exp(
            -(c2 * capacity_per_s - rate_per_s) * wait_s) > tail:
        c2 += 1
    return Guess(min(max(c1, c2), limit), c1, c2)
