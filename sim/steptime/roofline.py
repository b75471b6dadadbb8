"""The roofline step model: bytes over bandwidth and FLOPs over peak, for any GPU and model.

Used for GPUs known only by their spec sheet (plain efficiencies) and, with efficiencies
fitted on measurements of a GPU or a measured relative (`sim.steptime.fitted`), for GPUs
and engines no operator tables cover. It splits work over `tensor_parallel` GPUs only:
attention data parallelism and expert parallelism are the composed model's business.
"""

from __future__ import annotations

from sim.engine.seams import StepSplit
from sim.hardware.catalog import GpuSpec, ModelSpec
from sim.hardware.layout import Layout
from sim.hardware.memory import DTYPE_BYTES, UNQUANTISED_BYTES, weight_split
from sim.provenance import Provenance
from sim.scenario.profiles import RooflineProfile

PCIE_GEN4_GB_S = 64.0  # bidirectional x16, for GPUs the catalogue gives no interconnect for


def peak_format(gpu: GpuSpec, dtype: str) -> str:
    """The tensor-core format a weight format's GEMMs run at (as `GpuSpec.peak_tflops`), whose
    fitted efficiency applies: fp4 weights on a GPU without FP4 tensor cores run as fp8."""
    if dtype == "fp4" and gpu.fp4_tflops:
        return "fp4"
    if dtype in ("fp8", "fp4") and gpu.fp8_tflops:
        return "fp8"
    return "bf16"


class RooflineStep:
    """Time from bytes moved and FLOPs done, for any GPU and model in the catalogue.

    Per step of T tokens on a replica of tp GPUs:
      linear layers  max(weight bytes read / (tp·BW·η_bw), 2·active params·T / (tp·peak·η_c))
                     (peak, η_c, η_bw and the per-layer overhead of the format the
                     weights' GEMMs run at: `peak_format`; KV reads use the 16-bit η_bw)
      prefill attn   4·layers·heads·head_dim·pairs / (tp·peak·η_c)
      decode attn    kv_bytes_per_token·KV tokens / (tp·BW·η_bw)
      all-reduce     2 per layer of T·hidden·2 bytes, ring over the interconnect (tp > 1);
                     1 when attention and the MLP run side by side (GPT-J, Falcon)
      overhead       a fixed per-step cost (scheduling, sampling) plus one per layer (launches)
    MoE layers read only the experts the step's tokens touch: 1 − (1 − k/E)^T of them.
    Blocks the checkpoint keeps 16-bit are read at 2 bytes a weight (their FLOPs still run
    at the format's peak: a small share of any shipped model's).
    """

    def __init__(self, spec: RooflineProfile, m: ModelSpec, gpu: GpuSpec, layout: Layout,
                 provenance: Provenance | None = None) -> None:
        # Optional only as inputs: ModelSpec's validator derives them when omitted.
        assert m.params is not None and m.active_params is not None and m.head_dim is not None
        tp, dtype = layout.tensor_parallel, layout.dtype
        bytes_per_param = DTYPE_BYTES[dtype]
        tflops = gpu.peak_tflops(dtype)
        eta_c, eta_bw, layer_overhead_s = spec.gemm_factors(peak_format(gpu, dtype))
        self.flops_per_s = tp * tflops * 1e12 * eta_c
        bandwidth = tp * gpu.memory_bandwidth_tb_s * 1e12
        self.bytes_per_s = bandwidth * eta_bw  # weights, read by the GEMMs
        self.overhead_s = spec.overhead_s + m.layers * layer_overhead_s

        lm_head = m.vocab * m.hidden
        embedding = 0 if m.tied_embeddings else lm_head  # a lookup: only T rows are read
        self.expert_fraction_per_token = m.experts_per_token / m.experts
        self.is_moe = m.is_moe
        # Routed experts of the MoE layers only: dense leading layers and shared experts are
        # read whole every step, like attention.
        all_experts = m.routed_expert_params if m.is_moe else 0
        split = weight_split(m)
        widen = UNQUANTISED_BYTES - bytes_per_param  # per weight of a block kept 16-bit
        self.dense_bytes = ((m.params - embedding - all_experts) * bytes_per_param
                            + split.dense_16bit * widen)
        self.expert_bytes = all_experts * bytes_per_param + split.routed_16bit * widen
        self.flops_per_token = 2.0 * (m.active_params - embedding - lm_head)
        self.flops_per_logit = 2.0 * lm_head
        self.attn_flops_per_pair = 4.0 * m.layers * m.heads * m.head_dim
        kv_bytes = DTYPE_BYTES[layout.kv_cache_dtype]
        self.per_kv_token_s = m.kv_bytes_per_token(kv_bytes) / (
            bandwidth * spec.bandwidth_efficiency)

        if tp > 1:
            # Catalogue figures are bidirectional; a ring all-reduce sends one way per link.
            one_way_gb_s = (gpu.interconnect_gb_s or PCIE_GEN4_GB_S) / 2
            link_bytes_per_s = one_way_gb_s * 1e9 * spec.interconnect_efficiency
            ring = 2.0 * (tp - 1) / tp
            reductions = m.residuals_per_layer * m.layers
            self.allreduce_per_token_s = reductions * ring * m.hidden * 2.0 / link_bytes_per_s
            self.allreduce_fixed_s = reductions * spec.allreduce_latency_s
        else:
            self.allreduce_per_token_s = self.allreduce_fixed_s = 0.0
        self.provenance = provenance or Provenance(
            "roofline", "roofline", None,
            {"gpu": gpu.name, "model": m.name, "tensor_parallel": tp, "dtype": dtype,
             **spec.model_dump(exclude={"kind"})},
        )

    def _linear_s(self, tokens: int, logits: int) -> float:
        weight_bytes = self.dense_bytes
        if self.is_moe:
            touched = 1.0 - (1.0 - self.expert_fraction_per_token) ** tokens
            weight_bytes += self.expert_bytes * touched
        memory_s = weight_bytes / self.bytes_per_s
        flops = self.flops_per_token * tokens + self.flops_per_logit * logits
        compute_s = flops / self.flops_per_s
        comm_s = self.allreduce_fixed_s + self.allreduce_per_token_s * tokens
        return max(memory_s, compute_s) + comm_s

    def decode_fixed_s(self, batch: int) -> float:
        return self.overhead_s + self._linear_s(batch, batch)

    def step_s(self, prefill_tokens: int, prefill_attn_pairs: float, decode_seqs: int,
               decode_kv_tokens: int) -> StepSplit:
        tokens = prefill_tokens + decode_seqs
        logits = decode_seqs + (1 if prefill_tokens else 0)
        shared_s = self.overhead_s + self._linear_s(tokens, logits)
        share = prefill_tokens / tokens
        attn_s = self.attn_flops_per_pair * prefill_attn_pairs / self.flops_per_s
        prefill_s = shared_s * share + attn_s
        decode_s = shared_s * (1.0 - share) + self.per_kv_token_s * decode_kv_tokens
        return prefill_s, decode_s
