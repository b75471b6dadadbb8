"""Hardware and model catalogue: the GPU specs and model architectures scenarios name.

The data lives in `calibration/gpus.yaml` and `calibration/models.yaml` (shipped with the
package, every entry citing its source). A scenario may also give a GPU or model inline as a
mapping with the same fields, for hardware or models the catalogue does not know.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

BYTES_PER_GIB = 1024**3


class Source(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    title: str
    url: str | None = None


class GpuSpec(BaseModel):
    """Peak figures of one accelerator (dense tensor-core peaks, HBM size and bandwidth)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    name: str = "custom-gpu"
    display_name: str = ""
    vendor: str = ""
    memory_gib: float = Field(gt=0, allow_inf_nan=False)
    memory_bandwidth_tb_s: float = Field(gt=0, allow_inf_nan=False)
    bf16_tflops: float = Field(gt=0, allow_inf_nan=False)
    fp8_tflops: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    interconnect_gb_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    tdp_w: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    sources: list[Source] = []
    notes: str = ""

    @property
    def memory_bytes(self) -> float:
        return self.memory_gib * BYTES_PER_GIB


class ModelSpec(BaseModel):
    """A decoder-only transformer's shape; enough to size weights, KV cache and FLOPs."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    name: str = "custom-model"
    display_name: str = ""
    layers: int = Field(gt=0)
    hidden: int = Field(gt=0)
    ffn_intermediate: int = Field(gt=0)
    heads: int = Field(gt=0)
    kv_heads: int = Field(gt=0)
    head_dim: int | None = Field(default=None, gt=0)
    vocab: int = Field(gt=0)
    max_context: int = Field(default=131072, gt=0)
    tied_embeddings: bool = False
    qkv_bias: bool = False
    experts: int = Field(default=1, gt=0)
    experts_per_token: int = Field(default=1, gt=0)
    params: int | None = Field(default=None, gt=0)
    active_params: int | None = Field(default=None, gt=0)
    sources: list[Source] = []
    notes: str = ""

    @model_validator(mode="after")
    def _derive(self) -> ModelSpec:
        # Frozen model: fill derived fields once, at construction.
        if self.experts_per_token > self.experts:
            raise ValueError("experts_per_token must not exceed experts")
        if self.head_dim is None:
            object.__setattr__(self, "head_dim", self.hidden // self.heads)
        if self.params is None:
            object.__setattr__(self, "params", count_params(self, self.experts))
        if self.active_params is None:
            object.__setattr__(self, "active_params", count_params(self, self.experts_per_token))
        return self

    def kv_bytes_per_token(self, bytes_per_element: float) -> float:
        """K and V for every layer: 2 × layers × kv_heads × head_dim × bytes."""
        assert self.head_dim is not None  # derived at construction (_derive) when omitted
        return 2.0 * self.layers * self.kv_heads * self.head_dim * bytes_per_element

    @property
    def is_moe(self) -> bool:
        return self.experts > 1


def count_params(m: ModelSpec, experts_used: int) -> int:
    """Parameters of a Llama-style decoder counting `experts_used` MLP experts per layer."""
    head_dim = m.head_dim or m.hidden // m.heads
    q_dim, kv_dim = m.heads * head_dim, m.kv_heads * head_dim
    attention = m.hidden * q_dim + 2 * m.hidden * kv_dim + q_dim * m.hidden
    if m.qkv_bias:
        attention += q_dim + 2 * kv_dim
    mlp = experts_used * 3 * m.hidden * m.ffn_intermediate
    router = m.hidden * m.experts if m.experts > 1 else 0
    per_layer = attention + mlp + router + 2 * m.hidden
    embeddings = m.vocab * m.hidden * (1 if m.tied_embeddings else 2)
    return embeddings + m.layers * per_layer + m.hidden


@cache
def gpus() -> dict[str, GpuSpec]:
    return {name: GpuSpec(name=name, **entry) for name, entry in _load("gpus.yaml")["gpus"].items()}


@cache
def models() -> dict[str, ModelSpec]:
    raw = _load("models.yaml")["models"]
    return {name: ModelSpec(name=name, **entry) for name, entry in raw.items()}


def _load(filename: str) -> dict:
    text = resources.files("calibration").joinpath(filename).read_text(encoding="utf-8")
    return yaml.safe_load(text)
