"""A fleet of pools: each pool's utilisation and the fleet's over all of them.

Two kinds of fleet have pools. A disaggregated one has a prefill pool and a decode pool, and
the KV transfers between them; its record carries each pool's figures flat
(`prefill_pool_*`, `decode_pool_*`). A heterogeneous one (`deployment.pools`) has named
pools each serving whole requests; its figures per pool (`pool_figures`) go to the result's
`pools` list, as their number varies. Either way the fleet's figures weigh each pool by its
GPUs: `busy_fraction` is the busy GPU-seconds over the paid ones, the MFU and MBU peaks the
pools' GPUs' together (`mean_demands`), and the GPU-hour price the pools' prices weighted
by their GPUs (`gpu_hour_usd`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from sim.engine.records import EngineResult, ReplicaCounters
from sim.metrics import latency
from sim.metrics.intensity import Demands
from sim.metrics.work import Utilization, Work, utilization, work_of


@dataclass(frozen=True)
class PoolFacts:
    """One pool as configured, in the engine's replica order."""

    role: str  # prefill | decode; a heterogeneous fleet's pool: its name
    replicas: int
    gpus_per_replica: int
    kv_capacity_tokens_per_replica: int
    gpu_name: str = ""
    gpu_hour_usd: float | None = None  # None: the scenario's price (or its TCO)

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
    """A pooled run's figures: the fleet's GPUs and utilisation over its pools, the busy
    GPU-seconds the phase-time split charges to input and output, and the record's flat
    pool fields (a disaggregated fleet's; NO_POOLS for a heterogeneous one)."""

    gpus: float
    use: Utilization
    phase_gpu_s: tuple[float, float]
    fields: dict[str, Any]


def split(pools: Sequence[PoolFacts],
          replicas: Sequence[ReplicaCounters]) -> list[Sequence[ReplicaCounters]]:
    """Each pool's replica counters, in order."""
    parts, start = [], 0
    for pool in pools:
        parts.append(replicas[start:start + pool.replicas])
        start += pool.replicas
    return parts


def pooled(pools: tuple[PoolFacts, ...], engine: EngineResult, window_s: float,
           measured: np.ndarray) -> Pooled | None:
    """The figures of `Pooled` (None: one homogeneous fleet). A disaggregated run's input
    is priced by the prefill pool's busy GPU-seconds and its output by the decode pool's;
    a heterogeneous fleet's by each pool's prefill and decode seconds."""
    if not pools:
        return None
    works = [work_of(part) for part in split(pools, engine.replicas)]
    uses = [utilization(work, pool.replicas, window_s, pool.kv_capacity_tokens_per_replica)
            for pool, work in zip(pools, works, strict=True)]
    busy_gpu_s = [work.busy_s * pool.gpus_per_replica
                  for pool, work in zip(pools, works, strict=True)]
    gpus = float(sum(pool.gpus for pool in pools))
    kv_room = sum(pool.replicas * pool.kv_capacity_tokens_per_replica for pool in pools)
    whole = work_of(engine.replicas)
    disaggregated = engine.kv_transfer_s is not None
    use = Utilization(
        busy_fraction=sum(busy_gpu_s) / (gpus * window_s) if gpus > 0 else 0.0,
        # A prefill replica's batch lasts a step or a few: the decode pool's is the one.
        batch_size_mean=uses[-1].batch_size_mean if disaggregated
        else (whole.batch_s / whole.busy_s if whole.busy_s > 0 else 0.0),
        kv_cache_fraction_mean=whole.kv_token_s / (kv_room * window_s) if kv_room else 0.0,
        prefill_fraction_of_busy=whole.prefill_s / whole.busy_s if whole.busy_s > 0 else 0.0)
    if not disaggregated:
        phase = (sum(w.prefill_s * p.gpus_per_replica for p, w in zip(pools, works, strict=True)),
                 sum(w.decode_s * p.gpus_per_replica for p, w in zip(pools, works, strict=True)))
        return Pooled(gpus, use, phase, NO_POOLS)
    fields: dict[str, Any] = {}
    for pool, pool_use in zip(pools, uses, strict=True):
        fields.update({f"{pool.role}_pool_replicas": pool.replicas,
                       f"{pool.role}_pool_gpus": pool.gpus,
                       f"{pool.role}_pool_busy_fraction": pool_use.busy_fraction,
                       f"{pool.role}_pool_batch_size_mean": pool_use.batch_size_mean,
                       f"{pool.role}_pool_kv_cache_fraction_mean":
                           pool_use.kv_cache_fraction_mean})
    assert engine.kv_transfer_s is not None
    moved = latency.stats(engine.kv_transfer_s[measured])
    fields.update(kv_transfer_mean_s=moved.mean, kv_transfer_p99_s=moved.p99,
                  kv_transfer_bytes=float(engine.kv_transfer_bytes))
    return Pooled(gpus, use, (busy_gpu_s[0], busy_gpu_s[-1]), fields)


def gpu_hour_usd(pools: Sequence[PoolFacts], scenario_usd: float) -> float:
    """The fleet's price of one GPU-hour: the pools' prices (a pool without one: the
    scenario's) weighted by their GPUs, so that it times the fleet's GPUs is what the fleet
    costs an hour."""
    gpus = sum(pool.gpus for pool in pools)
    if gpus == 0:
        return scenario_usd
    return sum(pool.gpus * (scenario_usd if pool.gpu_hour_usd is None else pool.gpu_hour_usd)
               for pool in pools) / gpus


def mean_demands(each: Sequence[tuple[Demands, int]]) -> Demands:
    """One `Demands` for pools on different GPUs or formats, each weighted by its GPUs
    (`each`: a pool's demands and GPUs): a fleet-wide MFU or MBU is the work done over what
    all its GPUs together could do, and every pool is paid over the same window."""
    total = sum(gpus for _, gpus in each)

    def mean(values: Sequence[float]) -> float:
        return sum(v * g for v, (_, g) in zip(values, each, strict=True)) / total

    first = each[0][0]
    return replace(first,
                   weight_bytes=mean([d.weight_bytes for d, _ in each]),
                   kv_bytes_per_token=mean([d.kv_bytes_per_token for d, _ in each]),
                   peak_flops_per_gpu=mean([d.peak_flops_per_gpu for d, _ in each]),
                   peak_bytes_per_s_per_gpu=mean([d.peak_bytes_per_s_per_gpu for d, _ in each]))


def pool_figures(pools: Sequence[PoolFacts], engine: EngineResult, window_s: float,
                 measured: np.ndarray, lat: latency.Latencies,
                 scenario_usd: float | None) -> list[dict[str, Any]]:
    """A heterogeneous fleet's figures per pool: its fleet, price and use over the window,
    and the latencies of the measured requests it served (`scenario_usd`: the scenario's
    rental price, None when it owns its GPUs)."""
    out: list[dict[str, Any]] = []
    start = 0
    for pool, counters in zip(pools, split(pools, engine.replicas), strict=True):
        work: Work = work_of(counters)
        use = utilization(work, pool.replicas, window_s, pool.kv_capacity_tokens_per_replica)
        served = measured & (engine.replica >= start) & (engine.replica < start + pool.replicas)
        start += pool.replicas
        mine = latency.subset(lat, served)
        ttft, tpot = latency.stats(mine.ttft_s), latency.stats(mine.tpot_s)
        price = pool.gpu_hour_usd if pool.gpu_hour_usd is not None else scenario_usd
        out.append({
            "name": pool.role, "gpu": pool.gpu_name, "replicas": pool.replicas,
            "gpus": pool.gpus, "gpu_hour_usd": price,
            "usd_per_hour": None if price is None else price * pool.gpus,
            "requests_measured": int(served.sum()),
            "busy_fraction": use.busy_fraction, "batch_size_mean": use.batch_size_mean,
            "kv_cache_fraction_mean": use.kv_cache_fraction_mean,
            "ttft_mean_s": ttft.mean, "ttft_p99_s": ttft.p99,
            "tpot_mean_s": tpot.mean, "tpot_p99_s": tpot.p99})
    return out
