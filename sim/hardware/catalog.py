"""Hardware and model catalogue: the GPU specs and model architectures scenarios name.

The data lives in `calibration/gpus.yaml` and `calibration/models.yaml` (shipped with the
package, every entry citing its source). A scenario may also give a GPU or model inline as a
mapping with the same fields, for hardware or models the catalogue does not know.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

BYTES_PER_GIB = 1024**3

# Bounds on an inline GPU or model: far above any real one (the largest in the catalogue is
# a few times under each), and what keeps the sizes and step times computed from them finite
# and non-zero: a bandwidth of 1e-300 TB/s or a head_dim of 0 would give inf, NaN or a
# division by zero deep inside a run instead of an error here.
MAX_CONTEXT_TOKENS = 10**9  # as sim.scenario.base.MAX_TOKEN_COUNT
MAX_PARAMS = 10**15  # ~500× the largest published dense or MoE model
_ARCH = 2**20  # hidden size, heads, head_dim, experts: ~100× today's largest

# The blocks a quantised checkpoint may keep in 16 bits (`ModelSpec.unquantised`): the
# attention block's input projections (q/k/v, MLA's q_a/q_b/kv_a/kv_b, a linear-attention
# layer's in-projection), its output projection, the dense MLPs, the shared experts, the
# MoE router and the routed experts. Embeddings, lm_head and norms are 16-bit always.
Block = Literal["attention", "attention_output", "dense_mlp", "shared_experts", "router",
                "routed_experts"]


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
    # FP4 tensor cores (NVIDIA Blackwell's NVFP4, AMD CDNA 4's MXFP4). None elsewhere: an
    # FP4 checkpoint is then served weight-only (4-bit weights, 16-bit compute).
    fp4_tflops: float | None = Field(default=None, ge=1e-3, le=1e6, allow_inf_nan=False)
    interconnect_gb_s: float | None = Field(default=None, ge=1e-3, le=1e6,
                                            allow_inf_nan=False)
    tdp_w: float | None = Field(default=None, gt=0, le=1e5, allow_inf_nan=False)
    # What a serving process holds on each GPU besides weights, KV cache and activations:
    # NCCL's buffers by the number of GPUs that communicate (a missing count takes the
    # largest one below it), and the CUDA context, workspaces and allocator slack. Measured
    # per GPU where a spec sheet gives them (sim.hardware.memory); 0 for an inline GPU.
    nccl_reserve_gib: dict[int, float] = Field(default={}, max_length=64)
    runtime_reserve_gib: float = Field(default=0.0, ge=0, le=1e5, allow_inf_nan=False)
    sources: list[Source] = []
    notes: str = ""

    @field_validator("nccl_reserve_gib", mode="before")
    @classmethod
    def _counts_from_text(cls, value: Any) -> Any:
        """GPU counts as a JSON file writes mapping keys ("8"), e.g. a recorded scenario's."""
        if isinstance(value, dict):
            return {int(k) if isinstance(k, str) and k.isdecimal() else k: v
                    for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _reserves(self) -> GpuSpec:
        for gpus, gib in self.nccl_reserve_gib.items():
            if not (1 <= gpus <= 1_000_000 and 0 <= gib <= self.memory_gib):
                raise PydanticCustomError("order", "impossible NCCL reserve", {
                    "field": "nccl_reserve_gib", "expected": "a mapping of GPU counts ≥ 1 "
                    f"to GiB between 0 and memory_gib ({self.memory_gib:g})"})
        return self

    @property
    def memory_bytes(self) -> float:
        return self.memory_gib * BYTES_PER_GIB

    def peak_tflops(self, dtype: str) -> float:
        """The dense tensor peak a weight format's GEMMs run at: FP4 tensor cores where the
        GPU has them, else FP8 ones (fp4 weights are then widened), else 16-bit."""
        if dtype == "fp4" and self.fp4_tflops:
            return self.fp4_tflops
        if dtype in ("fp8", "fp4") and self.fp8_tflops:
            return self.fp8_tflops
        return self.bf16_tflops

    def reserve_bytes(self, gpus: int) -> float:
        """Bytes each GPU of a `gpus`-GPU replica holds for NCCL and the runtime."""
        counts = [n for n in self.nccl_reserve_gib if n <= gpus]
        nccl = self.nccl_reserve_gib[max(counts)] if counts else 0.0
        return (nccl + self.runtime_reserve_gib) * BYTES_PER_GIB


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
    # Mixture of experts beyond Mixtral's shape (ffn_intermediate is then one routed
    # expert's width): always-on shared experts, leading dense layers (DeepSeek's
    # first_k_dense_replace) and MoE on every n-th of the rest only (Llama-4 Maverick: 2).
    shared_experts: int = Field(default=0, ge=0, le=_ARCH)
    shared_expert_intermediate: int | None = Field(default=None, gt=0, le=4 * _ARCH)
    dense_layers: int = Field(default=0, ge=0, le=10_000)
    moe_layer_step: int = Field(default=1, gt=0, le=10_000)
    dense_ffn_intermediate: int | None = Field(default=None, gt=0, le=4 * _ARCH)
    # Multi-head latent attention (DeepSeek): the cache holds one compressed latent of
    # kv_lora_rank plus a shared rope key of qk_rope_head_dim per token and layer.
    q_lora_rank: int | None = Field(default=None, gt=0, le=_ARCH)
    kv_lora_rank: int | None = Field(default=None, gt=0, le=_ARCH)
    qk_nope_head_dim: int | None = Field(default=None, gt=0, le=_ARCH)
    qk_rope_head_dim: int | None = Field(default=None, gt=0, le=_ARCH)
    v_head_dim: int | None = Field(default=None, gt=0, le=_ARCH)
    # Sliding-window attention on `sliding_layers` of the layers (gpt-oss: every other one).
    sliding_window: int | None = Field(default=None, gt=0, le=MAX_CONTEXT_TOKENS)
    sliding_layers: int = Field(default=0, ge=0, le=10_000)
    # Linear attention (gated delta rule, Qwen3-Next/Qwen3.5) on `linear_layers` layers: a
    # fixed recurrent state per sequence instead of a cache that grows with the context.
    linear_layers: int = Field(default=0, ge=0, le=10_000)
    linear_key_heads: int | None = Field(default=None, gt=0, le=_ARCH)
    linear_value_heads: int | None = Field(default=None, gt=0, le=_ARCH)
    linear_key_head_dim: int | None = Field(default=None, gt=0, le=_ARCH)
    linear_value_head_dim: int | None = Field(default=None, gt=0, le=_ARCH)
    linear_conv_kernel: int = Field(default=4, gt=0, le=1024)
    linear_state_bytes: int | None = Field(default=None, gt=0, le=MAX_PARAMS)  # per layer, seq
    attn_output_gate: bool = False  # Qwen3.5: the query projection also gives a gate
    # Blocks beyond Llama's (GPT-J, Falcon): attention and MLP side by side on the same
    # normalised input with one residual add per layer; a 2-matrix GELU MLP (up, down)
    # instead of SwiGLU's 3; LayerNorms with a bias, one per layer (GPT-J, Falcon-7B) or
    # two (Falcon-40B/180B: ln_attn and ln_mlp on the same input) against Llama's 2 RMSNorms.
    parallel_attention: bool = False
    mlp_gated: bool = True
    layer_norms: int = Field(default=2, ge=1, le=4)
    norm_bias: bool = False
    weights_dtype: str = ""  # as the checkpoint stores them ("fp8", "mxfp4"; "" = 16-bit)
    # What the checkpoint leaves 16-bit whatever its format (an NVFP4 checkpoint's
    # exclude_modules, gpt-oss's modules_to_not_convert): weights, and the GEMM tables read.
    unquantised: list[Block] = Field(default=[], max_length=6)
    # A checkpoint's KV cache format under `kv_cache_dtype: auto`: the KV quantisation its
    # config declares, else its 16-bit activation dtype (sim.hardware.hfconfig). None: not a
    # checkpoint (a catalogue model, an inline one that leaves it out), whose `auto` follows
    # the weights' format (sim.hardware.layout.resolve_kv_cache_dtype).
    kv_cache_dtype: Literal["bf16", "fp16", "fp8"] | None = None
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
        if self.linear_layers and self.linear_state_bytes is None:
            object.__setattr__(self, "linear_state_bytes", _linear_state_bytes(self))
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
        if self.is_moe and not self.mlp_gated:
            raise _shape_error("mlp_gated", "true for a mixture-of-experts model: expert "
                               "layers are sized and timed as gated (3-matrix) MLPs")
        if self.kv_heads > self.heads:
            raise _shape_error("kv_heads", f"a number ≤ heads ({self.heads}): each "
                               "key-value head serves one or more query heads")
        if self.heads % self.kv_heads:
            raise _shape_error("kv_heads", f"a divisor of heads ({self.heads}): grouped-query "
                               "attention gives each key-value head a whole group of them")
        if self.head_dim is None and self.hidden % self.heads:
            raise _shape_error("hidden", f"a multiple of heads ({self.heads}), as head_dim "
                               "is not given (it is then hidden / heads)")
        if self.is_moe and self.dense_layers >= self.layers:
            raise _shape_error("dense_layers", f"a number < layers ({self.layers}): a "
                               "mixture-of-experts model has at least one MoE layer")
        if self.is_moe and self.moe_layers < 1:
            raise _shape_error("moe_layer_step", f"at most layers − dense_layers "
                               f"({self.layers - self.dense_layers}): a mixture-of-experts "
                               "model has at least one MoE layer")
        if self.sliding_layers + self.linear_layers > self.layers:
            raise _shape_error("linear_layers", f"at most layers − sliding_layers "
                               f"({self.layers - self.sliding_layers})")
        _require(self, "sliding_layers", self.sliding_layers > 0, ("sliding_window",))
        _require(self, "kv_lora_rank", self.kv_lora_rank is not None,
                 ("qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"))
        _require(self, "linear_layers", self.linear_layers > 0,
                 ("linear_key_heads", "linear_value_heads", "linear_key_head_dim",
                  "linear_value_head_dim"))

    def kv_bytes_per_token(self, bytes_per_element: float) -> float:
        """Cache bytes per token of the layers that keep every token (full attention):
        GQA 2 × layers × kv_heads × head_dim × bytes (K and V), MLA (kv_lora_rank +
        qk_rope_head_dim) × layers × bytes. Windowed and linear layers are apart
        (`window_kv_bytes_per_token`, `state_bytes_per_sequence`): their share is capped."""
        return self.full_attention_layers * self._layer_kv_elements() * bytes_per_element

    def window_kv_bytes_per_token(self, bytes_per_element: float) -> float:
        """Cache bytes per token of the sliding-window layers, for at most `sliding_window`
        tokens of each sequence."""
        return self.sliding_layers * self._layer_kv_elements() * bytes_per_element

    @property
    def state_bytes_per_sequence(self) -> int:
        """The linear-attention layers' recurrent state: fixed, whatever the context."""
        return self.linear_layers * (self.linear_state_bytes or 0)

    def kv_bytes_per_sequence(self, context_tokens: int, bytes_per_element: float) -> float:
        """What one sequence of `context_tokens` holds in the cache, every layer kind."""
        window = min(context_tokens, self.sliding_window or 0)
        return (self.kv_bytes_per_token(bytes_per_element) * context_tokens
                + self.window_kv_bytes_per_token(bytes_per_element) * window
                + self.state_bytes_per_sequence)

    def _layer_kv_elements(self) -> int:
        if self.kv_lora_rank is not None:
            assert self.qk_rope_head_dim is not None  # _check_shape requires it with MLA
            return self.kv_lora_rank + self.qk_rope_head_dim
        assert self.head_dim is not None  # derived at construction (_derive) when omitted
        return 2 * self.kv_heads * self.head_dim

    @property
    def full_attention_layers(self) -> int:
        return self.layers - self.sliding_layers - self.linear_layers

    @property
    def attention_kind(self) -> str:
        """The attention of the layers that keep every token, plus any other layer kinds:
        "gqa", "mla", "gqa+window" (some layers windowed), "gqa+linear" (hybrid)."""
        kind = "mla" if self.kv_lora_rank is not None else "gqa"
        extras = [name for name, count in (("window", self.sliding_layers),
                                           ("linear", self.linear_layers)) if count]
        return "+".join([kind, *extras])

    @property
    def is_moe(self) -> bool:
        return self.experts > 1

    @property
    def moe_layers(self) -> int:
        """Layers with routed experts: after the leading dense ones, every moe_layer_step-th."""
        return (self.layers - self.dense_layers) // self.moe_layer_step if self.is_moe else 0

    @property
    def routed_expert_params(self) -> int:
        """All routed experts' weights over all MoE layers (gated MLP: 3 × hidden × width)."""
        return self.moe_layers * self.experts * 3 * self.hidden * self.ffn_intermediate

    @property
    def mlp_matrices(self) -> int:
        """Weight matrices of a dense MLP: gate, up and down (SwiGLU), or up and down."""
        return 3 if self.mlp_gated else 2

    @property
    def residuals_per_layer(self) -> int:
        """Residual adds per layer: after attention and after the MLP, or one for both when
        they run side by side — which is also the all-reduces tensor parallelism needs."""
        return 1 if self.parallel_attention else 2

    @property
    def norm_params(self) -> int:
        """The layers' norms and the final one: a weight per channel, and a bias for a
        LayerNorm."""
        return (self.layers * self.layer_norms + 1) * self.hidden * (2 if self.norm_bias else 1)

    def block_params(self, experts_used: int) -> dict[str, int]:
        """Parameters of each `Block` over all layers, counting `experts_used` routed
        experts per MoE layer."""
        softmax = self.layers - self.linear_layers
        attn_in, attn_out = _attention_params(self)
        linear_in, linear_out = _linear_attention_params(self)
        dense = (self.layers - self.moe_layers) * self.mlp_matrices * self.hidden * (
            self.dense_ffn_intermediate or self.ffn_intermediate)
        shared = self.shared_experts * 3 * self.hidden * (self.shared_expert_intermediate
                                                           or self.ffn_intermediate)
        return {"attention": softmax * attn_in + self.linear_layers * linear_in,
                "attention_output": softmax * attn_out + self.linear_layers * linear_out,
                "dense_mlp": dense, "shared_experts": self.moe_layers * shared,
                "router": self.moe_layers * self.hidden * self.experts if self.is_moe else 0,
                "routed_experts": self.moe_layers * experts_used * 3 * self.hidden
                * self.ffn_intermediate}


def _shape_error(field: str, expected: str) -> PydanticCustomError:
    """An "order" error: the scenario's error translation names `field` and its value."""
    return PydanticCustomError("order", "impossible model shape",
                               {"field": field, "expected": expected})


def _require(m: ModelSpec, key: str, when: bool, needed: tuple[str, ...]) -> None:
    """The keys an attention kind cannot do without, once `key` turns it on."""
    missing = [name for name in needed if getattr(m, name) is None]
    if when and missing:
        raise _shape_error(missing[0], f"a value: {key} needs {', '.join(needed)}")


def _linear_state_bytes(m: ModelSpec) -> int:
    """One gated-delta-rule layer's state per sequence: the recurrent state (value heads ×
    key dim × value dim, kept in fp32 as the Qwen3-Next/Qwen3.5 configs' mamba_ssm_dtype)
    plus the short convolution's last kernel−1 inputs of q, k and v (16-bit)."""
    assert m.linear_value_heads and m.linear_key_head_dim and m.linear_value_head_dim
    assert m.linear_key_heads  # _check_shape requires all four with linear layers
    recurrent = m.linear_value_heads * m.linear_key_head_dim * m.linear_value_head_dim
    return 4 * recurrent + 2 * (m.linear_conv_kernel - 1) * _linear_conv_channels(m)


def _linear_conv_channels(m: ModelSpec) -> int:
    assert m.linear_key_heads and m.linear_value_heads
    assert m.linear_key_head_dim and m.linear_value_head_dim
    return (2 * m.linear_key_heads * m.linear_key_head_dim
            + m.linear_value_heads * m.linear_value_head_dim)


def count_params(m: ModelSpec, experts_used: int) -> int:
    """Parameters of a decoder counting `experts_used` routed experts per MoE layer (all of
    them: the total; experts_per_token: the active count). Biases other than q/k/v's, norms
    inside attention and multi-token-prediction heads are left out (well under 1% of any
    shipped model)."""
    embeddings = m.vocab * m.hidden * (1 if m.tied_embeddings else 2)
    return embeddings + sum(m.block_params(experts_used).values()) + m.norm_params


def _attention_params(m: ModelSpec) -> tuple[int, int]:
    """One softmax-attention layer's (input, output) projections: GQA's q, k, v and o, or
    MLA's low-rank ones and o."""
    if m.kv_lora_rank is not None:
        assert m.qk_nope_head_dim and m.qk_rope_head_dim and m.v_head_dim  # _check_shape
        q_head = m.qk_nope_head_dim + m.qk_rope_head_dim
        q = (m.hidden * m.heads * q_head if m.q_lora_rank is None
             else m.hidden * m.q_lora_rank + m.q_lora_rank + m.q_lora_rank * m.heads * q_head)
        kv = (m.hidden * (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank
              + m.kv_lora_rank * m.heads * (m.qk_nope_head_dim + m.v_head_dim))
        return q + kv, m.heads * m.v_head_dim * m.hidden
    head_dim = m.head_dim or m.hidden // m.heads
    q_dim, kv_dim = m.heads * head_dim, m.kv_heads * head_dim
    gate = q_dim if m.attn_output_gate else 0
    params = m.hidden * (q_dim + gate) + 2 * m.hidden * kv_dim
    if m.qkv_bias:
        params += q_dim + 2 * kv_dim
    return params, q_dim * m.hidden


def _linear_attention_params(m: ModelSpec) -> tuple[int, int]:
    """One gated-delta-rule layer's (input, output) parts: q, k, v, z and the two gates in
    with the conv, and out."""
    if not m.linear_layers:
        return 0, 0
    assert m.linear_value_heads and m.linear_value_head_dim  # _check_shape
    value_dim = m.linear_value_heads * m.linear_value_head_dim
    channels = _linear_conv_channels(m)
    projections = m.hidden * (channels + value_dim + 2 * m.linear_value_heads)
    conv = channels * m.linear_conv_kernel
    return (projections + conv + 2 * m.linear_value_heads + m.linear_value_head_dim,
            value_dim * m.hidden)


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
