"""Evaluating step terms (a measured profile's, or ones composed from operator tables).

Tables are expanded once, when the model is built, into lists indexed by tokens in the step,
so a step costs a few list lookups. Both the Vidur profiles (`sim.steptime.library`) and the
operator-composed model (`sim.steptime.composed`) reduce to the same `StepTerms`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.engine.seams import StepSplit
from sim.provenance import Provenance
from sim.steptime.library import ProfileFile, Table


@dataclass(frozen=True)
class StepTerms:
    """A whole model's step, per term (seconds):

        overhead + Σ scale·linear(T) + lm_head(logits)
          + prefill_fixed + prefill_per_token·prefill tokens + prefill_per_pair·pairs
          + decode_fixed + decode_per_seq·B + decode_per_kv_token·KV

    `linear` holds (table over tokens in the step, multiplier) pairs, summed when expanded;
    the prefill terms apply to steps that prefill, the decode ones to steps that decode."""

    linear: tuple[tuple[Table, float], ...]
    lm_head_s: Table  # x = sequences that produce a token
    overhead_s: float
    prefill_fixed_s: float
    prefill_per_token_s: float
    prefill_per_pair_s: float
    decode_fixed_s: float
    decode_per_seq_s: float
    decode_per_kv_token_s: float


def profile_terms(profile: ProfileFile) -> StepTerms:
    """A measured profile's per-layer coefficients as whole-model terms."""
    s = profile.step
    layers = s.layers
    linear: list[tuple[Table, float]] = [(s.layer_linear_s, float(layers))]
    if s.all_reduce_s is not None and profile.tensor_parallel > 1:
        linear.append((s.all_reduce_s, float(layers * s.all_reduces_per_layer)))
    return StepTerms(
        linear=tuple(linear), lm_head_s=s.lm_head_s, overhead_s=s.overhead_s,
        prefill_fixed_s=layers * s.prefill_attention_s, prefill_per_token_s=0.0,
        prefill_per_pair_s=layers * s.prefill_attention_s_per_pair,
        decode_fixed_s=layers * s.decode_attention_s,
        decode_per_seq_s=layers * s.decode_attention_s_per_seq,
        decode_per_kv_token_s=layers * s.decode_attention_s_per_kv_token)


class TableStep:
    """A step-time model evaluated from step terms."""

    def __init__(self, terms: StepTerms, provenance: Provenance, max_step_tokens: int) -> None:
        """`max_step_tokens` bounds the tokens (and sequences) one step can hold: the tables
        are expanded up to it."""
        upto = max_step_tokens
        linear = np.zeros(upto + 1)
        for table, scale in terms.linear:
            linear += np.asarray(table.expand(upto)) * scale
        self.linear_s = linear.tolist()
        self.lm_head_s = terms.lm_head_s.expand(upto)
        self.overhead_s = terms.overhead_s
        self.prefill_a_s = terms.prefill_fixed_s
        self.per_prefill_token_s = terms.prefill_per_token_s
        self.per_pair_s = terms.prefill_per_pair_s
        self.decode_a_s = terms.decode_fixed_s
        self.per_seq_s = terms.decode_per_seq_s
        self.per_kv_token_s = terms.decode_per_kv_token_s
        self.provenance = provenance

    @classmethod
    def of_profile(cls, profile: ProfileFile, max_step_tokens: int) -> TableStep:
        return cls(profile_terms(profile), Provenance(profile.name, profile.source,
                                                      profile.fit_error_pct,
                                                      dict(profile.provenance)),
                   max_step_tokens)

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
            prefill_s += (self.prefill_a_s + self.per_prefill_token_s * prefill_tokens
                          + self.per_pair_s * prefill_attn_pairs)
        decode_s = shared_s * (1.0 - share)
        if decode_seqs:
            decode_s += (self.decode_a_s + self.per_seq_s * decode_seqs
                         + self.per_kv_token_s * decode_kv_tokens)
        return prefill_s, decode_s
