"""The measurement grid: which operator at which sizes.

Each point is one row of the measurements CSV. The sizes follow what the step-time model
needs to fit (see DESIGN.md, "Step-time model"):

* linear layers vs tokens in the step: `layer_linear` (every non-attention op of one layer,
  run back to back) plus one detail row per operator, and the `lm_head`. Powers of two from
  1 (a single decode) to 8192 (a full chunked-prefill budget) cover both the memory-bound and
  the compute-bound regime and the knee between them.
* prefill attention vs (new tokens, prior context) of one sequence: what query-key pairs
  cost, including chunks that attend to an already cached prefix.
* decode attention vs (batch, KV tokens per sequence): recorded with the TOTAL KV tokens of
  the batch, the quantity the step-time model charges per token.

No torch here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

LINEAR_DETAIL_OPS = ("qkv_proj", "o_proj", "gate_up_proj", "down_proj", "rms_norm", "act", "rope")
LINEAR_OPS = ("layer_linear", *LINEAR_DETAIL_OPS, "lm_head")
OP_FAMILIES = ("layer_linear", *LINEAR_DETAIL_OPS, "lm_head", "attn_prefill", "attn_decode")


@dataclass(frozen=True)
class GridSpec:
    """The sizes each operator family is measured at."""

    linear_tokens: tuple[int, ...]
    prefill_tokens: tuple[int, ...]
    prefill_context_tokens: tuple[int, ...]
    decode_batch: tuple[int, ...]
    decode_context_per_seq: tuple[int, ...]


FULL = GridSpec(
    linear_tokens=tuple(2**k for k in range(14)),  # 1 … 8192
    prefill_tokens=(128, 512, 2048, 8192),
    prefill_context_tokens=(0, 2048, 8192),
    decode_batch=(1, 8, 32, 128, 256),
    decode_context_per_seq=(512, 2048, 8192),
)

TINY = GridSpec(
    linear_tokens=(1, 4, 16, 64, 256),
    prefill_tokens=(16, 64),
    prefill_context_tokens=(0, 64),
    decode_batch=(1, 4),
    decode_context_per_seq=(32, 128),
)


@dataclass(frozen=True)
class Point:
    """One measurement: an operator and its sizes (None where a column does not apply).

    For `attn_decode`, `context_per_seq` is what is built; `context_tokens` (the CSV column)
    is the batch's total.
    """

    op: str
    tokens: int | None = None
    batch: int | None = None
    context_per_seq: int | None = None

    @property
    def context_tokens(self) -> int | None:
        if self.op == "attn_decode":
            assert self.batch is not None and self.context_per_seq is not None
            return self.batch * self.context_per_seq
        return self.context_per_seq


def points(spec: GridSpec, max_tokens: int | None = None,
           kv_bytes_per_token: int = 0, kv_budget_bytes: float = float("inf")) -> list[Point]:
    """Every point of `spec`, capped at `max_tokens` in any token dimension, and without decode
    points whose KV cache (`kv_bytes_per_token` × total KV tokens) exceeds `kv_budget_bytes`.

    Linear points come first, cheapest first within each operator, so a progress bar and a
    time budget see the cheap bulk early.
    """
    cap = max_tokens if max_tokens is not None else float("inf")

    def capped(values: Iterable[int]) -> list[int]:
        return [v for v in values if v <= cap]

    out = [Point(op, tokens=t) for op in LINEAR_OPS for t in capped(spec.linear_tokens)]
    out += [Point("attn_prefill", tokens=t, context_per_seq=c)
            for t in capped(spec.prefill_tokens) for c in capped(spec.prefill_context_tokens)]
    out += [Point("attn_decode", batch=b, context_per_seq=c)
            for b in spec.decode_batch for c in capped(spec.decode_context_per_seq)
            if b * c * kv_bytes_per_token <= kv_budget_bytes]
    return out
