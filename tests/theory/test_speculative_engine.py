"""Speculative decoding in the engine: a decoding sequence gains ⌊τ⌋ or ⌈τ⌉ tokens a step
(τ on average over requests), holds its draft positions in the KV cache, and event skipping
stays exact."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_prefix_cache import DECODE_STEP_S, LinearSteps, Requests, _prefill_s

from sim.engine import EngineConfig
from sim.engine.requests import speculative_gains
from sim.engine.simulation import simulate


def _tau(alpha: float, k: int) -> float:
    return (1 - alpha ** (k + 1)) / (1 - alpha)


def _config(tokens_per_step: float, lookahead: int, capacity: int = 10_000_000,
            exact: bool = False, **keys: object) -> EngineConfig:
    settings: dict[str, object] = dict(
        replicas=1, policy="chunked-prefill", max_num_seqs=64, max_batched_tokens=8192,
        kv_capacity_tokens=capacity, kv_block_tokens=16, router="round-robin",
        window_start_s=0.0, window_end_s=1e9, stop_s=None, exact=exact,
        tokens_per_step=tokens_per_step, lookahead_tokens=lookahead)
    settings.update(keys)
    return EngineConfig(**settings)  # type: ignore[arg-type]


def _run(cfg: EngineConfig, requests: Requests):
    return simulate(cfg, requests, LinearSteps(), np.random.default_rng(0))


def test_one_request_decodes_in_ceil_of_its_tokens_over_its_gain_steps() -> None:
    # τ = 2.952 (α 0.8, K 3): a share p = (1/2 − 1/2.952)/(1/2 − 1/3) = 0.967 of requests
    # gain 3 a step, the rest 2, spread evenly: request 0 gains 2, request 1 gains 3.
    # Alone, each takes ⌈(N − 1) / gain⌉ decode steps after its first token.
    tau = _tau(0.8, 3)
    assert tau == pytest.approx(2.952)
    n_out = 101
    requests = Requests(np.array([0.0, 100.0]), np.array([200, 200]), np.array([n_out] * 2))
    result = _run(_config(tau, 3), requests)
    ttft = _prefill_s(200, 0)
    for i, gain in enumerate((2, 3)):
        steps = math.ceil((n_out - 1) / gain)
        assert result.finish_s[i] - result.arrival_s[i] == pytest.approx(
            ttft + steps * DECODE_STEP_S)


def test_tokens_per_step_average_the_closed_form_over_many_requests() -> None:
    # Spaced requests, each alone: Σ decode tokens / Σ decode steps → τ (the last step's
    # extra tokens, under ⌈τ⌉ per request, shrink with the outputs' length).
    tau = _tau(0.7, 4)
    n, n_out = 400, 2001
    requests = Requests(np.arange(n) * 100.0, np.full(n, 100), np.full(n, n_out))
    result = _run(_config(tau, 4), requests)
    steps = (result.finish_s - result.first_token_s) / DECODE_STEP_S
    assert np.allclose(steps, np.round(steps))
    assert (n * (n_out - 1)) / steps.sum() == pytest.approx(tau, rel=2e-3)
    # Tokens generated count what the steps produced: at most ⌈τ⌉ − 1 extra per request.
    generated = sum(r.generated_tokens for r in result.replicas)
    assert n * n_out <= generated <= n * (n_out + math.ceil(tau) - 1)


def test_gains_are_whole_tokens_mixed_so_that_steps_per_token_average_one_over_tau() -> None:
    assert speculative_gains(5, 1.0) == [1] * 5
    assert speculative_gains(5, 3.0) == [3] * 5
    for tau in (1.3, 2.5, _tau(0.8, 3), 4.9):
        gains = np.asarray(speculative_gains(10_000, tau))
        assert set(gains.tolist()) == {math.floor(tau), math.ceil(tau)}
        assert np.mean(1 / gains) == pytest.approx(1 / tau, rel=1e-3)


def test_without_speculation_the_engine_runs_as_before() -> None:
    rng = np.random.default_rng(4)
    n = 200
    requests = Requests(np.cumsum(rng.exponential(0.02, n)), rng.integers(50, 2000, n),
                        rng.integers(1, 400, n))
    plain = simulate(EngineConfig(
        replicas=1, policy="chunked-prefill", max_num_seqs=64, max_batched_tokens=8192,
        kv_capacity_tokens=60_000, kv_block_tokens=16, router="round-robin",
        window_start_s=0.0, window_end_s=1e9, stop_s=None), requests, LinearSteps(),
        np.random.default_rng(0))
    same = _run(_config(1.0, 0, capacity=60_000), requests)
    assert np.array_equal(plain.finish_s, same.finish_s)
    faster = _run(_config(2.0, 0, capacity=60_000), requests)
    assert (faster.finish_s - faster.first_token_s).sum() < \
        (plain.finish_s - plain.first_token_s).sum()


@pytest.mark.parametrize("policy", ["chunked-prefill", "prefill-first"])
def test_exact_mode_equals_event_skipping_with_speculation_under_kv_pressure(
        policy: str) -> None:
    rng = np.random.default_rng(7)
    n = 300
    requests = Requests(np.cumsum(rng.exponential(0.01, n)), rng.integers(50, 1500, n),
                        rng.integers(1, 600, n))
    keys = dict(capacity=50_000, policy=policy)
    fast = _run(_config(_tau(0.75, 3), 3, **keys), requests)
    exact = _run(_config(_tau(0.75, 3), 3, exact=True, **keys), requests)
    for column in ("admit_s", "first_token_s", "finish_s", "preemptions"):
        assert np.allclose(getattr(fast, column), getattr(exact, column), rtol=1e-9,
                           atol=1e-12, equal_nan=True), column
    assert [r.generated_tokens for r in fast.replicas] == \
        [r.generated_tokens for r in exact.replicas]
    assert fast.events < exact.events
    if policy == "chunked-prefill":
        assert fast.preemptions.sum() > 0
    assert np.isfinite(fast.finish_s).all()


def test_draft_positions_take_kv_and_budget() -> None:
    # 1,000-token prompts, long outputs, a cache for about ten of them: reserving 8 draft
    # positions each, fewer run at once than without (same τ, no lookahead).
    n = 40
    requests = Requests(np.zeros(n), np.full(n, 1000), np.full(n, 3000))
    capacity = 10 * (1000 + 3000)
    without = _run(_config(2.0, 0, capacity=capacity), requests)
    with_drafts = _run(_config(2.0, 8, capacity=capacity), requests)
    assert with_drafts.finish_s.max() >= without.finish_s.max()
    assert with_drafts.preemptions.sum() >= without.preemptions.sum()
