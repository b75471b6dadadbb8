"""The reference step models: a constant step and a linear one, given inline in a scenario.

They exist for queueing-theory checks and for users who measured their own engine's step
times as a linear fit; see `sim.steptime.model` for what a model answers.
"""

from __future__ import annotations

from sim.engine.seams import StepSplit
from sim.provenance import Provenance
from sim.scenario.profiles import ConstantProfile, LinearProfile


class ConstantStep:
    """Every step takes `step_s`, whatever is in it: the queueing-theory reference case."""

    def __init__(self, spec: ConstantProfile) -> None:
        self.step_time_s = spec.step_s
        self.per_kv_token_s = 0.0
        self.provenance = Provenance("constant", "inline", None, {"step_s": spec.step_s})

    def decode_fixed_s(self, batch: int) -> float:
        return self.step_time_s

    def step_s(self, prefill_tokens: int, prefill_attn_pairs: float, decode_seqs: int,
               decode_kv_tokens: int) -> StepSplit:
        share = prefill_tokens / (prefill_tokens + decode_seqs)
        return self.step_time_s * share, self.step_time_s * (1.0 - share)


class LinearStep:
    """base + per_prefill_token × prefill tokens + per_decode_seq × seqs + per_kv_token × KV."""

    def __init__(self, spec: LinearProfile) -> None:
        self.base_s = spec.base_s
        self.per_prefill_token_s = spec.per_prefill_token_s
        self.per_decode_seq_s = spec.per_decode_seq_s
        self.per_kv_token_s = spec.per_kv_token_s
        self.provenance = Provenance("linear", "inline", None, spec.model_dump(exclude={"kind"}))

    def decode_fixed_s(self, batch: int) -> float:
        return self.base_s + self.per_decode_seq_s * batch

    def step_s(self, prefill_tokens: int, prefill_attn_pairs: float, decode_seqs: int,
               decode_kv_tokens: int) -> StepSplit:
        share = prefill_tokens / (prefill_tokens + decode_seqs)
        prefill_s = self.base_s * share + self.per_prefill_token_s * prefill_tokens
        decode_s = (self.base_s * (1.0 - share) + self.per_decode_seq_s * decode_seqs
                    + self.per_kv_token_s * decode_kv_tokens)
        return prefill_s, decode_s
