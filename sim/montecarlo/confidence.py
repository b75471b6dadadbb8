"""How sure a P(SLO met) is, from n independent draws that each met the SLO or did not.

**The interval** (plans and sweeps): k of n draws met the SLO; the Wilson score 95%
interval. It assumes nothing about the runs beyond their independence, and it shows how
little a few draws say: n of n gives a lower end of n / (n + 3.84), which reaches 0.95
only from 73 draws.

**The decision** (plans): Wald's sequential probability ratio test on the same verdicts.
Proving P ≥ 0.95 outright needs 59–73 all-pass draws per candidate fleet; the test instead
separates fleets clearly good enough from fleets clearly not, with stated error rates,
and spends draws only where the answer is close. For a required probability c (miss rate
q = 1 − c) it tests

    H₀: P = p₀ = max(1 − 4q, c / 2)    against    H₁: P = p₁ = 1 − q / 2

(at c = 0.95: p₀ = 0.80, p₁ = 0.975). After n draws with k met, the log likelihood ratio is
k·ln(p₁/p₀) + (n − k)·ln((1 − p₁)/(1 − p₀)); the fleet is feasible once it reaches
ln((1 − β)/α) and infeasible once it falls to ln(β/(1 − α)), α = β = 5%. Wald's bounds: a
fleet whose P is at most p₀ is called feasible with probability at most α, one whose P is
at least p₁ infeasible with probability at most β when the test may run on; between the
two (the indifference zone, around c) either answer may come. A cap on the draws adds to
β (simulated at c = 0.95, looking every 4 draws: a fleet at P = 0.975 is called infeasible
3% of the time with at most 64 draws, 13% with at most 32), never to α: a test still
undecided when the draws run out calls the fleet infeasible, which only makes false
"feasible" answers rarer. At c = 0.95 a fleet is called feasible after 15 straight met
draws (the Wilson interval then [0.80, 1]); two misses in the first few draws call it
infeasible. With c = 1 no fleet can be
shown good enough by sampling: every draw must meet the SLO and the test never stops early
in favour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054  # the two-sided 95% normal quantile
ERROR_RATE = 0.05  # α = β of the sequential test


@dataclass(frozen=True)
class Share:
    """An estimated P(SLO met) with its 95% interval, from `draws` draws of which `met` met."""

    probability: float
    low: float
    high: float
    draws: int
    met: int

    def interval(self) -> list[float]:
        return [self.low, self.high]


def wilson(met: int, draws: int) -> Share:
    """The share met, with the Wilson score 95% interval (draws ≥ 1)."""
    p = met / draws
    z2 = Z_95 * Z_95
    centre = (p + z2 / (2 * draws)) / (1 + z2 / draws)
    half = Z_95 * math.sqrt(p * (1 - p) / draws + z2 / (4 * draws * draws)) / (1 + z2 / draws)
    return Share(p, max(0.0, centre - half), min(1.0, centre + half), draws, met)


@dataclass(frozen=True)
class SequentialTest:
    """Wald's test above for a required P(SLO met) of `confidence`."""

    confidence: float

    @property
    def zone(self) -> tuple[float, float]:
        """(p₀, p₁): the probabilities the test tells apart."""
        miss = 1.0 - self.confidence
        return max(1.0 - 4.0 * miss, self.confidence / 2.0), 1.0 - miss / 2.0

    def verdict(self, met: int, draws: int, last: bool) -> bool | None:
        """Feasible (True), infeasible (False) or undecided (None) after `met` of `draws`;
        `last`: no more draws will come, so undecided is infeasible."""
        if self.confidence >= 1.0:  # nothing short of every draw will do
            return False if met < draws else (True if last else None)
        p0, p1 = self.zone
        ratio = (met * math.log(p1 / p0)
                 + (draws - met) * math.log((1.0 - p1) / (1.0 - p0)))
        if ratio >= math.log((1.0 - ERROR_RATE) / ERROR_RATE):
            return True
        if ratio <= math.log(ERROR_RATE / (1.0 - ERROR_RATE)) or last:
            return False
        return None

    def draws_to_accept(self) -> int:
        """The fewest draws, all met, that call a fleet feasible (c < 1)."""
        p0, p1 = self.zone
        return math.ceil(math.log((1.0 - ERROR_RATE) / ERROR_RATE) / math.log(p1 / p0) - 1e-12)
