"""Queueing theory: with one sequence per batch and a constant step, a replica is a
single-server queue, so the simulated mean wait must match closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from builders import scenario

import sim

STEP_S = 0.01


def _queue(rate_per_s: float, output: dict, replicas: int = 1, router: str = "random",
           duration_s: float = 3000.0, seed: int = 3) -> sim.Result:
    return sim.run(scenario(
        seed=seed, duration_s=duration_s, warmup_s=100.0,
        profile={"kind": "constant", "step_s": STEP_S},
        deployment={"replicas": replicas, "router": router,
                    "scheduler": {"policy": "chunked-prefill", "max_num_seqs": 1,
                                  "max_batched_tokens": 4096}},
        workload={"arrival": {"process": "poisson", "rate_per_s": rate_per_s},
                  "prompt_tokens": {"dist": "fixed", "value": 100},
                  "output_tokens": output},
    ))


def _mean_and_se(values: np.ndarray, batches: int = 20) -> tuple[float, float]:
    """Batch means: waits are autocorrelated, so the standard error comes from batch means."""
    chunks = np.array_split(values, batches)
    means = np.array([c.mean() for c in chunks])
    return float(values.mean()), float(means.std(ddof=1) / np.sqrt(batches))


def _waits(result: sim.Result) -> np.ndarray:
    waits = result.latencies.queue_s[result.measured]
    assert np.all(np.isfinite(waits))
    return waits


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_md1_mean_wait(rho: float) -> None:
    # Deterministic service of one step: M/D/1, Wq = ρ / (2μ(1 − ρ)).
    mu = 1.0 / STEP_S
    result = _queue(rho * mu, {"dist": "fixed", "value": 1})
    mean, se = _mean_and_se(_waits(result))
    expected = rho / (2 * mu * (1 - rho))
    assert abs(mean - expected) < 4 * se, (mean, expected, se)
    assert se < 0.1 * expected  # the check above is only worth something if the run was long


def _geometric_pk_wait(rate_per_s: float, mean_tokens: float) -> float:
    # Service = tokens × step with tokens ~ geometric(p): E[S²] = step² (2 − p) / p².
    p = 1.0 / mean_tokens
    es = STEP_S * mean_tokens
    es2 = STEP_S**2 * (2 - p) / p**2
    rho = rate_per_s * es
    return rate_per_s * es2 / (2 * (1 - rho))  # Pollaczek–Khinchine


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_mg1_geometric_lengths_mean_wait(rho: float) -> None:
    # Geometric output lengths make service (nearly) exponential: the M/M/1 analogue, checked
    # against Pollaczek–Khinchine, which is exact for the discrete service times simulated.
    mean_tokens = 20.0
    rate = rho / (STEP_S * mean_tokens)
    result = _queue(rate, {"dist": "geometric", "mean": mean_tokens}, duration_s=20000.0)
    mean, se = _mean_and_se(_waits(result))
    expected = _geometric_pk_wait(rate, mean_tokens)
    assert abs(mean - expected) < 4 * se, (mean, expected, se)
    assert se < 0.1 * expected


def test_random_routing_splits_into_independent_queues() -> None:
    # c replicas with random routing: each sees Poisson(λ/c), so each is its own M/G/1.
    replicas, mean_tokens, rho = 4, 10.0, 0.7
    rate = replicas * rho / (STEP_S * mean_tokens)
    result = _queue(rate, {"dist": "geometric", "mean": mean_tokens}, replicas=replicas,
                    router="random", duration_s=5000.0)
    mean, se = _mean_and_se(_waits(result))
    expected = _geometric_pk_wait(rate / replicas, mean_tokens)
    assert abs(mean - expected) < 4 * se, (mean, expected, se)
    shares = np.bincount(result.engine.replica, minlength=replicas) / len(result.engine.replica)
    assert np.allclose(shares, 1 / replicas, atol=0.01)


def test_mm1_utilisation_equals_offered_load() -> None:
    # A work-conserving single server is busy ρ of the time.
    mean_tokens, rho = 10.0, 0.6
    result = _queue(rho / (STEP_S * mean_tokens), {"dist": "geometric", "mean": mean_tokens},
                    duration_s=5000.0)
    busy = result.to_dict()["utilization"]["busy_fraction"]
    assert busy == pytest.approx(rho, rel=0.03)


@pytest.mark.parametrize("policy", ["chunked-prefill", "prefill-first", "static"])
def test_littles_law(policy: str) -> None:
    # L = λW: time-average number in the system = arrival rate × mean time in system.
    result = sim.run(scenario(duration_s=400.0, warmup_s=50.0,
                              deployment__scheduler={"policy": policy, "max_num_seqs": 64,
                                                     "max_batched_tokens": 4096}))
    arrival, finish = result.workload.arrival_s, result.engine.finish_s
    start, end = 50.0, 400.0
    in_window = (arrival >= start) & (arrival < end)
    lam = in_window.sum() / (end - start)
    w = np.mean(finish[in_window] - arrival[in_window])
    leave = np.minimum(finish, end)
    overlap = np.clip(leave - np.maximum(arrival, start), 0, None)
    big_l = overlap.sum() / (end - start)
    assert big_l == pytest.approx(lam * w, rel=0.03)
