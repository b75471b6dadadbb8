"""How sure a P(SLO met) is: Wilson's interval in closed form and by coverage, the
sequential test's error rates on simulated verdicts, and where the planner's rule looks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.montecarlo.confidence import Z_95, SequentialTest, wilson
from sim.planning.runs import CHUNK, Draws, Evaluator, InlineExecutor


def test_wilson_in_closed_form() -> None:
    z2 = Z_95 ** 2
    eight = wilson(8, 8)
    assert (eight.low, eight.high) == (pytest.approx(8 / (8 + z2)), 1.0)
    half = wilson(5, 10)  # centre 1/2, half-width z·√(1/40 + z²/400)/(1 + z²/10)
    width = Z_95 * math.sqrt(1 / 40 + z2 / 400) / (1 + z2 / 10)
    assert (half.low, half.high) == (pytest.approx(0.5 - width), pytest.approx(0.5 + width))


def test_wilson_covers_the_true_probability_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(7)
    truth, draws, trials = 0.8, 40, 2000
    met = rng.binomial(draws, truth, trials)
    covered = np.mean([wilson(int(k), draws).low <= truth <= wilson(int(k), draws).high
                       for k in met])
    assert 0.93 <= covered <= 0.97  # 2,000 trials: a standard error of 0.5 points


def _called_feasible(truth: float, confidence: float, max_draws: int, trials: int,
                     seed: int) -> float:
    """The share of simulated fleets the test calls feasible, looking every CHUNK draws."""
    test = SequentialTest(confidence)
    rng = np.random.default_rng(seed)
    looks = sorted({*range(CHUNK, max_draws, CHUNK), max_draws})
    feasible = 0
    for _ in range(trials):
        verdicts = rng.random(max_draws) < truth
        for n in looks:
            called = test.verdict(int(verdicts[:n].sum()), n, last=n == max_draws)
            if called is not None:
                feasible += called
                break
    return feasible / trials


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95])
def test_the_sequential_test_keeps_its_error_rates(confidence: float) -> None:
    p0, p1 = SequentialTest(confidence).zone
    trials = 4000  # a standard error of at most 0.35 points at a 5% rate
    # α holds however few draws there are: running out of them only ever says infeasible.
    assert _called_feasible(p0, confidence, 32, trials, 1) <= 0.05 + 0.01
    assert _called_feasible(p0, confidence, 64, trials, 1) <= 0.05 + 0.01
    # β is Wald's when the test may run on (here 400 draws); a cap adds to it (the README
    # gives the planner's figures at its default cap).
    assert 1 - _called_feasible(p1, confidence, 400, trials, 2) <= 0.05 + 0.01
    # Well below the zone a fleet is almost never called feasible; above it almost always.
    assert _called_feasible(p0 - 0.1, confidence, 64, trials, 3) <= 0.01
    assert _called_feasible(min(1.0, p1 + 0.02), confidence, 64, trials, 4) >= 0.9


def test_the_old_eight_of_eight_rule_is_what_the_test_refuses() -> None:
    # Under "8 of 8 at 0.95" a fleet with P = 0.80 passed 0.8⁸ = 17% of the time; it is the
    # test's p₀, called feasible at most 5% of the time, and any fleet needs 15 met draws.
    assert _called_feasible(0.80, 0.95, 64, 4000, 6) <= 0.05 + 0.01
    test = SequentialTest(0.95)
    assert test.zone == (pytest.approx(0.80), pytest.approx(0.975))
    assert test.draws_to_accept() == 15
    assert test.verdict(14, 14, last=False) is None and test.verdict(15, 15, last=False)
    assert test.verdict(2, 4, last=False) is False  # two misses in four: clearly short
    assert test.verdict(8, 8, last=True) is False  # undecided when the draws run out
    assert wilson(15, 15).low == pytest.approx(0.796, abs=1e-3)  # what 15 of 15 vouches for


def test_certainty_needs_every_draw() -> None:
    test = SequentialTest(1.0)
    assert test.verdict(7, 8, last=False) is False
    assert test.verdict(8, 8, last=False) is None and test.verdict(8, 8, last=True) is True


def test_the_rule_looks_after_every_chunk_and_judges_feasible_at_two() -> None:
    draws = Draws.spawn(np.random.SeedSequence(1), 32)
    evaluator = Evaluator(InlineExecutor(), draws, 0.95, first=8)
    assert evaluator.looks() == [4, 8, 12, 16, 20, 24, 28, 32]
    assert (evaluator.first, evaluator.total) == (8, 32)
    single = Evaluator(InlineExecutor(), Draws.spawn(np.random.SeedSequence(1), 6), 0.95)
    assert single.looks() == [4, 6] and single.first == 6
