"""Candidate deployments: each option is a partial scenario merged into the base scenario.

The merge is a JSON merge patch (RFC 7386): mappings merge key by key, any other value
replaces the base's, and `null` deletes the base's key — so an option that pays by named
prices writes `cost: {gpu_hour_usd: null, prices: {...}, price: reserved}`. The merged
scenario is validated by `load_scenario` like any scenario file, and its step-time model and
KV cache are resolved once, so a bad option stops the plan before any run, with the error
named under the option: `plan.options[1].deployment.tensor_parallel: 0 — expected ...`.

The plan's run settings (`plan.run`) are merged first. Left unset, the warm-up is `auto`
(chosen per run by MSER-5 on its own output) and the run length follows the workload: the
longest of the options' `sim.montecarlo.capacity.run_length_s` (the scenario's duration, or
12 saturated end-to-end times when longer, at most an hour), so every option is judged on
runs of the same length and a long-output workload gets runs that reach a steady state.

A disaggregated option (one whose merged scenario has `deployment.disaggregation`) is sized
in both pools, as its `split` key says (a planner key, taken off the option like `name`):
`search` (the default) lets the planner choose the prefill and decode replicas
(`sim.planning.split`); `ratio` keeps the option's own pools as one unit, 1P:2D say, and
sizes the number of units like an aggregated option's replicas (2 units: 2P:4D), so a
fixed split is compared at its own size and grows with demand in its own proportion.

An option whose merged scenario has `deployment.pools` (a heterogeneous fleet) is sized in
each pool: the planner chooses every pool's replicas (the pools' own `replicas` are
ignored), by the split search over two counts (`sim.planning.split`). That takes two pools
under `pool_split: size`, where each pool serves the prompts its bound gives it whatever
the counts, so a replica added to either pool never makes a request wait longer. Other
fleets are refused, naming the key: one pool is an aggregated deployment (write its keys
as the deployment's), three or more would need a search in as many counts, and under
`pool_split: load` the pools share traffic by their queues, where an added replica of a
slower pool can take a request a faster one would have served sooner. `split` does not
apply to such an option.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from sim.errors import MISSING, InputError, show
from sim.montecarlo.capacity import AUTO, MAX_RUN_S, RUN_E2E_TIMES, run_length_s
from sim.montecarlo.overrides import validated
from sim.planning.forecast import Shaping
from sim.planning.split import Split
from sim.runner import build as run_inputs
from sim.scenario import Scenario, load_scenario
from sim.scenario.disaggregation import Pool
from sim.scenario.planning import PlanSpec
from sim.steptime.select import AUTO_KINDS, auto_kind
from sim.workload import rate

PLANNING_BLOCKS = ("plan", "stress", "sweep")  # not part of what a single run simulates
ARRIVAL_KEY = "workload.arrival"
RATE_KEY = "workload.arrival.rate_per_s"
REPLICAS_KEY = "deployment.replicas"
MAX_REPLICAS_KEY = "deployment.autoscaling.max_replicas"
PREFILL_REPLICAS_KEY = "deployment.disaggregation.prefill.replicas"
DECODE_REPLICAS_KEY = "deployment.disaggregation.decode.replicas"
SPLIT_KEY = "split"  # a planner key of an option: how a disaggregated one is sized
SPLITS = {"search": "the planner chooses the prefill and decode replicas",
          "ratio": "the option's pools as one unit, sized in whole units"}
POOLS_KEY = "deployment.pools"
POOL_REPLICAS = re.compile(r"deployment\.pools\.\d+\.replicas")  # what the plan sets
SIZED_POOLS = 2  # pools a plan sizes (the split search's two counts)
Fleet = int | Split  # replicas (or units of a ratio option), or a searched split / pools
RUN_LENGTH_RULE = ("plan.run.duration_s if set, else the scenario's duration_s or "
                   f"{RUN_E2E_TIMES:g} saturated E2E times when longer, at most {MAX_RUN_S:g} s")


@dataclass(frozen=True)
class Option:
    index: int
    name: str
    raw: dict[str, Any]  # the scenario with the option, run settings and target slo merged
    scenario: Scenario
    base_dir: Path
    shaping: Shaping | None = None  # how the peak runs' arrivals vary in time
    profile_note: str = ""  # why its step-time model was pinned (`_same_kind`), if it was
    split: str | None = None  # a disaggregated option's SPLITS key; None: aggregated

    @cached_property
    def pool_names(self) -> tuple[str, str] | None:
        """A heterogeneous fleet's two pool names, in order (None: no `deployment.pools`;
        `load` refuses other counts)."""
        pools = self.scenario.fleet_pools
        return None if pools is None else (pools[0].role, pools[1].role)

    @property
    def pooled(self) -> bool:
        return self.pool_names is not None

    @property
    def searched(self) -> bool:
        """Sized by the split search in two counts (disaggregated `search`, or pools)."""
        return self.split == "search" or self.pooled

    @cached_property
    def unit(self) -> Split | None:
        """A disaggregated option's own prefill and decode replicas (None: aggregated)."""
        pools = self.scenario.pools
        return None if pools is None else (pools.prefill.replicas, pools.decode.replicas)

    @cached_property
    def _two_pools(self) -> tuple[Pool, Pool]:
        """The two pools the split search sizes: prefill and decode, or the fleet's."""
        pools = self.scenario.pools or self.scenario.fleet_pools
        assert pools is not None  # asked of an option with two pools only (`load`)
        first, second = pools
        return first, second

    @cached_property
    def pool_gpus(self) -> Split:
        """One replica's GPUs in each of the two pools (prefill, decode; or the fleet's)."""
        first, second = self._two_pools
        return first.layout.gpus, second.layout.gpus

    @cached_property
    def pool_gpu_hour_usd(self) -> tuple[float, float]:
        """Each pool's price per GPU-hour, to compare splits by: its own, else the
        scenario's rental price; alike when the scenario owns its GPUs (TCO prices the
        pools' GPUs alike: a pool price is refused there)."""
        rental = self.scenario.cost.rental_gpu_hour_usd
        if rental is None:
            return 1.0, 1.0
        first, second = (rental if pool.gpu_hour_usd is None else pool.gpu_hour_usd
                         for pool in self._two_pools)
        return first, second

    def split_of(self, fleet: Fleet) -> Split | None:
        """The prefill and decode replicas of a fleet of this option (None: not
        disaggregated)."""
        if self.pooled:
            return None
        if isinstance(fleet, tuple):
            return fleet
        return None if self.unit is None else (fleet * self.unit[0], fleet * self.unit[1])

    def pools_of(self, fleet: Fleet) -> dict[str, int] | None:
        """Each pool's replicas in a fleet of a heterogeneous option (None: another kind)."""
        if self.pool_names is None:
            return None
        assert isinstance(fleet, tuple)  # a pooled option's fleets are its pools' counts
        return dict(zip(self.pool_names, fleet, strict=True))

    def gpus_of(self, fleet: Fleet) -> int:
        if isinstance(fleet, tuple) or self.unit is not None:
            counts = fleet if isinstance(fleet, tuple) else self.split_of(fleet)
            assert counts is not None  # a ratio option's units are a split
            return sum(n * g for n, g in zip(counts, self.pool_gpus, strict=True))
        return fleet * self.scenario.gpus_per_replica

    def fleet_limit(self, max_replicas: int) -> int:
        """The most a search may try: `plan.max_replicas` replicas, in each pool for a
        disaggregated option (so fewer units of a ratio than replicas)."""
        if self.split != "ratio" or self.unit is None:
            return max_replicas
        return max(1, max_replicas // max(self.unit))

    @property
    def autoscaled(self) -> bool:
        return self.scenario.deployment.autoscaling is not None

    @property
    def min_replicas(self) -> int:
        """The fewest replicas the search may try: the autoscaler's floor, and more than an
        outage takes down."""
        d = self.scenario.deployment
        floor = 1 if d.autoscaling is None else d.autoscaling.min_replicas
        return floor if d.outage is None else max(floor, d.outage.replicas + 1)

    def candidate(self, replicas: Fleet, rate_per_s: float, sampled: Mapping[str, Any],
                  shaped: bool = False) -> Scenario:
        """This option with `replicas` replicas (an autoscaled one: its ceiling, and its
        starting fleet; a disaggregated one: `split_of` them in its pools; a heterogeneous
        one: each pool's count, `deployment.pools.N.replicas`) at an arrival
        rate — stationary, or `shaped` (the rate is then the peak of the plan's day shape
        and spikes) — with one draw's sampled inputs."""
        split, pools = self.split_of(replicas), self.pools_of(replicas)
        values: dict[str, Any] = (
            {f"{POOLS_KEY}.{i}.replicas": n for i, n in enumerate(pools.values())}
            if pools is not None else {REPLICAS_KEY: replicas} if split is None else
            {PREFILL_REPLICAS_KEY: split[0], DECODE_REPLICAS_KEY: split[1]})
        values.update(sampled)
        if shaped and self.shaping is not None and not self.shaping.stationary:
            values[ARRIVAL_KEY] = self.shaping.arrival(rate_per_s)
        else:
            values[RATE_KEY] = rate_per_s
        if self.autoscaled:
            values[MAX_REPLICAS_KEY] = replicas
        where = {key: f"uncertainty.{key}" for key in sampled}
        where.update({REPLICAS_KEY: "plan.max_replicas", RATE_KEY: "plan.periods",
                      ARRIVAL_KEY: "plan.shape", MAX_REPLICAS_KEY: "plan.max_replicas",
                      PREFILL_REPLICAS_KEY: "plan.max_replicas",
                      DECODE_REPLICAS_KEY: "plan.max_replicas",
                      **{key: "plan.max_replicas" for key in values
                         if POOL_REPLICAS.fullmatch(key)}})
        return validated(self.raw, values, where, self.base_dir)


def pools_text(pools: Mapping[str, int]) -> str:
    """`chat:2+documents:1`: each pool's replicas, in order, without spaces (pool names
    have neither `:` nor `+`), as a fleet tried and a plan.csv cell."""
    return "+".join(f"{name}:{n}" for name, n in pools.items())


def run_note(scenario: Scenario) -> dict[str, Any]:
    """How the plan's runs chose their window, for plan.json's `run` (beside duration_s and
    warmup_s, which for `auto` is the nominal warm-up; each run detects its own)."""
    return {"warmup": AUTO if scenario.warmup_auto else scenario.warmup_s,
            "length_rule": RUN_LENGTH_RULE}


def merge_patch(base: Any, patch: Any) -> Any:
    """RFC 7386: `patch` applied to a copy of `base`."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    out = copy.deepcopy(dict(base)) if isinstance(base, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def load(raw: Mapping[str, Any], spec: PlanSpec, base_dir: Path) -> list[Option]:
    """Every option merged, validated and resolved; the first problem raises `InputError`."""
    options = _load(raw, spec, base_dir, None)
    if spec.run.duration_s is None:
        length_s = max(run_length_s(option.scenario) for option in options)
        if length_s > max(option.scenario.duration_s for option in options):
            options = _load(raw, spec, base_dir, length_s)
    return options


def _load(raw: Mapping[str, Any], spec: PlanSpec, base_dir: Path,
          duration_s: float | None) -> list[Option]:
    common = {k: v for k, v in raw.items() if k not in PLANNING_BLOCKS}
    common = _with_settings(common, spec, base_dir)
    if duration_s is not None:
        common["duration_s"] = duration_s
    base = load_scenario(common, base_dir=base_dir)
    arrival = base.workload.arrival
    if arrival is None:
        raise InputError("workload.arrival", MISSING, "an arrival process whose rate_per_s "
                         "the plan can set (plans size fleets for forecast rates)")
    if rate.is_time_varying(arrival):
        raise InputError("workload.arrival", common["workload"]["arrival"], "a stationary "
                         "arrival process: the plan sets the rate of each period (give the "
                         "day's shape as plan.shape and spikes as plan.spikes)")
    uncertainty = base.uncertainty or {}
    for key in uncertainty:
        if (key in (RATE_KEY, REPLICAS_KEY, PREFILL_REPLICAS_KEY, DECODE_REPLICAS_KEY)
                or POOL_REPLICAS.fullmatch(key) or key.startswith(ARRIVAL_KEY + ".")):
            raise InputError(f"uncertainty.{key}", uncertainty[key].model_dump(),
                             "a key the plan does not set itself (it sets the arrival rate "
                             "and the replicas; demand's uncertainty goes in "
                             "plan.periods[i].uncertainty)")
    shaping = Shaping(spec.shape, tuple(spec.spikes), base.warmup_s, base.duration_s)
    if not shaping.stationary and arrival.process != "poisson":
        raise InputError("plan.shape" if spec.shape is not None else "plan.spikes",
                         (spec.shape or spec.spikes[0]).model_dump(exclude_none=True),
                         "Poisson arrivals (a day shape and spikes make a time-varying "
                         f"Poisson process; workload.arrival.process is {arrival.process})")
    names: set[str] = set()
    options = []
    for index, patch in enumerate(spec.options):
        name = patch.get("name")
        if not isinstance(name, str) or not name or name in names:
            raise InputError(f"plan.options[{index}].name", patch.get("name", MISSING),
                             "a name for the option, not used by another option")
        names.add(name)
        body = {k: v for k, v in patch.items() if k not in ("name", SPLIT_KEY)}
        merged = merge_patch(common, body)
        try:
            scenario = load_scenario(merged, base_dir=base_dir)
            if scenario.pools is not None:
                run_inputs.sides(scenario)
            elif scenario.fleet_pools is not None:
                run_inputs.fleet_sides(scenario)
            else:
                run_inputs.kv_capacity(scenario)
                run_inputs.step_model(scenario)
        except InputError as exc:
            raise _blame(exc, body, index) from None
        split = _split(patch, index, scenario)
        _check_pools(body, index, scenario)
        options.append(Option(index, name, merged, scenario, base_dir, shaping, split=split))
    return _same_kind(options, base_dir)


def _split(patch: Mapping[str, Any], index: int, scenario: Scenario) -> str | None:
    """The option's `split` key, checked: one of SPLITS, for a disaggregated option only
    (default `search`); None for an aggregated one."""
    where = f"plan.options[{index}].{SPLIT_KEY}"
    accepted = "; ".join(f"{k} ({v})" for k, v in SPLITS.items())
    if scenario.pools is None:
        if SPLIT_KEY in patch:
            kind = ("one with deployment.pools (the planner sizes every pool)"
                    if scenario.fleet_pools is not None else "an aggregated option")
            raise InputError(where, patch[SPLIT_KEY], f"no split for {kind}: it says how "
                             "the pools of one with deployment.disaggregation are sized: "
                             f"{accepted}")
        return None
    value = patch.get(SPLIT_KEY, "search")
    if not isinstance(value, str) or value not in SPLITS:
        raise InputError(where, value, f"one of {accepted}")
    return value


def _check_pools(body: Mapping[str, Any], index: int, scenario: Scenario) -> None:
    """A heterogeneous option the split search can size (the module docstring): two pools
    under `pool_split: size`. The error names the option's key when it wrote it."""
    pools = scenario.deployment.pools
    if pools is None:
        return
    block = body.get("deployment")
    written: Mapping[str, Any] = block if isinstance(block, Mapping) else {}

    def where(key: str) -> str:
        return (f"plan.options[{index}].deployment.{key}" if key in written
                else f"deployment.{key}")

    if len(pools) != SIZED_POOLS:
        raise InputError(where("pools"), f"{len(pools)} pool{'s' * (len(pools) > 1)}",
                         f"{SIZED_POOLS} pools in a plan, whose replicas it chooses (one "
                         "pool: write it as the deployment's own keys; more: compare "
                         "fleets with a sweep grid over deployment.pools.N.replicas)")
    if scenario.deployment.pool_split != "size":
        raise InputError(where("pool_split"), scenario.deployment.pool_split,
                         "size in a plan: each pool then serves the prompts its bound gives "
                         "it, so a replica added to either never makes a request wait "
                         "longer; under load an added replica of a slower pool can take a "
                         "request a faster one would have served sooner, and the search "
                         "would not be sound (compare load-split fleets with a sweep grid "
                         "over deployment.pools.N.replicas)")


# `auto_kind` → the profile name that pins that kind of step-time model.
_PINNED = {"measured-operators": "operators", "fitted-roofline": "fitted-roofline",
           "roofline": "roofline"}


def _same_kind(options: list[Option], base_dir: Path) -> list[Option]:
    """Options compared on different kinds of step-time model (measured operators for one
    GPU, a roofline for another) differ by the models' errors as much as by the hardware:
    when `profile: auto` would do that and no option pins a profile, every option gets the
    least measured kind, and the plan's notes say so."""
    if any(o.scenario.profile != "auto" for o in options):
        return options
    kinds = {o.name: max((auto_kind(gpu, o.scenario.layout.engine) for gpu in _gpus(o)),
                         key=AUTO_KINDS.index)
             for o in options}
    if len(set(kinds.values())) < 2:
        return options
    least = max(kinds.values(), key=AUTO_KINDS.index)
    pinned = _PINNED[least]
    note = ("profile: auto would give the options different kinds of step-time model ("
            + ", ".join(f"{name}: {kind}" for name, kind in kinds.items())
            + f"); every option uses {least} (profile: {pinned}) so that they are compared "
            "on the same footing (set profile to choose another)")
    out = []
    for o in options:
        merged = {**o.raw, "profile": pinned}
        scenario = load_scenario(merged, base_dir=base_dir)
        out.append(dataclasses.replace(o, raw=merged, scenario=scenario, profile_note=note))
    return out


def _gpus(option: Option) -> set[str]:
    """The GPUs the option's step-time models are built for: its pools', else its own."""
    pools = option.scenario.pools or option.scenario.fleet_pools
    return {option.scenario.gpu.name} if pools is None else {p.gpu.name for p in pools}


def _with_settings(raw: dict[str, Any], spec: PlanSpec, base_dir: Path) -> dict[str, Any]:
    """The plan's run settings and SLO override applied (and checked) before any option."""
    patch: dict[str, Any] = {k: v for k, v in spec.run.model_dump().items() if v is not None}
    patch.setdefault("warmup_s", AUTO)
    if spec.target.slo is not None:
        patch["slo"] = spec.target.slo
    merged = merge_patch(raw, patch)
    try:
        load_scenario(merged, base_dir=base_dir)
    except InputError as exc:
        head = exc.where.split(".")[0]
        if head == "slo" and spec.target.slo is not None:
            raise InputError("plan.target." + exc.where, exc.value, exc.expected) from None
        if head in patch:
            raise InputError("plan.run." + exc.where, exc.value, exc.expected) from None
        raise
    return merged


def _blame(exc: InputError, patch: Mapping[str, Any], index: int) -> InputError:
    """Name the error under the option when the option set that key (or a key above it)."""
    node: Any = patch
    for part in exc.where.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            break
    else:
        return InputError(f"plan.options[{index}].{exc.where}", exc.value, exc.expected)
    if exc.where.split(".")[0] in patch:
        return InputError(f"plan.options[{index}].{exc.where}", exc.value, exc.expected)
    return InputError(f"plan.options[{index}]", dict(patch), f"{exc.expected} (for "
                      f"{exc.where} = {show(exc.value)} once the option is merged into the "
                      "scenario)")
