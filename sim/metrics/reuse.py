"""What a prefix cache saved in a run's window, and what it evicted and copied back."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.engine.records import EngineResult


@dataclass(frozen=True)
class Reuse:
    """What a prefix cache saved, for the requests whose prefill completed in the window
    (their first token in it), and what it threw away over the whole run."""

    hit_tokens: int  # prompt tokens found cached, not prefilled
    hit_ratio: float | None  # hit_tokens / their prompt tokens (None: no prompt token)
    prefill_s: float  # replica-seconds of prefill their reuse still cost
    evicted_blocks: int  # cached blocks evicted to make room, whole run, all replicas
    reloaded_tokens: int  # copied back from the host's memory, whole run, all replicas


def reuse_of(engine: EngineResult, prompt_tokens: np.ndarray,
           prefilled: np.ndarray) -> Reuse | None:
    """The prefix cache's figures (None: the run had no prefix cache); `prefilled` marks
    the requests whose first token came inside the window."""
    if engine.cached_tokens is None:
        return None
    hits = int(engine.cached_tokens[prefilled].sum())
    prompts = int(prompt_tokens[prefilled].sum())
    seconds = 0.0 if engine.cached_prefill_s is None \
        else float(engine.cached_prefill_s[prefilled].sum())
    return Reuse(hits, hits / prompts if prompts > 0 else None, seconds,
                  sum(r.evicted_blocks for r in engine.replicas),
                  sum(r.reloaded_tokens for r in engine.replicas))
