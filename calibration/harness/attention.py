"""Attention of one layer on one GPU's heads, prefill and decode, via torch's SDPA.

Prefill: `tokens` new queries of ONE sequence attend causally to `context` cached tokens and to
themselves. The mask is causal aligned to the bottom-right (query i sees keys 0..context+i).
With no context that is plain `is_causal=True`; with context, torch's `causal_lower_right`
bias expresses exactly that mask *and* lets SDPA keep its FlashAttention kernel, which an
explicit boolean mask would rule out (falling back to kernels that materialise the scores and
are far slower than any serving engine). Where torch lacks it, the explicit boolean mask is used.

Decode: one query per sequence over `context` cached tokens, no mask. The query heads that
share a KV head are laid out as that KV head's query rows ([batch, kv_heads, group, head_dim]),
the layout GQA decode kernels use: each KV byte is read once, which is what bounds decode.

GQA in prefill uses SDPA's `enable_gqa` where torch has it (2.5+); older torch gets KV heads
expanded once, before timing.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import torch
import torch.nn.functional as F

from calibration.harness.shapes import LayerShape

Op = Callable[[], torch.Tensor]

try:  # torch ≥ 2.3
    from torch.nn.attention.bias import causal_lower_right
except ImportError:  # pragma: no cover - depends on the torch version
    causal_lower_right = None


@cache
def sdpa_has_gqa() -> bool:
    """Whether this torch's SDPA takes `enable_gqa` (a builtin, so ask it rather than inspect)."""
    q = torch.zeros(1, 2, 1, 4)
    kv = torch.zeros(1, 1, 1, 4)
    try:
        F.scaled_dot_product_attention(q, kv, kv, enable_gqa=True)
    except TypeError:
        return False
    return True


def causal_mask(tokens: int, context: int, device: torch.device) -> torch.Tensor:
    """Boolean mask, True = attend: query i sees keys 0..context+i."""
    return torch.ones(tokens, context + tokens, dtype=torch.bool, device=device).tril(context)


def prefill_op(shape: LayerShape, tokens: int, context: int, device: torch.device,
               dtype: torch.dtype, generator: torch.Generator,
               use_bias: bool = True) -> Op:
    """Causal attention of `tokens` new queries over `context` + `tokens` keys, one sequence.

    `use_bias=False` forces the explicit boolean mask (tests compare the two).
    """
    s = shape
    keys = context + tokens
    q = torch.randn(1, s.q_heads, tokens, s.head_dim, generator=generator, device=device,
                    dtype=dtype)
    k = torch.randn(1, s.kv_heads, keys, s.head_dim, generator=generator, device=device,
                    dtype=dtype)
    v = torch.randn(1, s.kv_heads, keys, s.head_dim, generator=generator, device=device,
                    dtype=dtype)
    extra: dict[str, bool] = {}
    if s.kv_heads != s.q_heads:
        if sdpa_has_gqa():
            extra["enable_gqa"] = True
        else:  # pragma: no cover - torch < 2.5
            group = s.q_heads // s.kv_heads
            k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    if context == 0:
        return lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, **extra)
    if use_bias and causal_lower_right is not None:
        bias = causal_lower_right(tokens, keys)
        return lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=bias, **extra)
    mask = causal_mask(tokens, context, device)
    return lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, **extra)


def decode_op(shape: LayerShape, batch: int, context: int, device: torch.device,
              dtype: torch.dtype, generator: torch.Generator) -> Op:
    """One new token for each of `batch` sequences, each over `context` cached tokens."""
    s = shape
    group = s.q_heads // s.kv_heads
    q = torch.randn(batch, s.kv_heads, group, s.head_dim, generator=generator, device=device,
                    dtype=dtype)
    k = torch.randn(batch, s.kv_heads, context, s.head_dim, generator=generator, device=device,
                    dtype=dtype)
    v = torch.randn(batch, s.kv_heads, context, s.head_dim, generator=generator, device=device,
                    dtype=dtype)
    return lambda: F.scaled_dot_product_attention(q, k, v)
