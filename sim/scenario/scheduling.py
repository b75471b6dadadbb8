"""`deployment.scheduler`: how a replica batches (the engine's policy and limits).

Its own module so that both the deployment (`sim.scenario.schema`) and its disaggregated
pools (`sim.scenario.disaggregation`) can hold one without importing each other.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from sim.engine.scheduler import ADMISSIONS, POLICIES
from sim.scenario.base import MAX_BATCHED_TOKENS, MAX_NUM_SEQS, Strict, known_name


class Scheduler(Strict):
    """How a replica batches. A key left out (or null) takes `deployment.engine`'s preset
    (`sim.engine.scheduler.ENGINE_PRESETS`), filled in by `Scenario`, which knows the GPU;
    the defaults here are vLLM's preset, for a Scheduler validated on its own."""

    policy: str = "chunked-prefill"  # a key of sim.engine.scheduler.POLICIES
    # The engine tables each batch size's fixed cost: a bound on the table, far above
    # what an engine runs (vLLM's default is 256 sequences, 8192 tokens).
    max_num_seqs: Annotated[int, Field(gt=0, le=MAX_NUM_SEQS)] = 256
    max_batched_tokens: Annotated[int, Field(gt=0, le=MAX_BATCHED_TOKENS)] = 8192
    admission: str = "prompt"  # a key of sim.engine.scheduler.ADMISSIONS
    # reserve-ratio: the share of the outputs still to come kept free (SGLang new_token_ratio)
    reserve_ratio: Annotated[float, Field(ge=0, le=1)] = 0.0
    chunked_prefill: bool = True  # False: a prompt is prefilled whole, in one step

    @field_validator("policy")
    @classmethod
    def _known_policy(cls, value: str) -> str:
        return known_name(value, POLICIES)

    @field_validator("admission")
    @classmethod
    def _known_admission(cls, value: str) -> str:
        return known_name(value, ADMISSIONS)
