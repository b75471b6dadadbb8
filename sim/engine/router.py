"""Routers: pick the replica for each arriving request from the replicas' loads.

A router is a plain function (request index, loads) → replica index, where a replica's load
is its outstanding requests (waiting plus running). Random choices are drawn up front from
the router's own seed stream, one row per request, so routing is vectorised and the same
request always sees the same draw.

The token-aware routers weigh what a request costs rather than count requests: a long
prompt is many short ones' worth of prefill, and counting requests stacks long prompts on
one replica. They read the Σ prompt tokens of each replica's outstanding requests (the
shared `prompt_loads`, kept only when such a router runs: `RouterKind.weighs_prompts`), which
the dispatch paths add to at routing and the replica (`Replica._done`) or the fleet (a
hand-back) take from. A slot that takes no new requests carries `BLOCKED` there too.
Every tie goes to the lowest index, so routing is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

Router = Callable[[int, list[int]], int]

# Dynamo's KV router weighs the blocks a worker would prefill against its active blocks with
# `overlap_score_weight` (cost = weight × prefill blocks + decode blocks, default 1.0): one
# token to prefill counts as much as one token already queued there.
PREFILL_WEIGHT = 1.0


class PrefixCacheView(Protocol):
    """What the cache-aware router asks of a replica."""

    def cached_prefix_tokens(self, rid: int) -> int:
        """Tokens of request rid's prompt found in this replica's prefix cache (0: none)."""
        ...


@dataclass(frozen=True)
class RouterInputs:
    """What a router may read besides the loads passed at each call. `prompt_loads` and the
    caches are live: the engine changes them as requests arrive and finish."""

    replicas: int
    rng: np.random.Generator
    n_requests: int
    # Per request, the tokens its admission prefills: its prompt, and after a hand-back its
    # prompt plus what it had generated (a live list: the engine grows it then).
    prefill_tokens: Sequence[int] = ()
    # Σ prompt tokens of each replica's outstanding requests (None unless the router
    # weighs prompts); a slot taking no new requests carries BLOCKED on top.
    prompt_loads: list[int] | None = None
    caches: Sequence[PrefixCacheView] = ()  # per replica


def _round_robin(inputs: RouterInputs) -> Router:
    replicas = inputs.replicas
    return lambda i, loads: i % replicas


def _least_loaded(inputs: RouterInputs) -> Router:
    return lambda i, loads: loads.index(min(loads))


def _power_of_two(inputs: RouterInputs) -> Router:
    replicas, n = inputs.replicas, inputs.n_requests
    if replicas == 1:
        return lambda i, loads: 0
    first = inputs.rng.integers(0, replicas, n)
    second = inputs.rng.integers(0, replicas - 1, n)
    second = np.where(second >= first, second + 1, second)  # two distinct replicas
    a, b = first.tolist(), second.tolist()

    def pick(i: int, loads: list[int]) -> int:
        x, y = a[i], b[i]
        return y if loads[y] < loads[x] else x

    return pick


def _random(inputs: RouterInputs) -> Router:
    choice = inputs.rng.integers(0, inputs.replicas, inputs.n_requests).tolist()
    return lambda i, loads: choice[i]


def _pending(inputs: RouterInputs) -> list[int]:
    if inputs.prompt_loads is None:
        raise ValueError("a token-aware router needs the replicas' prompt_loads")
    return inputs.prompt_loads


def _least_pending_tokens(inputs: RouterInputs) -> Router:
    pending = _pending(inputs)
    return lambda i, loads: pending.index(min(pending))


def _cache_aware(inputs: RouterInputs) -> Router:
    """The replica where the request costs least: the tokens it would still prefill there
    (its prompt less the prefix that replica has cached) × PREFILL_WEIGHT, plus the prompt
    tokens already outstanding there.

    This is the cost function of Dynamo's KV router (NVIDIA Dynamo docs, "Routing
    Concepts": cost = overlap_score_weight × prefill blocks + decode blocks, lowest cost
    wins, temperature 0: deterministic), in tokens rather than blocks, with the pending
    prompt tokens standing for the active load. SGLang's router (sgl-router's cache_aware
    policy) instead switches between rules: shortest queue when the loads are imbalanced
    (max − min > balance_abs_threshold and max > balance_rel_threshold × min), else the
    worker with the longest prefix match when it matches at least cache_threshold of the
    prompt. One continuous cost needs no thresholds to set, and it trades a cache hit
    against a queue in the same unit, the tokens a replica must still process."""
    pending, prefill, caches = _pending(inputs), inputs.prefill_tokens, inputs.caches
    if len(caches) != inputs.replicas:
        raise ValueError("the cache-aware router needs every replica's prefix cache")
    weight = PREFILL_WEIGHT
    lookups = [cache.cached_prefix_tokens for cache in caches]

    def pick(i: int, loads: list[int]) -> int:
        tokens = prefill[i]
        best, best_cost = 0, float("inf")
        for r, cached in enumerate(lookups):
            cost = weight * (tokens - cached(i)) + pending[r]
            if cost < best_cost:  # strictly: a tie keeps the lower index
                best, best_cost = r, cost
        return best

    return pick


@dataclass(frozen=True)
class RouterKind:
    build: Callable[[RouterInputs], Router]
    summary: str  # one line for --help
    weighs_prompts: bool = False  # reads prompt_loads: the engine keeps them only then
    needs_prefix_cache: bool = False  # routes by the replicas' caches: useless without them


ROUTERS: dict[str, RouterKind] = {
    "round-robin": RouterKind(_round_robin, "request i goes to replica i mod replicas"),
    "least-loaded": RouterKind(
        _least_loaded, "the replica with the fewest outstanding requests"),
    "power-of-two": RouterKind(
        _power_of_two, "the less loaded of two replicas drawn at random"),
    "random": RouterKind(_random, "a replica drawn at random"),
    "least-pending-tokens": RouterKind(
        _least_pending_tokens, "the replica with the fewest prompt tokens outstanding",
        weighs_prompts=True),
    "cache-aware": RouterKind(
        _cache_aware, "least (uncached prompt tokens + prompt tokens outstanding), as "
        "Dynamo's KV router; needs deployment.prefix_cache", weighs_prompts=True,
        needs_prefix_cache=True),
}


def weighs_prompts(name: str) -> bool:
    """Whether router `name` reads the replicas' prompt_loads (the engine keeps them then)."""
    return ROUTERS[name].weighs_prompts


def make_router(name: str, replicas: int, rng: np.random.Generator, n_requests: int, *,
                prefill_tokens: Sequence[int] = (), prompt_loads: list[int] | None = None,
                caches: Sequence[PrefixCacheView] = ()) -> Router:
    """Router `name` for a fleet of `replicas` slots and `n_requests` requests; the token
    sums and caches are needed only by the routers that read them (`RouterKind`)."""
    return ROUTERS[name].build(RouterInputs(replicas, rng, n_requests, prefill_tokens,
                                            prompt_loads, caches))
