"""The composed step model: measured operators summed per layer, for any model and layout.

`sim.steptime.layers` lists the operators a step runs, with their shapes on one GPU; this
module reads each from the GPU's operator tables (`sim.steptime.operators`, timed in the
engine's own build), sums them into the terms of `sim.steptime.table.StepTerms` and says in
the provenance which operators were measured, interpolated, extrapolated or estimated.

- Everything that scales with tokens in the step (GEMMs, routed experts, collectives,
  element-wise operators) is composed at knots — log-spaced token counts plus the tables'
  own m values — and interpolated between them when expanded, so building a model costs a
  few hundred table reads, not one per token count. The sum is made non-decreasing in
  tokens (engines pad a batch up to a captured CUDA-graph size, so a bigger step is never
  faster; what dips is measurement noise).
- Attention keeps its fitted form: prefill fixed + per token + per causal pair, decode
  fixed + per sequence + per KV token, so pure-decode steps are exactly F(B) + c·KV as
  event skipping needs. Sliding-window layers use the window's fits, but their reads are
  capped at the window, which F(B) + c·KV cannot say per sequence: they are charged the
  whole window for every sequence (per-sequence term) in decode and window × prompt tokens
  in prefill — an upper bound for sequences shorter than the window.
- Gated-delta-rule (linear attention) layers have no table: their recurrent kernel is a
  roofline (FLOPs of the state update in prefill, reading and writing the state in decode),
  flagged in the provenance.
- Routed experts whose engine has no table for the dtype on that GPU are read from the same
  GPU's table of another engine (`PROXY_ENGINES`), named in the provenance `fallbacks`; a
  roofline only when no engine has one.
- Memory-bound element-wise operators and sampling use AIConfigurator's own analytic memory
  operator: bytes / (0.8 × HBM bandwidth) + 3 µs a call (`mem_bw_empirical_scaling_factor`
  and `mem_empirical_constant_latency` of its `systems/*.yaml`).
- Host overhead per step: none. Each engine, at the versions the tables were timed with,
  schedules step n + 1 on the CPU while the GPU runs step n: vLLM's async scheduling (on by
  default since vllm-project/vllm#27614), SGLang's overlap ("zero-overhead") scheduler
  (v0.4, lmsys.org/blog/2024-12-04-sglang-v0-4), TensorRT-LLM's overlap scheduler (on by
  default, its docs "Overlap Scheduler"). What the GPU itself does beyond the tables
  (norms, activation, sampling) is counted above.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from sim.hardware.catalog import GpuSpec, ModelSpec
from sim.hardware.layout import Layout
from sim.provenance import Provenance
from sim.steptime import layers as ops
from sim.steptime import lookup, operators
from sim.steptime.library import Table
from sim.steptime.operators import GemmGrid, MoeTable, OperatorTables
from sim.steptime.table import StepTerms, TableStep

MEM_BANDWIDTH_SCALE = 0.8  # AIConfigurator systems/*.yaml: mem_bw_empirical_scaling_factor
MEM_OP_LATENCY_S = 3e-6  # AIConfigurator systems/*.yaml: mem_empirical_constant_latency
HOST_OVERHEAD_S = {"vllm": 0.0, "sglang": 0.0, "trtllm": 0.0}  # module docstring
OVERHEAD_SOURCE = ("none on the host: vLLM async scheduling (default since "
                   "vllm-project/vllm#27614), SGLang overlap scheduler (v0.4), TensorRT-LLM "
                   "overlap scheduler (default) hide scheduling behind the GPU step")
KNOTS = 48  # log-spaced token counts the linear part is composed at (plus the tables' m)
PCIE_GEN4_GB_S = 64.0  # as the roofline model, for GPUs without an interconnect figure
COLLECTIVE_LATENCY_S = 10e-6  # roofline collectives only: one launch and handshake

# Layout.dtype → the table keys that can serve it, best first (the builder's names and
# AIConfigurator's). fp4 on GPUs without FP4 tensor cores: see `dtype_keys`.
_BF16 = ("bf16", "bfloat16")
Relatives = Callable[[str], OperatorTables | None]  # engine → its tables of the same GPU
_NVFP4 = ("fp4", "nvfp4")
_W4A16 = ("w4a16_mxfp4", "mxfp4")
_W4A8 = ("w4a8_mxfp4_mxfp8",)

# The engine whose expert tables stand in, on the same GPU, when the deployment's engine has
# none for the dtype, best first. On Blackwell vLLM's FP4/FP8 expert layers run FlashInfer's
# fused MoE, which packages TensorRT-LLM's own CUTLASS and trtllm-gen kernels, so vLLM stands
# in for TensorRT-LLM before SGLang; vLLM and SGLang share their Triton, DeepGEMM and
# FlashInfer expert kernels, so each stands in for the other first.
PROXY_ENGINES = {"trtllm": ("vllm", "sglang"), "vllm": ("sglang", "trtllm"),
                 "sglang": ("vllm", "trtllm")}


@dataclass
class Record:
    """What the composition had to do beyond reading measured points, for the provenance."""

    status: dict[str, str] = field(default_factory=dict)  # operator → interpolated | …
    # operator → what stood in for its engine's table: a roofline, or another engine's table
    fallbacks: dict[str, str] = field(default_factory=dict)
    errors: list[tuple[str, float]] = field(default_factory=list)  # operator, median LOO %

    def note(self, name: str, status: str) -> None:
        if status != lookup.MEASURED:
            self.status[name] = lookup.worst(self.status.get(name, status), status)


@dataclass(frozen=True)
class Formats:
    gemm: tuple[str, ...]  # table keys for the quantised GEMMs, best first
    moe: tuple[str, ...]
    note: str


def dtype_keys(layout: Layout, model: ModelSpec, gpu: GpuSpec) -> Formats:
    """Which tables serve the layout's weight format. fp8: block-scaled tables for
    checkpoints stored in FP8 (DeepSeek/Qwen3 FP8 ship 128×128 block scales), per-tensor
    ones otherwise. fp4: NVFP4 on GPUs with FP4 tensor cores; elsewhere weight-only (4-bit
    weights, 16-bit compute — vLLM's w4a16 MXFP4 expert kernels on Hopper, how gpt-oss
    fp4 runs there) for the experts and 16-bit GEMMs for the rest.

    These are the keys of the GEMMs the checkpoint quantises; those of the blocks it keeps
    16-bit (`ModelSpec.unquantised`: DeepSeek NVFP4's MLA projections, gpt-oss's attention
    and router) read the 16-bit tables whatever the format (`ops.Gemm.quantised`).

    MXFP4 checkpoints (gpt-oss) quantise the routed experts only; any other GEMM one
    quantised would find no MXFP4 dense GEMM table, so it reads the 16-bit ones. On FP4 GPUs
    their experts run as MXFP4 weights with MXFP8 activations in TensorRT-LLM (its Blackwell
    MoE path for gpt-oss: the w4a8_mxfp4_mxfp8 tables), as MXFP4 weights with BF16
    activations in vLLM and SGLang (FlashInfer's MXFP4×BF16 expert kernel, vLLM's default
    on SM100); never the NVFP4 tables, which time another scale format."""
    if layout.dtype == "fp8":
        block = model.weights_dtype.startswith("fp8")
        keys = ("fp8_block", "fp8") if block else ("fp8", "fp8_block")
        return Formats(keys, keys, "fp8 " + ("block-scaled" if block else "per-tensor"))
    if layout.dtype == "fp4":
        if model.weights_dtype == "mxfp4" and gpu.fp4_tflops is not None:
            w4a8 = layout.engine == "trtllm"
            return Formats(_BF16, (*_W4A8, *_W4A16) if w4a8 else (*_W4A16, *_W4A8),
                           "fp4 MXFP4 experts (" + ("w4a8 MXFP8 activations" if w4a8 else
                           "w4a16 BF16 activations") + "), 16-bit GEMMs elsewhere")
        if gpu.fp4_tflops is not None:
            return Formats(_NVFP4, _NVFP4, "fp4: NVFP4 tensor cores")
        return Formats(_BF16, _W4A16,
                       "fp4 weight-only: w4a16 MXFP4 experts, 16-bit GEMMs elsewhere")
    return Formats(_BF16, _BF16, f"{layout.dtype}: 16-bit tables")


def _first(table: Mapping[str, object], keys: tuple[str, ...]) -> str | None:
    return next((k for k in keys if k in table), None)


_WEIGHT_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "fp4": 0.5}


def knots(max_step_tokens: int, measured: list[int]) -> np.ndarray:
    """Token counts the linear part is composed at (module docstring)."""
    spaced = np.unique(np.round(np.geomspace(1, max_step_tokens, KNOTS)))
    extra = [m for m in measured if 1 <= m <= max_step_tokens]
    return np.unique(np.concatenate([spaced, extra, [1.0, float(max_step_tokens)]]))


class Composer:
    """Reads each listed operator from the tables at the knots, in seconds."""

    def __init__(self, t: OperatorTables, model: ModelSpec, gpu: GpuSpec, layout: Layout,
                 record: Record, relatives: Relatives) -> None:
        self.t, self.gpu, self.layout, self.record = t, gpu, layout, record
        self.relatives = relatives
        self.formats = dtype_keys(layout, model, gpu)
        self.bytes_per_s = gpu.memory_bandwidth_tb_s * 1e12

    def gemm_s(self, g: ops.Gemm, tokens: np.ndarray) -> np.ndarray:
        keys = self.formats.gemm if g.quantised else _BF16
        key = _first(self.t.gemm, keys) or _first(self.t.gemm, _BF16)
        m = np.maximum(tokens * g.token_share, 1.0)
        found = None if key is None else lookup.gemm_ms(self.t.gemm[key], g.n, g.k, m)
        if found is None:
            self.record.fallbacks[g.name] = "no GEMM table for its dtype or shape: roofline"
            dtype = self.layout.dtype if g.quantised else "bf16"
            flops_s = 2.0 * m * g.n * g.k / (self.gpu.peak_tflops(dtype) * 1e12)
            bytes_s = (g.n * g.k * _WEIGHT_BYTES[dtype] + 2.0 * m * (g.n + g.k)) \
                / self.bytes_per_s
            return np.maximum(flops_s, bytes_s) * g.count
        ms, status = found
        assert key is not None
        self.record.note(g.name, status)
        if keys[0] != key:
            self.record.status[g.name + ".dtype"] = f"{key} tables stand in for {keys[0]}"
        self._gemm_error(g.name, self.t.gemm[key], g.n, g.k)
        return ms * 1e-3 * g.count

    def _gemm_error(self, name: str, grid: GemmGrid, n: int, k: int) -> None:
        curve = lookup.gemm_curve(grid, n, k)
        if curve is not None:
            errors = lookup.leave_one_out_pct(curve[0], curve[1])
            if errors:
                self.record.errors.append((name, float(np.median(errors))))

    def expert_keys(self, e: ops.Experts) -> tuple[str, ...]:
        """The expert table keys of the layout's format, or 16-bit ones for experts the
        checkpoint keeps unquantised."""
        return self.formats.moe if e.quantised else _BF16

    def expert_tables(self, e: ops.Experts) -> tuple[str, str, list[MoeTable]] | None:
        """(engine, key, tables) of the expert tables that serve the experts' dtype: the
        engine's own (its best format first), else the same GPU's of the first
        `PROXY_ENGINES` engine that has one; and when those lack the model's expert shape
        (hidden, inter, top-k, experts) but another engine's tables of the same format hold
        it, that engine's, measured, over a shape scaled from a neighbour. Named in the
        fallbacks; None when no engine has a table for the dtype."""
        own, keys = self.t.engine, self.expert_keys(e)
        found: list[tuple[str, str, list[MoeTable]]] = []
        for engine in (own, *PROXY_ENGINES.get(own, ())):
            t = self.t if engine == own else self.relatives(engine)
            if t is not None:
                found += [(engine, k, t.moe[k]) for k in keys if t.moe.get(k)]
        if not found:
            return None
        first = found[0]
        shape = (e.hidden, e.inter, e.topk, e.experts)
        chosen = next((f for f in found if f[1] == first[1] and any(
            (m.hidden, m.inter, m.topk, m.experts) == shape for m in f[2])), first)
        engine, key = chosen[0], chosen[1]
        if engine != own and first[0] == own:
            self.record.fallbacks["moe"] = (
                f"{own}'s {key} expert tables on {self.t.gpu} lack the shape (hidden "
                f"{e.hidden}, inter {e.inter}, top-{e.topk}/{e.experts}): {engine}'s, which "
                "hold it, stand in")
        elif engine != own:
            self.record.fallbacks["moe"] = (
                f"no {own} expert table for {keys[0]} on {self.t.gpu}: "
                f"{engine}'s {key} table stands in")
        return chosen

    def experts_s(self, e: ops.Experts, tokens: np.ndarray) -> np.ndarray:
        found = self.expert_tables(e)
        scaled = None if found is None else lookup.pick_moe(
            found[2], e.hidden, e.inter, e.topk, e.experts, e.moe_tp, e.moe_ep)
        if scaled is None:
            self.record.fallbacks["moe"] = "no expert table for its dtype in any engine: " \
                "roofline"
            return self._experts_roofline(e, tokens)
        wanted = self.expert_keys(e)[0]
        if found is not None and found[1] != wanted:
            self.record.status["moe.dtype"] = f"{found[1]} tables stand in for {wanted}"
        ms, status = lookup.moe_ms(scaled, tokens)
        self.record.note("moe", status)
        if status != lookup.MEASURED:
            t = scaled.table
            self.record.status["moe.shape"] = (
                f"nearest measured ({t.hidden}, {t.inter}, top-{t.topk}/{t.experts}, "
                f"tp{t.moe_tp} ep{t.moe_ep}) read at ×{scaled.token_factor:.3g} tokens, "
                f"time ×{scaled.time_factor:.3g}")
        errors = lookup.leave_one_out_pct(np.asarray(scaled.table.tokens, float),
                                          np.asarray(scaled.table.ms, float))
        if errors:
            self.record.errors.append(("moe", float(np.median(errors))))
        return ms * 1e-3 * e.count

    def _experts_roofline(self, e: ops.Experts, tokens: np.ndarray) -> np.ndarray:
        per_gpu = e.experts / e.moe_ep
        dtype = self.layout.dtype if e.quantised else "bf16"
        touched = per_gpu * (1.0 - (1.0 - e.topk / e.experts) ** tokens)
        weight_bytes = touched * 3 * e.hidden * e.inter / e.moe_tp * _WEIGHT_BYTES[dtype]
        flops = 2.0 * 3 * e.hidden * e.inter / e.moe_tp * tokens * e.topk / e.moe_ep
        return np.maximum(weight_bytes / self.bytes_per_s,
                          flops / (self.gpu.peak_tflops(dtype) * 1e12)) * e.count

    def collective_s(self, c: ops.Collective, tokens: np.ndarray) -> np.ndarray:
        message = c.bytes_per_token * tokens * c.token_share
        curves = self.t.all_reduce if c.kind == "all_reduce" else self.t.all_to_all
        curve = curves.get(str(c.gpus))
        if curve is None:
            self.record.fallbacks[f"{c.kind}_{c.gpus}"] = (
                f"no {c.kind} curve for {c.gpus} GPUs: ring over the interconnect")
            one_way = (self.gpu.interconnect_gb_s or PCIE_GEN4_GB_S) / 2 * 1e9
            factor = 2.0 * (c.gpus - 1) / c.gpus if c.kind == "all_reduce" \
                else (c.gpus - 1) / c.gpus
            return (COLLECTIVE_LATENCY_S + factor * message / one_way) * c.count
        ms, status = lookup.curve_ms(curve, message)
        self.record.note(c.kind, status)
        errors = lookup.leave_one_out_pct(np.asarray(curve.x, float),
                                          np.asarray(curve.ms, float))
        if errors:
            self.record.errors.append((c.kind, float(np.median(errors))))
        return ms * 1e-3 * c.count

    def memory_s(self, bytes_per_token: float, tokens: np.ndarray, count: float) -> np.ndarray:
        moved = bytes_per_token * tokens
        return (moved / (self.bytes_per_s * MEM_BANDWIDTH_SCALE) + MEM_OP_LATENCY_S) * count


@dataclass(frozen=True)
class AttentionTerms:
    """Whole-model attention terms, seconds (the prefill and decode forms of StepTerms)."""

    prefill_fixed_s: float = 0.0
    prefill_per_token_s: float = 0.0
    prefill_per_pair_s: float = 0.0
    decode_fixed_s: float = 0.0
    decode_per_seq_s: float = 0.0
    decode_per_kv_token_s: float = 0.0

    def __add__(self, other: AttentionTerms) -> AttentionTerms:
        pairs = zip(self._values(), other._values(), strict=True)
        return AttentionTerms(*(a + b for a, b in pairs))

    def _values(self) -> tuple[float, ...]:
        return (self.prefill_fixed_s, self.prefill_per_token_s, self.prefill_per_pair_s,
                self.decode_fixed_s, self.decode_per_seq_s, self.decode_per_kv_token_s)


def _attention(a: ops.Attention, model: ModelSpec, c: Composer,
               mla_dtype: str) -> AttentionTerms:
    """One attention kind's terms from its fits (module docstring: windows, linear)."""
    t, record = c.t, c.record
    if a.kind == "linear":
        record.fallbacks["linear_attention"] = "no linear-attention table: roofline"
        return _linear_attention(a, model, c)
    kv_key = "bf16" if c.layout.kv_cache_dtype in ("bf16", "fp16") else c.layout.kv_cache_dtype
    families = (t.mla_context, t.mla_generation) if a.kind == "mla" \
        else (t.context_attention, t.generation_attention)
    head_dim = None if a.kind == "mla" else a.head_dim
    fits = []
    for name, family in zip(("prefill", "decode"), families, strict=True):
        key = _first(family, (kv_key, *_BF16, "fp8"))
        scaled = None if key is None else lookup.pick_fit(
            family[key], a.heads, a.kv_heads, head_dim, a.window, mla_dtype)
        label = f"{a.kind}{'_window' if a.window else ''}_{name}"
        if scaled is None:
            record.fallbacks[label] = "no attention fit: roofline"
        else:
            record.note(label, scaled.status)
            if key != kv_key:
                record.status[label + ".kv_dtype"] = f"{key} fits stand in for {kv_key}"
            record.errors.append((label, scaled.fit.fit_error_pct))
        fits.append(scaled)
    prefill, decode = fits
    n, share, ms = a.count, a.share, 1e-3
    window = a.window
    out = AttentionTerms()
    if prefill is None:
        out += _prefill_roofline(a, c)
    else:
        f = prefill.fit
        per_pair = n * f.ms_per_pair * prefill.compute * share * ms
        out += AttentionTerms(prefill_fixed_s=n * f.fixed_ms * ms,
                         prefill_per_token_s=n * f.ms_per_token * prefill.compute * share * ms
                         + (per_pair * window if window else 0.0),
                         prefill_per_pair_s=0.0 if window else per_pair)
    if decode is None:
        out += _decode_roofline(a, model, c)
    else:
        f = decode.fit
        per_kv = n * f.ms_per_kv_token * decode.memory * share * ms
        out += AttentionTerms(decode_fixed_s=n * f.fixed_ms * ms,
                         decode_per_seq_s=n * f.ms_per_seq * decode.compute * share * ms
                         + (per_kv * window if window else 0.0),
                         decode_per_kv_token_s=0.0 if window else per_kv)
    return out


def _prefill_roofline(a: ops.Attention, c: Composer) -> AttentionTerms:
    per_pair = a.count * 4.0 * a.heads * a.head_dim * a.share / (c.gpu.bf16_tflops * 1e12)
    if a.window:
        return AttentionTerms(prefill_per_token_s=per_pair * a.window)
    return AttentionTerms(prefill_per_pair_s=per_pair)


def _decode_roofline(a: ops.Attention, model: ModelSpec, c: Composer) -> AttentionTerms:
    kv_bytes = _WEIGHT_BYTES[c.layout.kv_cache_dtype]
    per_token = 2.0 * a.kv_heads * a.head_dim * kv_bytes if a.kind == "gqa" \
        else a.head_dim * kv_bytes
    per_kv = a.count * per_token * a.share / c.bytes_per_s
    if a.window:
        return AttentionTerms(decode_per_seq_s=per_kv * a.window)
    return AttentionTerms(decode_per_kv_token_s=per_kv)


def _linear_attention(a: ops.Attention, model: ModelSpec, c: Composer) -> AttentionTerms:
    """Gated delta rule: ~6 FLOPs per key × value state element per head and token in
    prefill (state update, output, chunk-local attention); decode reads and writes each
    sequence's state once."""
    assert model.linear_value_head_dim is not None and model.linear_state_bytes is not None
    state = a.heads * a.head_dim * model.linear_value_head_dim
    per_token = a.count * 6.0 * state * a.share / (c.gpu.bf16_tflops * 1e12)
    state_bytes = model.linear_state_bytes / c.layout.tensor_parallel
    per_seq = a.count * 2.0 * state_bytes * a.share / c.bytes_per_s
    return AttentionTerms(prefill_per_token_s=per_token, decode_per_seq_s=per_seq)


@dataclass(frozen=True)
class Composition:
    """The composed step, by component: linear parts as tables over tokens in the step (x)
    and the lm_head over logits, whole model, seconds; attention terms; what was done."""

    x: np.ndarray
    linear: dict[str, np.ndarray]  # gemm | moe | all_reduce | all_to_all | elementwise
    lm_head: np.ndarray
    attention: AttentionTerms
    overhead_s: float
    record: Record
    formats: Formats

    def terms(self) -> StepTerms:
        total = np.maximum.accumulate(sum(self.linear.values(), np.zeros_like(self.x)))
        a = self.attention
        x = [0.0, *self.x.tolist()]
        return StepTerms(
            linear=((Table(x=x, y=[0.0, *total.tolist()]), 1.0),),
            lm_head_s=Table(x=x, y=[0.0, *np.maximum.accumulate(self.lm_head).tolist()]),
            overhead_s=self.overhead_s,
            prefill_fixed_s=a.prefill_fixed_s, prefill_per_token_s=a.prefill_per_token_s,
            prefill_per_pair_s=a.prefill_per_pair_s, decode_fixed_s=a.decode_fixed_s,
            decode_per_seq_s=a.decode_per_seq_s,
            decode_per_kv_token_s=a.decode_per_kv_token_s)


def mla_module_has_projections(t: OperatorTables) -> bool:
    """Whether the MLA tables time the whole attention block (AIConfigurator's module
    tables do: down, q_b, kv_b and o projections with the kernel) — unless the tables'
    provenance says they hold the kernel alone (`mla_module_includes` without
    "projections")."""
    includes = t.provenance.get("mla_module_includes")
    return includes is None or "projections" in str(includes)


def same_gpu(t: OperatorTables) -> Relatives:
    """The shipped tables of `t`'s GPU in another engine (expert tables by proxy)."""
    return lambda engine: operators.tables(t.gpu, engine)


def compose(t: OperatorTables, model: ModelSpec, gpu: GpuSpec, layout: Layout,
            max_step_tokens: int, relatives: Relatives | None = None) -> Composition:
    record = Record()
    c = Composer(t, model, gpu, layout, record, relatives or same_gpu(t))
    step = ops.plan(model, layout, mla_module_has_projections(t))
    grid_m = sorted({m for grid in t.gemm.values() for m in grid.m})
    x = knots(max_step_tokens, grid_m)
    linear: dict[str, np.ndarray] = {}

    def add(name: str, values: np.ndarray) -> None:
        linear[name] = linear.get(name, np.zeros_like(x)) + values

    for g in step.gemms:
        add("gemm", c.gemm_s(g, x))
    for e in step.experts:
        add("moe", c.experts_s(e, x))
    for col in step.collectives:
        add(col.kind, c.collective_s(col, x))
    for op in step.memory_ops:
        add("elementwise", c.memory_s(op.bytes_per_token, x * op.token_share, op.count))
    add("elementwise", c.memory_s(model.hidden * ops.BF16_BYTES, x, 1))  # embedding rows
    lm_head = c.gemm_s(step.lm_head, x) + c.memory_s(step.logits_bytes_per_seq,
                                                      x * step.lm_head.token_share, 1)
    # MLA module tables time the projections too: at the dtype the checkpoint keeps them in.
    mla_keys = _BF16 if "attention" in model.unquantised else c.formats.gemm
    mla_dtype = (_first(t.gemm, mla_keys) or "") if model.kv_lora_rank else ""
    attention = AttentionTerms()
    for a in step.attention:
        attention += _attention(a, model, c, mla_dtype)
    return Composition(x, linear, lm_head, attention, HOST_OVERHEAD_S[layout.engine], record,
                       c.formats)


def composed_error_pct(comp: Composition, probe: Callable[[], dict[str, float]]) -> float | None:
    """The composed step's error against the tables: the median, weighted by each
    component's share of a reference step (`probe`), of its operators' leave-one-out
    (GEMM, MoE, collective curves) or fit (attention) errors."""
    shares = probe()
    weights, errors = [], []
    for name, error in comp.record.errors:
        component = _component(name)
        count = sum(1 for n, _ in comp.record.errors if _component(n) == component)
        weights.append(shares.get(component, 0.0) / count)
        errors.append(error)
    if not errors or sum(weights) <= 0:
        return None
    order = np.argsort(errors)
    cumulative = np.cumsum(np.asarray(weights)[order])
    return float(np.asarray(errors)[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def _component(operator: str) -> str:
    if operator in ("moe", "all_reduce", "all_to_all"):
        return operator
    if "_prefill" in operator or "_decode" in operator:
        return "attention"
    return "gemm"


REFERENCE_BATCH = 64  # the reference step the error is weighted on: a decode of 64
REFERENCE_CONTEXT_TOKENS = 2048  # sequences with 2,048 tokens of context each


def build(t: OperatorTables, model: ModelSpec, gpu: GpuSpec, layout: Layout,
          max_step_tokens: int) -> TableStep:
    """The composed step model, with its provenance."""
    comp = compose(t, model, gpu, layout, max_step_tokens)
    batch = min(REFERENCE_BATCH, max_step_tokens)

    def shares() -> dict[str, float]:
        at = {name: float(np.interp(batch, comp.x, values))
              for name, values in comp.linear.items()}
        a = comp.attention
        at["attention"] = (a.decode_fixed_s + a.decode_per_seq_s * batch
                           + a.decode_per_kv_token_s * batch * REFERENCE_CONTEXT_TOKENS)
        at["gemm"] = at.get("gemm", 0.0) + float(np.interp(batch, comp.x, comp.lm_head))
        return at

    error = composed_error_pct(comp, shares)
    details = {
        "tables": f"calibration/operators/{t.gpu}_{t.engine}.json.gz",
        "aic_system": t.aic_system, "engine": t.engine,
        "table_provenance": dict(t.provenance), "table_fit_error": dict(t.fit_error),
        "model": model.name, "gpu": gpu.name, "tensor_parallel": layout.tensor_parallel,
        "data_parallel_attention": layout.data_parallel_attention,
        "expert_parallel": layout.expert_parallel, "dtype": layout.dtype,
        "kv_cache_dtype": layout.kv_cache_dtype, "formats": comp.formats.note,
        "not_measured_points": dict(comp.record.status),
        "fallbacks": dict(comp.record.fallbacks),
        "overhead": OVERHEAD_SOURCE,
        "error": "weighted median of the operators' leave-one-out / fit errors over a "
                 f"decode step of {batch} sequences × {REFERENCE_CONTEXT_TOKENS} tokens",
        "assumptions": "attention data-parallel ranks balanced; sliding-window layers "
                       "charged the whole window per sequence",
        "breakdown_decode_batch1_s": breakdown(comp, 1, 0),
    }
    name = f"operators:{t.gpu}_{t.engine}"
    return TableStep(comp.terms(), Provenance(name, "measured-operators", error, details),
                     max_step_tokens)


def breakdown(comp: Composition, batch: int, kv_tokens: int) -> dict[str, float]:
    """A pure-decode step's seconds by component (for provenance and the sanity checks)."""
    out = {name: float(np.interp(batch, comp.x, v)) for name, v in comp.linear.items()}
    out["lm_head"] = float(np.interp(batch, comp.x, comp.lm_head))
    a = comp.attention
    out["attention"] = (a.decode_fixed_s + a.decode_per_seq_s * batch
                        + a.decode_per_kv_token_s * kv_tokens)
    out["overhead"] = comp.overhead_s
    return {k: round(v, 9) for k, v in out.items() if v}

