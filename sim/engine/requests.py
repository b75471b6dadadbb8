"""Per-request columns every replica of a pool shares, and speculative decoding's gains."""

from __future__ import annotations

import math

import numpy as np


class RequestTable:
    """Per-request columns shared by all replicas (Python lists: fastest for scalar access)."""

    def __init__(self, prompt_tokens: list[int], output_tokens: list[int],
                 prefix: bool = False, tokens_per_step: float = 1.0) -> None:
        n = len(prompt_tokens)
        nan = math.nan
        self.prompt = prompt_tokens
        self.output = output_tokens
        self.admit_s = [nan] * n
        self.first_token_s = [nan] * n
        self.finish_s = [nan] * n
        self.preemptions = [0] * n
        self.prefill_len = list(prompt_tokens)  # grows on recompute: prompt + generated
        self.prefill_done = [0] * n
        self.finish_step = [-1] * n  # decode-step number at which the sequence finishes
        # Tokens it gains per decode step (`speculative_gains`), and with speculative decoding
        # its context when it finishes: up to ⌈τ⌉ − 1 tokens past prompt + output, as the last
        # step's accepted drafts beyond the output are computed too (None: prompt + output).
        self.gain = speculative_gains(n, tokens_per_step)
        self.final_ctx: list[int] | None = None
        if tokens_per_step != 1.0:
            self.final_ctx = [p + o for p, o in zip(prompt_tokens, output_tokens, strict=True)]
        # Tokens at the front of the prefill that were processed before (an eviction or a
        # failure threw their KV away): recomputation, not new input.
        self.redo = [0] * n
        self.max_gap_s = [0.0] * n  # longest gap between two of its tokens, so far
        # When a sequence that was evicted after its first token got its last one: the
        # token its recompute produces closes that gap.
        self.last_token_s: dict[int, float] = {}
        # With a prefix cache (`sim.engine.prefix`): the cached prompt tokens the current
        # admission skips; those its first admission skipped (the result's figure); the
        # tokens of the cached path it holds, and that path's deepest node (−1: none); the
        # prefill seconds its cached tokens cost (the attention over them).
        if prefix:
            self.hit = [0] * n
            self.cached = [0] * n
            self.shared = [0] * n
            self.ref_node = [-1] * n
            self.cached_s = [0.0] * n


def speculative_gains(requests: int, tokens_per_step: float) -> list[int]:
    """Tokens each request gains per decode step: 1, or with speculative decoding at τ
    expected tokens per step, ⌊τ⌋ or ⌈τ⌉. Integers keep the KV arithmetic exact and a decode
    run a closed form; the mix is what makes time right: a share p of the requests gain ⌈τ⌉
    with p/⌈τ⌉ + (1 − p)/⌊τ⌋ = 1/τ, so a request decodes in 1/τ steps per token on average
    and, over time, the sequences of a batch gain τ a step. Spread evenly over request indices
    (request i gains ⌈τ⌉ when ⌊(i + 1)p⌋ > ⌊ip⌋): deterministic, no seed stream."""
    low = math.floor(tokens_per_step)
    if tokens_per_step == low:
        return [low] * requests
    share = (1 / low - 1 / tokens_per_step) / (1 / low - 1 / (low + 1))
    high = np.diff(np.floor(np.arange(requests + 1) * share)) > 0
    return (low + high.astype(np.int64)).tolist()
