"""The scenario schema: every key of a scenario file as a frozen, validated model.

Every key is checked once, here, at the edge; the layers below trust what they are given.
Unknown keys are errors, so a typo never silently falls back to a default. A problem is
reported as an `InputError` naming the key path, the value and what is accepted, e.g.
``workload.arrival.rate_per_s: -3 — expected a number > 0``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from sim.engine.router import ROUTERS
from sim.engine.scheduler import POLICIES
from sim.hardware import catalog
from sim.hardware.catalog import GpuSpec, ModelSpec
from sim.hardware.memory import DTYPE_BYTES
from sim.scenario.base import NonNeg, Pos, PosInt, Strict, known_name, tag_values
from sim.scenario.dynamics import Autoscaling, Failures, Outage, Spot
from sim.scenario.planning import PlanSpec, StressSpec
from sim.scenario.uncertain import UncertainSpec
from sim.scenario.workload import ARRIVAL_PROCESSES, LENGTH_DISTS, WorkloadSpec

# `profile:` names that are not a profile of the library (checked when the model is chosen)
PROFILE_NAMES = ("auto", "roofline")


# ---- profiles ------------------------------------------------------------------------------


class ConstantProfile(Strict):
    kind: Literal["constant"]
    step_s: Pos


class LinearProfile(Strict):
    """step_s = base_s + per_prefill_token_s·prefill tokens + per_decode_seq_s·decode seqs
    + per_kv_token_s·KV tokens read by decode attention."""

    kind: Literal["linear"]
    base_s: NonNeg
    per_prefill_token_s: NonNeg = 0.0
    per_decode_seq_s: NonNeg = 0.0
    per_kv_token_s: NonNeg = 0.0


class RooflineProfile(Strict):
    """Bytes over bandwidth and FLOPs over peak, each scaled by an achievable fraction."""

    kind: Literal["roofline"]
    compute_efficiency: Annotated[float, Field(gt=0, le=1)] = 0.6
    bandwidth_efficiency: Annotated[float, Field(gt=0, le=1)] = 0.8
    interconnect_efficiency: Annotated[float, Field(gt=0, le=1)] = 0.7
    overhead_s: NonNeg = 0.003  # per-step scheduling, launch and sampling cost
    layer_overhead_s: NonNeg = 0.0  # per decoder layer: launches and small ops of its GEMMs
    allreduce_latency_s: NonNeg = 1.0e-5  # fixed cost of one all-reduce (tensor parallel)


ProfileSpec = Annotated[
    ConstantProfile | LinearProfile | RooflineProfile, Field(discriminator="kind")
]


# ---- deployment, SLO, cost -----------------------------------------------------------------


class Scheduler(Strict):
    policy: str = "chunked-prefill"  # a key of sim.engine.scheduler.POLICIES
    max_num_seqs: PosInt = 256
    max_batched_tokens: PosInt = 8192

    @field_validator("policy")
    @classmethod
    def _known_policy(cls, value: str) -> str:
        return known_name(value, POLICIES)


class Deployment(Strict):
    replicas: PosInt = 1
    tensor_parallel: Annotated[int, Field(ge=1, le=64)] = 1
    scheduler: Scheduler = Scheduler()
    router: str = "least-loaded"  # a key of sim.engine.router.ROUTERS
    gpu_memory_utilization: Annotated[float, Field(gt=0, le=1)] = 0.9
    dtype: str = "bf16"  # a key of sim.hardware.memory.DTYPE_BYTES (weights and KV cache)
    activation_reserve_gib: NonNeg = 1.0  # per GPU, kept free for activations
    failures: Failures | None = None
    spot: Spot | None = None
    outage: Outage | None = None
    autoscaling: Autoscaling | None = None

    @field_validator("router")
    @classmethod
    def _known_router(cls, value: str) -> str:
        return known_name(value, ROUTERS)

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, value: str) -> str:
        return known_name(value, DTYPE_BYTES)

    @model_validator(mode="after")
    def _fleet_bounds(self) -> Deployment:
        scaling = self.autoscaling
        if scaling is not None and not (scaling.min_replicas <= self.replicas
                                        <= scaling.max_replicas):
            raise PydanticCustomError("order", "outside the autoscaling range", {
                "field": "replicas", "expected": f"the starting fleet, within autoscaling's "
                f"min_replicas–max_replicas ({scaling.min_replicas}–{scaling.max_replicas})"})
        if self.outage is not None and self.outage.replicas > self.replicas:
            raise PydanticCustomError("order", "more down than exist", {
                "field": "outage", "expected": f"at most replicas ({self.replicas}) down"})
        return self

    @property
    def dynamic(self) -> bool:
        """Whether the serving fleet can change during a run."""
        return any(x is not None for x in (self.failures, self.spot, self.outage,
                                           self.autoscaling))


class Slo(Strict):
    ttft_s: Pos
    tpot_s: Pos
    percentile: Annotated[float, Field(gt=0, le=100)] = 99.0


class Tco(Strict):
    """Owning the GPUs: capital spread over the years they serve, plus running costs.
    Formulas in `sim.metrics.cost`."""

    capex_per_gpu_usd: NonNeg  # purchase price of one GPU
    server_network_share_usd: NonNeg = 0.0  # one GPU's share of server, network, install
    amortization_years: Pos
    power_busy_w: NonNeg  # one GPU's draw while its replica runs steps
    power_idle_w: NonNeg  # ... and while it waits for work
    pue: Annotated[float, Field(ge=1, allow_inf_nan=False)]  # facility watts per IT watt
    usd_per_kwh: NonNeg
    hosting_usd_per_gpu_year: NonNeg = 0.0  # rack space, colocation, staff
    maintenance_fraction_per_year: NonNeg = 0.0  # of capex, per year (support, spares)

    @model_validator(mode="after")
    def _idle_below_busy(self) -> Tco:
        if self.power_idle_w > self.power_busy_w:
            raise PydanticCustomError("order", "idle power above busy power", {
                "field": "power_idle_w",
                "expected": f"a number ≤ power_busy_w ({self.power_busy_w:g})"})
        return self


class Cost(Strict):
    """Exactly one way to pay: `gpu_hour_usd`, named rental `prices` with the chosen `price`,
    or owned hardware (`tco`)."""

    gpu_hour_usd: NonNeg | None = None
    prices: dict[str, NonNeg] | None = None  # e.g. {on_demand: 3.9, reserved: 2.35}
    price: str | None = None  # which of `prices` this scenario pays
    tco: Tco | None = None

    @model_validator(mode="after")
    def _one_model(self) -> Cost:
        given = [k for k in ("gpu_hour_usd", "prices", "tco") if getattr(self, k) is not None]
        if len(given) != 1:
            raise PydanticCustomError("order", "one cost model", {
                "field": given[1] if len(given) > 1 else "gpu_hour_usd",
                "expected": "exactly one of gpu_hour_usd, prices (with price), or tco"})
        if self.prices is not None and self.price not in self.prices:
            raise PydanticCustomError("order", "price not among prices", {
                "field": "price", "expected": "one of " + ", ".join(self.prices)})
        if self.price is not None and self.prices is None:
            raise PydanticCustomError("order", "price without prices", {
                "field": "prices", "expected": "a mapping of named $/GPU-hour prices"})
        return self

    @property
    def rental_gpu_hour_usd(self) -> float | None:
        """The rental price of one GPU-hour, or None when the GPUs are owned."""
        if self.prices is not None:
            assert self.price is not None  # _one_model: with prices, price is one of them
            return self.prices[self.price]
        return self.gpu_hour_usd


# ---- Monte Carlo: the sweep and its uncertain inputs (read by `tokenfactory sweep`) --------


class Sweep(Strict):
    """The points a sweep runs (a utilisation list or a grid over key paths), and how often.
    `tokenfactory run` ignores this block; `sim.montecarlo` validates the key paths."""

    utilization: Annotated[list[Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]],
                           Field(min_length=1)] | None = None
    grid: Annotated[dict[str, Annotated[list[Any], Field(min_length=1)]],
                    Field(min_length=1)] | None = None
    replications: PosInt = 10
    sampling: Literal["lhs", "mc"] = "lhs"  # Latin hypercube or plain Monte Carlo
    slo_confidence: Annotated[float, Field(gt=0, le=1)] = 0.95  # P(SLO met) for "feasible"

    @model_validator(mode="after")
    def _one_axis(self) -> Sweep:
        if (self.utilization is None) == (self.grid is None):
            raise PydanticCustomError("order", "one axis", {
                "field": "utilization",
                "expected": "exactly one of utilization: [fractions] "
                            "or grid: {key.path: [values]}"})
        return self


class Scenario(Strict):
    name: str = "scenario"
    seed: Annotated[int, Field(ge=0)] | None = None  # None: drawn at run time and recorded
    duration_s: Pos
    warmup_s: NonNeg = 0.0
    drain_s: NonNeg | None = None  # None: run until every request has finished
    model: ModelSpec
    gpu: GpuSpec
    profile: str | ProfileSpec = "auto"
    deployment: Deployment = Deployment()
    workload: WorkloadSpec
    slo: Slo
    cost: Cost
    step_time_scale: Pos = 1.0  # multiplies every step time: the step-time model's own error
    sweep: Sweep | None = None
    uncertainty: dict[str, UncertainSpec] | None = None  # key path → distribution
    plan: PlanSpec | None = None  # read by `tokenfactory plan` (sim.planning)
    stress: StressSpec | None = None  # read by `tokenfactory stress`

    @field_validator("model", mode="before")
    @classmethod
    def _model_by_name(cls, value: Any) -> Any:
        return _by_name(value, catalog.models())

    @field_validator("gpu", mode="before")
    @classmethod
    def _gpu_by_name(cls, value: Any) -> Any:
        return _by_name(value, catalog.gpus())

    @model_validator(mode="after")
    def _windows(self) -> Scenario:
        if self.warmup_s >= self.duration_s:
            raise PydanticCustomError(
                "order", "warmup_s must be < duration_s",
                {"field": "warmup_s", "expected": f"a number < duration_s ({self.duration_s:g})"},
            )
        return self

    @property
    def gpus_per_replica(self) -> int:
        return self.deployment.tensor_parallel

    @property
    def gpu_count(self) -> int:
        return self.deployment.replicas * self.deployment.tensor_parallel


def _by_name(value: Any, known: Mapping[str, BaseModel]) -> Any:
    if isinstance(value, str):
        if value not in known:
            raise PydanticCustomError(
                "unknown_name", "unknown name", {"accepted": ", ".join(sorted(known))}
            )
        return known[value]
    return value


# The values each tagged union's key accepts, for error messages.
DISCRIMINATOR_VALUES = {
    "dist": LENGTH_DISTS,
    "process": ARRIVAL_PROCESSES,
    "kind": tag_values(ProfileSpec, "kind"),
}
