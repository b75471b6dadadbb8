"""Driving the engine at its seam with plain arrays and a constant step model, for tests
that follow a few requests by hand (no catalogue, scenario file or validation layer)."""

from __future__ import annotations

import dataclasses

import numpy as np

from sim.engine.records import EngineConfig, EngineResult
from sim.engine.simulation import simulate

STEP = 0.01


class ConstantStep:
    """Every step takes `step` seconds; they are split by the prefill tokens' share of the
    batch (as `sim.steptime.simple.ConstantStep` does), decode reads cost nothing extra."""

    per_kv_token_s = 0.0

    def __init__(self, step: float = STEP) -> None:
        self.step = step

    def decode_fixed_s(self, batch: int) -> float:
        return self.step

    def step_s(self, prefill_tokens: int, prefill_attn_pairs: float, decode_seqs: int,
               decode_kv_tokens: int) -> tuple[float, float]:
        share = prefill_tokens / (prefill_tokens + decode_seqs)
        return share * self.step, (1.0 - share) * self.step


@dataclasses.dataclass(frozen=True)
class Requests:
    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray

    def __len__(self) -> int:
        return len(self.arrival_s)


def requests(*rows: tuple[float, int, int]) -> Requests:
    """One (arrival_s, prompt_tokens, output_tokens) row per request."""
    arrival, prompt, output = zip(*rows, strict=True)
    return Requests(np.array(arrival, dtype=float), np.array(prompt, dtype=np.int64),
                    np.array(output, dtype=np.int64))


# One replica with room to spare: a test changes only what it is about.
BASE = EngineConfig(
    replicas=1, policy="chunked-prefill", max_num_seqs=8, max_batched_tokens=64,
    kv_capacity_tokens=1000, kv_block_tokens=16, router="round-robin",
    window_start_s=0.0, window_end_s=1e9, stop_s=None)


def run(reqs: Requests, step: float = STEP, **changes: object) -> EngineResult:
    cfg = dataclasses.replace(BASE, **changes)
    return simulate(cfg, reqs, ConstantStep(step), np.random.default_rng(0))
