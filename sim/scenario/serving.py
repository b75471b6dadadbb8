"""What a replica's engine does beyond batching: `deployment.prefix_cache` (reusing the KV
of shared prompt prefixes, `sim.engine.prefix`) and `deployment.speculative` (drafting
tokens a step, `sim.steptime.speculative`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from sim.engine.scheduler import ENGINE_PRESETS
from sim.hardware import catalog
from sim.hardware.catalog import ModelSpec
from sim.scenario.base import Strict, by_name, known_name

MAX_PREFIX_BLOCK_TOKENS = 4096  # engines' KV blocks are 1–256 tokens
MAX_OFFLOAD_GIB = 65536.0  # a host's DRAM, and then some
MAX_OFFLOAD_GB_S = 10000.0


class PrefixCache(Strict):
    """`deployment.prefix_cache`: keep the KV of prompt prefixes the workload shares
    (`sim.engine.prefix`). The serving engines turn theirs on by default; here it is asked
    for, so that a run prefills what its workload says unless the scenario claims reuse."""

    enabled: bool = True
    # Reuse granularity: a hit is whole blocks of this many tokens; None: the engine's
    # (vLLM 16, SGLang 1, TensorRT-LLM 32: `sim.engine.scheduler.ENGINE_PRESETS`).
    block_tokens: Annotated[int, Field(ge=1, le=MAX_PREFIX_BLOCK_TOKENS)] | None = None
    # Host memory per replica that keeps prefixes evicted from the GPU (0: none), and the
    # host-to-GPU copy speed a hit on one pays, per GPU: 50 GB/s, about what a PCIe Gen5 x16
    # link (64 GB/s a direction) moves in practice; a Grace-coupled GPU's NVLink-C2C is far
    # faster.
    cpu_offload_gib: Annotated[float, Field(ge=0, le=MAX_OFFLOAD_GIB)] = 0.0
    cpu_offload_gb_s: Annotated[float, Field(gt=0, le=MAX_OFFLOAD_GB_S)] = 50.0

    def block_for(self, engine: str) -> int:
        """The granularity in tokens for this engine; 0 when the cache is off."""
        if not self.enabled:
            return 0
        return self.block_tokens or ENGINE_PRESETS[engine].prefix_block_tokens


SPECULATIVE_METHODS = ("mtp", "draft", "eagle")  # `deployment.speculative.method`
MAX_DRAFT_TOKENS = 16  # draft tokens a step: far above what engines run (1–8)


class Speculative(Strict):
    """`deployment.speculative`: a draft proposes `num_tokens` tokens a sequence each decode
    step and the target verifies them in one forward (`sim.steptime.speculative`). mtp and
    eagle draft with one extra decoder layer; draft with `draft_model`, a catalogue model.
    `acceptance_rate`: the chance a draft token is accepted given those before it were, one
    for every position or a list of `num_tokens`, one per position."""

    method: str
    num_tokens: Annotated[int, Field(ge=1, le=MAX_DRAFT_TOKENS)]
    acceptance_rate: float | list[float]
    draft_model: ModelSpec | None = None  # method draft only (and required there)

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        return known_name(value, SPECULATIVE_METHODS)

    @field_validator("acceptance_rate")
    @classmethod
    def _rates(cls, value: float | list[float]) -> float | list[float]:
        rates = value if isinstance(value, list) else [value]
        if not rates or not all(0.0 < rate <= 1.0 for rate in rates):  # NaN fails too
            raise PydanticCustomError("acceptance_rate", "a number in (0, 1], or a list of "
                                      "num_tokens such numbers, one per draft position")
        return value

    @field_validator("draft_model", mode="before")
    @classmethod
    def _draft_by_name(cls, value: Any) -> Any:
        return by_name(value, catalog.models())

    @model_validator(mode="after")
    def _consistent(self) -> Speculative:
        rates = self.acceptance_rate
        if isinstance(rates, list) and len(rates) != self.num_tokens:
            raise PydanticCustomError("order", "one rate per draft token", {
                "field": "acceptance_rate", "expected": f"a number in (0, 1], or a list of "
                f"num_tokens ({self.num_tokens}) such numbers, one per draft position"})
        if self.method == "draft" and self.draft_model is None:
            raise PydanticCustomError("order", "no draft model", {
                "field": "draft_model", "expected": "a catalogue model name: method draft "
                "drafts with a separate model"})
        if self.method != "draft" and self.draft_model is not None:
            raise PydanticCustomError("order", "a draft model for a one-layer method", {
                "field": "draft_model", "expected": f"no draft_model with method "
                f"{self.method} (it drafts with one extra decoder layer); method draft to "
                "draft with a separate model"})
        return self
