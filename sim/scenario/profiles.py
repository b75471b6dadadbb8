"""The `profile:` block of a scenario: which step-time model runs, or an inline one.

A name (`auto`, `operators`, `fitted-roofline`, `roofline`, a shipped or file profile) is
resolved by `sim.steptime.select`; an inline mapping is one of the kinds here.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from sim.scenario.base import NonNegSeconds, Seconds, Strict

# `profile:` names that are not a profile of the library (checked when the model is chosen)
PROFILE_NAMES = ("auto", "operators", "fitted-roofline", "roofline")


class ConstantProfile(Strict):
    kind: Literal["constant"]
    step_s: Seconds


class LinearProfile(Strict):
    """step_s = base_s + per_prefill_token_s·prefill tokens + per_decode_seq_s·decode seqs
    + per_kv_token_s·KV tokens read by decode attention."""

    kind: Literal["linear"]
    base_s: NonNegSeconds
    per_prefill_token_s: NonNegSeconds = 0.0
    per_decode_seq_s: NonNegSeconds = 0.0
    per_kv_token_s: NonNegSeconds = 0.0


class RooflineProfile(Strict):
    """Bytes over bandwidth and FLOPs over peak, each scaled by an achievable fraction."""

    kind: Literal["roofline"]
    compute_efficiency: Annotated[float, Field(gt=0, le=1)] = 0.6
    # FP8 and FP4 GEMMs reach a smaller share of their (2×, 4×) peaks than 16-bit ones, and
    # of the bandwidth too, with a larger fixed cost (activation quantisation, scales): their
    # own factors, fitted per GPU on the fp8 / fp4 GEMM tables; None: the 16-bit one.
    compute_efficiency_fp8: Annotated[float, Field(gt=0, le=1)] | None = None
    bandwidth_efficiency_fp8: Annotated[float, Field(gt=0, le=1)] | None = None
    layer_overhead_s_fp8: NonNegSeconds | None = None
    compute_efficiency_fp4: Annotated[float, Field(gt=0, le=1)] | None = None
    bandwidth_efficiency_fp4: Annotated[float, Field(gt=0, le=1)] | None = None
    layer_overhead_s_fp4: NonNegSeconds | None = None
    bandwidth_efficiency: Annotated[float, Field(gt=0, le=1)] = 0.8
    interconnect_efficiency: Annotated[float, Field(gt=0, le=1)] = 0.7
    overhead_s: NonNegSeconds = 0.003  # per-step scheduling, launch and sampling cost
    layer_overhead_s: NonNegSeconds = 0.0  # per decoder layer: launches, small ops of its GEMMs
    allreduce_latency_s: NonNegSeconds = 1.0e-5  # fixed cost of one all-reduce (tensor parallel)

    def gemm_factors(self, peak: str) -> tuple[float, float, float]:
        """(compute efficiency, bandwidth efficiency, layer overhead s) of the linear layers
        whose GEMMs run at the `peak` tensor-core format (bf16 | fp8 | fp4)."""
        base = (self.compute_efficiency, self.bandwidth_efficiency, self.layer_overhead_s)
        own = {"fp8": (self.compute_efficiency_fp8, self.bandwidth_efficiency_fp8,
                       self.layer_overhead_s_fp8),
               "fp4": (self.compute_efficiency_fp4, self.bandwidth_efficiency_fp4,
                       self.layer_overhead_s_fp4)}.get(peak, base)
        eta_c, eta_bw, layer_s = (b if o is None else o for o, b in zip(own, base, strict=True))
        return eta_c, eta_bw, layer_s


ProfileSpec = Annotated[
    ConstantProfile | LinearProfile | RooflineProfile, Field(discriminator="kind")
]
