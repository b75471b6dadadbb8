"""Token-length distributions for prompts and outputs.

Each distribution samples a vector of positive integers and knows its own mean, so that
capacity estimates need no sampling. Nothing is clipped silently: a `max_tokens` cap is a
named key, and the samples it cut (and any rounded up to the minimum of 1 token) are
counted and reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sim.scenario.workload import (
    EmpiricalCdfLengths,
    EmpiricalLengths,
    FixedLengths,
    GeometricLengths,
    LengthSpec,
    LognormalLengths,
    LognormalMixtureLengths,
    UniformLengths,
)


@dataclass(frozen=True)
class Lengths:
    tokens: np.ndarray  # int64, ≥ 1
    capped: int  # samples cut to max_tokens
    floored: int  # continuous samples that rounded below 1 and were raised to 1


def _fixed(spec: FixedLengths, rng: np.random.Generator, n: int) -> np.ndarray:
    return np.full(n, spec.value, dtype=np.float64)


def _uniform(spec: UniformLengths, rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(spec.low, spec.high, size=n, endpoint=True).astype(np.float64)


def _lognormal(spec: LognormalLengths, rng: np.random.Generator, n: int) -> np.ndarray:
    # `mean` is the distribution's mean, so mu = ln(mean) − sigma²/2.
    mu = np.log(spec.mean) - spec.sigma**2 / 2.0
    return np.rint(rng.lognormal(mu, spec.sigma, n))


def _geometric(spec: GeometricLengths, rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.geometric(1.0 / spec.mean, n).astype(np.float64)


def _empirical(spec: EmpiricalLengths, rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice(spec.values, size=n).astype(np.float64)


def _lognormal_mixture(spec: LognormalMixtureLengths, rng: np.random.Generator,
                       n: int) -> np.ndarray:
    weights = np.asarray(spec.weights) / np.sum(spec.weights)
    sigmas = np.asarray(spec.sigmas)
    mus = np.log(spec.means) - sigmas**2 / 2.0
    component = rng.choice(len(weights), size=n, p=weights)
    return np.rint(np.exp(rng.normal(mus[component], sigmas[component])))


def _empirical_cdf(spec: EmpiricalCdfLengths, rng: np.random.Generator, n: int) -> np.ndarray:
    tokens, probs = np.asarray(spec.cdf, dtype=np.float64).T
    return np.rint(np.interp(rng.random(n), probs, tokens))  # inverse CDF


SAMPLERS: dict[str, Callable[..., np.ndarray]] = {
    "fixed": _fixed,
    "uniform": _uniform,
    "lognormal": _lognormal,
    "geometric": _geometric,
    "empirical": _empirical,
    "lognormal_mixture": _lognormal_mixture,
    "empirical_cdf": _empirical_cdf,
}


def sample_lengths(spec: LengthSpec, rng: np.random.Generator, n: int) -> Lengths:
    raw = SAMPLERS[spec.dist](spec, rng, n)
    floored = int(np.count_nonzero(raw < 1))
    tokens = np.maximum(raw, 1).astype(np.int64)
    capped = 0
    if spec.max_tokens is not None:
        over = tokens > spec.max_tokens
        capped = int(np.count_nonzero(over))
        tokens[over] = spec.max_tokens
    return Lengths(tokens, capped, floored)


def mean_tokens(spec: LengthSpec) -> float:
    """Mean of the distribution before any cap (exact, not sampled)."""
    if isinstance(spec, FixedLengths):
        return float(spec.value)
    if isinstance(spec, UniformLengths):
        return (spec.low + spec.high) / 2.0
    if isinstance(spec, LognormalLengths | GeometricLengths):
        return float(spec.mean)
    if isinstance(spec, LognormalMixtureLengths):
        return float(np.dot(spec.weights, spec.means) / np.sum(spec.weights))
    if isinstance(spec, EmpiricalCdfLengths):
        # The first point's probability is a point mass; between points the quantile
        # function is linear, so each piece contributes its probability × its mid-length.
        tokens, probs = np.asarray(spec.cdf, dtype=np.float64).T
        pieces = np.diff(probs) * (tokens[1:] + tokens[:-1]) / 2.0
        return float(probs[0] * tokens[0] + pieces.sum())
    return float(np.mean(spec.values))
