"""Evaluating a measured profile (`sim.steptime.library`) as a step-time model.

Tables are expanded once, when the model is built, into lists indexed by tokens in the step,
so a step costs a few list lookups.
"""

from __future__ import annotations

import numpy as np

from sim.engine.seams import StepSplit
from sim.provenance import Provenance
from sim.steptime.library import ProfileFile


class TableStep:
    """A step-time model evaluated from a profile file."""

    def __init__(self, profile: ProfileFile, max_step_tokens: int) -> None:
        """`max_step_tokens` bounds the tokens (and sequences) one step can hold: the tables
        are expanded up to it."""
        s = profile.step
        upto = max_step_tokens
        layers = s.layers
        linear = np.asarray(s.layer_linear_s.expand(upto)) * layers
        if s.all_reduce_s is not None and profile.tensor_parallel > 1:
            linear += np.asarray(s.all_reduce_s.expand(upto)) * layers * s.all_reduces_per_layer
        self.linear_s = linear.tolist()
        self.lm_head_s = s.lm_head_s.expand(upto)
        self.overhead_s = s.overhead_s
        self.prefill_a_s = layers * s.prefill_attention_s
        self.per_pair_s = layers * s.prefill_attention_s_per_pair
        self.decode_a_s = layers * s.decode_attention_s
        self.per_seq_s = layers * s.decode_attention_s_per_seq
        self.per_kv_token_s = layers * s.decode_attention_s_per_kv_token
        self.provenance = Provenance(profile.name, profile.source, profile.fit_error_pct,
                                     dict(profile.provenance))

    def decode_fixed_s(self, batch: int) -> float:
        return (self.overhead_s + self.linear_s[batch] + self.lm_head_s[batch]
                + self.decode_a_s + self.per_seq_s * batch)

    def step_s(self, prefill_tokens: int, prefill_attn_pairs: float, decode_seqs: int,
               decode_kv_tokens: int) -> StepSplit:
        tokens = prefill_tokens + decode_seqs
        logits = decode_seqs + (1 if prefill_tokens else 0)
        shared_s = self.overhead_s + self.linear_s[tokens] + self.lm_head_s[logits]
        share = prefill_tokens / tokens
        prefill_s = shared_s * share
        if prefill_tokens:
            prefill_s += self.prefill_a_s + self.per_pair_s * prefill_attn_pairs
        decode_s = shared_s * (1.0 - share)
        if decode_seqs:
            decode_s += (self.decode_a_s + self.per_seq_s * decode_seqs
                         + self.per_kv_token_s * decode_kv_tokens)
        return prefill_s, decode_s
