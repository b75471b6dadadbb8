"""A disaggregated fleet's figures: each pool's utilisation, the fleet's over both, and the
KV transfers between them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.engine.records import EngineResult
from sim.metrics import latency
from sim.metrics.work import Utilization, utilization, work_of


@dataclass(frozen=True)
class PoolFacts:
    """One pool of a disaggregated fleet as configured."""

    role: str  # prefill | decode
    replicas: int
    gpus_per_replica: int
    kv_capacity_tokens_per_replica: int

    @property
    def gpus(self) -> int:
        return self.replicas * self.gpus_per_replica


POOL_FIELDS = tuple(f"{role}_pool_{name}" for role in ("prefill", "decode")
                     for name in ("replicas", "gpus", "busy_fraction", "batch_size_mean",
                                  "kv_cache_fraction_mean"))
NO_POOLS: dict[str, Any] = dict.fromkeys(
    (*POOL_FIELDS, "kv_transfer_mean_s", "kv_transfer_p99_s", "kv_transfer_bytes"))


@dataclass(frozen=True)
class Pooled:
    """A disaggregated run's figures: the fleet's GPUs and utilisation over both pools,
    the busy GPU-seconds the phase-time split charges to input (prefill pool) and output
    (decode pool), and the record's pool fields."""

    gpus: float
    use: Utilization
    phase_gpu_s: tuple[float, float]
    fields: dict[str, Any]


def pooled(pools: tuple[PoolFacts, ...], engine: EngineResult, window_s: float,
            measured: np.ndarray) -> Pooled | None:
    """The figures of `Pooled` (None: an aggregated fleet)."""
    if not pools:
        return None
    split = engine.prefill_replicas
    assert split is not None and engine.kv_transfer_s is not None  # a decode pool's run
    works = (work_of(engine.replicas[:split]), work_of(engine.replicas[split:]))
    uses = [utilization(work, pool.replicas, window_s, pool.kv_capacity_tokens_per_replica)
            for pool, work in zip(pools, works, strict=True)]
    busy_gpu_s = [work.busy_s * pool.gpus_per_replica
                  for pool, work in zip(pools, works, strict=True)]
    gpus = float(sum(pool.gpus for pool in pools))
    kv_room = sum(pool.replicas * pool.kv_capacity_tokens_per_replica for pool in pools)
    whole = work_of(engine.replicas)
    use = Utilization(
        busy_fraction=sum(busy_gpu_s) / (gpus * window_s) if gpus > 0 else 0.0,
        batch_size_mean=uses[-1].batch_size_mean,
        kv_cache_fraction_mean=whole.kv_token_s / (kv_room * window_s) if kv_room else 0.0,
        prefill_fraction_of_busy=whole.prefill_s / whole.busy_s if whole.busy_s > 0 else 0.0)
    fields: dict[str, Any] = {}
    for pool, pool_use in zip(pools, uses, strict=True):
        fields.update({f"{pool.role}_pool_replicas": pool.replicas,
                       f"{pool.role}_pool_gpus": pool.gpus,
                       f"{pool.role}_pool_busy_fraction": pool_use.busy_fraction,
                       f"{pool.role}_pool_batch_size_mean": pool_use.batch_size_mean,
                       f"{pool.role}_pool_kv_cache_fraction_mean":
                           pool_use.kv_cache_fraction_mean})
    moved = latency.stats(engine.kv_transfer_s[measured])
    fields.update(kv_transfer_mean_s=moved.mean, kv_transfer_p99_s=moved.p99,
                  kv_transfer_bytes=float(engine.kv_transfer_bytes))
    return Pooled(gpus, use, (busy_gpu_s[0], busy_gpu_s[-1]), fields)
