"""The replicas' counters summed, and the utilisation they come to over a window."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sim.engine.records import ReplicaCounters


@dataclass(frozen=True)
class Work:
    """The replicas' counters summed over the fleet: seconds clipped to the window, tokens
    over the whole run."""

    busy_s: float
    prefill_s: float
    decode_s: float
    batch_s: float  # ∫ batch size dt over busy time
    kv_token_s: float  # ∫ KV tokens held dt
    generated_tokens: int
    prefilled_tokens: int
    window_prefill_tokens: int  # counts of the steps that ended inside the window
    window_recomputed_tokens: int
    window_generated_tokens: int
    window_steps: int


def work_of(replicas: Sequence[ReplicaCounters]) -> Work:
    return Work(
        busy_s=sum(r.busy_s for r in replicas),
        prefill_s=sum(r.prefill_s for r in replicas),
        decode_s=sum(r.decode_s for r in replicas),
        batch_s=sum(r.batch_s for r in replicas),
        kv_token_s=sum(r.kv_token_s for r in replicas),
        generated_tokens=sum(r.generated_tokens for r in replicas),
        prefilled_tokens=sum(r.prefill_tokens for r in replicas),
        window_prefill_tokens=sum(r.window_prefill_tokens for r in replicas),
        window_recomputed_tokens=sum(r.window_recomputed_tokens for r in replicas),
        window_generated_tokens=sum(r.window_generated_tokens for r in replicas),
        window_steps=sum(r.window_steps for r in replicas),
    )



@dataclass(frozen=True)
class Utilization:
    busy_fraction: float  # of the paid replica-time
    batch_size_mean: float
    kv_cache_fraction_mean: float
    prefill_fraction_of_busy: float


def utilization(work: Work, replicas_billed: float, window_s: float,
                 kv_capacity_tokens: int) -> Utilization:
    paid = replicas_billed > 0
    busy = work.busy_s > 0
    return Utilization(
        busy_fraction=work.busy_s / (replicas_billed * window_s) if paid else 0.0,
        batch_size_mean=work.batch_s / work.busy_s if busy else 0.0,
        kv_cache_fraction_mean=work.kv_token_s / (replicas_billed * window_s
                                                  * kv_capacity_tokens) if paid else 0.0,
        prefill_fraction_of_busy=work.prefill_s / work.busy_s if busy else 0.0,
    )
