"""Which operators one engine step runs, with their shapes on one GPU, for a model and layout.

The decoder layers are listed the way AIConfigurator's model builders and Vidur list them
(our own code, same decomposition): per layer, the attention block's projections and kernel,
the MLP (dense, or routed experts with their router and shared experts), the collectives
tensor and expert parallelism add, and the memory-bound element-wise operators (residual
add + norm twice, the gated activation) no GEMM table holds; per step, the lm_head.

GPT-J and Falcon run attention and the MLP side by side on one normalised input: the same
GEMMs, but one residual add per layer and, under tensor parallelism, one all-reduce of the
two blocks' summed partial outputs instead of one after each (vLLM's Falcon skips the row-
parallel reductions and reduces once; TensorRT-LLM's Falcon and GPT-J layers likewise).
Their non-gated MLP is two GEMMs (up, down) with a GELU between. A GEMM of a block the
checkpoint keeps 16-bit (`ModelSpec.unquantised`) reads the 16-bit tables (`quantised`).

Shapes are per GPU: `tensor_parallel` splits heads and MLP widths (key-value heads are
replicated when there are fewer of them than ranks); with attention data parallelism
(`data_parallel_attention` = d > 1) the attention block, dense MLPs and shared experts of
one rank see 1/d of the step's tokens (`token_share`) — that assumes the step's sequences
are balanced over the ranks, as the engines' schedulers try to keep them — while the routed
experts see all of the step's tokens across the expert-parallel group.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.hardware.catalog import ModelSpec
from sim.hardware.layout import Layout

BF16_BYTES = 2  # activations travel and are normalised in 16 bits whatever the weights


@dataclass(frozen=True)
class Gemm:
    """T·token_share × k activations by a k × n weight, `count` times a step."""

    name: str
    n: int
    k: int
    count: float
    token_share: float
    quantised: bool = True  # False: 16-bit whatever the layout (router, lm_head, `unquantised`)


@dataclass(frozen=True)
class Experts:
    """One routed-expert layer (the MoE table's shape), `count` times a step, on all tokens."""

    hidden: int
    inter: int
    topk: int
    experts: int
    moe_tp: int
    moe_ep: int
    count: float
    quantised: bool = True  # False: the checkpoint keeps its routed experts 16-bit


@dataclass(frozen=True)
class Collective:
    """`kind` (all_reduce | all_to_all) over `gpus`, of bytes_per_token × T·token_share."""

    kind: str
    gpus: int
    bytes_per_token: float
    count: float
    token_share: float


@dataclass(frozen=True)
class MemoryOp:
    """A memory-bound element-wise operator moving bytes_per_token × T·token_share."""

    name: str
    bytes_per_token: float
    count: float
    token_share: float


@dataclass(frozen=True)
class Attention:
    """The attention kernel of `count` layers of one kind (gqa | mla | linear) on one GPU."""

    kind: str
    count: int
    heads: int
    kv_heads: int
    head_dim: int
    window: int
    share: float  # of the step's tokens, sequences and KV tokens one rank holds


@dataclass(frozen=True)
class StepPlan:
    gemms: tuple[Gemm, ...]
    experts: tuple[Experts, ...]
    collectives: tuple[Collective, ...]
    memory_ops: tuple[MemoryOp, ...]
    attention: tuple[Attention, ...]
    lm_head: Gemm  # m = sequences producing a token (÷ d per rank)
    logits_bytes_per_seq: float  # sampling reads one row of fp32 logits per sequence


def plan(m: ModelSpec, layout: Layout, mla_module_has_projections: bool) -> StepPlan:
    """The operators of one step (module docstring). `mla_module_has_projections`: the MLA
    tables time the whole attention block (AIConfigurator's module tables replace the
    q/kv/o projections with the module), so the projections are not listed again."""
    assert m.head_dim is not None  # derived at construction when omitted
    tp, share = layout.tensor_parallel, 1.0 / layout.data_parallel_attention
    h = m.hidden
    attention_q, output_q = ("attention" not in m.unquantised,
                             "attention_output" not in m.unquantised)
    gemms: list[Gemm] = []
    attention: list[Attention] = []
    softmax_layers = m.layers - m.linear_layers

    if m.kv_lora_rank is not None:
        attention.append(Attention("mla", softmax_layers, m.heads // tp, 1,
                                   m.kv_lora_rank + (m.qk_rope_head_dim or 0), 0, share))
        if not mla_module_has_projections:
            gemms += _mla_projections(m, tp, softmax_layers, share, attention_q, output_q)
    else:
        kv_per_gpu = max(1, m.kv_heads // tp)
        q_dim = m.heads // tp * m.head_dim
        gate = q_dim if m.attn_output_gate else 0
        qkv = q_dim + gate + 2 * kv_per_gpu * m.head_dim
        gemms += [Gemm("qkv_proj", qkv, h, softmax_layers, share, attention_q),
                  Gemm("o_proj", h, q_dim, softmax_layers, share, output_q)]
        full = m.full_attention_layers
        for kind_layers, window in ((full, 0), (m.sliding_layers, m.sliding_window or 0)):
            if kind_layers:
                attention.append(Attention("gqa", kind_layers, m.heads // tp, kv_per_gpu,
                                           m.head_dim, window, share))
    if m.linear_layers:
        gemms += _linear_attention_projections(m, tp, share, attention_q, output_q)
        assert m.linear_value_heads and m.linear_key_heads and m.linear_key_head_dim
        attention.append(Attention("linear", m.linear_layers, m.linear_value_heads // tp,
                                   max(1, m.linear_key_heads // tp), m.linear_key_head_dim,
                                   0, share))

    dense_layers = m.layers - m.moe_layers
    dense_inter = (m.dense_ffn_intermediate or m.ffn_intermediate) if m.is_moe \
        else m.ffn_intermediate
    residuals = m.residuals_per_layer * m.layers
    memory = [MemoryOp("add_norm", (2 * h + 2 * h) * BF16_BYTES, residuals, share)]
    if m.layers * m.layer_norms > residuals:  # Falcon's second norm of the same input
        memory.append(MemoryOp("norm", 2 * h * BF16_BYTES,
                               m.layers * m.layer_norms - residuals, share))
    if dense_layers:
        mlp_q = "dense_mlp" not in m.unquantised
        up = (m.mlp_matrices - 1) * dense_inter // tp  # gate and up, or up alone
        gemms += [Gemm("gate_up_proj" if m.mlp_gated else "up_proj", up, h, dense_layers,
                       share, mlp_q),
                  Gemm("down_proj", h, dense_inter // tp, dense_layers, share, mlp_q)]
        # The activation reads gate and up and writes their product, or reads up and writes.
        memory.append(MemoryOp("act_gate" if m.mlp_gated else "act",
                               m.mlp_matrices * dense_inter // tp * BF16_BYTES, dense_layers,
                               share))
    experts: list[Experts] = []
    collectives: list[Collective] = []
    if tp > 1:  # after attention (both blocks when side by side) and after a dense MLP
        collectives.append(Collective("all_reduce", tp, h * BF16_BYTES, m.layers, share))
        if dense_layers and not m.parallel_attention:
            collectives.append(Collective("all_reduce", tp, h * BF16_BYTES, dense_layers,
                                          share))
    if m.is_moe:
        moe = m.moe_layers
        gemms.append(Gemm("router", m.experts, h, moe, share, quantised=False))
        if m.shared_experts:
            width = m.shared_experts * (m.shared_expert_intermediate or m.ffn_intermediate)
            shared_q = "shared_experts" not in m.unquantised
            gemms += [Gemm("shared_gate_up", 2 * width // tp, h, moe, share, shared_q),
                      Gemm("shared_down", h, width // tp, moe, share, shared_q)]
        experts.append(Experts(h, m.ffn_intermediate, m.experts_per_token, m.experts,
                               layout.moe_tensor_parallel, layout.expert_parallel, moe,
                               "routed_experts" not in m.unquantised))
        if layout.expert_parallel > 1:  # dispatch and combine of every routed token copy
            collectives.append(Collective("all_to_all", layout.gpus,
                                          m.experts_per_token * h * BF16_BYTES, 2 * moe,
                                          share))
        elif layout.gpus > 1:  # expert widths split over every GPU: their sum is reduced
            collectives.append(Collective("all_reduce", layout.gpus, h * BF16_BYTES, moe,
                                          1.0))
    lm_head = Gemm("lm_head", m.vocab // tp, h, 1, share, quantised=False)
    return StepPlan(tuple(gemms), tuple(experts), tuple(collectives), tuple(memory),
                    tuple(attention), lm_head, 4.0 * m.vocab / tp)


def _mla_projections(m: ModelSpec, tp: int, layers: int, share: float, quantised: bool,
                     output_quantised: bool) -> list[Gemm]:
    """DeepSeek's latent-attention projections, for tables that time the kernel alone: the
    down-projections (replicated on every rank), q_b, kv_b (in decode the engines absorb it
    into two per-head products, which read the same weights) and o."""
    assert m.kv_lora_rank and m.qk_nope_head_dim and m.qk_rope_head_dim and m.v_head_dim
    h, heads = m.hidden, m.heads // tp
    q_head = m.qk_nope_head_dim + m.qk_rope_head_dim
    down = m.kv_lora_rank + m.qk_rope_head_dim + (m.q_lora_rank or 0)
    out = [Gemm("mla_down_proj", down, h, layers, share, quantised)]
    if m.q_lora_rank:
        out.append(Gemm("q_b_proj", heads * q_head, m.q_lora_rank, layers, share, quantised))
    else:
        out.append(Gemm("q_proj", heads * q_head, h, layers, share, quantised))
    return out + [Gemm("kv_b_proj", heads * (m.qk_nope_head_dim + m.v_head_dim),
                       m.kv_lora_rank, layers, share, quantised),
                  Gemm("o_proj", h, heads * m.v_head_dim, layers, share, output_quantised)]


def _linear_attention_projections(m: ModelSpec, tp: int, share: float, quantised: bool,
                                  output_quantised: bool) -> list[Gemm]:
    """A gated-delta-rule layer's projections in (q, k, v, z, the two gates) and out."""
    assert m.linear_key_heads and m.linear_value_heads
    assert m.linear_key_head_dim and m.linear_value_head_dim
    value_dim = m.linear_value_heads * m.linear_value_head_dim
    channels = 2 * m.linear_key_heads * m.linear_key_head_dim + value_dim
    width = channels + value_dim + 2 * m.linear_value_heads
    return [Gemm("linear_in_proj", width // tp, m.hidden, m.linear_layers, share, quantised),
            Gemm("linear_out_proj", m.hidden, value_dim // tp, m.linear_layers, share,
                 output_quantised)]
