"""Length distributions own their draws, mean and variance: the moments agree with large
samples within their standard errors, the closed forms hold by hand, and the draws are the
numpy calls they always were (the same seed gives the same lengths)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import TypeAdapter

from sim.scenario.workload import LENGTH_DISTS, LengthSpec
from sim.workload.lengths import mean_tokens, sample_lengths

SAMPLES = 400_000
Z = 5.0  # standard errors allowed: a fixed seed, but room for any seed
ROUNDING_VARIANCE = 1 / 12  # rounding a continuous draw to whole tokens adds about this
EMPIRICAL_VALUES = np.array([3, 40, 40, 41, 250, 900, 900, 4_000], dtype=np.int64)

SPECS: dict[str, dict[str, Any]] = {
    "fixed": {"dist": "fixed", "value": 123},
    "uniform": {"dist": "uniform", "low": 10, "high": 300},
    "lognormal": {"dist": "lognormal", "mean": 800, "sigma": 0.6},
    "geometric": {"dist": "geometric", "mean": 40},
    "empirical": {"dist": "empirical", "path": "lengths.txt"},
    "lognormal_mixture": {"dist": "lognormal_mixture", "weights": [2, 1],
                          "means": [300, 3000], "sigmas": [0.4, 0.2]},
    "empirical_cdf": {"dist": "empirical_cdf",
                      "cdf": [[20, 0.1], [200, 0.6], [2000, 0.99], [8000, 1]]},
}


def parse(data: dict[str, Any]) -> Any:
    """The validated spec, with an empirical one's values as load_scenario reads them."""
    spec = TypeAdapter(LengthSpec).validate_python(data)
    if spec.dist == "empirical":
        spec = spec.model_copy(update={"values": EMPIRICAL_VALUES})
    return spec


def test_every_distribution_is_covered() -> None:
    assert set(SPECS) == set(LENGTH_DISTS)


@pytest.mark.parametrize("name", SPECS)
def test_mean_and_variance_match_a_large_sample(name: str) -> None:
    spec = parse(SPECS[name])
    draws = spec.draw(np.random.default_rng(7), SAMPLES).astype(np.float64)
    mean, variance = draws.mean(), draws.var()
    fourth = np.mean((draws - mean) ** 4)
    mean_se = np.sqrt(spec.variance_tokens / SAMPLES)
    variance_se = np.sqrt(max(fourth - variance**2, 0.0) / SAMPLES)
    assert abs(mean - spec.mean_tokens) <= Z * mean_se + 1e-9
    assert abs(variance - spec.variance_tokens) <= Z * variance_se + ROUNDING_VARIANCE
    assert mean_tokens(spec) == spec.mean_tokens


@pytest.mark.parametrize(("data", "mean", "variance"), [
    ({"dist": "fixed", "value": 7}, 7.0, 0.0),
    ({"dist": "uniform", "low": 1, "high": 6}, 3.5, 35 / 12),  # a die
    ({"dist": "uniform", "low": 5, "high": 5}, 5.0, 0.0),
    ({"dist": "geometric", "mean": 4}, 4.0, 12.0),  # (1 − p) / p², p = 1/4
    ({"dist": "lognormal", "mean": 100, "sigma": 0.5}, 100.0, 100**2 * np.expm1(0.25)),
    # One component is the plain lognormal.
    ({"dist": "lognormal_mixture", "weights": [3], "means": [100], "sigmas": [0.5]},
     100.0, 100**2 * np.expm1(0.25)),
    # Half the mass at 1 token, half uniform on [1, 3]: E[X²] = 1/2 + (1 + 3 + 9)/6.
    ({"dist": "empirical_cdf", "cdf": [[1, 0.5], [3, 1]]}, 1.5, 0.5 + 13 / 6 - 1.5**2),
])
def test_closed_forms_by_hand(data: dict[str, Any], mean: float, variance: float) -> None:
    spec = parse(data)
    assert spec.mean_tokens == pytest.approx(mean, rel=1e-12)
    assert spec.variance_tokens == pytest.approx(variance, rel=1e-12, abs=1e-12)


def test_empirical_moments_are_those_of_its_values() -> None:
    spec = parse(SPECS["empirical"])
    assert spec.mean_tokens == EMPIRICAL_VALUES.mean()
    assert spec.variance_tokens == EMPIRICAL_VALUES.var()  # the values are the population


def reference_draws(data: dict[str, Any], rng: np.random.Generator, n: int) -> np.ndarray:
    """The numpy calls each distribution has always made, in order: its draws must not
    change, or every result of a seeded scenario would."""
    dist = data["dist"]
    if dist == "fixed":
        return np.full(n, data["value"], dtype=np.float64)
    if dist == "uniform":
        return rng.integers(data["low"], data["high"], size=n, endpoint=True)
    if dist == "lognormal":
        return np.rint(rng.lognormal(np.log(data["mean"]) - data["sigma"]**2 / 2.0,
                                     data["sigma"], n))
    if dist == "geometric":
        return rng.geometric(1.0 / data["mean"], n)
    if dist == "empirical":
        return rng.choice(EMPIRICAL_VALUES, size=n)
    if dist == "lognormal_mixture":
        weights = np.asarray(data["weights"]) / np.sum(data["weights"])
        sigmas = np.asarray(data["sigmas"])
        mus = np.log(data["means"]) - sigmas**2 / 2.0
        component = rng.choice(len(weights), size=n, p=weights)
        return np.rint(np.exp(rng.normal(mus[component], sigmas[component])))
    tokens, probs = np.asarray(data["cdf"], dtype=np.float64).T
    return np.rint(np.interp(rng.random(n), probs, tokens))


@pytest.mark.parametrize("name", SPECS)
def test_draws_are_the_same_numpy_calls(name: str) -> None:
    spec = parse(SPECS[name])
    drawn = spec.draw(np.random.default_rng(11), 5_000)
    assert np.array_equal(drawn, reference_draws(SPECS[name], np.random.default_rng(11), 5_000))


@pytest.mark.parametrize("name", SPECS)
def test_samples_are_the_draws_floored_and_capped(name: str) -> None:
    cap = 500
    spec = parse({**SPECS[name], "max_tokens": cap})
    raw = spec.draw(np.random.default_rng(3), 20_000)
    lengths = sample_lengths(spec, np.random.default_rng(3), 20_000)
    assert np.array_equal(lengths.tokens, np.minimum(np.maximum(raw, 1), cap).astype(np.int64))
    assert lengths.tokens.dtype == np.int64
    assert lengths.capped == int(np.count_nonzero(np.maximum(raw, 1) > cap))
    assert lengths.floored == int(np.count_nonzero(raw < 1))
