"""Uncertain inputs: distributions over scenario values, sampled by Latin hypercube or plain
Monte Carlo.

A scenario's `uncertainty:` block maps a key path to one of these distributions:

    normal      {mean, std}
    lognormal   {mean, sigma}        mean of the distribution itself; sigma of log(value)
    uniform     {low, high}
    triangular  {low, mode, high}
    choice      {values, weights?}   any scalars (numbers or names), weights default equal

Every distribution knows its inverse CDF (`ppf`), so both samplers start from uniform numbers
in [0, 1): plain Monte Carlo draws them independently; a Latin hypercube cuts [0, 1) into n
equal strata per input and puts exactly one of the n samples in each (in a random pairing
across inputs), which covers each input's range evenly and shrinks the sampling noise of a
mean or a percentile for the same n. Only numpy is used: the normal quantile is Acklam's
rational approximation (relative error below 1.2e-9), far finer than any input here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from sim.scenario.base import (
    MAX_GRID_POINTS,
    MAX_LOG_SIGMA,
    MAX_MAGNITUDE,
    NonNeg,
    Pos,
    Strict,
    check_order,
)

# Within ±MAX_MAGNITUDE: high − low and mean + std·Φ⁻¹(u) stay finite.
Finite = Annotated[float, Field(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE, allow_inf_nan=False)]


class Normal(Strict):
    dist: Literal["normal"]
    mean: Finite
    std: NonNeg

    def ppf(self, u: np.ndarray) -> np.ndarray:
        return self.mean + self.std * normal_ppf(u)

    def probes(self) -> list[Any]:
        return [self.mean]


class Lognormal(Strict):
    dist: Literal["lognormal"]
    mean: Pos  # the distribution's mean, as for token lengths (not the log-space mu)
    sigma: Annotated[float, Field(ge=0, le=MAX_LOG_SIGMA, allow_inf_nan=False)]

    def ppf(self, u: np.ndarray) -> np.ndarray:
        mu = math.log(self.mean) - self.sigma**2 / 2
        return np.exp(mu + self.sigma * normal_ppf(u))

    def probes(self) -> list[Any]:
        return [self.mean]


class Uniform(Strict):
    dist: Literal["uniform"]
    low: Finite
    high: Finite

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        check_order(self.low, self.high, "high", "low")
        return self

    def ppf(self, u: np.ndarray) -> np.ndarray:
        return self.low + (self.high - self.low) * u

    def probes(self) -> list[Any]:
        return [self.low, self.high]


class Triangular(Strict):
    dist: Literal["triangular"]
    low: Finite
    mode: Finite
    high: Finite

    @model_validator(mode="after")
    def _ordered(self) -> Triangular:
        check_order(self.low, self.mode, "mode", "low")
        check_order(self.mode, self.high, "high", "mode")
        return self

    def ppf(self, u: np.ndarray) -> np.ndarray:
        lo, mode, hi = self.low, self.mode, self.high
        if hi == lo:
            return np.full_like(u, lo, dtype=float)
        split = (mode - lo) / (hi - lo)  # CDF at the mode
        rising = lo + np.sqrt(u * (hi - lo) * (mode - lo))
        falling = hi - np.sqrt((1.0 - u) * (hi - lo) * (hi - mode))
        return np.where(u < split, rising, falling)

    def probes(self) -> list[Any]:
        return [self.low, self.high]


class Choice(Strict):
    dist: Literal["choice"]
    values: Annotated[list[int | float | str], Field(min_length=1, max_length=MAX_GRID_POINTS)]
    weights: list[NonNeg] | None = None  # relative; equal when absent

    @model_validator(mode="after")
    def _weights_match(self) -> Choice:
        if self.weights is not None and (len(self.weights) != len(self.values)
                                         or sum(self.weights) <= 0):
            raise PydanticCustomError("order", "weights do not match values", {
                "field": "weights",
                "expected": f"{len(self.values)} non-negative numbers (one per value), "
                            "not all zero"})
        return self

    def ppf(self, u: np.ndarray) -> np.ndarray:
        weights = np.ones(len(self.values)) if self.weights is None else np.array(self.weights)
        cumulative = np.cumsum(weights) / weights.sum()
        index = np.minimum(np.searchsorted(cumulative, u, side="right"), len(self.values) - 1)
        return np.array(self.values, dtype=object)[index]

    def probes(self) -> list[Any]:
        return list(self.values)


UncertainSpec = Annotated[Normal | Lognormal | Uniform | Triangular | Choice,
                          Field(discriminator="dist")]
DISTRIBUTIONS = ("normal", "lognormal", "uniform", "triangular", "choice")


def uniforms(n: int, inputs: int, method: str, rng: np.random.Generator) -> np.ndarray:
    """An (n, inputs) array of numbers in [0, 1): Latin hypercube ('lhs') or independent ('mc')."""
    if method == "mc":
        return rng.random((n, inputs))
    columns = [(rng.permutation(n) + rng.random(n)) / n for _ in range(inputs)]
    return np.column_stack(columns) if columns else np.empty((n, 0))


def sample(specs: Mapping[str, Any], n: int, method: str,
           rng: np.random.Generator) -> list[dict[str, Any]]:
    """n draws of every input, as one {key path: plain Python value} mapping per draw."""
    u = uniforms(n, len(specs), method, rng)
    columns = {key: spec.ppf(u[:, j]) for j, (key, spec) in enumerate(specs.items())}
    return [{key: _plain(values[i]) for key, values in columns.items()} for i in range(n)]


def _plain(value: Any) -> Any:
    """numpy scalars become Python ones, so validation and CSV see ordinary numbers."""
    return value.item() if isinstance(value, np.generic) else value


# Acklam's rational approximation of the standard normal quantile, in three regions.
_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
      1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
      6.680131188771972e01, -1.328068155288572e01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
      -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
      3.754408661907416e00)
_TAIL = 0.02425


def normal_ppf(u: np.ndarray) -> np.ndarray:
    """Standard normal quantile Φ⁻¹(u) for u in (0, 1)."""
    u = np.asarray(u, dtype=float)
    out = np.empty_like(u)
    low, high = u < _TAIL, u > 1.0 - _TAIL
    mid = ~(low | high)
    q = u[mid] - 0.5
    r = q * q
    out[mid] = (_poly(_A, r) * q) / (_poly((*_B, 1.0), r))
    t = np.sqrt(-2.0 * np.log(u[low]))
    out[low] = _poly(_C, t) / _poly((*_D, 1.0), t)
    t = np.sqrt(-2.0 * np.log1p(-u[high]))
    out[high] = -_poly(_C, t) / _poly((*_D, 1.0), t)
    return out


def _poly(coefficients: tuple[float, ...], x: np.ndarray) -> np.ndarray:
    """Horner's rule, highest power first."""
    result = np.zeros_like(x)
    for c in coefficients:
        result = result * x + c
    return result
