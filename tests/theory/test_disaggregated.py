"""Disaggregated serving against closed forms: with constant step models and a fixed link,
TTFT = prefill queue + prefill step and E2E = TTFT + transfer + decode steps exactly;
overlapping transfers share the link; requests and tokens are conserved across the pools;
exact mode equals event skipping in both."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from test_prefix_cache import DECODE_STEP_S, LinearSteps, Requests, _prefill_s

from sim.engine import DecodePool, EngineConfig
from sim.engine.simulation import simulate

KV_BYTES_PER_TOKEN = 1000.0
LINK_BYTES_PER_S = 1e9
LATENCY_S = 0.002


def _config(replicas: int = 1, capacity: int = 10_000_000, exact: bool = False,
            **keys: object) -> EngineConfig:
    settings: dict[str, object] = dict(
        replicas=replicas, policy="chunked-prefill", max_num_seqs=64, max_batched_tokens=8192,
        kv_capacity_tokens=capacity, kv_block_tokens=16, router="least-loaded",
        window_start_s=0.0, window_end_s=1e9, stop_s=None, exact=exact)
    settings.update(keys)
    return EngineConfig(**settings)  # type: ignore[arg-type]


def _pool(cfg: EngineConfig, bytes_per_s: float = LINK_BYTES_PER_S,
          latency_s: float = LATENCY_S) -> DecodePool:
    return DecodePool(cfg, LinearSteps(), KV_BYTES_PER_TOKEN, bytes_per_s, latency_s)


def _run(prefill: EngineConfig, decode: DecodePool, requests: Requests, clients=None):
    return simulate(prefill, requests, LinearSteps(), np.random.default_rng(0),
                    clients=clients, decode=decode)


def _transfer_s(prompt: int, sharing: int = 1) -> float:
    return LATENCY_S + sharing * (prompt + 1) * KV_BYTES_PER_TOKEN / LINK_BYTES_PER_S


def test_a_lone_request_is_prefill_then_transfer_then_decode_exactly() -> None:
    requests = Requests(np.array([0.0, 50.0]), np.array([2000, 500]), np.array([100, 40]))
    result = _run(_config(), _pool(_config()), requests)
    ttft = result.first_token_s - result.arrival_s
    assert ttft == pytest.approx([_prefill_s(2000, 0), _prefill_s(500, 0)])
    transfer = np.array([_transfer_s(2000), _transfer_s(500)])
    assert result.kv_transfer_s == pytest.approx(transfer)
    e2e = result.finish_s - result.arrival_s
    assert e2e == pytest.approx(ttft + transfer + (np.array([100, 40]) - 1) * DECODE_STEP_S)
    assert result.kv_transfer_bytes == pytest.approx((2001 + 501) * KV_BYTES_PER_TOKEN)
    assert result.prefill_replicas == 1 and len(result.replicas) == 2
    assert result.decode_replica.tolist() == [0, 0]
    # The prefill replica only prefilled (and produced the first tokens); the decode one
    # produced the rest.
    prefill_side, decode_side = result.replicas
    assert prefill_side.generated_tokens == 2 and decode_side.prefill_tokens == 0
    assert decode_side.generated_tokens == 99 + 39


def test_transfers_that_overlap_share_the_link() -> None:
    # A short prompt takes the first step; two more, arrived with it, are prefilled together
    # in the next and leave together: the link carries both at half speed until the smaller
    # lands, then the larger alone.
    small, large = 1000, 3000
    requests = Requests(np.zeros(3), np.array([10, small, large]), np.array([5, 5, 5]))
    result = _run(_config(), _pool(_config()), requests)
    assert result.first_token_s[1] == result.first_token_s[2] > result.first_token_s[0]
    b_small, b_large = ((p + 1) * KV_BYTES_PER_TOKEN for p in (small, large))
    assert result.kv_transfer_s[1] == pytest.approx(LATENCY_S + 2 * b_small / LINK_BYTES_PER_S)
    assert result.kv_transfer_s[2] == pytest.approx(
        LATENCY_S + (b_small + b_large) / LINK_BYTES_PER_S)
    assert result.kv_transfer_s[0] == pytest.approx(_transfer_s(10))  # alone on the link
    # Each prefill replica has its own link: spread over three, none shares.
    apart = _run(_config(replicas=3), _pool(_config()), requests)
    assert apart.kv_transfer_s == pytest.approx([_transfer_s(p) for p in (10, small, large)])


def test_a_one_token_request_is_done_where_it_was_prefilled() -> None:
    requests = Requests(np.array([0.0]), np.array([800]), np.array([1]))
    result = _run(_config(), _pool(_config()), requests)
    assert result.finish_s[0] == result.first_token_s[0]
    assert np.isnan(result.kv_transfer_s[0]) and result.decode_replica[0] == -1


def _busy(seed: int, n: int = 400) -> Requests:
    """20 requests/s: about 80% of four prefill replicas, and more decoding than one decode
    replica of 40,000 tokens of KV holds."""
    rng = np.random.default_rng(seed)
    return Requests(np.cumsum(rng.exponential(0.05, n)), rng.integers(50, 3000, n),
                    rng.integers(1, 500, n))


@pytest.mark.parametrize("policy", ["chunked-prefill", "prefill-first"])
def test_exact_mode_equals_event_skipping_in_both_pools(policy: str) -> None:
    requests = _busy(3)
    keys = dict(policy=policy)
    fast = _run(_config(4, **keys), _pool(_config(1, capacity=40_000, **keys)), requests)
    exact = _run(_config(4, exact=True, **keys),
                 _pool(_config(1, capacity=40_000, exact=True, **keys)), requests)
    for column in ("replica", "decode_replica", "admit_s", "first_token_s", "finish_s",
                   "kv_transfer_s", "preemptions"):
        assert np.allclose(getattr(fast, column), getattr(exact, column), rtol=1e-9,
                           atol=1e-12, equal_nan=True), column
    assert fast.events < exact.events
    assert fast.preemptions.sum() > 0  # the decode pool ran short of KV


def test_requests_and_tokens_are_conserved_across_the_pools() -> None:
    requests = _busy(5)
    result = _run(_config(4), _pool(_config(1, capacity=40_000)), requests)
    assert np.isfinite(result.finish_s).all()
    many = requests.output_tokens > 1
    assert (result.decode_replica[many] >= 0).all() and (result.decode_replica[~many] == -1).all()
    generated = sum(r.generated_tokens for r in result.replicas)
    # Every output token, plus those regenerated after a decode-side preemption (counted
    # again as prefill there, not as generated): exactly Σ outputs.
    assert generated == requests.output_tokens.sum()
    assert result.preemptions.sum() > 0
    prefill_side = sum(r.prefill_tokens for r in result.replicas[:4])
    assert prefill_side == requests.prompt_tokens.sum()
    assert (result.first_token_s <= result.finish_s).all()
    assert (result.kv_transfer_s[many] >= LATENCY_S).all()


@dataclass(frozen=True)
class Loop:
    concurrency: int
    think_s: np.ndarray
    send_until_s: float


def test_closed_loop_clients_send_when_the_decode_side_finishes() -> None:
    # One client, no think time: each request is sent as the last finished, so request
    # i + 1 arrives at request i's finish.
    n = 6
    pool = Requests(np.full(n, np.nan), np.full(n, 1000), np.full(n, 20))
    result = _run(_config(), _pool(_config()), pool, clients=Loop(1, np.zeros(n), 1e9))
    assert len(result.arrival_s) == n
    assert result.arrival_s[1:] == pytest.approx(result.finish_s[:-1])
    one = _prefill_s(1000, 0) + _transfer_s(1000) + 19 * DECODE_STEP_S
    assert (result.finish_s - result.arrival_s) == pytest.approx([one] * n)
