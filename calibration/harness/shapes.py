"""The tensor shapes one GPU of a tensor-parallel replica sees, per decoder layer.

Tensor parallelism (Megatron-style, as vLLM and SGLang shard Llama) splits every layer's
weights across `tp` GPUs: the q/k/v and gate/up projections by output columns, the o and down
projections by input rows, attention by heads, and the lm_head by vocabulary. One GPU of a
TP-k replica therefore runs the same operators as a TP-1 GPU on k-times narrower matrices —
which is why a single GPU can measure every tp: tp is only a change of shape here. The
all-reduces that stitch the shards together are a separate term of the step-time model and
are not measured by this harness.

No torch here: shapes are plain integers, so they can be checked and tested anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.errors import InputError
from sim.hardware.catalog import ModelSpec

TINY = "tiny"


@dataclass(frozen=True)
class LayerShape:
    """One decoder layer's shape on one GPU, weights sharded `tp` ways."""

    model: str
    tp: int
    hidden: int
    ffn_per_gpu: int
    q_heads: int  # query heads on this GPU
    kv_heads: int  # KV heads on this GPU (replicated when tp exceeds the model's KV heads)
    head_dim: int
    vocab_per_gpu: int

    @property
    def qkv_out(self) -> int:
        """Output width of the fused q/k/v projection: (heads + 2·kv_heads)·head_dim / tp."""
        return (self.q_heads + 2 * self.kv_heads) * self.head_dim

    @property
    def attn_out(self) -> int:
        """Input width of the o projection: heads·head_dim / tp."""
        return self.q_heads * self.head_dim

    def kv_bytes_per_token(self, bytes_per_element: int) -> int:
        """K and V of one token in one layer on this GPU."""
        return 2 * self.kv_heads * self.head_dim * bytes_per_element


def tiny_model() -> ModelSpec:
    """A made-up small model whose full grid runs on a CPU in seconds (tests, smoke runs)."""
    return ModelSpec(name=TINY, layers=2, hidden=256, ffn_intermediate=512, heads=4, kv_heads=2,
                     head_dim=64, vocab=1000)


def shard(model: ModelSpec, tp: int) -> LayerShape:
    """The per-GPU shape of `model` at tensor-parallel degree `tp`, or an InputError naming why not.

    Query heads and the FFN must split evenly (no engine pads them); the vocabulary is padded
    up to a multiple of tp, as vLLM pads its lm_head; KV heads are replicated when tp exceeds
    them, as vLLM does for GQA models, so each GPU keeps at least one.
    """
    if tp < 1:
        raise InputError("--tp", tp, "an integer ≥ 1")
    if model.heads % tp:
        raise InputError("--tp", tp, f"a divisor of {model.name}'s {model.heads} attention heads")
    if model.ffn_intermediate % tp:
        raise InputError("--tp", tp,
                         f"a divisor of {model.name}'s ffn_intermediate {model.ffn_intermediate}")
    if model.kv_heads > tp and model.kv_heads % tp:
        raise InputError("--tp", tp, f"a divisor of {model.name}'s {model.kv_heads} KV heads")
    if model.is_moe:
        raise InputError("--model", model.name, "a dense model (MoE layers are not measured yet)")
    assert model.head_dim is not None  # filled in by ModelSpec
    return LayerShape(
        model=model.name,
        tp=tp,
        hidden=model.hidden,
        ffn_per_gpu=model.ffn_intermediate // tp,
        q_heads=model.heads // tp,
        kv_heads=max(1, model.kv_heads // tp),
        head_dim=model.head_dim,
        vocab_per_gpu=-(-model.vocab // tp),
    )
