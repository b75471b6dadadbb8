"""`deployment.disaggregation`: a prefill pool and a decode pool, and the link between them.

A request is prefilled on a prefill replica (its first token comes from there), its KV
cache then crosses the link to a decode replica, which generates the rest. Each pool is a
fleet of its own: replicas, GPU, parallelism, weight and KV formats, scheduler and router.
A key a pool leaves out is the `deployment`'s (the GPU: the scenario's `gpu`), so a pool
states only how it differs; the engine, `gpu_memory_utilization` and
`activation_reserve_gib` are the deployment's for both. Scheduler keys are inherited key by
key, then filled from the engine's preset for the pool's own GPU, as the aggregated
deployment's are for the scenario's. The router is the pool's, else the deployment's when
the scenario sets one, else `least-pending-tokens`: what sets a replica's load in either
pool is the prompt tokens it holds, far more than its count of requests.

`Scenario.pools` resolves both pools into plain `Pool`s; the checks the aggregated
deployment gets (heads split evenly, experts placed, weights within memory) run on each,
naming the pool's key. This module sits below `sim.scenario.schema`, which attaches the
block to `Deployment`; so that it need not import schema back, it takes the deployment as
the few values it reads (`Parent`), and the scheduler model from `sim.scenario.scheduling`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import Field, field_validator

from sim.engine.router import ROUTERS
from sim.errors import InputError
from sim.hardware import catalog
from sim.hardware.catalog import GpuSpec, ModelSpec
from sim.hardware.layout import KV_CACHE_DTYPES, WEIGHT_DTYPES, Layout, resolve_kv_cache_dtype
from sim.hardware.memory import kv_bytes_per_token, kv_capacity_tokens
from sim.scenario.base import (
    NonNeg,
    NonNegSeconds,
    Pos,
    PosInt,
    Replicas,
    Strict,
    by_name,
    known_name,
)
from sim.scenario.scheduling import Scheduler
from sim.scenario.workload import WorkloadSpec

ROLES = ("prefill", "decode")
KEY = "deployment.disaggregation"
DEFAULT_POOL_ROUTER = "least-pending-tokens"
BYTES_PER_GB = 1e9  # link bandwidths are quoted in decimal gigabytes per second
# Not simulated across two pools in this version: the deployment keys refused beside it.
UNSUPPORTED_KEYS = ("failures", "spot", "outage", "autoscaling", "prefix_cache",
                    "speculative")
POOL_ROUTERS = tuple(name for name, kind in ROUTERS.items() if not kind.needs_prefix_cache)

Problem = tuple[str, Any, str]  # key path, the value there, what is accepted


class KvTransfer(Strict):
    """The link a request's KV cache crosses from its prefill replica to its decode replica:
    a transfer takes `latency_s` plus its bytes over `bandwidth_gb_s` (GB/s, decimal),
    shared by the transfers in flight on its prefill replica's link. The bandwidth has no
    default: the catalogue's `interconnect_gb_s` is NVLink inside a node, while pools on
    different nodes move KV over the network (RDMA NICs), a figure only the deployment
    knows."""

    bandwidth_gb_s: Pos
    latency_s: NonNegSeconds = 0.0

    @property
    def bytes_per_s(self) -> float:
        return self.bandwidth_gb_s * BYTES_PER_GB


class PoolSpec(Strict):
    """One pool's keys as written; None: the deployment's (see the module's docstring).
    Layout sizes are bounded here only against overflow: the resolved pool is held to the
    aggregated deployment's bounds (`bounds_problem`)."""

    replicas: Replicas | None = None
    gpu: GpuSpec | None = None
    tensor_parallel: PosInt | None = None
    data_parallel_attention: PosInt | None = None
    expert_parallel: PosInt | None = None
    dtype: str | None = None
    kv_cache_dtype: str | None = None
    scheduler: Scheduler | None = None  # filled from the engine's preset by Scenario
    router: str | None = None
    # This pool's rental price of one GPU-hour (None: the scenario's `cost`); a rental cost
    # only, as owned hardware's TCO is one GPU's.
    gpu_hour_usd: NonNeg | None = None

    @field_validator("gpu", mode="before")
    @classmethod
    def _gpu_by_name(cls, value: Any) -> Any:
        return by_name(value, catalog.gpus())

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, value: str | None) -> str | None:
        return None if value is None else known_name(value, WEIGHT_DTYPES)

    @field_validator("kv_cache_dtype")
    @classmethod
    def _known_kv_cache_dtype(cls, value: str | None) -> str | None:
        return None if value is None else known_name(value, ("auto", *KV_CACHE_DTYPES))

    @field_validator("router")
    @classmethod
    def _known_router(cls, value: str | None) -> str | None:
        # A cache-aware router needs a prefix cache, which this version refuses here.
        return None if value is None else known_name(value, POOL_ROUTERS)


class Disaggregation(Strict):
    prefill: PoolSpec = Field(default_factory=PoolSpec)
    decode: PoolSpec = Field(default_factory=PoolSpec)
    kv_transfer: KvTransfer


class Parent(Protocol):
    """What pools read of the deployment they belong to (`sim.scenario.schema.Deployment`)
    besides the keys they inherit by name."""

    @property
    def disaggregation(self) -> Disaggregation | None: ...

    @property
    def router(self) -> str: ...

    @property
    def engine(self) -> str: ...

    @property
    def gpu_memory_utilization(self) -> float: ...

    @property
    def activation_reserve_gib(self) -> float: ...

    @property
    def model_fields_set(self) -> set[str]: ...


@dataclass(frozen=True)
class Pool:
    """One pool with every key resolved: what the runner builds its engine side from."""

    role: str  # prefill | decode; a heterogeneous fleet's pool: its name
    replicas: int
    gpu: GpuSpec
    layout: Layout
    scheduler: Scheduler
    router: str
    gpu_memory_utilization: float
    activation_reserve_gib: float
    key: str  # where this pool's keys are written
    gpu_hour_usd: float | None = None  # None: the scenario's rental price, or its TCO

    @property
    def gpus(self) -> int:
        return self.replicas * self.layout.gpus


@dataclass(frozen=True)
class Pools:
    prefill: Pool
    decode: Pool

    def __iter__(self) -> Iterator[Pool]:
        return iter((self.prefill, self.decode))


def refuse_sizing(disaggregation: Disaggregation | None, command: str) -> None:
    """`InputError` naming the key: `command` sizes `deployment.replicas`, which a
    disaggregated fleet splits into pools it does not size (a plan does)."""
    if disaggregation is not None:
        raise InputError(KEY, disaggregation.model_dump(exclude_none=True), f"an aggregated "
                         f"deployment: {command} sizes deployment.replicas, not the prefill "
                         "and decode pools (a plan chooses the split: tokenfactory plan; or "
                         "compare splits with a sweep grid over "
                         "deployment.disaggregation.prefill.replicas and "
                         "deployment.disaggregation.decode.replicas)")


def resolve(deployment: Parent, gpu: GpuSpec, model_kv_cache_dtype: str | None) -> Pools | None:
    """Both pools of `deployment` (None: it is not disaggregated); `gpu`: the scenario's;
    `model_kv_cache_dtype`: the model's `ModelSpec.kv_cache_dtype`."""
    spec = deployment.disaggregation
    if spec is None:
        return None
    return Pools(resolve_pool("prefill", f"{KEY}.prefill", spec.prefill, deployment, gpu,
                              model_kv_cache_dtype),
                 resolve_pool("decode", f"{KEY}.decode", spec.decode, deployment, gpu,
                              model_kv_cache_dtype))


def resolve_pool(role: str, key: str, spec: PoolSpec, d: Parent, gpu: GpuSpec,
                 model_kv_cache_dtype: str | None,
                 default_router: str = DEFAULT_POOL_ROUTER) -> Pool:
    """`spec` with what it leaves out taken from the deployment `d` (the GPU: `gpu`; the
    router: the deployment's when the scenario sets one, else `default_router`), its
    `kv_cache_dtype: auto` resolved for the model (`resolve_kv_cache_dtype`)."""
    def given(name: str) -> Any:
        value = getattr(spec, name)
        return getattr(d, name) if value is None else value

    dtype = given("dtype")
    router = spec.router or (d.router if "router" in d.model_fields_set else default_router)
    layout = Layout(tensor_parallel=given("tensor_parallel"),
                    data_parallel_attention=given("data_parallel_attention"),
                    expert_parallel=given("expert_parallel"), dtype=dtype,
                    kv_cache_dtype=resolve_kv_cache_dtype(given("kv_cache_dtype"), dtype,
                                                          model_kv_cache_dtype),
                    engine=d.engine)
    return Pool(role=role, replicas=given("replicas"), gpu=spec.gpu or gpu, layout=layout,
                scheduler=given("scheduler"), router=router,
                gpu_memory_utilization=d.gpu_memory_utilization,
                activation_reserve_gib=d.activation_reserve_gib, key=key,
                gpu_hour_usd=spec.gpu_hour_usd)


def with_pool_presets(deployment: Mapping[str, Any], explicit: Mapping[str, Any],
                      scenario_gpu: Any,
                      preset_keys: Callable[[Any], Mapping[str, Any]]) -> Mapping[str, Any]:
    """The raw `deployment` with each pool's scheduler filled in before validation
    (`with_preset`). Anything malformed is left for its own check."""
    block = deployment.get("disaggregation")
    if not isinstance(block, Mapping):
        return deployment
    filled = dict(block)
    for role in ROLES:
        filled[role] = with_preset(block.get(role, {}), explicit, scenario_gpu, preset_keys)
    return {**deployment, "disaggregation": filled}


def with_preset(pool: Any, explicit: Mapping[str, Any], scenario_gpu: Any,
                preset_keys: Callable[[Any], Mapping[str, Any]]) -> Any:
    """One raw pool with its scheduler filled in: the preset for the pool's GPU
    (`preset_keys` of its raw `gpu`, else of the scenario's), then the deployment's
    `explicit` scheduler keys, then the pool's own. Anything malformed is left as it is."""
    scheduler = pool.get("scheduler", {}) if isinstance(pool, Mapping) else None
    if not isinstance(scheduler, Mapping):
        return pool
    own = {k: v for k, v in scheduler.items() if v is not None}
    preset = preset_keys(pool.get("gpu", scenario_gpu))
    return {**pool, "scheduler": {**preset, **explicit, **own}}


def problem(model: ModelSpec, deployment: Parent, workload: WorkloadSpec,
            power_scaling: str | None, pools: Pools | None,
            layout_problem: Callable[[ModelSpec, Layout], Problem | None],
            max_tensor_parallel: int, max_replica_gpus: int,
            owned_gpu: GpuSpec | None = None) -> Problem | None:
    """What an engine could not serve in a disaggregated deployment (None: nothing, or not
    disaggregated): a key this version does not simulate beside it (`power_scaling`: owned
    GPUs' `cost.tco.power_scaling`, None when rented), or a pool that `pool_problem`
    refuses."""
    if pools is None:
        return None
    return (unsupported(deployment, workload, power_scaling)
            or pools_problem(model, pools, layout_problem, max_tensor_parallel,
                             max_replica_gpus, owned_gpu))


def pools_problem(model: ModelSpec, pools: Iterable[Pool],
                  layout_problem: Callable[[ModelSpec, Layout], Problem | None],
                  max_tensor_parallel: int, max_replica_gpus: int,
                  owned_gpu: GpuSpec | None) -> Problem | None:
    """The first of `pools` that `pool_problem` refuses (None: none)."""
    for pool in pools:
        found = pool_problem(model, pool, layout_problem, max_tensor_parallel,
                             max_replica_gpus, owned_gpu)
        if found is not None:
            return found
    return None


def pool_problem(model: ModelSpec, pool: Pool,
                 layout_problem: Callable[[ModelSpec, Layout], Problem | None],
                 max_tensor_parallel: int, max_replica_gpus: int,
                 owned_gpu: GpuSpec | None) -> Problem | None:
    """What one resolved pool cannot do, named at its key: a price or another GPU where
    the scenario's TCO prices its GPUs (`owned_gpu`; None: rented, which a pool may
    price apart), a layout out of bounds, one that does not split the model
    (`layout_problem`: the aggregated deployment's checks), or no room for the KV cache."""
    if owned_gpu is not None:
        if pool.gpu_hour_usd is not None:
            return (f"{pool.key}.gpu_hour_usd", pool.gpu_hour_usd, "no pool price with "
                    "cost.tco (owned hardware's cost is one GPU's; pay a rental price, "
                    "cost.gpu_hour_usd or cost.prices, to price pools apart)")
        if pool.gpu.name != owned_gpu.name:
            return (f"{pool.key}.gpu", pool.gpu.name, f"the scenario's {owned_gpu.name} "
                    "under cost.tco (its prices are that GPU's), or a rental cost")
    found = bounds_problem(pool, max_tensor_parallel, max_replica_gpus)
    laid_out = layout_problem(model, pool.layout) if found is None else None
    found = found or (None if laid_out is None else in_pool(laid_out, pool))
    if found is None:
        try:
            pool_kv_capacity(model, pool)
        except InputError as exc:
            found = (exc.where, exc.value, exc.expected)
    return found


def unsupported(deployment: Parent, workload: WorkloadSpec,
                power_scaling: str | None = None) -> Problem | None:
    """A key set beside `disaggregation` that this version does not simulate with it.
    Power scaled by load needs one replica's full load, which two pools do not have."""
    for key in UNSUPPORTED_KEYS:
        value = getattr(deployment, key)
        if value is not None:
            return (f"deployment.{key}", value.model_dump(), f"no {key} beside "
                    f"{KEY}: not simulated with a disaggregated deployment yet")
    if workload.sessions is not None:
        return ("workload.sessions", workload.sessions.model_dump(), f"no sessions beside "
                f"{KEY}: not simulated with a disaggregated deployment yet (closed-loop "
                "clients without sessions are)")
    if power_scaling == "load":
        return ("cost.tco.power_scaling", power_scaling, f"busy-time beside {KEY}: power "
                "scaled by load needs one replica's full-load capacity, which a prefill "
                "pool and a decode pool do not share")
    return None


def bounds_problem(pool: Pool, max_tensor_parallel: int,
                   max_replica_gpus: int) -> Problem | None:
    """The aggregated deployment's bounds on a replica's size, on the resolved pool."""
    layout = pool.layout
    if layout.tensor_parallel > max_tensor_parallel:
        return (f"{pool.key}.tensor_parallel", layout.tensor_parallel,
                f"a number ≤ {max_tensor_parallel}")
    if layout.expert_parallel > max_replica_gpus:
        return (f"{pool.key}.expert_parallel", layout.expert_parallel,
                f"a number ≤ {max_replica_gpus:,}")
    if layout.gpus > max_replica_gpus:
        return (f"{pool.key}.data_parallel_attention", layout.data_parallel_attention,
                f"at most {max_replica_gpus // layout.tensor_parallel} at tensor_parallel "
                f"{layout.tensor_parallel}: a replica of at most {max_replica_gpus:,} GPUs")
    return None


def in_pool(found: Problem, pool: Pool) -> Problem:
    """A problem the aggregated checks name at a `deployment.` key, named at the pool's
    key instead when the pool has that key (they are about its layout)."""
    key, value, expected = found
    leaf = key.removeprefix("deployment.")
    if leaf in PoolSpec.model_fields:
        key = f"{pool.key}.{leaf}"
    return (key, value, expected)


def pool_kv_capacity(model: ModelSpec, pool: Pool) -> int:
    """KV-cache tokens one replica of `pool` holds; `InputError` naming the pool's key when
    the weights do not fit (`sim.hardware.memory`)."""
    try:
        return kv_capacity_tokens(model, pool.gpu, pool.layout, pool.gpu_memory_utilization,
                                  pool.activation_reserve_gib, pool.scheduler.max_num_seqs)
    except InputError as exc:
        key, value, expected = in_pool((exc.where, exc.value, exc.expected), pool)
        raise InputError(key, value, f"{expected} (on the {pool.role} pool's "
                         f"{pool.gpu.name})") from None


def transfer_bytes_per_token(model: ModelSpec, decode: Pool) -> float:
    """Bytes one token of a request's KV cache carries over the link: the whole cache of
    one token, all layers and key-value heads, in the decode pool's KV format (the
    sequence's fixed state, sliding windows and linear attention, is not counted)."""
    return kv_bytes_per_token(model, decode.layout.kv_cache_dtype)
