"""The step-time model's seam: what every model gives the engine and the result.

A model answers, for one engine step, how many seconds it takes and how they split between
prefill and decode (`sim.engine.seams.StepModel`, the engine's side of the contract), and
says where its numbers come from (`provenance`), which every result carries.

`step_s(prefill_tokens, prefill_attn_pairs, decode_seqs, decode_kv_tokens)` → the
(prefill_s, decode_s) parts of one step: their sum is the step's duration and the split is
what the cost model charges to input and output tokens. `prefill_attn_pairs` is Σ over the
step's prefill chunks of chunk × (prior context + (chunk + 1) / 2): the query-key pairs causal
attention computes, which grows quadratically with prompt length. Pure-decode steps must take
`decode_fixed_s(B) + per_kv_token_s × KV tokens`, the form event skipping relies on.
"""

from __future__ import annotations

from typing import Protocol

from sim.engine.seams import StepModel, StepSplit
from sim.provenance import Provenance

__all__ = ["StepSplit", "StepTimeModel"]


class StepTimeModel(StepModel, Protocol):
    """A step model the engine can run, with the provenance a result reports."""

    provenance: Provenance
