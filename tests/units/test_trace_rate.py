"""Time-varying demand and the new length distributions, against closed forms.

A non-homogeneous Poisson process puts Poisson(Λ) requests in a window whose integrated rate
is Λ, independently across windows, so Σ (N − Λ)² / Λ over k windows is χ² with k degrees of
freedom (mean k, sd √(2k)). Each test integrates λ(t) by hand and allows five sd.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.scenario.workload import WorkloadSpec
from sim.workload import generate, mean_tokens
from sim.workload.lengths import sample_lengths


def _arrivals(arrival: dict, horizon_s: float, seed: int = 0) -> np.ndarray:
    fixed = {"dist": "fixed", "value": 1}
    spec = WorkloadSpec.model_validate(
        {"arrival": arrival, "prompt_tokens": fixed, "output_tokens": fixed})
    names = ("arrivals", "prompt_tokens", "output_tokens")
    seeds = dict(zip(names, np.random.SeedSequence(seed).spawn(3), strict=True))
    return generate(spec, horizon_s, seeds).arrival_s


def _assert_poisson_counts(t: np.ndarray, edges: np.ndarray, expected: np.ndarray) -> None:
    counts, _ = np.histogram(t, edges)
    k = len(expected)
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    assert chi2 < k + 5 * math.sqrt(2 * k), (chi2, k)


def test_diurnal_profile_counts_per_hour() -> None:
    rate, p, peak_hour, start_hour = 5.0, 3.0, 14.0, 6.0
    arrival = {"process": "poisson", "rate_per_s": rate, "profile": "diurnal",
               "peak_to_trough": p, "peak_hour": peak_hour, "start_hour": start_hour}
    t = _arrivals(arrival, 2 * 86_400.0)
    assert np.all(np.diff(t) >= 0) and t.min() >= 0 and t.max() < 2 * 86_400
    a = (p - 1) / (p + 1)
    w = 2 * math.pi / 24

    def integral(h: float) -> float:  # ∫ rate·(1 + a·cos(w(h' − peak))) dh' in requests
        return rate * 3600 * (h + a * math.sin(w * (h - peak_hour)) / w)

    hours = np.arange(49.0)
    expected = np.diff([integral(start_hour + h) for h in hours])
    _assert_poisson_counts(t, hours * 3600, expected)
    # The busiest hour is at the peak, and peak/trough of the hourly counts is about p.
    counts, _ = np.histogram(t, hours * 3600)
    assert (start_hour + np.argmax(counts[:24]) + 0.5) % 24 == pytest.approx(peak_hour, abs=1)
    assert counts[:24].max() / counts[:24].min() == pytest.approx(p, rel=0.1)
    # rate_per_s is the mean over the day.
    assert len(t) / (2 * 86_400) == pytest.approx(rate, rel=0.01)


def test_rate_curve_is_piecewise_linear_with_steps_and_flat_ends() -> None:
    curve = [[0, 0], [100, 10], [200, 10], [200, 2], [300, 2]]
    span_mean = (100 * 5 + 100 * 10 + 100 * 2) / 300  # 5.666…
    arrival = {"process": "poisson", "rate_per_s": span_mean, "rate_curve": curve}
    edges = np.arange(0.0, 401.0, 25.0)

    def cumulative(x: float) -> float:  # ∫0^x λ, λ held at 2 beyond the last point
        if x <= 100:
            return 0.05 * x**2
        if x <= 200:
            return 500 + 10 * (x - 100)
        return 1500 + 2 * (x - 200)

    expected = np.diff([cumulative(x) for x in edges])
    runs = [_arrivals(arrival, 400.0, seed) for seed in range(40)]
    _assert_poisson_counts(np.concatenate(runs), edges, 40 * expected)
    # rate_per_s rescales the curve: double it, double every count.
    doubled = {**arrival, "rate_per_s": 2 * span_mean}
    runs = [_arrivals(doubled, 400.0, seed) for seed in range(40)]
    _assert_poisson_counts(np.concatenate(runs), edges, 80 * expected)


def test_spikes_multiply_the_rate() -> None:
    arrival = {"process": "poisson", "rate_per_s": 20.0,
               "spikes": [{"at_s": 100, "duration_s": 50, "multiplier": 4},
                          {"at_s": 130, "duration_s": 40, "multiplier": 0.5},
                          {"at_s": 250, "duration_s": 10, "multiplier": 0}]}
    edges = np.arange(0.0, 301.0, 10.0)
    factor = np.ones(30)
    factor[10:15] *= 4
    factor[13:17] *= 0.5
    factor[25] = 0
    t = _arrivals(arrival, 300.0)
    keep = factor > 0
    counts, _ = np.histogram(t, edges)
    assert counts[~keep].sum() == 0
    _assert_poisson_counts(t[(t < 250) | (t >= 260)], edges[:26], 200 * factor[:25])


def test_constant_rate_poisson_is_unchanged_by_the_new_keys() -> None:
    # No profile, curve or spikes: the renewal generator, bit for bit (existing seeds hold).
    plain = _arrivals({"process": "poisson", "rate_per_s": 3.0}, 500.0, seed=4)
    empty = _arrivals({"process": "poisson", "rate_per_s": 3.0, "spikes": []}, 500.0, seed=4)
    assert np.array_equal(plain, empty)


# ---- new length distributions ---------------------------------------------------------------

MIXTURE = {"dist": "lognormal_mixture", "weights": [1, 3], "means": [100, 10_000],
           "sigmas": [0.3, 0.4]}
CDF = {"dist": "empirical_cdf", "cdf": [[10, 0.2], [100, 0.5], [100, 0.7], [1000, 1.0]]}


def _lengths(spec: dict, n: int, seed: int = 0) -> np.ndarray:
    parsed = WorkloadSpec.model_validate(
        {"arrival": {"process": "poisson", "rate_per_s": 1}, "prompt_tokens": spec,
         "output_tokens": spec}).prompt_tokens
    assert sample_lengths(parsed, np.random.default_rng(seed), 10).tokens.min() >= 1
    return parsed, sample_lengths(parsed, np.random.default_rng(seed), n).tokens


@pytest.mark.parametrize("spec", [MIXTURE, CDF], ids=["mixture", "cdf"])
def test_new_length_distributions_know_their_mean(spec: dict) -> None:
    parsed, tokens = _lengths(spec, 400_000)
    assert tokens.mean() == pytest.approx(mean_tokens(parsed), rel=0.01)


def test_mixture_components() -> None:
    _, tokens = _lengths(MIXTURE, 200_000)
    small = tokens < 1000  # over five sigmas from either component
    assert small.mean() == pytest.approx(0.25, abs=0.01)  # weights are relative: 1 : 3
    assert np.log(tokens[small]).std() == pytest.approx(0.3, rel=0.05)
    assert np.log(tokens[~small]).std() == pytest.approx(0.4, rel=0.05)
    assert tokens[~small].mean() == pytest.approx(10_000, rel=0.02)
    assert mean_tokens(_lengths(MIXTURE, 1)[0]) == pytest.approx(0.25 * 100 + 0.75 * 10_000)


def test_empirical_cdf_is_the_inverse_cdf() -> None:
    _, tokens = _lengths(CDF, 200_000)
    assert np.mean(tokens == 10) == pytest.approx(0.2, abs=0.005)  # point mass at the start
    assert np.mean(tokens <= 100) == pytest.approx(0.7, abs=0.005)  # 0.5–0.7 sit at 100
    assert np.mean(tokens <= 550) == pytest.approx(0.85, abs=0.005)  # linear in between
    assert tokens.max() == 1000
