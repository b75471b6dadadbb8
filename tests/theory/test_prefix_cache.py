"""The engine's prefix cache against closed forms: a shared system prompt's hit ratio and the
TTFT it saves, the KV it holds once, LRU eviction, and exact = event skipping with it on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from engine_seam import Requests

from sim.engine import EngineConfig
from sim.engine.simulation import simulate

PREFILL_TOKEN_S = 1e-4  # per prompt token
PAIR_S = 1e-8  # per attention pair (query token × context token)
DECODE_STEP_S = 0.01


class LinearSteps:
    """A step model simple enough to compute by hand: prefill costs per token and per
    attention pair, a decode step a constant."""

    per_kv_token_s = 0.0

    def decode_fixed_s(self, batch: int) -> float:
        return DECODE_STEP_S

    def step_s(self, prefill_tokens: int, pairs: float, decode_seqs: int,
               decode_kv_tokens: int) -> tuple[float, float]:
        return (prefill_tokens * PREFILL_TOKEN_S + pairs * PAIR_S,
                DECODE_STEP_S if decode_seqs else 0.0)


@dataclass(frozen=True)
class Tree:
    node_parent: np.ndarray
    node_tokens: np.ndarray
    node_depth_tokens: np.ndarray
    prompt_node: np.ndarray
    output_node: np.ndarray


def _tree(parent: list[int], tokens: list[int], prompt_node: list[int],
          output_node: list[int] | None = None) -> Tree:
    depth: list[int] = []
    for p, t in zip(parent, tokens, strict=True):
        depth.append(t + (depth[p] if p >= 0 else 0))
    out = [-1] * len(prompt_node) if output_node is None else output_node
    return Tree(*(np.asarray(x, dtype=np.int64) for x in (parent, tokens, depth, prompt_node,
                                                           out)))


def _config(block: int = 16, capacity: int = 1_000_000, replicas: int = 1,
            exact: bool = False, **keys: object) -> EngineConfig:
    settings: dict[str, object] = dict(
        replicas=replicas, policy="chunked-prefill", max_num_seqs=64,
        max_batched_tokens=8192, kv_capacity_tokens=capacity, kv_block_tokens=16,
        router="round-robin", window_start_s=0.0, window_end_s=1e9, stop_s=None,
        exact=exact, prefix_block_tokens=block)
    settings.update(keys)
    return EngineConfig(**settings)  # type: ignore[arg-type]


def _run(cfg: EngineConfig, requests: Requests, tree: Tree | None):
    return simulate(cfg, requests, LinearSteps(), np.random.default_rng(0), prefix=tree)


def _spaced(prompts: list[int], outputs: list[int], gap_s: float = 100.0) -> Requests:
    n = len(prompts)
    return Requests(np.arange(n) * gap_s, np.asarray(prompts), np.asarray(outputs))


def _prefill_s(tokens: int, before: int) -> float:
    """One chunk of `tokens` after `before` tokens of context."""
    return tokens * PREFILL_TOKEN_S + tokens * (before + (tokens + 1) / 2) * PAIR_S


def test_a_shared_system_prompt_is_prefilled_once_and_the_rest_hit_two_thirds() -> None:
    # 3,072-token prompts whose first 2,048 are a shared system prompt, one at a time: the
    # first prefills everything, each later one only its own 1,024 tokens.
    n = 10
    requests = _spaced([3072] * n, [8] * n)
    tree = _tree([-1], [2048], [0] * n)
    result = _run(_config(), requests, tree)
    assert result.cached_tokens is not None
    assert result.cached_tokens.tolist() == [0] + [2048] * (n - 1)
    hit_ratio = result.cached_tokens.sum() / requests.prompt_tokens.sum()
    assert hit_ratio == pytest.approx(2 / 3 * (n - 1) / n)
    ttft = result.first_token_s - result.arrival_s
    assert ttft[0] == pytest.approx(_prefill_s(3072, 0))
    assert ttft[1:] == pytest.approx([_prefill_s(1024, 2048)] * (n - 1))
    # The reuse still costs its attention: the new tokens' pairs over the cached 2,048.
    assert result.cached_prefill_s is not None
    assert result.cached_prefill_s[1:] == pytest.approx([1024 * 2048 * PAIR_S] * (n - 1))
    # Without the cache every request prefills everything.
    off = _run(_config(block=0), requests, tree)
    assert off.cached_tokens is None
    assert (off.first_token_s - off.arrival_s) == pytest.approx([_prefill_s(3072, 0)] * n)
    # Prompt tokens prefilled: the cached ones are not counted as input processed.
    prefilled = sum(r.prefill_tokens for r in result.replicas)
    assert prefilled == 3072 + (n - 1) * 1024


def test_a_hit_is_whole_blocks_and_leaves_the_last_prompt_token_to_compute() -> None:
    # A 1,000-token shared node: vLLM's 16-token blocks reuse 992 of it, SGLang's single
    # tokens all 1,000; a prompt that is all shared still computes its last token.
    requests = _spaced([1500, 1500, 1000], [4, 4, 4])
    tree = _tree([-1], [1000], [0, 0, 0])
    by_block = {block: _run(_config(block=block), requests, tree).cached_tokens.tolist()
                for block in (16, 1, 32)}
    assert by_block[16] == [0, 992, 992]
    assert by_block[32] == [0, 992, 992]
    assert by_block[1] == [0, 1000, 999]


def test_a_session_reuses_its_history_including_the_answers() -> None:
    # Turn 1: 500 prompt tokens, 100 out; turn 2 resends them (600) plus 50 new; turn 3
    # resends 650 + 80 out + 40 new. Nodes: p1(500) → o1(100) → p2(50) → o2(80) → p3(40).
    parent = [-1, 0, 1, 2, 3]
    tokens = [500, 100, 50, 80, 40]
    requests = _spaced([500, 650, 770], [100, 80, 10])
    tree = _tree(parent, tokens, prompt_node=[0, 2, 4], output_node=[1, 3, -1])
    result = _run(_config(block=1), requests, tree)
    assert result.cached_tokens.tolist() == [0, 600, 730]


def test_lru_evicts_the_least_recently_used_prefix_first() -> None:
    # Three 4,000-token system prompts A, B, C and 10,000 tokens of cache: a running request
    # (4,117 tokens with its slack) leaves room for one unreferenced prompt. A, B, A, C, B:
    # C's admission evicts B (A was used more recently), B's then evicts A, so B misses.
    tokens = [4000, 4000, 4000]
    order = [0, 1, 0, 2, 1]
    requests = _spaced([4100] * 5, [4] * 5)
    tree = _tree([-1, -1, -1], tokens, order)
    capacity = 10_000
    result = _run(_config(capacity=capacity), requests, tree)
    hits = result.cached_tokens.tolist()
    assert hits == [0, 0, 4000, 0, 0]
    assert result.replicas[0].evicted_blocks >= 4000 // 16
    # Unbounded, the last B hits.
    assert _run(_config(), requests, tree).cached_tokens.tolist() == [0, 0, 4000, 0, 4000]


def _busy_workload(seed: int, n: int = 300) -> tuple[Requests, Tree]:
    """Many prefixes of random lengths, reused at random, arriving fast enough to queue."""
    rng = np.random.default_rng(seed)
    roots = 12
    root_tokens = rng.integers(200, 3000, roots).tolist()
    parent = [-1] * roots
    tokens = list(root_tokens)
    prompt_node, prompts = [], []
    for _ in range(n):
        r = int(rng.integers(0, roots))
        own = int(rng.integers(1, 800))
        prompt_node.append(r)
        prompts.append(root_tokens[r] + own)
    # A few chains: requests that extend an earlier request's prompt node.
    for i in range(0, n, 7):
        node = len(parent)
        parent.append(prompt_node[i])
        tokens.append(50)
        prompt_node[i] = node
        prompts[i] = max(prompts[i], root_tokens[parent[node]] + 50 + 1)
    arrival = np.cumsum(rng.exponential(0.05, n))
    outputs = rng.integers(1, 300, n)
    return Requests(arrival, np.asarray(prompts), outputs), _tree(parent, tokens, prompt_node)


@pytest.mark.parametrize(("policy", "admission", "router"), [
    ("chunked-prefill", "prompt", "round-robin"), ("chunked-prefill", "reserve-output",
                                                   "round-robin"),
    ("prefill-first", "prompt", "round-robin"), ("prefill-first", "reserve-output",
                                                 "round-robin"),
    # Routing by what is cached reads the cache during decode runs.
    ("chunked-prefill", "prompt", "cache-aware"), ("prefill-first", "prompt", "cache-aware")])
def test_exact_mode_equals_event_skipping_with_the_cache_under_pressure(
        policy: str, admission: str, router: str) -> None:
    requests, tree = _busy_workload(1)
    keys = dict(policy=policy, admission=admission, capacity=40_000, replicas=2,
                router=router)
    fast = _run(_config(**keys), requests, tree)
    exact = _run(_config(exact=True, **keys), requests, tree)
    for column in ("replica", "admit_s", "first_token_s", "finish_s", "cached_tokens",
                   "preemptions"):
        a, b = getattr(fast, column), getattr(exact, column)
        assert np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True), column
    assert [r.evicted_blocks for r in fast.replicas] == [r.evicted_blocks for r in exact.replicas]
    assert fast.events < exact.events
    if admission == "prompt":
        assert fast.preemptions.sum() > 0  # the check covered evictions of sequences too
    assert sum(r.evicted_blocks for r in fast.replicas) > 0
    assert np.isfinite(fast.finish_s).all()


def test_the_cache_holds_shared_kv_once_and_gives_everything_back() -> None:
    from sim.engine.replica import Replica

    requests, tree = _busy_workload(2)
    seen: list[Replica] = []
    original = Replica.counters

    def spy(self: Replica):
        seen.append(self)
        return original(self)

    Replica.counters = spy  # type: ignore[method-assign]
    try:
        result = _run(_config(capacity=40_000, replicas=2), requests, tree)
    finally:
        Replica.counters = original  # type: ignore[method-assign]
    assert np.isfinite(result.finish_s).all()
    for replica in seen:
        cache = replica.cache
        assert replica.kv_used == 0
        assert all(n == 0 for n in cache.refs.values())
        assert cache.free_tokens == sum(tree.node_tokens[v] for v in cache.refs)
        assert cache.free_tokens <= replica.cap
        for v in cache.refs:  # closed under parents
            p = int(tree.node_parent[v])
            assert p < 0 or p in cache.refs
    # Hits beat a cache-less run on prefill work, and the same tokens are delivered.
    off = _run(_config(block=0, capacity=40_000, replicas=2), requests, tree)
    assert sum(r.prefill_tokens for r in result.replicas) < sum(
        r.prefill_tokens for r in off.replicas)
    assert sum(r.generated_tokens for r in result.replicas) == sum(
        r.generated_tokens for r in off.replicas)


def _hit_ratio(requests: Requests, tree: Tree, capacity: int) -> float:
    result = _run(_config(capacity=capacity), requests, tree)
    return float(result.cached_tokens.sum() / requests.prompt_tokens.sum())


def test_hit_ratio_grows_with_the_cache() -> None:
    # One request at a time, so that only the cache differs: LRU is a stack algorithm (a
    # larger cache holds everything a smaller one does), so the hits can only grow.
    busy, tree = _busy_workload(3)
    spaced = Requests(np.arange(len(busy)) * 100.0, busy.prompt_tokens, busy.output_tokens)
    ratios = [_hit_ratio(spaced, tree, c) for c in (6_000, 12_000, 20_000, 40_000, 200_000)]
    assert ratios == sorted(ratios)
    assert ratios[0] < ratios[-1]
    # Queued, a larger cache also runs more requests at once, and two that miss the same
    # prefix together both compute it (it is cached when a prefill completes), so the growth
    # is only overall.
    assert _hit_ratio(busy, tree, 12_000) < _hit_ratio(busy, tree, 200_000)


def test_without_prefix_identities_the_cache_finds_nothing() -> None:
    requests = _spaced([3000] * 4, [5] * 4)
    result = _run(_config(), requests, None)
    assert result.cached_tokens.tolist() == [0, 0, 0, 0]
    off = _run(_config(block=0), requests, None)
    assert np.array_equal(result.first_token_s, off.first_token_s)


@pytest.mark.parametrize(("seed", "capacity"), [(5, 15_000), (15, 25_000), (24, 15_000)])
def test_routing_by_the_cache_inside_a_decode_run_sees_what_the_run_evicted(
        seed: int, capacity: int) -> None:
    # A decode run's growth evicts cached prefixes, booked at its end when its steps are
    # skipped: an arrival asking the cache in between must see them gone, as it does
    # step by step (these workloads route differently otherwise).
    requests, tree = _busy_workload(seed, 200)
    keys = dict(capacity=capacity, replicas=3, router="cache-aware")
    fast = _run(_config(**keys), requests, tree)
    exact = _run(_config(exact=True, **keys), requests, tree)
    assert np.array_equal(fast.replica, exact.replica)
    assert np.allclose(fast.finish_s, exact.finish_s, rtol=1e-9, atol=1e-12, equal_nan=True)


RELOAD_S_PER_TOKEN = 2e-6


def test_an_offloaded_prefix_is_copied_back_and_the_copy_charged_to_its_prefill() -> None:
    # The LRU case above with room on the host: B, evicted from the GPU by C, waits in host
    # memory, and the last B finds it there: a hit, whose 4,000 tokens are copied back
    # before its prefill of its own 100 tokens.
    requests = _spaced([4100] * 5, [4] * 5)
    tree = _tree([-1, -1, -1], [4000, 4000, 4000], [0, 1, 0, 2, 1])
    cfg = _config(capacity=10_000, prefix_host_tokens=8000,
                  prefix_reload_s_per_token=RELOAD_S_PER_TOKEN)
    result = _run(cfg, requests, tree)
    assert result.cached_tokens.tolist() == [0, 0, 4000, 0, 4000]
    assert result.replicas[0].reloaded_tokens == 4000
    ttft = result.first_token_s - result.arrival_s
    assert ttft[4] == pytest.approx(_prefill_s(100, 4000) + 4000 * RELOAD_S_PER_TOKEN)
    assert ttft[2] == pytest.approx(_prefill_s(100, 4000))  # A never left the GPU
    # A host too small for a 4,000-token prefix keeps nothing.
    small = _run(_config(capacity=10_000, prefix_host_tokens=3999,
                         prefix_reload_s_per_token=RELOAD_S_PER_TOKEN), requests, tree)
    assert small.cached_tokens.tolist() == [0, 0, 4000, 0, 0]


def test_host_offload_raises_the_hit_ratio_and_keeps_exact_mode_exact() -> None:
    requests, tree = _busy_workload(6)
    keys = dict(capacity=15_000, replicas=2, prefix_reload_s_per_token=RELOAD_S_PER_TOKEN)
    gpu_only = _run(_config(**keys), requests, tree)
    fast = _run(_config(prefix_host_tokens=30_000, **keys), requests, tree)
    exact = _run(_config(prefix_host_tokens=30_000, exact=True, **keys), requests, tree)
    assert fast.cached_tokens.sum() > gpu_only.cached_tokens.sum()
    assert sum(r.reloaded_tokens for r in fast.replicas) > 0
    for column in ("replica", "first_token_s", "finish_s", "cached_tokens"):
        assert np.allclose(getattr(fast, column), getattr(exact, column), rtol=1e-9,
                           atol=1e-12, equal_nan=True), column
