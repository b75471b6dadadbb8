"""Sampling uncertain inputs: quantile functions against closed forms, Latin hypercube
stratification, and draws that are plain Python values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.scenario.uncertain import (
    Choice,
    Lognormal,
    Normal,
    Triangular,
    Uniform,
    normal_ppf,
    sample,
    uniforms,
)


def test_normal_quantile_inverts_the_error_function() -> None:
    u = np.concatenate([np.linspace(1e-6, 0.02, 50), np.linspace(0.02, 0.98, 200),
                        np.linspace(0.98, 1 - 1e-6, 50)])
    x = normal_ppf(u)
    cdf = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x])
    density = np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    error = (cdf - u) / density  # one Newton step: how far x is from the true quantile
    assert (np.abs(error) <= 1.2e-9 * np.abs(x) + 1e-12).all()  # Acklam's stated accuracy
    assert normal_ppf(np.array([0.5]))[0] == 0.0
    assert normal_ppf(np.array([0.975]))[0] == pytest.approx(1.959963984540054, rel=1e-8)


def test_latin_hypercube_puts_one_draw_in_each_stratum_of_each_input() -> None:
    n = 37
    u = uniforms(n, 4, "lhs", np.random.default_rng(5))
    assert u.shape == (n, 4) and ((u >= 0) & (u < 1)).all()
    for column in u.T:
        assert sorted(np.floor(column * n).astype(int)) == list(range(n))


def test_plain_monte_carlo_is_not_stratified_but_uniform() -> None:
    u = uniforms(20_000, 1, "mc", np.random.default_rng(6))[:, 0]
    assert len(set(np.floor(u[:20] * 20).astype(int))) < 20  # collisions, unlike LHS
    assert u.mean() == pytest.approx(0.5, abs=3 * math.sqrt(1 / 12 / u.size))


def test_quantiles_at_known_points() -> None:
    u = np.array([0.0, 0.5, 0.999999])
    assert list(Uniform(dist="uniform", low=2.0, high=3.0).ppf(u)[:2]) == [2.0, 2.5]
    tri = Triangular(dist="triangular", low=1.0, mode=2.0, high=4.0)
    # CDF at the mode is (mode − low) / (high − low) = 1/3.
    assert tri.ppf(np.array([1 / 3]))[0] == pytest.approx(2.0)
    assert tri.ppf(np.array([0.0]))[0] == 1.0
    normal = Normal(dist="normal", mean=10.0, std=2.0)
    assert normal.ppf(np.array([0.5]))[0] == 10.0
    choice = Choice(dist="choice", values=["a", "b", "c"], weights=[1, 0, 3])
    assert list(choice.ppf(np.array([0.0, 0.24, 0.25, 0.99]))) == ["a", "a", "c", "c"]


def test_lognormal_draws_have_the_requested_mean() -> None:
    spec = Lognormal(dist="lognormal", mean=250.0, sigma=0.5)
    draws = spec.ppf(uniforms(4000, 1, "lhs", np.random.default_rng(1))[:, 0])
    sd = 250.0 * math.sqrt(math.exp(0.25) - 1)
    assert draws.mean() == pytest.approx(250.0, abs=4 * sd / math.sqrt(draws.size))


def test_sample_gives_one_mapping_of_plain_values_per_draw() -> None:
    specs = {"cost.gpu_hour_usd": Uniform(dist="uniform", low=2.0, high=3.0),
             "gpu": Choice(dist="choice", values=["h100-sxm", "h200"]),
             "deployment.replicas": Choice(dist="choice", values=[2, 4])}
    draws = sample(specs, 6, "lhs", np.random.default_rng(3))
    assert len(draws) == 6
    for draw in draws:
        assert list(draw) == list(specs)
        assert type(draw["cost.gpu_hour_usd"]) is float and 2.0 <= draw["cost.gpu_hour_usd"] < 3.0
        assert draw["gpu"] in ("h100-sxm", "h200")
        assert type(draw["deployment.replicas"]) is int
    # Stratified over two equally likely values: each comes up exactly half the time.
    assert sorted(d["gpu"] for d in draws) == ["h100-sxm"] * 3 + ["h200"] * 3
    again = sample(specs, 6, "lhs", np.random.default_rng(3))
    assert again == draws
