"""What one saturated replica delivers at this workload mix, in closed form.

Under continuous batching a replica runs steps whenever it holds a request, so its busy
fraction is ≈ 1 at any load and says nothing about headroom. The headroom is offered load
over what the replica could deliver flat out, and that is estimated here from the step-time
model and the mix's mean lengths, without another run. The same estimate gives the
GPU-seconds a prefill token and a decode token take at full load, which is what the
capacity-based cost split charges them (`sim.metrics.cost.capacity_price`).

A saturated replica, in steady state, is assumed to:
* hold B = min(max_num_seqs, max_batched_tokens, ⌊KV capacity / mean context⌋) sequences,
  mean context C = P + O/2 for mean prompt P and mean output O (a sequence's context
  averaged over its decode steps, P + 1 … P + O − 1);
* prefill every prompt once (no prefix-cache hits, no recomputation after preemption), in
  steps of c = min(max_batched_tokens, B × P) prompt tokens whose attention pairs are the
  mix's mean P(P + 1)/2 per prompt (so a long-prompt tail counts at its quadratic cost);
  each such step is priced on its own, which for chunked prefill (where chunks ride along
  decode steps and share their fixed cost) overstates prefill by up to one fixed step cost
  per chunk;
* get its first output token with the prefill and each of the other O − 1 from a decode
  step of the whole batch at mean context, decode_fixed_s(B) + per_kv_token_s × B × C,
  shared by the B sequences in it.

Then

    prefill_s_per_token = step(c prefill tokens) / c
    decode_s_per_token  = step(B decodes at context C) / B
    seconds per request = P × prefill_s_per_token + (O − 1) × decode_s_per_token
    requests_per_s      = 1 / seconds per request              (one replica)

This is exact for static batching of fixed lengths when B × P fits the token budget (one
prefill step per batch, then O − 1 decode steps); the tests check it there, and against an
overloaded chunked-prefill run (within a few percent). It overstates static batching with
varied lengths several times over: a static batch drains down to its longest request
before the next is formed, and the estimate keeps every slot full.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.engine.seams import StepModel


@dataclass(frozen=True)
class Mix:
    """Mean lengths of a set of requests (floats: they are means)."""

    prompt_tokens: float
    output_tokens: float
    prompt_attn_pairs: float  # mean of P(P + 1)/2: causal attention's query-key pairs

    @classmethod
    def of(cls, prompt_tokens: np.ndarray, output_tokens: np.ndarray) -> Mix | None:
        """The mix of these requests; None when there are none."""
        if prompt_tokens.size == 0:
            return None
        prompt = prompt_tokens.astype(float)
        return cls(float(prompt.mean()), float(output_tokens.mean()),
                   float((prompt * (prompt + 1.0) / 2.0).mean()))

    @property
    def context_tokens(self) -> float:
        """A sequence's context averaged over its decode steps."""
        return self.prompt_tokens + self.output_tokens / 2.0


@dataclass(frozen=True)
class Saturation:
    """One replica at full load on a mix: its batch and its seconds per token."""

    batch_seqs: int
    prefill_s_per_token: float  # replica-seconds per prompt token prefilled
    decode_s_per_token: float  # replica-seconds per token from a decode step
    requests_per_s: float  # one replica, flat out (0: steps take no time, no finite rate)


def saturation(step: StepModel, mix: Mix, max_num_seqs: int, max_batched_tokens: int,
               kv_capacity_tokens: int, tokens_per_step: float = 1.0) -> Saturation:
    """The closed-form estimate of the module docstring; with speculative decoding a decode
    step gives each sequence `tokens_per_step` tokens on average, not one."""
    fits = int(kv_capacity_tokens // max(mix.context_tokens, 1.0))
    batch = max(1, min(max_num_seqs, max_batched_tokens, fits))
    chunk = max(1, min(max_batched_tokens, round(batch * mix.prompt_tokens)))
    pairs_per_token = mix.prompt_attn_pairs / max(mix.prompt_tokens, 1.0)
    prefill_s_per_token = sum(step.step_s(chunk, chunk * pairs_per_token, 0, 0)) / chunk
    decode_s_per_token = (step.decode_fixed_s(batch)
                          + step.per_kv_token_s * batch * mix.context_tokens) / (
                              batch * tokens_per_step)
    per_request_s = (mix.prompt_tokens * prefill_s_per_token
                     + max(mix.output_tokens - 1.0, 0.0) * decode_s_per_token)
    return Saturation(batch, prefill_s_per_token, decode_s_per_token,
                      1.0 / per_request_s if per_request_s > 0 else 0.0)
