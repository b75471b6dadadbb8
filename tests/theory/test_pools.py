"""A heterogeneous fleet (`sim.engine.pools`) against what must hold exactly: one pool is
the homogeneous fleet; pools split by load route as one least-loaded fleet when their
replicas are alike; a size split sends each prompt to its pool, boundary included; a
request no pool (or not its pool) can hold is rejected, and conserved otherwise; exact mode
equals event skipping with pools of different speeds."""

from __future__ import annotations

import numpy as np
import pytest
from test_prefix_cache import DECODE_STEP_S, LinearSteps, Requests

from sim.engine import EngineConfig
from sim.engine.pools import FleetPools, ServingPool
from sim.engine.simulation import simulate


class SlowerSteps(LinearSteps):
    """LinearSteps × `factor`: a pool on slower GPUs."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def decode_fixed_s(self, batch: int) -> float:
        return DECODE_STEP_S * self.factor

    def step_s(self, prefill_tokens: int, pairs: float, decode_seqs: int,
               decode_kv_tokens: int) -> tuple[float, float]:
        prefill_s, decode_s = super().step_s(prefill_tokens, pairs, decode_seqs,
                                             decode_kv_tokens)
        return prefill_s * self.factor, decode_s * self.factor


def _config(replicas: int = 1, capacity: int = 10_000_000, exact: bool = False,
            router: str = "least-loaded", **keys: object) -> EngineConfig:
    settings: dict[str, object] = dict(
        replicas=replicas, policy="chunked-prefill", max_num_seqs=16, max_batched_tokens=2048,
        kv_capacity_tokens=capacity, kv_block_tokens=16, router=router,
        window_start_s=0.0, window_end_s=1e9, stop_s=None, exact=exact)
    settings.update(keys)
    return EngineConfig(**settings)  # type: ignore[arg-type]


def _workload(n: int = 600, rate_per_s: float = 40.0, seed: int = 3) -> Requests:
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate_per_s, n))
    prompts = rng.integers(10, 3000, n)
    outputs = rng.integers(1, 200, n)
    return Requests(arrivals, prompts, outputs)


def _run(cfg: EngineConfig, requests: Requests, pools: FleetPools | None = None,
         seed: int = 0):
    return simulate(cfg, requests, LinearSteps(), np.random.default_rng(seed), pools=pools)


def _same(a, b) -> None:
    for column in ("replica", "admit_s", "first_token_s", "finish_s", "preemptions",
                   "rejected"):
        np.testing.assert_array_equal(getattr(a, column), getattr(b, column), err_msg=column)


@pytest.mark.parametrize("router", ["least-loaded", "random", "least-pending-tokens"])
def test_one_pool_is_the_homogeneous_fleet(router: str) -> None:
    requests = _workload()
    cfg = _config(replicas=3, router=router)
    one = FleetPools((ServingPool(cfg, LinearSteps()),), "load")
    _same(_run(cfg, requests), _run(cfg, requests, one))


def test_alike_pools_split_by_load_route_as_one_least_loaded_fleet() -> None:
    # The split picks the pool whose least-loaded replica holds least (ties: the first
    # pool), the pool its least-loaded replica (ties: the lowest): the whole fleet's
    # least-loaded replica with ties to the lowest index, which is what one fleet picks.
    requests = _workload(rate_per_s=60.0)
    whole = _config(replicas=3)
    pools = FleetPools((ServingPool(_config(replicas=2), LinearSteps()),
                        ServingPool(_config(replicas=1), LinearSteps())), "load")
    _same(_run(whole, requests), _run(whole, requests, pools))


def test_a_size_split_sends_each_prompt_to_its_pool_bounds_included() -> None:
    prompts = np.array([1, 100, 101, 1000, 1001, 5000, 99, 1000])
    requests = Requests(np.arange(len(prompts)) * 0.5, prompts, np.full(len(prompts), 5))
    # Listed out of bound order: the smallest bound holding a prompt wins wherever it is.
    pools = FleetPools((ServingPool(_config(replicas=2), LinearSteps(), None),
                        ServingPool(_config(replicas=1), LinearSteps(), 1000),
                        ServingPool(_config(replicas=3), LinearSteps(), 100)), "size")
    result = _run(_config(replicas=6), requests, pools)
    pool_of = np.searchsorted(np.array([2, 3, 6]), result.replica, side="right")
    assert pool_of.tolist() == [2, 2, 1, 1, 0, 0, 2, 1]
    assert np.isfinite(result.finish_s).all()
    assert len(result.replicas) == 6


def test_a_request_its_pool_cannot_hold_is_rejected_and_a_load_split_sends_it_elsewhere() -> None:
    # The small pool's whole KV cache holds 1,000 tokens: a 2,000-token request fits only the
    # large pool. Under a size split that sends it to the small pool, it is rejected.
    prompts = np.array([200, 1900, 300])
    requests = Requests(np.array([0.0, 0.1, 0.2]), prompts, np.array([10, 10, 10]))
    small = ServingPool(_config(capacity=1000), LinearSteps(), 5000)
    large = ServingPool(_config(capacity=100_000), SlowerSteps(2.0), None)
    sized = _run(_config(replicas=2), requests, FleetPools((small, large), "size"))
    assert sized.rejected.tolist() == [False, True, False]
    assert sized.replica.tolist() == [0, -1, 0]
    by_load = _run(_config(replicas=2), requests,
                   FleetPools((ServingPool(small.config, LinearSteps()), large), "load"))
    assert by_load.rejected.tolist() == [False, False, False]
    assert by_load.replica[1] == 1  # only the large pool holds it
    # Nothing fits anywhere: rejected under either split.
    huge = Requests(np.array([0.0]), np.array([200_000]), np.array([5]))
    for split in ("size", "load"):
        pools = FleetPools((small, large) if split == "size" else
                           (ServingPool(small.config, LinearSteps()), large), split)
        assert _run(_config(replicas=2), huge, pools).rejected.tolist() == [True]


def test_requests_and_tokens_are_conserved_across_pools_and_a_faster_pool_serves_more() -> None:
    requests = _workload(n=800, rate_per_s=50.0)
    pools = FleetPools((ServingPool(_config(replicas=2), SlowerSteps(3.0)),
                        ServingPool(_config(replicas=2), LinearSteps())), "load")
    result = _run(_config(replicas=4), requests, pools)
    assert np.isfinite(result.finish_s).all()
    generated = sum(r.generated_tokens for r in result.replicas)
    assert generated == int(requests.output_tokens.sum())
    prefilled = sum(r.prefill_tokens for r in result.replicas)
    assert prefilled == int(requests.prompt_tokens.sum())  # no preemption at this load
    slow, fast = (int(((result.replica >= lo) & (result.replica < lo + 2)).sum())
                  for lo in (0, 2))
    assert slow + fast == len(requests.arrival_s)
    # It empties its queues sooner, so it is picked more often, though ties go to the slow
    # pool, listed first.
    assert fast > slow


@pytest.mark.parametrize("split", ["load", "size"])
def test_exact_mode_equals_event_skipping_across_pools(split: str) -> None:
    requests = _workload(n=500, rate_per_s=45.0, seed=11)
    bound = 1500 if split == "size" else None

    def pools(exact: bool) -> FleetPools:
        return FleetPools((ServingPool(_config(replicas=1, exact=exact, capacity=40_000),
                                       LinearSteps(), bound),
                           ServingPool(_config(replicas=2, exact=exact, capacity=60_000),
                                       SlowerSteps(1.7), None)), split)

    skipping = _run(_config(replicas=3), requests, pools(False))
    exact = _run(_config(replicas=3, exact=True), requests, pools(True))
    np.testing.assert_array_equal(exact.replica, skipping.replica)
    for column in ("first_token_s", "finish_s"):
        np.testing.assert_allclose(getattr(exact, column), getattr(skipping, column),
                                   rtol=0, atol=1e-9, err_msg=column)
    assert exact.preemptions.tolist() == skipping.preemptions.tolist()
    assert exact.events > skipping.events
