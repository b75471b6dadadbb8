"""Length models fitted to a trace's token counts, each judged by the quantiles it reproduces.

Three candidates, simplest first:

* `lognormal` — mean and spread of log(tokens); fine when the trace is one smooth hump.
* `lognormal_mixture` — a Gaussian mixture on log(tokens) by EM, for multi-modal traces such
  as Azure conversation prompts: the fewest components (2 to 8) that reproduce the quantiles
  within the tolerance, or else the count that comes closest. (BIC is no guide here: token
  counts pile up on a few exact values, and every extra component "explains" another pile.)
* `empirical_cdf` — the trace's own quantile function at 110 points (every 1 %, every 0.1 %
  above p99): faithful by construction, but only as general as the trace.

Both parametric models are capped at the trace's longest request (`max_tokens`): production
lengths stop at context and `max_tokens` limits, and a lognormal tail beyond them would
invent requests the served model could never take. A fit is judged by sampling it exactly as
a simulation would (`sample_lengths`, so rounding and the cap count) and comparing p50, p90,
p99 and the mean with the trace's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.scenario.workload import WorkloadSpec
from sim.workload.lengths import sample_lengths
from sim.workload.yamlnumbers import bare, sig

LENGTH_MODELS = ("lognormal", "lognormal_mixture", "empirical_cdf")
QUANTILES = (50, 90, 99)
CHECK_SAMPLES = 200_000
MIXTURE_COMPONENTS = range(2, 9)
MIN_SIGMA = 0.02  # keeps a component from collapsing onto one repeated token count
CDF_PROBABILITIES = np.round(np.concatenate(
    (np.arange(0, 99) / 100, np.arange(990, 1001) / 1000)), 3)


@dataclass(frozen=True)
class LengthFit:
    model: str
    spec: dict
    error: dict[str, float]  # p50, p90, p99, mean: sampled model / trace − 1

    @property
    def worst_quantile_error(self) -> float:
        return max(abs(self.error[f"p{q}"]) for q in QUANTILES)


def fit_lengths(tokens: np.ndarray, tolerance: float, seed: int = 0) -> list[LengthFit]:
    """Every candidate model, in LENGTH_MODELS order, with its sampled quantile errors."""
    cap = int(tokens.max())
    return [_judged(_lognormal(tokens, cap), tokens, seed),
            _best_mixture(tokens, cap, tolerance, seed),
            _judged(_empirical_cdf(tokens), tokens, seed)]


def choose(fits: list[LengthFit], tolerance: float) -> LengthFit:
    """The simplest model whose p50, p90 and p99 are all within `tolerance` of the trace's
    (the empirical CDF, last, always is)."""
    for fit in fits:
        if fit.worst_quantile_error <= tolerance:
            return fit
    return fits[-1]


def sample_model(spec: dict, n: int, seed: int) -> np.ndarray:
    """Draw n lengths from a fitted model exactly as a simulation would."""
    parsed = WorkloadSpec.model_validate(
        {"arrival": {"process": "poisson", "rate_per_s": 1.0}, "prompt_tokens": spec,
         "output_tokens": spec}).prompt_tokens
    assert parsed is not None  # given just above
    return sample_lengths(parsed, np.random.default_rng(seed), n).tokens


def _judged(spec: dict, tokens: np.ndarray, seed: int) -> LengthFit:
    drawn = sample_model(spec, CHECK_SAMPLES, seed)
    model_q = np.percentile(drawn, QUANTILES)
    trace_q = np.percentile(tokens, QUANTILES)
    error = {f"p{q}": float(m / t - 1.0) for q, m, t in zip(QUANTILES, model_q, trace_q,
                                                            strict=True)}
    error["mean"] = float(drawn.mean() / tokens.mean() - 1.0)
    return LengthFit(spec["dist"], spec, error)


def _lognormal(tokens: np.ndarray, cap: int) -> dict:
    logs = np.log(tokens)
    sigma = float(logs.std())
    return {"dist": "lognormal", "mean": sig(np.exp(logs.mean() + sigma**2 / 2)),
            "sigma": sig(sigma), "max_tokens": cap}


def _best_mixture(tokens: np.ndarray, cap: int, tolerance: float, seed: int) -> LengthFit:
    # Token counts repeat a lot, so EM runs on the distinct values weighted by their counts:
    # the same fit as on every request, at a fraction of the cost.
    values, counts = np.unique(tokens, return_counts=True)
    y = np.log(values.astype(np.float64))
    best = None
    for k in [k for k in MIXTURE_COMPONENTS if k <= len(values)] or [1]:
        weights, mus, sigmas = _em(y, counts.astype(np.float64), k)
        order = np.argsort(mus)
        means = np.exp(mus + sigmas**2 / 2)
        spec = {"dist": "lognormal_mixture", "weights": [sig(w) for w in weights[order]],
                "means": [sig(m) for m in means[order]],
                "sigmas": [sig(s) for s in sigmas[order]], "max_tokens": cap}
        fit = _judged(spec, tokens, seed)
        if fit.worst_quantile_error <= tolerance:
            return fit
        if best is None or fit.worst_quantile_error < best.worst_quantile_error:
            best = fit
    assert best is not None  # the loop ran at least once
    return best


def _em(y: np.ndarray, w: np.ndarray, k: int, iterations: int = 1000, tol: float = 1e-7
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A k-component Gaussian mixture fitted to points y with multiplicities w, started
    from k equal-count slices of the sorted data (deterministic)."""
    total = w.sum()
    cum = np.cumsum(w) / total
    mus = np.interp((np.arange(k) + 0.5) / k, cum, y)
    sigmas = np.full(k, max(float(np.sqrt(np.average((y - np.average(y, weights=w))**2,
                                                     weights=w))) / k, MIN_SIGMA))
    weights = np.full(k, 1.0 / k)
    previous = -np.inf
    for _ in range(iterations):
        z = (y[:, None] - mus) / sigmas
        log_p = np.log(weights) - np.log(sigmas) - 0.5 * z**2 - 0.5 * np.log(2 * np.pi)
        top = log_p.max(axis=1, keepdims=True)
        joint = np.exp(log_p - top)
        norm = joint.sum(axis=1, keepdims=True)
        loglik = float(np.sum(w * (np.log(norm[:, 0]) + top[:, 0])))
        resp = joint / norm * w[:, None]
        mass = resp.sum(axis=0)
        weights = mass / total
        mus = resp.T @ y / mass
        sigmas = np.maximum(np.sqrt(np.maximum(resp.T @ y**2 / mass - mus**2, 0)), MIN_SIGMA)
        if loglik - previous < tol * total:
            break
        previous = loglik
    return weights, mus, sigmas


def _empirical_cdf(tokens: np.ndarray) -> dict:
    quantiles = np.round(np.quantile(tokens, CDF_PROBABILITIES), 1)
    cdf = [[bare(q), bare(p)] for q, p in zip(quantiles, CDF_PROBABILITIES, strict=True)]
    return {"dist": "empirical_cdf", "cdf": cdf}

