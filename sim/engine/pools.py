"""A heterogeneous fleet: named pools of replicas, each with its own GPUs, layout, scheduler
and KV cache, and a split that sends each request to one pool.

Every pool keeps its own loads and router, as a fleet of its own would (its router sees only
its replicas); the split in front picks the pool:

* `size` — by prompt length: each pool but one takes prompts up to its `max_prompt_tokens`
  (the smallest bound that holds the prompt wins) and the one without a bound takes the
  rest. Short prompts go to cheap GPUs, long ones to GPUs with the memory and compute
  they need; a request larger than its pool's KV cache is rejected, as on any replica.
* `load` — the pool whose least-loaded replica holds the least (outstanding requests, or
  the prompt tokens outstanding where the pools' routers weigh tokens), among the pools
  whose KV cache can hold the request; ties to the first pool. A faster pool empties its
  queues sooner and so takes more of the traffic, as join-the-shortest-queue does across
  servers of different speeds. A request no pool can hold is rejected.

The replicas are numbered through the pools in order (pool 0's first), which is the order
of `EngineResult.replicas` and the index in `EngineResult.replica`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import simpy

from sim.engine.gaps import GapHistogram, GapRecorder, LongestGaps
from sim.engine.prefix import PrefixIndex
from sim.engine.records import EngineConfig, WindowCounters
from sim.engine.replica import Replica
from sim.engine.requests import RequestTable
from sim.engine.router import Router, make_router, weighs_prompts
from sim.engine.seams import Requests, StepModel

SPLITS = ("load", "size")


@dataclass(frozen=True)
class ServingPool:
    """One pool: its replicas' settings (`config.replicas` of them) and step-time model."""

    config: EngineConfig
    step_model: StepModel
    max_prompt_tokens: int | None = None  # size split: the longest prompt it takes


@dataclass(frozen=True)
class FleetPools:
    """The pools, in order, and how requests are split between them (`SPLITS`). With `size`,
    exactly one pool has no `max_prompt_tokens` and the bounds differ (the scenario checks)."""

    pools: tuple[ServingPool, ...]
    split: str

    @property
    def replicas(self) -> int:
        return sum(pool.config.replicas for pool in self.pools)


class ReplicaPool:
    """One pool's replicas, their loads and its router; `offset` numbers its replicas after
    the pools before it."""

    def __init__(self, env: simpy.Environment, pool: ServingPool, offset: int,
                 table: RequestTable, gaps: GapHistogram, rng: np.random.Generator, n: int,
                 prefix: PrefixIndex | None) -> None:
        cfg = pool.config
        self.offset = offset
        self.loads = [0] * cfg.replicas
        self.prompt_loads = [0] * cfg.replicas if weighs_prompts(cfg.router) else None
        recorder = LongestGaps if cfg.track_longest_gaps else GapRecorder
        self.replicas = [
            Replica(i, env, cfg, pool.step_model, table,
                    WindowCounters(cfg.window_start_s, cfg.window_end_s), self.loads,
                    recorder(gaps), self.prompt_loads, prefix=prefix)
            for i in range(cfg.replicas)]
        self.route: Router = make_router(cfg.router, cfg.replicas, rng, n,
                                         prefill_tokens=table.prefill_len,
                                         prompt_loads=self.prompt_loads, caches=self.replicas)
        self.prompts = table.prompt

    def least_load(self) -> int:
        """What the `load` split compares: the least any replica here holds."""
        return min(self.loads if self.prompt_loads is None else self.prompt_loads)

    def dispatch(self, rid: int) -> int:
        """Route rid to one of this pool's replicas; its index in the whole fleet."""
        r = self.route(rid, self.loads)
        self.loads[r] += 1
        if self.prompt_loads is not None:
            self.prompt_loads[r] += self.prompts[rid]
        self.replicas[r].arrive(rid)
        return self.offset + r


def fits(config: EngineConfig, prompt_tokens: np.ndarray,
         output_tokens: np.ndarray | int) -> np.ndarray:
    """Per request, whether one replica of `config` could ever hold it: its whole context,
    a slack block, speculative decoding's draft positions and a last step's extra tokens.
    One that never could is rejected rather than admitted (it would wait for ever)."""
    overshoot = math.ceil(config.tokens_per_step) - 1
    return (prompt_tokens + output_tokens + config.kv_block_tokens
            + config.lookahead_tokens + overshoot <= config.kv_capacity_tokens)


class PooledFleet:
    """Every pool's replicas, and the split that dispatches a request to one of them."""

    def __init__(self, env: simpy.Environment, spec: FleetPools, workload: Requests,
                 table: RequestTable, gaps: GapHistogram, rng: np.random.Generator,
                 prefix: PrefixIndex | None) -> None:
        n = len(workload)
        self.pools: list[ReplicaPool] = []
        offset = 0
        for pool in spec.pools:
            self.pools.append(ReplicaPool(env, pool, offset, table, gaps, rng, n, prefix))
            offset += pool.config.replicas
        self.replicas = [r for pool in self.pools for r in pool.replicas]
        held = np.stack([fits(pool.config, workload.prompt_tokens, workload.output_tokens)
                         for pool in spec.pools]) if n else \
            np.zeros((len(spec.pools), 0), dtype=bool)
        self.sized = spec.split == "size"
        if self.sized:
            self.chosen = by_size([p.max_prompt_tokens for p in spec.pools],
                                  workload.prompt_tokens).tolist()
            self.rejected = ~held[self.chosen, np.arange(n)] if n else np.zeros(0, dtype=bool)
        else:
            self.holds = held.T.tolist()  # per request, per pool
            self.rejected = ~held.any(axis=0)

    def dispatch(self, rid: int) -> int:
        """Route an admissible request rid; the replica's index in the whole fleet."""
        if self.sized:
            return self.pools[self.chosen[rid]].dispatch(rid)
        holds = self.holds[rid]
        best, least = -1, 0
        for p, pool in enumerate(self.pools):
            if holds[p]:
                load = pool.least_load()
                if best < 0 or load < least:
                    best, least = p, load
        return self.pools[best].dispatch(rid)


def by_size(bounds: Sequence[int | None], prompt_tokens: np.ndarray) -> np.ndarray:
    """Per prompt, the index of its pool under the `size` split: the pool with the smallest
    bound (`max_prompt_tokens`) holding it, else the one pool without a bound."""
    bounded = sorted((b, i) for i, b in enumerate(bounds) if b is not None)
    rest = list(bounds).index(None)
    limits = np.array([b for b, _ in bounded], dtype=np.int64)
    targets = np.array([i for _, i in bounded] + [rest], dtype=np.int64)
    return targets[np.searchsorted(limits, prompt_tokens, side="left")]
