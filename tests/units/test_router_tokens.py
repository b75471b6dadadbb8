"""The least-pending-tokens router: it weighs a replica's outstanding prompt tokens where
least-loaded counts its requests, and the engine keeps those token sums right through
arrivals, completions and the fleet's hand-backs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from builders import dynamic
from engine_seam import requests, run

import sim
import sim.engine.simulation as simulation
from sim.engine.fleet import BLOCKED
from sim.engine.router import ROUTERS, Router, make_router

# One long prompt at t = 0, then four short ones 1 ms apart: all still outstanding when the
# last arrives (the long prompt alone takes ten 64-token steps of 10 ms to prefill).
LONG_THEN_SHORT = requests((0.0, 600, 10), *[(0.001 * k, 20, 10) for k in range(1, 5)])


def test_least_pending_tokens_sends_the_short_prompts_away_from_the_long_one() -> None:
    # Pending prompt tokens when each short one arrives: [600, 0], [600, 20], [600, 40],
    # [600, 60]: replica 1 every time.
    tokens = run(LONG_THEN_SHORT, replicas=2, router="least-pending-tokens")
    assert tokens.replica.tolist() == [0, 1, 1, 1, 1]
    # Requests outstanding when each arrives: [1, 0], [1, 1], [2, 1], [2, 2]: alternating,
    # so two short prompts queue behind the long one's prefill.
    counted = run(LONG_THEN_SHORT, replicas=2, router="least-loaded")
    assert counted.replica.tolist() == [0, 1, 0, 1, 0]
    ttft_tokens = tokens.first_token_s[1:] - tokens.arrival_s[1:]
    ttft_counted = counted.first_token_s[1:] - counted.arrival_s[1:]
    assert ttft_tokens.max() < ttft_counted.max()


def test_ties_go_to_the_lowest_index() -> None:
    same = requests(*[(0.0, 100, 5)] * 3)  # arrive together: each sees the others' tokens
    assert run(same, replicas=3, router="least-pending-tokens").replica.tolist() == [0, 1, 2]
    route = make_router("least-pending-tokens", 3, np.random.default_rng(0), 1,
                        prompt_loads=[7, 3, 3])
    assert route(0, [0, 0, 0]) == 1


class Spy:
    """Wraps the engine's router: at every routing decision checks that each slot's prompt
    tokens outstanding are the Σ prompts of the requests it holds (waiting or admitted),
    and that a slot is blocked in the token sums exactly when it is in the request counts."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.prompt_loads: list[int] | None = None
        self.loads: list[int] = []
        self.caches: list[Any] = []  # the replicas
        self.calls = 0
        real = simulation.make_router

        def make(name: str, replicas: int, rng: np.random.Generator, n: int,
                 **inputs: Any) -> Router:
            route = real(name, replicas, rng, n, **inputs)
            self.prompt_loads = inputs["prompt_loads"]
            self.caches = inputs["caches"]

            def checked(i: int, loads: list[int]) -> int:
                self.loads = loads
                if self.prompt_loads is not None:
                    self.check()
                self.calls += 1
                return route(i, loads)

            return checked

        monkeypatch.setattr(simulation, "make_router", make)

    def held(self) -> Iterator[tuple[int, int, int]]:
        """(requests, Σ their prompt tokens, slot) for each slot, from what its replica holds."""
        for s, replica in enumerate(self.caches):
            rids = [*replica.waiting, *replica.running]
            tokens = sum(replica.table.prompt[rid] for rid in rids)
            yield len(rids), tokens, s

    def check(self) -> None:
        assert self.prompt_loads is not None
        for count, tokens, s in self.held():
            pending, blocked = self.prompt_loads[s] % BLOCKED, self.prompt_loads[s] // BLOCKED
            assert pending == tokens
            assert self.loads[s] % BLOCKED == count
            assert self.loads[s] // BLOCKED == blocked


@pytest.mark.parametrize("router", ["least-pending-tokens", "cache-aware"])
@pytest.mark.parametrize("kind", ["failures", "spot", "outage", "autoscaling"])
def test_prompt_tokens_outstanding_are_conserved_through_hand_backs(
        monkeypatch: pytest.MonkeyPatch, kind: str, router: str) -> None:
    spy = Spy(monkeypatch)
    data = dynamic(kind, "chunked-prefill")
    data["deployment"]["router"] = router
    if ROUTERS[router].needs_prefix_cache:
        data["deployment"]["prefix_cache"] = {"enabled": True}
    result = sim.run(data)
    d = result.to_dict()["requests"]
    if kind != "autoscaling":
        assert d["requeued"] > 0  # the hand-backs this is about happened
    assert d["completed"] == d["arrived"]
    assert spy.calls >= d["arrived"]
    spy.check()  # drained: every slot's sums are back to 0 (plus BLOCKED where blocked)
    assert spy.prompt_loads is not None
    assert all(load % BLOCKED == 0 for load in spy.prompt_loads)


def test_a_router_that_counts_requests_keeps_no_token_sums(
        monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy(monkeypatch)
    run(LONG_THEN_SHORT, replicas=2, router="least-loaded")
    assert spy.prompt_loads is None
    assert spy.caches[0].prompt_loads is None
    assert [name for name, kind in ROUTERS.items() if kind.weighs_prompts] == [
        "least-pending-tokens", "cache-aware"]


def test_same_seed_same_routing() -> None:
    data = dynamic("failures", "chunked-prefill")
    data["deployment"]["router"] = "least-pending-tokens"
    first, second = sim.run(data), sim.run(data)
    assert first.engine.replica.tolist() == second.engine.replica.tolist()
    np.testing.assert_array_equal(first.engine.finish_s, second.engine.finish_s)
    counted = dict(data, deployment=dict(data["deployment"], router="least-loaded"))
    assert sim.run(counted).engine.replica.tolist() != first.engine.replica.tolist()
