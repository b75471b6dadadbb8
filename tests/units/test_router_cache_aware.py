"""The cache-aware router against the engine's own prefix caches: a request goes where its
uncached prompt plus the prompt tokens already outstanding cost least."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest
from builders import Case, tiny
from engine_seam import BASE, ConstantStep, requests

import sim
from sim.engine.records import EngineResult
from sim.engine.simulation import simulate

SYSTEM_TOKENS = 320  # the shared prefix: 20 whole blocks of 16


@dataclasses.dataclass(frozen=True)
class Tree:
    """One shared root of SYSTEM_TOKENS; the requests flagged `shared` begin with it."""

    shared: list[bool]

    @property
    def node_parent(self) -> np.ndarray:
        return np.array([-1])

    @property
    def node_tokens(self) -> np.ndarray:
        return np.array([SYSTEM_TOKENS])

    @property
    def node_depth_tokens(self) -> np.ndarray:
        return np.array([SYSTEM_TOKENS])

    @property
    def prompt_node(self) -> np.ndarray:
        return np.array([0 if s else -1 for s in self.shared])

    @property
    def output_node(self) -> np.ndarray:
        return np.full(len(self.shared), -1)


# t = 0: a shared-prefix prompt, alone, so replica 0 (the tie) computes and caches the
# prefix, and finishes well before 0.9 s. t = 0.9: an unshared prompt of 100 with a long
# answer, a tie again (100 + 0 each): replica 0, where it is still running at t = 1. t = 1: a
# second shared-prefix prompt of 400. Cache-aware: replica 0 costs (400 − 320) + 100 = 180,
# replica 1 400 + 0: replica 0. Least-pending-tokens sees 100 against 0: replica 1.
ROWS = requests((0.0, 400, 10), (0.9, 100, 300), (1.0, 400, 10))
SHARED = Tree([True, False, True])


def _run(router: str) -> EngineResult:
    cfg = dataclasses.replace(BASE, replicas=2, router=router, prefix_block_tokens=16)
    return simulate(cfg, ROWS, ConstantStep(), np.random.default_rng(0), prefix=SHARED)


def test_a_repeat_of_a_prefix_goes_to_the_replica_that_cached_it() -> None:
    aware = _run("cache-aware")
    assert aware.replica.tolist() == [0, 0, 0]
    assert aware.cached_tokens is not None
    assert aware.cached_tokens.tolist() == [0, 0, SYSTEM_TOKENS]
    blind = _run("least-pending-tokens")
    assert blind.replica.tolist() == [0, 0, 1]
    assert blind.cached_tokens is not None
    assert blind.cached_tokens.tolist() == [0, 0, 0]
    # The cached prefix is prefill it does not do: its first token comes sooner.
    aware_ttft = aware.first_token_s[2] - aware.arrival_s[2]
    blind_ttft = blind.first_token_s[2] - blind.arrival_s[2]
    assert aware_ttft < blind_ttft


def test_without_a_cache_it_weighs_only_the_prompt_tokens_outstanding() -> None:
    cfg = dataclasses.replace(BASE, replicas=2, router="cache-aware")
    plain = simulate(cfg, ROWS, ConstantStep(), np.random.default_rng(0))
    assert plain.replica.tolist() == [0, 0, 1]


def test_same_inputs_same_routing() -> None:
    first, second = _run("cache-aware"), _run("cache-aware")
    assert first.replica.tolist() == second.replica.tolist()
    np.testing.assert_array_equal(first.finish_s, second.finish_s)


@pytest.mark.parametrize("cache", [{}, {"deployment__prefix_cache": {"enabled": False}}])
def test_a_cache_aware_router_without_a_prefix_cache_is_rejected(
        check_rejected: Callable[[Case], None], cache: dict[str, object]) -> None:
    check_rejected(Case("cache-aware-without-cache", tiny(deployment__router="cache-aware",
                                                          **cache),
                        "deployment.router", "'cache-aware'",
                        ("deployment.prefix_cache: {enabled: true}",)))


def test_a_cache_aware_scenario_runs_with_its_prefix_cache() -> None:
    data = tiny(deployment__router="cache-aware", deployment__prefix_cache={"enabled": True})
    d = sim.run(data).to_dict()
    assert d["requests"]["completed"] == d["requests"]["arrived"] > 0
    assert "prefix_cache" in d
