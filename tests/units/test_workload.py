"""Workload generation: arrival processes and length distributions against their theory."""

from __future__ import annotations

import numpy as np
import pytest

from sim.scenario.workload import WorkloadSpec
from sim.workload import generate, mean_tokens
from sim.workload.lengths import sample_lengths


def _spec(arrival: dict, prompt: dict | None = None, output: dict | None = None) -> WorkloadSpec:
    fixed = {"dist": "fixed", "value": 10}
    return WorkloadSpec.model_validate(
        {"arrival": arrival, "prompt_tokens": prompt or fixed, "output_tokens": output or fixed})


def _seeds(seed: int = 0) -> dict[str, np.random.SeedSequence]:
    names = ("arrivals", "prompt_tokens", "output_tokens")
    return dict(zip(names, np.random.SeedSequence(seed).spawn(3), strict=True))


def test_poisson_counts_and_gaps() -> None:
    rate, duration = 50.0, 2000.0
    w = generate(_spec({"process": "poisson", "rate_per_s": rate}), duration, _seeds())
    n = len(w)
    assert abs(n - rate * duration) < 4 * np.sqrt(rate * duration)
    assert np.all(np.diff(w.arrival_s) > 0) and w.arrival_s[0] >= 0 and w.arrival_s[-1] < duration
    gaps = np.diff(w.arrival_s)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.02)  # exponential: cv 1
    # Counts in 1 s windows: index of dispersion 1 for a Poisson process.
    counts = np.bincount(w.arrival_s.astype(int))
    assert counts.var() / counts.mean() == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("cv", [0.5, 2.0])
def test_gamma_arrivals_have_the_requested_rate_and_cv(cv: float) -> None:
    rate, duration = 20.0, 5000.0
    w = generate(_spec({"process": "gamma", "rate_per_s": rate, "cv": cv}), duration, _seeds(1))
    gaps = np.diff(w.arrival_s)
    assert len(w) / duration == pytest.approx(rate, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.05)


@pytest.mark.parametrize("spec", [
    {"dist": "fixed", "value": 123},
    {"dist": "uniform", "low": 10, "high": 30},
    {"dist": "lognormal", "mean": 1000, "sigma": 0.8},
    {"dist": "geometric", "mean": 40},
])
def test_length_samples_match_the_distribution_mean(spec: dict) -> None:
    parsed = _spec({"process": "poisson", "rate_per_s": 1}, prompt=spec).prompt_tokens
    lengths = sample_lengths(parsed, np.random.default_rng(2), 200_000)
    assert lengths.tokens.min() >= 1
    assert lengths.tokens.mean() == pytest.approx(mean_tokens(parsed), rel=0.01)


def test_lognormal_sigma_is_the_log_space_spread() -> None:
    parsed = _spec({"process": "poisson", "rate_per_s": 1},
                   prompt={"dist": "lognormal", "mean": 5000, "sigma": 0.6}).prompt_tokens
    tokens = sample_lengths(parsed, np.random.default_rng(3), 200_000).tokens
    assert np.log(tokens).std() == pytest.approx(0.6, rel=0.02)


def test_caps_are_applied_and_counted() -> None:
    spec = {"dist": "lognormal", "mean": 1000, "sigma": 1.0, "max_tokens": 2000}
    parsed = _spec({"process": "poisson", "rate_per_s": 1}, prompt=spec).prompt_tokens
    rng_a, rng_b = np.random.default_rng(4), np.random.default_rng(4)
    capped = sample_lengths(parsed, rng_a, 50_000)
    uncapped = sample_lengths(parsed.model_copy(update={"max_tokens": None}), rng_b, 50_000)
    assert capped.tokens.max() == 2000
    assert capped.capped == int((uncapped.tokens > 2000).sum()) > 0
    assert uncapped.capped == 0


def test_streams_are_independent() -> None:
    # Changing the output-length distribution must not move arrivals or prompt lengths.
    arrival = {"process": "poisson", "rate_per_s": 5}
    prompt = {"dist": "lognormal", "mean": 500, "sigma": 0.5}
    a = generate(_spec(arrival, prompt, {"dist": "fixed", "value": 7}), 100.0, _seeds(9))
    b = generate(_spec(arrival, prompt, {"dist": "geometric", "mean": 50}), 100.0, _seeds(9))
    assert np.array_equal(a.arrival_s, b.arrival_s)
    assert np.array_equal(a.prompt_tokens, b.prompt_tokens)
    assert not np.array_equal(a.output_tokens, b.output_tokens)


def test_empirical_lengths_resample_the_file(tmp_path) -> None:
    import sim

    path = tmp_path / "lengths.txt"
    path.write_text("# prompt lengths\n100\n200\n\n300\n")
    data = {
        "duration_s": 10, "model": "llama-3.1-8b", "gpu": "h100-sxm",
        "workload": {"arrival": {"process": "poisson", "rate_per_s": 100},
                     "prompt_tokens": {"dist": "empirical", "path": str(path)},
                     "output_tokens": {"dist": "fixed", "value": 5}},
        "slo": {"ttft_s": 1, "tpot_s": 1}, "cost": {"gpu_hour_usd": 1},
    }
    scenario = sim.load_scenario(data)
    w = generate(scenario.workload, 100.0, _seeds(5))
    assert set(np.unique(w.prompt_tokens)) == {100, 200, 300}
