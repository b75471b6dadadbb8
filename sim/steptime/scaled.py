"""A step-time model scaled by a common factor: the model's own error.

A Monte Carlo sweep samples the factor as `step_time_scale`.
"""

from __future__ import annotations

from sim.engine.seams import StepSplit
from sim.steptime.model import StepTimeModel


class ScaledStep:
    """A step-time model with every time multiplied by `scale`: the model's own error, which
    a Monte Carlo sweep samples as `step_time_scale`. A common factor keeps the
    F(B) + c × KV form of decode steps that event skipping relies on."""

    def __init__(self, inner: StepTimeModel, scale: float) -> None:
        self.inner = inner
        self.scale = scale
        self.per_kv_token_s = inner.per_kv_token_s * scale
        self.provenance = inner.provenance

    def decode_fixed_s(self, batch: int) -> float:
        return self.inner.decode_fixed_s(batch) * self.scale

    def step_s(self, prefill_tokens: int, prefill_attn_pairs: float, decode_seqs: int,
               decode_kv_tokens: int) -> StepSplit:
        prefill_s, decode_s = self.inner.step_s(prefill_tokens, prefill_attn_pairs, decode_seqs,
                                                decode_kv_tokens)
        return prefill_s * self.scale, decode_s * self.scale
