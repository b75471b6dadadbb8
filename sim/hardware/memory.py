"""KV-cache capacity of one replica, counted per GPU of its layout.

A replica's GPUs do not hold the same share of everything, so the fit is checked on one GPU
(every GPU of a replica holds the same amount) rather than on the replica's total:

- **Weights.** With `dtype` fp8 or fp4 only the linear layers are quantised (attention
  projections, dense MLPs, shared and routed experts, routers); the embeddings, the lm_head
  and the norms stay 16-bit, as the FP8 and NVFP4 checkpoints engines load keep them. FP4
  is NVFP4: 4-bit values plus one FP8 scale per 16, 0.5 + 1/16 bytes per element (MXFP4's
  one scale per 32 would be 1/32 less). Per GPU: attention and dense weights ÷
  tensor_parallel (each attention data-parallel group holds a whole copy), routed experts ÷
  the replica's GPUs (expert_parallel × moe_tensor_parallel spreads them over all of
  them), embeddings and lm_head ÷ tensor_parallel (vocabulary-parallel), norms on every GPU.
  A replica's total weight bytes are the same for TP and EP; its per-GPU bytes are not.
  The blocks a checkpoint keeps 16-bit (`ModelSpec.unquantised`, from an NVFP4
  `hf_quant_config.json`'s `exclude_modules` — DeepSeek's MLA projections — or gpt-oss's
  `modules_to_not_convert`) are counted at 2 bytes, split as their block is; their sizes
  come from the shape (`ModelSpec.block_params`), the quantised rest from the stated total.
- **KV cache per token per GPU** (`kv_cache_dtype` sets the bytes per element): GQA's
  key-value heads are split over the tensor-parallel ranks, and copied once tp exceeds them
  (each GPU holds at least one: layers × 2 × max(1, kv_heads / tp) × head_dim × bytes);
  MLA's latent (kv_lora_rank + qk_rope_head_dim) is the same on every rank, so TP does not
  shrink it. Attention data-parallel groups hold different sequences: the replica holds
  data_parallel_attention × one group's tokens.
- **What a sequence holds whatever its length** — sliding-window layers' `sliding_window`
  tokens, linear-attention layers' state (split over the ranks like the heads) — is set
  aside for `max_num_seqs` sequences, the most that run at once, spread evenly over the
  data-parallel groups: the engine counts tokens, and this keeps one token of capacity one
  token of a full-attention cache. A model without full-attention layers (every layer
  windowed) counts its windowed layers per token instead, which over-states what a long
  sequence needs but never fits more than the memory holds.
- **Reserves per GPU**: the GPU's NCCL buffers for a communicator of the replica's GPUs and
  its runtime reserve (CUDA context, workspaces; `GpuSpec.nccl_reserve_gib`,
  `runtime_reserve_gib`, from NVIDIA's AIConfigurator spec sheets where a GPU has one),
  plus the scenario's `activation_reserve_gib`.

So, per GPU: tokens = (memory × gpu_memory_utilization − reserves − weights − sequences'
fixed bytes) / KV bytes per token, rounded down to whole `KV_BLOCK_TOKENS`-token blocks (the
paged-attention block engines use), times the data-parallel groups. That is how vLLM
(`gpu_memory_utilization`) and SGLang (`mem_fraction_static`) budget: a fraction of the whole
GPU. TensorRT-LLM (`engine: trtllm`) gives the KV cache a fraction of the memory *left free*
after the weights and reserves (`KvCacheConfig.free_gpu_memory_fraction`, default 0.9), so
there tokens = gpu_memory_utilization × (memory − reserves − weights − sequences' fixed
bytes) / KV bytes per token: a model that nearly fills its GPUs keeps far more cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from sim.errors import InputError
from sim.hardware.catalog import BYTES_PER_GIB, GpuSpec, ModelSpec
from sim.hardware.layout import Layout

KV_BLOCK_TOKENS = 16  # vLLM's default page; each sequence also reserves one as slack
# Bytes per element of the quantised weights (fp4: NVFP4, with its block scales) and of a
# KV cache (bf16, fp16, fp8).
DTYPE_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "fp4": 0.5 + 1 / 16}
UNQUANTISED_BYTES = 2.0  # embeddings, lm_head and norms, whatever the weights' dtype
# Engines whose memory fraction applies to what the weights and reserves leave free (see the
# module's docstring); the others take it of the whole GPU.
FRACTION_OF_FREE_ENGINES = ("trtllm",)
MAX_SEARCH_TENSOR_PARALLEL = 1024  # how far `_no_room` looks for a tensor_parallel that fits


@dataclass(frozen=True)
class WeightSplit:
    """A model's parameters by how a replica spreads them (see the module's docstring)."""

    embeddings: int  # input embedding and lm_head (one table when tied): 16-bit, ÷ tp
    norms: int  # 16-bit, on every GPU
    dense: int  # attention, dense MLPs, shared experts, routers: quantised, ÷ tp
    routed: int  # routed experts: quantised, ÷ the replica's GPUs
    dense_16bit: int = 0  # the part of those the checkpoint keeps 16-bit, ÷ tp
    routed_16bit: int = 0  # routed experts kept 16-bit, ÷ the replica's GPUs


def weight_split(model: ModelSpec) -> WeightSplit:
    """The parts of `model.params`: the linear layers other than the routed experts are what
    the embeddings, norms and routed experts leave (a catalogue entry states its total), less
    the blocks kept 16-bit."""
    assert model.params is not None  # ModelSpec derives it at construction when omitted
    embeddings = model.vocab * model.hidden * (1 if model.tied_embeddings else 2)
    norms = model.norm_params
    routed = model.routed_expert_params
    blocks = model.block_params(model.experts)
    kept = sum(blocks[b] for b in model.unquantised if b != "routed_experts")
    dense = max(0, model.params - embeddings - norms - routed - kept)
    if "routed_experts" in model.unquantised:
        return WeightSplit(embeddings, norms, dense, 0, kept, routed)
    return WeightSplit(embeddings, norms, dense, routed, kept)


def weight_bytes(model: ModelSpec, dtype: str) -> float:
    """One replica's weights in all, whatever its layout."""
    w = weight_split(model)
    return ((w.embeddings + w.norms + w.dense_16bit + w.routed_16bit) * UNQUANTISED_BYTES
            + (w.dense + w.routed) * DTYPE_BYTES[dtype])


def weight_bytes_per_gpu(model: ModelSpec, layout: Layout) -> float:
    """What each GPU of a replica laid out as `layout` holds of the weights."""
    w, tp, q = weight_split(model), layout.tensor_parallel, DTYPE_BYTES[layout.dtype]
    return (w.embeddings * UNQUANTISED_BYTES / tp + w.norms * UNQUANTISED_BYTES
            + (w.dense * q + w.dense_16bit * UNQUANTISED_BYTES) / tp
            + (w.routed * q + w.routed_16bit * UNQUANTISED_BYTES) / layout.gpus)


def kv_bytes_per_token(model: ModelSpec, dtype: str) -> float:
    """Bytes per token of the cache's growing part, all GPUs of one attention group
    together, not counting copies (see the module's docstring)."""
    per_token = model.kv_bytes_per_token(DTYPE_BYTES[dtype])
    return per_token or model.window_kv_bytes_per_token(DTYPE_BYTES[dtype])


def kv_bytes_per_token_per_gpu(model: ModelSpec, layout: Layout) -> float:
    """What one token of the cache's growing part takes on each GPU of its group."""
    return kv_bytes_per_token(model, layout.kv_cache_dtype) / kv_shards(model,
                                                                        layout.tensor_parallel)


def kv_shards(model: ModelSpec, tensor_parallel: int) -> int:
    """The ways a layer's cache is split over `tensor_parallel` ranks: GQA's key-value heads
    up to one per rank (more ranks hold copies), MLA's one latent not at all."""
    return 1 if model.kv_lora_rank is not None else min(tensor_parallel, model.kv_heads)


def sequence_bytes_per_gpu(model: ModelSpec, layout: Layout) -> float:
    """Bytes one sequence holds on each GPU of its group whatever its length: windowed
    layers filled to their window (when full-attention layers carry the per-token count)
    and linear-attention state, each split over the ranks like their heads."""
    element = DTYPE_BYTES[layout.kv_cache_dtype]
    tp = layout.tensor_parallel
    window = (model.window_kv_bytes_per_token(element) * (model.sliding_window or 0)
              if model.kv_bytes_per_token(element) else 0.0)
    state_shards = min(tp, model.linear_key_heads or 1)
    return window / kv_shards(model, tp) + model.state_bytes_per_sequence / state_shards


def reserve_bytes_per_gpu(gpu: GpuSpec, layout: Layout, activation_reserve_gib: float) -> float:
    """NCCL, runtime and activation reserves of each GPU."""
    return gpu.reserve_bytes(layout.gpus) + activation_reserve_gib * BYTES_PER_GIB


@dataclass(frozen=True)
class _Fit:
    """One GPU's memory budget: what is free for KV blocks after the fixed parts."""

    usable: float  # memory × gpu_memory_utilization (TensorRT-LLM: the whole memory)
    reserve: float  # NCCL, runtime and activation reserves
    weights: float  # its share of the weights
    sequences: float  # the fixed bytes of the sequences its group may run at once
    block: float  # one KV block
    free_fraction: float = 1.0  # TensorRT-LLM: the share of what is left the cache takes

    @property
    def blocks(self) -> int:
        free = self.usable - self.reserve - self.weights - self.sequences
        return int(max(free, 0.0) * self.free_fraction // self.block)


def _fit(model: ModelSpec, gpu: GpuSpec, layout: Layout, gpu_memory_utilization: float,
         activation_reserve_gib: float, max_num_seqs: int) -> _Fit:
    group_seqs = math.ceil(max_num_seqs / layout.data_parallel_attention)
    of_free = layout.engine in FRACTION_OF_FREE_ENGINES
    return _Fit(usable=gpu.memory_bytes * (1.0 if of_free else gpu_memory_utilization),
                free_fraction=gpu_memory_utilization if of_free else 1.0,
                reserve=reserve_bytes_per_gpu(gpu, layout, activation_reserve_gib),
                weights=weight_bytes_per_gpu(model, layout),
                sequences=group_seqs * sequence_bytes_per_gpu(model, layout),
                block=kv_bytes_per_token_per_gpu(model, layout) * KV_BLOCK_TOKENS)


def kv_capacity_tokens(model: ModelSpec, gpu: GpuSpec, layout: Layout,
                       gpu_memory_utilization: float, activation_reserve_gib: float,
                       max_num_seqs: int) -> int:
    """Tokens of KV cache one replica can hold; `InputError` when the weights do not fit."""
    fit = _fit(model, gpu, layout, gpu_memory_utilization, activation_reserve_gib,
               max_num_seqs)
    if fit.blocks < 1:
        raise _no_room(model, gpu, layout, gpu_memory_utilization, activation_reserve_gib,
                       max_num_seqs)
    return fit.blocks * KV_BLOCK_TOKENS * layout.data_parallel_attention


def _no_room(model: ModelSpec, gpu: GpuSpec, layout: Layout, gpu_memory_utilization: float,
             activation_reserve_gib: float, max_num_seqs: int) -> InputError:
    """Why no KV block fits, blaming the key that can fix it: the activation reserve when
    the reserves alone take what a GPU leaves (more GPUs cannot help: each keeps its own),
    gpu_memory_utilization when the GPU's own runtime reserve does, else tensor_parallel
    (more ranks split everything but the norms). Every figure in the message is one the
    arithmetic used."""
    util, act = gpu_memory_utilization, activation_reserve_gib
    fit = _fit(model, gpu, layout, util, act, max_num_seqs)
    runtime = gpu.reserve_bytes(layout.gpus)
    where = f"{gpu.name} × {util} = {fit.usable / BYTES_PER_GIB:.1f} GiB"
    share = (f"its share of the weights ({fit.weights / BYTES_PER_GIB:.1f} GiB of {model.name}"
             f" in {layout.dtype} at {_describe(layout)})")
    if runtime >= fit.usable:
        return InputError("deployment.gpu_memory_utilization", util,
                          f"a larger fraction: {where} per GPU, less than {gpu.name}'s "
                          f"{runtime / BYTES_PER_GIB:.1f} GiB NCCL and runtime reserve")
    if fit.reserve >= fit.usable:
        runtime_note = (f" beside {gpu.name}'s {runtime / BYTES_PER_GIB:.1f} GiB NCCL and "
                        "runtime reserve" if runtime else "")
        return InputError("deployment.activation_reserve_gib", act,
                          f"a reserve below what each GPU leaves: {where}{runtime_note}, "
                          f"which must also hold {share}")
    left = fit.usable - fit.reserve
    reserves = " and ".join(part for part in (
        f"{runtime / BYTES_PER_GIB:.1f} GiB NCCL and runtime" if runtime else "",
        f"{act:g} GiB activations" if act else "") if part)
    after = f", {left / BYTES_PER_GIB:.1f} GiB after the reserves ({reserves})" \
        if reserves else ""
    state = (f" and the fixed state of its sequences (deployment.scheduler.max_num_seqs: "
             f"{max_num_seqs})" if fit.sequences else "")
    short = (f", too little for one KV-cache block{state} "
             f"({(fit.block + fit.sequences) / 2**20:.1f} MiB) beside them"
             if left >= fit.weights else "")
    # The activation reserve is the other way out when the weights would fit without it.
    smaller = (" (or a smaller deployment.activation_reserve_gib)"
               if act and fit.weights + fit.block + fit.sequences <= fit.usable - runtime
               else "")
    return InputError(
        "deployment.tensor_parallel", layout.tensor_parallel,
        f"enough GPUs for the weights: {model.name} needs {fit.weights / BYTES_PER_GIB:.1f} "
        f"GiB per GPU in {layout.dtype} at {_describe(layout)} "
        f"({weight_bytes(model, layout.dtype) / BYTES_PER_GIB:.1f} GiB the whole model) but "
        f"{where} "
        f"per GPU{after}{short}; {_would_fit(model, gpu, layout, util, act, max_num_seqs)}"
        f"{smaller}")


def _would_fit(model: ModelSpec, gpu: GpuSpec, layout: Layout, gpu_memory_utilization: float,
               activation_reserve_gib: float, max_num_seqs: int) -> str:
    """The smallest tensor_parallel, the rest of the layout kept, that leaves room for one
    block (whether the model's heads split that many ways is checked when it is given)."""
    for tp in range(layout.tensor_parallel + 1, MAX_SEARCH_TENSOR_PARALLEL + 1):
        wider = replace(layout, tensor_parallel=tp)
        if _fit(model, gpu, wider, gpu_memory_utilization, activation_reserve_gib,
                max_num_seqs).blocks >= 1:
            return f"at least {wider.gpus} GPUs (tensor_parallel {tp}) would hold them"
    return f"no tensor_parallel up to {MAX_SEARCH_TENSOR_PARALLEL:,} holds them"


def _describe(layout: Layout) -> str:
    """The layout as its keys name it, leaving out what is 1."""
    parts = [f"tensor_parallel {layout.tensor_parallel}"]
    if layout.data_parallel_attention > 1:
        parts.append(f"data_parallel_attention {layout.data_parallel_attention}")
    if layout.expert_parallel > 1:
        parts.append(f"expert_parallel {layout.expert_parallel}")
    return ", ".join(parts)
