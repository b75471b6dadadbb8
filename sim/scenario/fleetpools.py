"""`deployment.pools`: a heterogeneous fleet, named pools of replicas on their own GPUs.

Each pool is a fleet of its own: replicas, GPU, parallelism, weight and KV formats,
scheduler, router and rental price. A key a pool leaves out is the `deployment`'s (the GPU:
the scenario's `gpu`; the price: the scenario's `cost`), as in `deployment.disaggregation`,
whose pool keys these are plus a `name` and a prompt bound. `deployment.pool_split` says
which pool a request goes to (`sim.engine.pools`):

* `load` (default): the pool whose least-loaded replica holds the least;
* `size`: by prompt length: each pool but one sets `max_prompt_tokens`, the longest prompt
  it takes (a prompt goes to the smallest bound that holds it), and the one without takes
  every longer prompt. Two pools with the same bound would overlap: refused.

The aggregated deployment's checks (heads split evenly, experts placed, weights within
memory) run on each pool, naming its key (`deployment.pools.1.tensor_parallel`). The
deployment-wide keys (engine, `gpu_memory_utilization`, `activation_reserve_gib`, prefix
cache, speculative decoding) are every pool's. A fleet that changes while it runs
(failures, spot, outages, autoscaling) and disaggregation are not simulated beside pools.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Protocol

from pydantic import Field, field_validator

from sim.engine.pools import SPLITS
from sim.engine.router import ROUTERS
from sim.errors import InputError
from sim.hardware.catalog import GpuSpec, ModelSpec
from sim.hardware.layout import Layout
from sim.scenario.base import PosInt, known_name
from sim.scenario.disaggregation import (
    Parent,
    Pool,
    PoolSpec,
    Problem,
    pools_problem,
    resolve_pool,
    with_preset,
)

KEY = "deployment.pools"
MAX_POOLS = 64
# Not simulated beside pools in this version: the deployment keys refused with them.
UNSUPPORTED_KEYS = ("failures", "spot", "outage", "autoscaling", "disaggregation")
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class FleetPoolSpec(PoolSpec):
    """One pool as written (`PoolSpec`'s keys, None: the deployment's), with its name and,
    under `pool_split: size`, the longest prompt it takes (None: the pool for the rest)."""

    name: Name
    max_prompt_tokens: PosInt | None = None

    @field_validator("router")
    @classmethod
    def _known_router(cls, value: str | None) -> str | None:
        return None if value is None else known_name(value, ROUTERS)


FleetPoolList = Annotated[list[FleetPoolSpec], Field(min_length=1, max_length=MAX_POOLS)]


class Split(Protocol):
    """What the pools' checks read of the deployment (`sim.scenario.schema.Deployment`)."""

    @property
    def pools(self) -> list[FleetPoolSpec] | None: ...

    @property
    def pool_split(self) -> str: ...


def known_split(value: str) -> str:
    return known_name(value, SPLITS)


def split_problem(d: Split) -> Problem | None:
    """Pools that do not split the traffic: a repeated name, a prompt bound under `load`,
    or under `size` not exactly one pool without a bound, or two with the same one. Key
    paths are below `deployment`."""
    pools = d.pools
    if pools is None:
        return None
    seen: dict[str, int] = {}
    for i, pool in enumerate(pools):
        if pool.name in seen:
            return (f"pools.{i}.name", pool.name, f"a name no other pool has (pool "
                    f"{seen[pool.name]} is {pool.name!r})")
        seen[pool.name] = i
    if d.pool_split == "load":
        for i, pool in enumerate(pools):
            if pool.max_prompt_tokens is not None:
                return (f"pools.{i}.max_prompt_tokens", pool.max_prompt_tokens,
                        "no prompt bound under pool_split: load (set pool_split: size to "
                        "split by prompt length)")
        return None
    unbounded = [i for i, pool in enumerate(pools) if pool.max_prompt_tokens is None]
    if len(unbounded) != 1:
        where = unbounded[1] if unbounded else len(pools) - 1
        return (f"pools.{where}.max_prompt_tokens", pools[where].max_prompt_tokens,
                "exactly one pool without max_prompt_tokens under pool_split: size (it "
                f"takes the prompts longer than every bound; {len(unbounded)} have none)")
    bounds: dict[int, int] = {}
    for i, pool in enumerate(pools):
        bound = pool.max_prompt_tokens
        if bound is None:
            continue
        if bound in bounds:
            return (f"pools.{i}.max_prompt_tokens", bound, f"a bound no other pool has "
                    f"(pool {bounds[bound]} takes prompts up to {bound} too: the sizes "
                    "would overlap)")
        bounds[bound] = i
    return None


def resolve(deployment: Parent, pools: list[FleetPoolSpec] | None, gpu: GpuSpec,
            model_kv_cache_dtype: str | None) -> tuple[Pool, ...] | None:
    """Every pool with its keys resolved (None: one homogeneous fleet); `gpu`: the
    scenario's; `model_kv_cache_dtype`: the model's `ModelSpec.kv_cache_dtype`. A pool's
    router defaults to the deployment's."""
    if pools is None:
        return None
    return tuple(resolve_pool(spec.name, f"{KEY}.{i}", spec, deployment, gpu,
                              model_kv_cache_dtype, default_router="least-loaded")
                 for i, spec in enumerate(pools))


def with_pool_presets(deployment: Mapping[str, Any], explicit: Mapping[str, Any],
                      scenario_gpu: Any,
                      preset_keys: Callable[[Any], Mapping[str, Any]]) -> Mapping[str, Any]:
    """The raw `deployment` with each pool's scheduler filled in before validation, as a
    disaggregated pool's is (`with_preset`)."""
    block = deployment.get("pools")
    if not isinstance(block, list):
        return deployment
    return {**deployment, "pools": [with_preset(pool, explicit, scenario_gpu, preset_keys)
                                    for pool in block]}


def refuse_sizing(pools: list[FleetPoolSpec] | None, command: str) -> None:
    """`InputError` naming the key: `command` sizes `deployment.replicas`, which a
    heterogeneous fleet's pools do not read (a plan sizes each pool)."""
    if pools is not None:
        raise InputError(KEY, [pool.name for pool in pools], f"one homogeneous fleet: "
                         f"{command} sizes deployment.replicas, not the pools' replicas (a "
                         "plan sizes each pool: tokenfactory plan; or compare fleets with a "
                         "sweep grid over deployment.pools.N.replicas)")


def problem(model: ModelSpec, deployment: Parent, pools: tuple[Pool, ...] | None,
            layout_problem: Callable[[ModelSpec, Layout], Problem | None],
            max_tensor_parallel: int, max_replica_gpus: int,
            owned_gpu: GpuSpec | None) -> Problem | None:
    """What an engine could not serve across the pools (None: nothing, or no pools): a key
    this version does not simulate beside them, or a pool that `pool_problem` refuses
    (`owned_gpu`: the GPU the scenario's TCO prices; None: rented)."""
    if pools is None:
        return None
    for key in UNSUPPORTED_KEYS:
        value = getattr(deployment, key)
        if value is not None:
            return (f"deployment.{key}", value.model_dump(), f"no {key} beside {KEY}: not "
                    "simulated with a heterogeneous fleet yet")
    return pools_problem(model, pools, layout_problem, max_tensor_parallel, max_replica_gpus,
                         owned_gpu)
