"""A step-time model adjusted by end-to-end knobs fitted on a team's own measurements.

`tokenfactory calibrate fit-e2e` fits three knobs so that simulated TTFT and TPOT match what
a deployment measured: a common factor on every step (`step_time_scale`), a host overhead
added to every step (`overhead_s`: scheduling, sampling, detokenisation, what no operator
table holds) and a factor on the prefill part only (`prefill_scale`). The overhead is split
between a step's prefill and decode parts by their share of its tokens, as the constant
step model splits its time. A pure-decode step becomes scale × (F(B) + c·KV) + overhead, still
F'(B) + c'·KV, so event skipping stays exact.
"""

from __future__ import annotations

from sim.engine.seams import StepSplit
from sim.provenance import Provenance
from sim.steptime.model import StepTimeModel


class AdjustedStep:
    """`inner` with the fitted knobs applied; `provenance` names the profile file's fit."""

    def __init__(self, inner: StepTimeModel, step_time_scale: float, overhead_s: float,
                 prefill_scale: float, provenance: Provenance) -> None:
        self.inner = inner
        self.scale = step_time_scale
        self.overhead_s = overhead_s
        self.prefill_scale = prefill_scale
        self.per_kv_token_s = inner.per_kv_token_s * step_time_scale
        self.provenance = provenance

    def decode_fixed_s(self, batch: int) -> float:
        return self.inner.decode_fixed_s(batch) * self.scale + self.overhead_s

    def step_s(self, prefill_tokens: int, prefill_attn_pairs: float, decode_seqs: int,
               decode_kv_tokens: int) -> StepSplit:
        prefill_s, decode_s = self.inner.step_s(prefill_tokens, prefill_attn_pairs, decode_seqs,
                                                decode_kv_tokens)
        share = prefill_tokens / (prefill_tokens + decode_seqs)
        return (prefill_s * self.scale * self.prefill_scale + self.overhead_s * share,
                decode_s * self.scale + self.overhead_s * (1.0 - share))
