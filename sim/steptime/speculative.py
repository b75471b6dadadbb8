"""Speculative decoding: what one engine step costs when a draft proposes K tokens a sequence
and the target model verifies them, and how many tokens a step yields on average.

A decode step of B sequences becomes
- a **verify** forward of the target over B·(K + 1) tokens (each sequence's last token and
  its K drafts): everything that scales with tokens in the step (GEMMs, routed experts,
  collectives, the lm_head's logits) is the target's own cost at B·(K + 1) tokens, which
  charges the weights once and the compute at the wider count. The KV cache is read once
  per sequence, not K + 1 times: the K + 1 queries of a sequence attend to the same context
  in one pass of the decode attention kernel, as the engines run verification (FlashInfer's
  and FlashAttention's decode kernels take several queries a sequence; SGLang's EAGLE/MTP
  verify runs a "target verify" forward with K + 1 query tokens a request through the same
  attention backend), so `per_kv_token_s` stays the target's. That is a lower bound where
  the kernel is compute-bound on long contexts: widening it by (K + 1) would be the upper.
- a **draft** of K sequential forwards at B tokens: for `mtp` and `eagle` one extra decoder
  layer and the lm_head (DeepSeek-V3's MTP module is one transformer block sharing the
  embedding and output head, arXiv:2412.19437 §2.2; EAGLE's draft head is one decoder
  layer, arXiv:2401.15077), whose cost is the target's per-layer share of a decode step:
  (decode_fixed_s(B) − lm_head(B)) / layers + lm_head(B) where the model tables its lm_head,
  decode_fixed_s(B) / layers otherwise (a roofline, a fitted end-to-end profile), and
  1/layers of the target's KV read for the draft layer's own cache; for `draft`, K forwards
  of a separate draft model (its own step model, same GPU and layout).
A pure-decode step stays F(B) + c·KV (F, c the sums above), the form event skipping needs;
a mixed step's decode part is as above, its prefill part the target's plus the draft's own
pass over the prompt tokens (the draft layer or model fills its KV cache from the prompt:
SGLang's draft extend, vLLM's draft prefill).
"""

from __future__ import annotations

from collections.abc import Sequence

from sim.engine.seams import StepModel, StepSplit
from sim.provenance import Provenance
from sim.steptime.model import StepTimeModel
from sim.steptime.table import TableStep


def expected_tokens_per_step(acceptance: float | Sequence[float], num_tokens: int) -> float:
    """Tokens a sequence gains per verify step on average, τ = 1 + Σ_{i=1..K} Π_{j≤i} α_j:
    the verified token always, plus draft i when drafts 1..i were all accepted (α_j: the
    chance draft j is accepted given those before it were). For one α at every position it
    is (1 − α^(K+1)) / (1 − α), and K + 1 at α = 1.

    Worked example: α = 0.8, K = 3 → τ = 1 + 0.8 + 0.64 + 0.512 = 2.952.
    `acceptance` is one rate for every position or a list of K per-position rates."""
    rates = [float(acceptance)] * num_tokens if isinstance(acceptance, int | float) \
        else [float(a) for a in acceptance]
    if len(rates) != num_tokens:
        raise ValueError(f"{len(rates)} acceptance rates for {num_tokens} draft tokens")
    tau, all_accepted = 1.0, 1.0
    for rate in rates:
        all_accepted *= rate
        tau += all_accepted
    return tau


class LayerDraft:
    """One forward of a one-layer draft head (MTP, EAGLE) priced as one of the target's
    layers plus its lm_head (module docstring)."""

    def __init__(self, target: StepModel, layers: int) -> None:
        self.target = target
        self.layers = layers
        self.per_kv_token_s = target.per_kv_token_s / layers

    def decode_fixed_s(self, batch: int) -> float:
        whole_s = self.target.decode_fixed_s(batch)
        if isinstance(self.target, TableStep):
            lm_head_s = self.target.lm_head_s[batch]
            return (whole_s - lm_head_s) / self.layers + lm_head_s
        return whole_s / self.layers

    def step_s(self, prefill_tokens: int, prefill_attn_pairs: float, decode_seqs: int,
               decode_kv_tokens: int) -> StepSplit:
        """A prompt passes through the draft layer too (its KV cache is filled): a layer's
        share of the target's prefill."""
        prefill_s = 0.0
        if prefill_tokens:
            prefill_s = self.target.step_s(prefill_tokens, prefill_attn_pairs, 0, 0)[0]
        decode_s = 0.0
        if decode_seqs:
            decode_s = self.decode_fixed_s(decode_seqs) + self.per_kv_token_s * decode_kv_tokens
        return prefill_s / self.layers, decode_s


class SpeculativeSteps:
    """`target`'s steps with speculative decoding of `num_tokens` drafts a sequence, each
    drafted by one forward of `draft` (a `LayerDraft`, or a draft model's step model)."""

    def __init__(self, target: StepTimeModel, draft: StepModel, num_tokens: int,
                 provenance: Provenance) -> None:
        self.target = target
        self.draft = draft
        self.num_tokens = num_tokens
        self.width = num_tokens + 1  # tokens a decoding sequence puts in the verify step
        self.per_kv_token_s = target.per_kv_token_s + num_tokens * draft.per_kv_token_s
        self.provenance = provenance

    def draft_fixed_s(self, batch: int) -> float:
        """The K draft forwards of a decode step of `batch` sequences, without KV reads."""
        return self.num_tokens * self.draft.decode_fixed_s(batch)

    def decode_fixed_s(self, batch: int) -> float:
        return self.target.decode_fixed_s(batch * self.width) + self.draft_fixed_s(batch)

    def step_s(self, prefill_tokens: int, prefill_attn_pairs: float, decode_seqs: int,
               decode_kv_tokens: int) -> StepSplit:
        prefill_s, decode_s = self.target.step_s(prefill_tokens, prefill_attn_pairs,
                                                 decode_seqs * self.width, decode_kv_tokens)
        if prefill_tokens:
            prefill_s += self.draft.step_s(prefill_tokens, prefill_attn_pairs, 0, 0)[0]
        if decode_seqs:
            decode_s += (self.draft_fixed_s(decode_seqs) + self.num_tokens
                         * self.draft.per_kv_token_s * decode_kv_tokens)
        return prefill_s, decode_s


def speculative_provenance(target: StepTimeModel, method: str, num_tokens: int,
                           tokens_per_step: float, draft: StepTimeModel | None) -> Provenance:
    """The target's provenance, its details extended with how drafts were priced."""
    p = target.provenance
    how = ("one decoder layer of the target and its lm_head per draft token"
           if draft is None else f"a forward of the draft model ({draft.provenance.name}, "
           f"{draft.provenance.source}) per draft token")
    speculative = {"method": method, "num_tokens": num_tokens,
                   "tokens_per_step": tokens_per_step, "draft": how,
                   "verify": f"the target at {num_tokens + 1} tokens a sequence, its KV "
                             "read once a sequence"}
    if draft is not None:
        speculative["draft_details"] = draft.provenance.details
    return Provenance(p.name, p.source, p.fit_error_pct,
                      {**p.details, "speculative": speculative})


def speculative_steps(target: StepTimeModel, layers: int, method: str, num_tokens: int,
                      acceptance: float | Sequence[float],
                      draft: StepTimeModel | None = None) -> SpeculativeSteps:
    """`target` speculating `num_tokens` a step: drafted by one of its `layers` (mtp, eagle)
    or by `draft`, a draft model's step model (method draft)."""
    tokens_per_step = expected_tokens_per_step(acceptance, num_tokens)
    drafting: StepModel = LayerDraft(target, layers) if draft is None else draft
    return SpeculativeSteps(target, drafting, num_tokens, speculative_provenance(
        target, method, num_tokens, tokens_per_step, draft))
