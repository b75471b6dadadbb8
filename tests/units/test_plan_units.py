"""The planner's pieces against truths known without simulating: the search against every
monotone predicate, Erlang C against M/M/c closed forms, the forecast's shapes, the
reserved/on-demand mix against the break-even rule, and the option merge (RFC 7386)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.planning import forecast, mix
from sim.planning.options import merge_patch
from sim.planning.search import erlang_c, first_guess, smallest_feasible
from sim.scenario.planning import PlanSpec, Shape, Spike


@pytest.mark.parametrize("limit", [1, 7, 40])
def test_search_finds_every_threshold_from_every_start(limit: int) -> None:
    for threshold in range(1, 45):
        for known_bad in range(0, min(threshold, limit + 1)):
            for guess in range(1, 50):
                calls: list[int] = []

                def feasible(n: int, t: int = threshold, log: list = calls) -> bool:
                    log.append(n)
                    return n >= t

                found = smallest_feasible(feasible, guess, known_bad, limit)
                expected = threshold if threshold <= limit else None
                assert found.replicas == expected, (threshold, known_bad, guess, limit)
                assert list(found.evaluated) == calls
                assert len(set(calls)) == len(calls)  # nothing tested twice
                assert all(n > known_bad for n in calls)  # known answers not re-tested
                # Galloping + bisection: logarithmic in the distance from the guess.
                distance = abs(guess - threshold) + 1
                assert len(calls) <= 2 * math.ceil(math.log2(distance)) + 3


def test_a_right_guess_costs_two_evaluations() -> None:
    found = smallest_feasible(lambda n: n >= 9, 9, 0, 100)
    assert found.evaluated == (9, 8)
    found = smallest_feasible(lambda n: n >= 9, 9, 8, 100)  # the one below is known
    assert found.evaluated == (9,)


def test_erlang_c_matches_mmc_closed_forms() -> None:
    for a in (0.1, 0.5, 0.9):
        assert erlang_c(1, a) == pytest.approx(a)  # M/M/1: P(wait) = ρ
    # M/M/2 with a = 1 (ρ = 1/2): P(wait) = 2ρ² / (1 + ρ) = 1/3.
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    # Against the textbook sum for c = 5, a = 3.7.
    c, a = 5, 3.7
    top = a**c / math.factorial(c) * c / (c - a)
    bottom = sum(a**k / math.factorial(k) for k in range(c)) + top
    assert erlang_c(c, a) == pytest.approx(top / bottom)


def test_first_guess() -> None:
    # Utilisation: ⌈100 / (10 × 0.8)⌉ = 13; a huge TTFT budget makes waiting no constraint.
    guess = first_guess(100.0, 10.0, 0.8, wait_s=1e6, percentile=99, limit=500)
    assert (guess.replicas, guess.by_utilization, guess.by_waiting) == (13, 13, 11)
    # No time to wait at all: far more servers than the load needs.
    tight = first_guess(100.0, 10.0, 0.8, wait_s=1e-6, percentile=99, limit=500)
    assert tight.by_waiting > 13 and tight.replicas == tight.by_waiting
    assert first_guess(1e6, 1.0, 0.5, 1.0, 99, limit=64).replicas == 64


def _spec(**forecast_keys) -> PlanSpec:
    return PlanSpec.model_validate({"options": [{"name": "x"}], **forecast_keys})


def test_growth_names_and_rates() -> None:
    spec = _spec(growth={"start": {"name": "2027-11", "peak_rate_per_s": 100.0,
                                   "average_rate_per_s": 50.0},
                         "months": 4, "growth_per_month": 0.1})
    periods = forecast.periods(spec)
    assert [p.name for p in periods] == ["2027-11", "2027-12", "2028-01", "2028-02"]
    assert [p.peak_rate_per_s for p in periods] == pytest.approx([100, 110, 121, 133.1])
    assert [p.average_rate_per_s for p in periods] == pytest.approx([50, 55, 60.5, 66.55])
    other = _spec(growth={"start": {"name": "launch", "peak_rate_per_s": 1.0}, "months": 3,
                          "growth_per_month": 0.0})
    assert [p.name for p in forecast.periods(other)] == ["launch", "launch+1", "launch+2"]


def test_day_shapes_average_to_peak() -> None:
    diurnal = Shape(profile="diurnal", peak_to_trough=3.0, peak_hour=15.0)
    assert forecast.average_to_peak(diurnal) == pytest.approx(2 / 3)
    fractions = forecast.day_fractions(diurnal)
    assert fractions.max() == pytest.approx(1.0)
    assert fractions.min() == pytest.approx(1 / 3, rel=1e-4)
    assert fractions.mean() == pytest.approx(2 / 3, rel=1e-6)
    curve = Shape(rate_curve=[[0, 1.0], [100, 3.0]])  # mean 2 over its span, peak 3
    assert forecast.average_to_peak(curve) == pytest.approx(2 / 3)
    assert forecast.day_fractions(curve).mean() == pytest.approx(2 / 3, rel=1e-6)
    assert np.all(forecast.day_fractions(None) == 1.0)


def test_demand_draws_share_their_uniforms_across_periods() -> None:
    band = {"dist": "lognormal", "mean": 1.0, "sigma": 0.2}
    spec = _spec(periods=[{"name": "a", "peak_rate_per_s": 10.0, "uncertainty": band},
                          {"name": "b", "peak_rate_per_s": 20.0, "average_rate_per_s": 12.0,
                           "uncertainty": band}])
    u = np.array([0.1, 0.5, 0.9])
    a, b = forecast.demands(spec, u)
    assert b.peak_draws == pytest.approx([2 * x for x in a.peak_draws])
    assert b.average_draws == pytest.approx([0.6 * x for x in b.peak_draws])
    assert a.peak_draws[0] < a.peak_draws[1] < a.peak_draws[2]
    p5, p50, p95 = a.peak_band
    # Lognormal with mean 1: median exp(−σ²/2), quantiles exp(−σ²/2 ± 1.645σ).
    assert p50 == pytest.approx(10 * math.exp(-0.02), rel=1e-6)
    assert p95 == pytest.approx(10 * math.exp(-0.02 + 1.6448536 * 0.2), rel=1e-6)
    assert p5 == pytest.approx(10 * math.exp(-0.02 - 1.6448536 * 0.2), rel=1e-6)


def test_reserved_base_follows_the_break_even_rule() -> None:
    # Demand of 1, 2, 3 and 4 GPUs a quarter of the time each: the R-th GPU is needed
    # P(d ≥ R) = 1, 0.75, 0.5, 0.25 of the time, so at a price ratio of 0.6 reserving pays for
    # the first two GPUs and not the third.
    demand = np.repeat([[1.0, 2.0, 3.0, 4.0]], 3, axis=0)
    best = mix.best_mix(demand, reserved_usd=0.6, on_demand_usd=1.0)
    assert best.reserved_gpus == 2
    assert best.break_even_utilization == pytest.approx(0.6)
    # By hand: 2 reserved all the time, plus the on-demand GPUs above two (mean 0.75).
    assert best.usd_total == pytest.approx(3 * 730 * (2 * 0.6 + 0.75 * 1.0))
    assert best.usd_all_on_demand == pytest.approx(3 * 730 * 2.5)
    assert best.usd_all_reserved == pytest.approx(3 * 730 * 4 * 0.6)
    assert mix.best_mix(demand, 0.2, 1.0).reserved_gpus == 4  # below 0.25: reserve all
    assert mix.best_mix(demand, 1.1, 1.0).reserved_gpus == 0  # dearer than on demand


def test_demand_follows_the_day_in_whole_replicas() -> None:
    fractions = np.array([1.0, 0.5, 0.26])
    gpus = mix.demand_gpus([4, 8], 2, fractions)
    assert gpus.tolist() == [[8, 4, 4], [16, 8, 6]]  # ⌈4 × .26⌉ = 2 replicas = 4 GPUs


def test_merge_patch_is_rfc_7386() -> None:
    # Examples from RFC 7386, appendix A.
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge_patch({"a": "b"}, {"a": None}) == {}
    assert merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert merge_patch([1, 2], {"a": "b", "c": None}) == {"a": "b"}
    base = {"x": {"y": 1}}
    merge_patch(base, {"x": {"y": 2}})
    assert base == {"x": {"y": 1}}  # the base is not changed


def _rate_at(arrival: dict, t_s: float) -> float:
    from sim.scenario.workload import PoissonArrivals
    from sim.workload import rate

    return float(rate.rate_per_s(PoissonArrivals(**arrival), np.array([t_s]))[0])


def test_shaped_runs_put_the_shape_peak_mid_window_at_the_period_peak() -> None:
    diurnal = Shape(profile="diurnal", peak_to_trough=4.0, peak_hour=18.5)
    shaping = forecast.Shaping(diurnal, (), warmup_s=60.0, duration_s=600.0)
    arrival = shaping.arrival(50.0)
    assert _rate_at(arrival, 330.0) == pytest.approx(50.0)  # the middle of [60, 600)
    assert _rate_at(arrival, 0.0) < 50.0 and _rate_at(arrival, 599.0) < 50.0
    assert arrival["rate_per_s"] == pytest.approx(50.0 * 5 / 8)  # the day's mean
    # A steep rate curve: the run sees the stretch around its highest point, flat past its end.
    curve = Shape(rate_curve=[[0, 10.0], [1000, 40.0], [1100, 20.0]])
    stepped = forecast.Shaping(curve, (), warmup_s=0.0, duration_s=400.0).arrival(80.0)
    assert stepped["rate_curve"][0] == [0.0, pytest.approx(10 + 30 * 800 / 1000)]
    assert stepped["rate_curve"][-1] == [400.0, 20.0]
    assert _rate_at(stepped, 200.0) == pytest.approx(80.0)
    assert _rate_at(stepped, 300.0) == pytest.approx(40.0)
    spikes = forecast.Shaping(None, (Spike(multiplier=3.0, duration_s=30.0),), 60.0, 600.0)
    assert spikes.arrival(5.0) == {"process": "poisson", "rate_per_s": 5.0, "spikes": [
        {"at_s": 60.0, "duration_s": 30.0, "multiplier": 3.0}]}
    assert forecast.Shaping(None, (), 60.0, 600.0).stationary
