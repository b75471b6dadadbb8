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
from pydantic_core import PydanticCustomError

BYTES_PER_GIB = 1024**3

# Bounds on an inline GPU or model: far above any real one (the largest in the catalogue is
# a few times under each), and what keeps the sizes and step times computed from them finite
# and non-zero: a bandwidth of 1e-300 TB/s or a head_dim of 0 would give inf, NaN or a
# division by zero deep inside a run instead of an error here.
MAX_CONTEXT_TOKENS = 10**9  # as sim.scenario.base.MAX_TOKEN_COUNT
MAX_PARAMS = 10**15  # ~500× the largest published dense or MoE model
_ARCH = 2**20  # hidden size, heads, head_dim, experts: ~100× today's largest


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
    memory_gib: float = Field(gt=0, le=1e5, allow_inf_nan=False)
    memory_bandwidth_tb_s: float = Field(ge=1e-3, le=1e3, allow_inf_nan=False)
    bf16_tflops: float = Field(ge=1e-3, le=1e6, allow_inf_nan=False)
    fp8_tflops: float | None = Field(default=None, ge=1e-3, le=1e6, allow_inf_nan=False)
    interconnect_gb_s: float | None = Field(default=None, ge=1e-3, le=1e6,
                                            allow_inf_nan=False)
    tdp_w: float | None = Field(default=None, gt=0, le=1e5, allow_inf_nan=False)
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
    layers: int = Field(gt=0, le=10_000)
    hidden: int = Field(gt=0, le=_ARCH)
    ffn_intermediate: int = Field(gt=0, le=4 * _ARCH)
    heads: int = Field(gt=0, le=_ARCH)
    kv_heads: int = Field(gt=0, le=_ARCH)
    head_dim: int | None = Field(default=None, gt=0, le=_ARCH)
    vocab: int = Field(gt=0, le=16 * _ARCH)
    max_context: int = Field(default=131072, gt=0, le=MAX_CONTEXT_TOKENS)
    tied_embeddings: bool = False
    qkv_bias: bool = False
    experts: int = Field(default=1, gt=0, le=_ARCH)
    experts_per_token: int = Field(default=1, gt=0, le=_ARCH)
    params: int | None = Field(default=None, gt=0, le=MAX_PARAMS)
    active_params: int | None = Field(default=None, gt=0, le=MAX_PARAMS)
    sources: list[Source] = []
    notes: str = ""

    @model_validator(mode="after")
    def _derive(self) -> ModelSpec:
        # Frozen model: fill derived fields once, at construction, from a shape that exists.
        self._check_shape()
        if self.head_dim is None:
            object.__setattr__(self, "head_dim", self.hidden // self.heads)
        if self.params is None:
            object.__setattr__(self, "params", count_params(self, self.experts))
        if self.active_params is None:
            object.__setattr__(self, "active_params", count_params(self, self.experts_per_token))
        return self

    def _check_shape(self) -> None:
        """The attention and expert shapes a transformer can have; each error names the key
        that breaks it (the CLI prefixes `model.`)."""
        if self.experts_per_token > self.experts:
            raise _shape_error("experts_per_token", f"a number ≤ experts ({self.experts})")
        if self.kv_heads > self.heads:
            raise _shape_error("kv_heads", f"a number ≤ heads ({self.heads}): each "
                               "key-value head serves one or more query heads")
        if self.heads % self.kv_heads:
            raise _shape_error("kv_heads", f"a divisor of heads ({self.heads}): grouped-query "
                               "attention gives each key-value head a whole group of them")
        if self.head_dim is None and self.hidden % self.heads:
            raise _shape_error("hidden", f"a multiple of heads ({self.heads}), as head_dim "
                               "is not given (it is then hidden / heads)")

    def kv_bytes_per_token(self, bytes_per_element: float) -> float:
        """K and V for every layer: 2 × layers × kv_heads × head_dim × bytes."""
        assert self.head_dim is not None  # derived at construction (_derive) when omitted
        return 2.0 * self.layers * self.kv_heads * self.head_dim * bytes_per_element

    @property
    def is_moe(self) -> bool:
        return self.experts > 1


def _shape_error(field: str, expected: str) -> PydanticCustomError:
    """An "order" error: the scenario's error translation names `field` and its value."""
    return PydanticCustomError("order", "impossible model shape",
                               {"field": field, "expected": expected})


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
