"""Routers: pick the replica for each arriving request from the replicas' loads.

A router is a plain function (request index, loads) → replica index, where a replica's load
is its outstanding requests (waiting plus running). Random choices are drawn up front from
the router's own seed stream, one row per request, so routing is vectorised and the same
request always sees the same draw.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Router = Callable[[int, list[int]], int]


def _round_robin(replicas: int, rng: np.random.Generator, n: int) -> Router:
    return lambda i, loads: i % replicas


def _least_loaded(replicas: int, rng: np.random.Generator, n: int) -> Router:
    # Ties go to the lowest index, so the choice is deterministic.
    return lambda i, loads: loads.index(min(loads))


def _power_of_two(replicas: int, rng: np.random.Generator, n: int) -> Router:
    if replicas == 1:
        return lambda i, loads: 0
    first = rng.integers(0, replicas, n)
    second = rng.integers(0, replicas - 1, n)
    second = np.where(second >= first, second + 1, second)  # two distinct replicas
    a, b = first.tolist(), second.tolist()

    def pick(i: int, loads: list[int]) -> int:
        x, y = a[i], b[i]
        return y if loads[y] < loads[x] else x

    return pick


def _random(replicas: int, rng: np.random.Generator, n: int) -> Router:
    choice = rng.integers(0, replicas, n).tolist()
    return lambda i, loads: choice[i]


ROUTERS: dict[str, Callable[[int, np.random.Generator, int], Router]] = {
    "round-robin": _round_robin,
    "least-loaded": _least_loaded,
    "power-of-two": _power_of_two,
    "random": _random,
}


def make_router(name: str, replicas: int, rng: np.random.Generator, n_requests: int) -> Router:
    return ROUTERS[name](replicas, rng, n_requests)
