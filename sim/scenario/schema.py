"""The scenario schema: every key of a scenario file as a frozen, validated model.

Every key is checked once, here, at the edge; the layers below trust what they are given.
Unknown keys are errors, so a typo never silently falls back to a default. A problem is
reported as an `InputError` naming the key path, the value and what is accepted, e.g.
``workload.arrival.rate_per_s: -3 — expected a number > 0``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from sim.engine.router import ROUTERS
from sim.engine.scheduler import ENGINE_PRESETS
from sim.hardware import catalog
from sim.hardware.catalog import GpuSpec, ModelSpec
from sim.hardware.layout import (
    ENGINES,
    KV_CACHE_DTYPES,
    WEIGHT_DTYPES,
    Layout,
    resolve_kv_cache_dtype,
)
from sim.scenario import disaggregation, fleetpools
from sim.scenario.base import (
    MAX_DURATION_S,
    MAX_GRID_POINTS,
    MAX_REPLICATIONS,
    MAX_SEED,
    Multiplier,
    NonNeg,
    NonNegSeconds,
    Pos,
    Replicas,
    Seconds,
    Strict,
    by_name,
    known_name,
    tag_values,
)
from sim.scenario.disaggregation import Disaggregation, Pool, Pools
from sim.scenario.dynamics import Autoscaling, Failures, Outage, Spot
from sim.scenario.fleetpools import FleetPoolList
from sim.scenario.planning import PlanSpec, StressSpec
from sim.scenario.profiles import ProfileSpec
from sim.scenario.scheduling import Scheduler
from sim.scenario.serving import PrefixCache, Speculative
from sim.scenario.uncertain import UncertainSpec
from sim.scenario.workload import (
    ARRIVAL_PROCESSES,
    LENGTH_DISTS,
    EmpiricalCdfLengths,
    EmpiricalLengths,
    FixedLengths,
    LengthSpec,
    UniformLengths,
    WorkloadSpec,
)

MAX_TENSOR_PARALLEL = 64  # GPUs splitting one attention group
# GPUs in one replica (tensor_parallel × data_parallel_attention): a wide expert-parallel
# deployment spans racks (DeepSeek-V3's experts are served from hundreds of GPUs).
MAX_REPLICA_GPUS = 1024
AUTO_WARMUP_FRACTION = 0.1  # `warmup_s: auto` stands for this share of the run before it runs


# ---- deployment, SLO, cost -----------------------------------------------------------------


class Deployment(Strict):
    """One replica's layout (sim.hardware.layout), how it is served, and the fleet of them.
    Whether the model can be laid out so is checked by Scenario, which knows the model."""

    replicas: Replicas = 1
    tensor_parallel: Annotated[int, Field(ge=1, le=MAX_TENSOR_PARALLEL)] = 1
    # Attention groups holding different sequences, each over tensor_parallel GPUs.
    data_parallel_attention: Annotated[int, Field(ge=1, le=MAX_REPLICA_GPUS)] = 1
    # MoE: the routed experts spread over this many ranks of the replica's GPUs.
    expert_parallel: Annotated[int, Field(ge=1, le=MAX_REPLICA_GPUS)] = 1
    engine: str = "vllm"  # one of sim.hardware.layout.ENGINES
    scheduler: Scheduler = Scheduler()
    router: str = "least-loaded"  # a key of sim.engine.router.ROUTERS
    gpu_memory_utilization: Annotated[float, Field(gt=0, le=1)] = 0.9
    dtype: str = "bf16"  # the weights' format: one of sim.hardware.layout.WEIGHT_DTYPES
    # auto (the checkpoint's, else the weights' format: resolve_kv_cache_dtype) | KV_CACHE_DTYPES
    kv_cache_dtype: str = "auto"
    activation_reserve_gib: NonNeg = 1.0  # per GPU, kept free for activations
    prefix_cache: PrefixCache | None = None  # None: off (every prompt token is prefilled)
    speculative: Speculative | None = None  # None: one token a decode step
    failures: Failures | None = None
    spot: Spot | None = None
    outage: Outage | None = None
    autoscaling: Autoscaling | None = None
    # A prefill pool and a decode pool (`sim.scenario.disaggregation`); None: aggregated.
    disaggregation: Disaggregation | None = None
    # Named pools on their own GPUs (`sim.scenario.fleetpools`); None: one homogeneous
    # fleet. `pool_split` says which pool takes a request (`sim.engine.pools.SPLITS`).
    pools: FleetPoolList | None = None
    pool_split: str = "load"

    @field_validator("router")
    @classmethod
    def _known_router(cls, value: str) -> str:
        return known_name(value, ROUTERS)

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, value: str) -> str:
        return known_name(value, WEIGHT_DTYPES)

    @field_validator("kv_cache_dtype")
    @classmethod
    def _known_kv_cache_dtype(cls, value: str) -> str:
        return known_name(value, ("auto", *KV_CACHE_DTYPES))

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        return known_name(value, ENGINES)

    @field_validator("pool_split")
    @classmethod
    def _known_split(cls, value: str) -> str:
        return fleetpools.known_split(value)

    @model_validator(mode="after")
    def _pools_split(self) -> Deployment:
        found = fleetpools.split_problem(self)
        if found is not None:
            key, value, expected = found
            raise PydanticCustomError("order", "pools do not split", {
                "field": key, "value": value, "expected": expected})
        return self

    @model_validator(mode="after")
    def _fleet_bounds(self) -> Deployment:
        if self.tensor_parallel * self.data_parallel_attention > MAX_REPLICA_GPUS:
            raise PydanticCustomError("order", "too many GPUs per replica", {
                "field": "data_parallel_attention", "expected": f"at most "
                f"{MAX_REPLICA_GPUS // self.tensor_parallel} at tensor_parallel "
                f"{self.tensor_parallel}: a replica of at most {MAX_REPLICA_GPUS:,} GPUs"})
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

    @model_validator(mode="after")
    def _router_has_its_caches(self) -> Deployment:
        cache = self.prefix_cache
        if ROUTERS[self.router].needs_prefix_cache and (cache is None or not cache.enabled):
            raise PydanticCustomError("order", "no prefix cache to route by", {
                "field": "router", "expected": f"deployment.prefix_cache: {{enabled: true}} "
                f"beside it ({self.router!r} routes by what the replicas have cached), or "
                f"another router"})
        return self

    @property
    def dynamic(self) -> bool:
        """Whether the serving fleet can change during a run."""
        return any(x is not None for x in (self.failures, self.spot, self.outage,
                                           self.autoscaling))

    def layout_for(self, model_kv_cache_dtype: str | None) -> Layout:
        """One replica's parallelism, formats and engine, `kv_cache_dtype: auto` resolved
        for a model whose `ModelSpec.kv_cache_dtype` is `model_kv_cache_dtype`."""
        return Layout(tensor_parallel=self.tensor_parallel,
                      data_parallel_attention=self.data_parallel_attention,
                      expert_parallel=self.expert_parallel, dtype=self.dtype,
                      kv_cache_dtype=resolve_kv_cache_dtype(self.kv_cache_dtype, self.dtype,
                                                            model_kv_cache_dtype),
                      engine=self.engine)


class Slo(Strict):
    ttft_s: Seconds
    tpot_s: Seconds
    percentile: Annotated[float, Field(gt=0, le=100)] = 99.0
    # Inter-token latency: a request meets it when its longest gap between two consecutive
    # tokens is within it (`sim.metrics.latency`); None: no ITL target.
    itl_s: Seconds | None = None


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
    # One GPU's share of its host's draw (CPUs, memory, NICs, fans, power supplies): a DGX
    # H100 draws ~10.2 kW for 8 GPUs of 700 W, so ~575 W per GPU beside the GPU itself.
    host_power_busy_w: NonNeg = 0.0
    host_power_idle_w: NonNeg = 0.0
    # Annual rate the capital could earn elsewhere: capex is paid off as an annuity over
    # amortization_years (0: straight-line, as if money cost nothing).
    cost_of_capital: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.0
    # What moves the draw between idle and busy watts: the share of time steps run
    # (busy-time), or the share of full-load capacity the delivered tokens used (load).
    power_scaling: Literal["busy-time", "load"] = "busy-time"

    @model_validator(mode="after")
    def _idle_below_busy(self) -> Tco:
        for part in ("power", "host_power"):
            idle, busy = getattr(self, f"{part}_idle_w"), getattr(self, f"{part}_busy_w")
            if idle > busy:
                raise PydanticCustomError("order", "idle power above busy power", {
                    "field": f"{part}_idle_w",
                    "expected": f"a number ≤ {part}_busy_w ({busy:g})"})
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
                           Field(min_length=1, max_length=MAX_GRID_POINTS)] | None = None
    grid: Annotated[dict[str, Annotated[list[Any], Field(min_length=1)]],
                    Field(min_length=1)] | None = None
    replications: Annotated[int, Field(gt=0, le=MAX_REPLICATIONS)] = 10
    sampling: Literal["lhs", "mc"] = "lhs"  # Latin hypercube or plain Monte Carlo
    slo_confidence: Annotated[float, Field(gt=0, le=1)] = 0.95  # P(SLO met) for "feasible"

    @model_validator(mode="after")
    def _one_axis(self) -> Sweep:
        if (self.utilization is None) == (self.grid is None):
            raise PydanticCustomError("order", "one axis", {
                "field": "utilization",
                "expected": "exactly one of utilization: [fractions] "
                            "or grid: {key.path: [values]}"})
        points = 1
        for values in (self.grid or {}).values():
            points *= len(values)
            if points > MAX_GRID_POINTS:
                raise PydanticCustomError("order", "too many points", {
                    "field": "grid", "expected": f"a grid of at most {MAX_GRID_POINTS:,} "
                    f"points (the product of its lists' lengths; {_lengths(self.grid)})"})
        return self


class Scenario(Strict):
    name: str = "scenario"
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = None  # None: drawn and recorded
    duration_s: Seconds
    # Seconds, or `auto`: chosen after the run by a steady-state detector (sim.metrics.steady);
    # until then, where a number is needed before the run (a stress spike's default time, a
    # plan's day-shape peak), warmup_s holds AUTO_WARMUP_FRACTION of the duration.
    warmup_s: NonNegSeconds = 0.0
    _warmup_auto: bool = PrivateAttr(False)  # `warmup_s: auto` was given (see warmup_auto)
    drain_s: NonNegSeconds | None = None  # None: run until every request has finished
    model: ModelSpec
    gpu: GpuSpec
    profile: str | ProfileSpec = "auto"
    deployment: Deployment = Deployment()
    workload: WorkloadSpec
    slo: Slo
    cost: Cost
    step_time_scale: Multiplier = 1.0  # multiplies every step time: the step-time model's error
    sweep: Sweep | None = None
    uncertainty: dict[str, UncertainSpec] | None = None  # key path → distribution
    plan: PlanSpec | None = None  # read by `tokenfactory plan` (sim.planning)
    stress: StressSpec | None = None  # read by `tokenfactory stress`

    @model_validator(mode="before")
    @classmethod
    def _engine_preset(cls, data: Any) -> Any:
        """The scheduler keys a scenario leaves out (or sets to null) from its engine's
        preset, for its GPU's memory. Anything malformed is left for its own check."""
        if not isinstance(data, Mapping):
            return data
        deployment = data.get("deployment", {})
        if not isinstance(deployment, Mapping):
            return data
        engine = deployment.get("engine", "vllm")
        preset = ENGINE_PRESETS.get(engine) if isinstance(engine, str) else None
        scheduler = deployment.get("scheduler", {})
        if preset is None or not isinstance(scheduler, Mapping):
            return data
        explicit = {k: v for k, v in scheduler.items() if v is not None}
        filled = {**preset.keys(_gpu_memory_gib(data.get("gpu"))), **explicit}
        def preset_keys(gpu: Any) -> Mapping[str, Any]:
            return preset.keys(_gpu_memory_gib(gpu))

        pools = disaggregation.with_pool_presets(deployment, explicit, data.get("gpu"),
                                                 preset_keys)
        pools = fleetpools.with_pool_presets(pools, explicit, data.get("gpu"), preset_keys)
        return {**data, "deployment": {**pools, "scheduler": filled}}

    @model_validator(mode="wrap")
    @classmethod
    def _auto_warmup(cls, data: Any, handler: ModelWrapValidatorHandler[Scenario]) -> Scenario:
        """`warmup_s: auto` is validated as the nominal warm-up, and remembered."""
        value = data.get("warmup_s") if isinstance(data, Mapping) else None
        if not isinstance(value, str):
            return handler(data)
        if value != "auto":
            raise PydanticCustomError("order", "not a warm-up", {
                "field": "warmup_s", "expected": "a number of seconds ≥ 0, or auto"})
        duration = data.get("duration_s")
        nominal = 0.0  # a bad duration_s is reported by its own check
        if isinstance(duration, int | float) and not isinstance(duration, bool) \
                and 0 < duration <= MAX_DURATION_S:
            nominal = AUTO_WARMUP_FRACTION * float(duration)
        scenario = handler({**data, "warmup_s": nominal})
        scenario._warmup_auto = True
        return scenario

    @property
    def warmup_auto(self) -> bool:
        """The window's start is chosen after the run (`warmup_s: auto`)."""
        return self._warmup_auto

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.warmup_auto and "warmup_s" in data:
            data["warmup_s"] = "auto"
        return data

    @field_validator("model", mode="before")
    @classmethod
    def _model_by_name(cls, value: Any) -> Any:
        # `{hf_config: path}` is read by sim.scenario.load before validation; here it is
        # only seen when a mapping is validated without the loader, which reads files.
        if isinstance(value, Mapping) and "hf_config" in value:
            raise PydanticCustomError("order", "config not read", {
                "field": "hf_config", "expected": "a scenario loaded with load_scenario, "
                "which reads the config.json"})
        return by_name(value, catalog.models())

    @field_validator("gpu", mode="before")
    @classmethod
    def _gpu_by_name(cls, value: Any) -> Any:
        return by_name(value, catalog.gpus())

    @model_validator(mode="after")
    def _windows(self) -> Scenario:
        if self.warmup_s >= self.duration_s:
            raise PydanticCustomError(
                "order", "warmup_s must be < duration_s",
                {"field": "warmup_s", "expected": f"a number < duration_s ({self.duration_s:g})"},
            )
        return self

    @model_validator(mode="after")
    def _servable(self) -> Scenario:
        """Setups a serving engine refuses, checked here, where the model, the deployment and
        the workload are all known, so that every command (each sweep point and plan option
        too) stops at loading rather than simulating what cannot run."""
        def laid_out(model: ModelSpec, layout: Layout) -> Problem | None:
            return parallelism_problem(model, layout.tensor_parallel) or layout_problem(
                model, layout)

        owned_gpu = None if self.cost.tco is None else self.gpu
        problem = (parallelism_problem(self.model, self.deployment.tensor_parallel)
                   or layout_problem(self.model, self.layout)
                   or context_problem(self.model, self.workload)
                   or draft_problem(self.deployment)
                   or disaggregation.problem(
                       self.model, self.deployment, self.workload,
                       None if self.cost.tco is None else self.cost.tco.power_scaling, self.pools,
                       laid_out, MAX_TENSOR_PARALLEL, MAX_REPLICA_GPUS, owned_gpu)
                   or fleetpools.problem(self.model, self.deployment, self.fleet_pools,
                                         laid_out, MAX_TENSOR_PARALLEL, MAX_REPLICA_GPUS,
                                         owned_gpu))
        if problem is not None:
            key, value, expected = problem
            raise PydanticCustomError("order", "cannot be served", {
                "field": key, "value": value, "expected": expected})
        return self

    @property
    def layout(self) -> Layout:
        """The values the step-time and memory models take about one replica."""
        return self.deployment.layout_for(self.model.kv_cache_dtype)

    @property
    def gpus_per_replica(self) -> int:
        return self.layout.gpus

    @property
    def gpu_count(self) -> int:
        """The fleet's GPUs: both pools' when it is disaggregated."""
        pools = self.pools or self.fleet_pools
        if pools is not None:
            return sum(pool.gpus for pool in pools)
        return self.deployment.replicas * self.gpus_per_replica

    @property
    def pools(self) -> Pools | None:
        """A disaggregated deployment's prefill and decode pools, every key resolved (None:
        aggregated)."""
        return disaggregation.resolve(self.deployment, self.gpu, self.model.kv_cache_dtype)

    @property
    def fleet_pools(self) -> tuple[Pool, ...] | None:
        """A heterogeneous fleet's pools, every key resolved (None: one homogeneous fleet
        or a disaggregated one)."""
        return fleetpools.resolve(self.deployment, self.deployment.pools, self.gpu,
                                  self.model.kv_cache_dtype)


# ---- what an engine can serve ---------------------------------------------------------------

Problem = tuple[str, Any, str]  # key path, the value there, what is accepted


def parallelism_problem(model: ModelSpec, tensor_parallel: int) -> Problem | None:
    """vLLM's rule for splitting attention across `tensor_parallel` GPUs: each GPU gets a
    whole number of query heads (tp divides heads), and the key-value heads are either split
    evenly (tp divides kv_heads) or each copied to a whole number of GPUs (kv_heads divides
    tp). Anything else is refused by the engine at start-up."""
    heads, kv_heads = model.heads, model.kv_heads
    if heads % tensor_parallel == 0 and (kv_heads % tensor_parallel == 0
                                         or tensor_parallel % kv_heads == 0):
        return None
    fits = [tp for tp in range(1, MAX_TENSOR_PARALLEL + 1) if heads % tp == 0
            and (kv_heads % tp == 0 or tp % kv_heads == 0)]
    why = (f"a divisor of {model.name}'s {heads} attention heads" if heads % tensor_parallel
           else f"a divisor or a multiple of {model.name}'s {kv_heads} key-value heads")
    return ("deployment.tensor_parallel", tensor_parallel,
            f"{why} (the GPUs split the heads evenly): one of "
            + ", ".join(str(tp) for tp in fits))


def draft_problem(deployment: Deployment) -> Problem | None:
    """A draft model runs on the target's GPUs, split over the same tensor-parallel group
    (vLLM's draft_tensor_parallel_size and SGLang's draft worker default to the target's),
    so its heads must split over them as the target's do."""
    spec = deployment.speculative
    draft = None if spec is None else spec.draft_model
    problem = None if draft is None else parallelism_problem(draft, deployment.tensor_parallel)
    if draft is None or problem is None:
        return None
    return ("deployment.speculative.draft_model", draft.name, f"a draft model that splits "
            f"over tensor_parallel {deployment.tensor_parallel} as the target does: "
            f"{problem[2]} for {draft.name}")


def layout_problem(model: ModelSpec, layout: Layout) -> Problem | None:
    """How vLLM, SGLang and TensorRT-LLM place routed experts: expert_parallel ranks each
    hold a whole number of experts (it divides the experts) and a whole number of the
    replica's GPUs (it divides them), and each expert's width splits evenly over the
    moe_tensor_parallel = GPUs ÷ expert_parallel GPUs of a rank. A dense model has no
    experts to spread. Attention data parallelism works for any model with attention."""
    ep, gpus = layout.expert_parallel, layout.gpus
    key = "deployment.expert_parallel"
    if not model.is_moe:
        return None if ep == 1 else (
            key, ep, f"1: {model.name} is a dense model, with no experts to spread")
    width = model.ffn_intermediate
    fits = [n for n in range(1, gpus + 1)
            if model.experts % n == 0 and gpus % n == 0 and width % (gpus // n) == 0]
    listed = ("one of " + ", ".join(map(str, fits)) if fits
              else f"none fits {gpus} GPUs; another tensor_parallel or data_parallel_attention")
    if model.experts % ep or gpus % ep:
        return (key, ep, f"a divisor of {model.name}'s {model.experts} routed experts and of "
                f"the replica's {gpus} GPUs (tensor_parallel × data_parallel_attention): "
                + listed)
    if width % (gpus // ep):
        return (key, ep, f"a number of ranks whose moe_tensor_parallel (GPUs ÷ "
                f"expert_parallel = {gpus // ep}) divides {model.name}'s expert width of "
                f"{width} (moe_intermediate): " + listed)
    return None


def longest_tokens(spec: LengthSpec | None) -> tuple[int, str] | None:
    """The longest length `spec` can give and the key that sets it (its cap, or its own
    bound when that is lower), or None when nothing bounds it before sampling: lognormal,
    geometric and mixtures without max_tokens reach any length, rarely, and are not
    checked against the context (an empirical file is, once read)."""
    if spec is None:
        return None
    bounds = []
    if spec.max_tokens is not None:
        bounds.append((spec.max_tokens, "max_tokens"))
    if isinstance(spec, FixedLengths):
        bounds.append((spec.value, "value"))
    elif isinstance(spec, UniformLengths):
        bounds.append((spec.high, "high"))
    elif isinstance(spec, EmpiricalCdfLengths):
        bounds.append((max(1, int(np.rint(spec.cdf[-1][0]))), "cdf"))
    elif isinstance(spec, EmpiricalLengths) and spec.values is not None:
        bounds.append((int(spec.values.max()), "path"))
    return min(bounds) if bounds else None


def context_problem(model: ModelSpec, workload: WorkloadSpec) -> Problem | None:
    """A request must fit in the model's context: the longest prompt with at least one output
    token, and with both bounded, the longest prompt plus the longest output (vLLM refuses a
    request whose prompt and max_tokens exceed max_model_len). Blames the prompt's bound
    when the prompt alone is too long, else the output's."""
    context = model.max_context
    prompt = longest_tokens(workload.prompt_tokens)
    output = longest_tokens(workload.output_tokens)
    where = f"{model.name}'s context of {context:,} tokens (max_context)"
    if prompt is not None and prompt[0] >= context:
        return (f"workload.prompt_tokens.{prompt[1]}", prompt[0], f"prompts of at most "
                f"{context - 1:,} tokens: {where} holds the prompt and at least one output "
                "token")
    if output is not None and output[0] >= context:
        return (f"workload.output_tokens.{output[1]}", output[0], f"outputs of at most "
                f"{context - 1:,} tokens: {where} holds the prompt and the output")
    if prompt is not None and output is not None and prompt[0] + output[0] > context:
        return (f"workload.output_tokens.{output[1]}", output[0], f"outputs of at most "
                f"{context - prompt[0]:,} tokens: the longest prompt (workload.prompt_tokens."
                f"{prompt[1]}: {prompt[0]:,}) and the longest output must fit in {where}")
    return None


def _lengths(grid: Mapping[str, list[Any]] | None) -> str:
    return " × ".join(f"{len(values):,}" for values in (grid or {}).values())


def _gpu_memory_gib(value: Any) -> float:
    """A scenario's `gpu:` memory before it is validated: a catalogue name or an inline
    mapping; 0 where it is neither (its own check reports it)."""
    if isinstance(value, str):
        spec = catalog.gpus().get(value)
        return spec.memory_gib if spec is not None else 0.0
    if isinstance(value, GpuSpec):
        return value.memory_gib
    if isinstance(value, Mapping):
        memory = value.get("memory_gib")
        if isinstance(memory, int | float) and not isinstance(memory, bool):
            return float(memory)
    return 0.0


# The values each tagged union's key accepts, for error messages.
DISCRIMINATOR_VALUES = {
    "dist": LENGTH_DISTS,
    "process": ARRIVAL_PROCESSES,
    "kind": tag_values(ProfileSpec, "kind"),
}
