"""The non-attention operators of one decoder layer, and the lm_head, as timeable callables.

Weights are random (timing does not depend on their values, so nothing is downloaded) and
laid out as inference engines hold them: one fused q/k/v matrix, one fused gate/up matrix,
`[out, in]` weights applied with `F.linear`. The layer runs in the order a Llama block does:

    x → RMSNorm → qkv → rotary(q, k) → [attention, timed separately] → o → + x
      → RMSNorm → gate_up → SiLU(gate)·up → down → + residual

`layer_linear` is that whole sequence in one call (what the step-time model charges per token
per layer); the detail operators are each one instance of a step, so the fitter can see where
time goes. The attention output that feeds `o` is stood in for by the rotated queries, which
have its exact shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from calibration.harness.shapes import LayerShape

RMS_EPS = 1e-5
ROPE_THETA = 500000.0  # Llama 3's; the value changes nothing about the time

Op = Callable[[], torch.Tensor]


@dataclass
class LayerWeights:
    """Random weights of one layer's shard, plus the lm_head shard."""

    norm1: torch.Tensor
    norm2: torch.Tensor
    qkv: torch.Tensor  # [qkv_out, hidden]
    o: torch.Tensor  # [hidden, attn_out]
    gate_up: torch.Tensor  # [2·ffn/tp, hidden]
    down: torch.Tensor  # [hidden, ffn/tp]
    lm_head: torch.Tensor  # [vocab/tp, hidden]


def random_weights(shape: LayerShape, device: torch.device, dtype: torch.dtype,
                   generator: torch.Generator) -> LayerWeights:
    """Small normal weights: realistic magnitudes keep numbers finite (no inf/NaN slow paths)."""

    def normal(*size: int) -> torch.Tensor:
        return torch.randn(size, generator=generator, device=device, dtype=dtype) * 0.02

    h = shape.hidden
    return LayerWeights(
        norm1=torch.ones(h, device=device, dtype=dtype),
        norm2=torch.ones(h, device=device, dtype=dtype),
        qkv=normal(shape.qkv_out, h),
        o=normal(h, shape.attn_out),
        gate_up=normal(2 * shape.ffn_per_gpu, h),
        down=normal(h, shape.ffn_per_gpu),
        lm_head=normal(shape.vocab_per_gpu, h),
    )


def rms_norm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """torch's own RMSNorm where it has one (fused on GPU since 2.4-ish), else the usual formula."""
    if hasattr(F, "rms_norm"):
        return F.rms_norm(x, (x.shape[-1],), weight, RMS_EPS)
    variance = x.float().pow(2).mean(-1, keepdim=True)
    return (x.float() * torch.rsqrt(variance + RMS_EPS)).to(x.dtype) * weight


def rope_tables(tokens: int, head_dim: int, device: torch.device,
                dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of positions 0..tokens-1, as [tokens, 1, head_dim] to broadcast over heads."""
    inv_freq = 1.0 / ROPE_THETA ** (torch.arange(0, head_dim, 2, device=device).float() / head_dim)
    angles = torch.outer(torch.arange(tokens, device=device).float(), inv_freq)
    angles = torch.cat((angles, angles), dim=-1)[:, None, :]
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding, the rotate-half form of Llama's reference code."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class LayerOps:
    """The callables for one (shape, token count); inputs are built once, outside any timing."""

    def __init__(self, shape: LayerShape, weights: LayerWeights, tokens: int,
                 generator: torch.Generator) -> None:
        w = weights
        device, dtype = w.qkv.device, w.qkv.dtype
        self.shape, self.w = shape, w
        self.x = torch.randn(tokens, shape.hidden, generator=generator, device=device, dtype=dtype)
        self.cos, self.sin = rope_tables(tokens, shape.head_dim, device, dtype)
        # Intermediate inputs for the detail ops, at the shapes the layer produces.
        self.qkv_out = F.linear(self.x, w.qkv)
        self.attn_out = torch.randn(tokens, shape.attn_out, generator=generator, device=device,
                                    dtype=dtype)
        self.gate_up_out = F.linear(self.x, w.gate_up)
        self.act_out = self._act()

    def _split_heads(self) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.shape
        q_width, kv_width = s.q_heads * s.head_dim, s.kv_heads * s.head_dim
        q, k, _v = self.qkv_out.split((q_width, kv_width, kv_width), dim=-1)
        tokens = self.x.shape[0]
        return q.view(tokens, s.q_heads, s.head_dim), k.view(tokens, s.kv_heads, s.head_dim)

    def _rope(self) -> torch.Tensor:
        q, k = self._split_heads()
        rotate(k, self.cos, self.sin)
        return rotate(q, self.cos, self.sin)

    def _act(self) -> torch.Tensor:
        gate, up = self.gate_up_out.chunk(2, dim=-1)
        return F.silu(gate) * up

    def layer_linear(self) -> torch.Tensor:
        """Everything in one layer but attention itself."""
        w, s = self.w, self.shape
        residual = self.x
        h = rms_norm(residual, w.norm1)
        qkv = F.linear(h, w.qkv)
        q_width, kv_width = s.q_heads * s.head_dim, s.kv_heads * s.head_dim
        q, k, _v = qkv.split((q_width, kv_width, kv_width), dim=-1)
        tokens = residual.shape[0]
        rotate(k.view(tokens, s.kv_heads, s.head_dim), self.cos, self.sin)
        q = rotate(q.view(tokens, s.q_heads, s.head_dim), self.cos, self.sin)
        residual = residual + F.linear(q.reshape(tokens, q_width), w.o)
        gate, up = F.linear(rms_norm(residual, w.norm2), w.gate_up).chunk(2, dim=-1)
        return residual + F.linear(F.silu(gate) * up, w.down)

    def ops(self) -> dict[str, Op]:
        """Operator name (the CSV `op`) → a call that runs it once."""
        w = self.w
        return {
            "layer_linear": self.layer_linear,
            "qkv_proj": lambda: F.linear(self.x, w.qkv),
            "o_proj": lambda: F.linear(self.attn_out, w.o),
            "gate_up_proj": lambda: F.linear(self.x, w.gate_up),
            "down_proj": lambda: F.linear(self.act_out, w.down),
            "rms_norm": lambda: rms_norm(self.x, w.norm1),
            "act": self._act,
            "rope": self._rope,
            "lm_head": lambda: F.linear(self.x, w.lm_head),
        }
