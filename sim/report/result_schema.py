"""The schema of what a report reads from result files, and the walk that checks a file
against it (`sim.report.load` reads the files; this says what a valid one holds).

A handful of node types: mappings may hold more keys than listed (the files carry more than
the report shows); listed keys are required unless `optional`. A wrong type, a missing key
or a string where a number belongs is refused with the file and the key path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sim.errors import MISSING, InputError

MAX_DEPTH = 64  # nesting of a result file: a scenario is a handful of levels deep


@dataclass(frozen=True)
class Num:
    """A JSON number (never a boolean), finite, within [low, high]; `integer`: whole."""

    nullable: bool = False
    low: float | None = None
    high: float | None = None
    integer: bool = False

    def words(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.low is not None and self.high is not None:
            kind += f" from {self.low:g} to {self.high:g}"
        elif self.low is not None:
            kind += f" ≥ {self.low:g}"
        return kind + (" or null" if self.nullable else "")


@dataclass(frozen=True)
class Text:
    nullable: bool = False
    scalar: bool = False  # a number will do too (a period named 2027)

    def words(self) -> str:
        return ("a string or a number" if self.scalar else "a string") + \
            (" or null" if self.nullable else "")


@dataclass(frozen=True)
class Flag:
    nullable: bool = False

    def words(self) -> str:
        return "true or false" + (" or null" if self.nullable else "")


@dataclass(frozen=True)
class Anything:
    def words(self) -> str:
        return "any JSON value"


@dataclass(frozen=True)
class Obj:
    fields: Mapping[str, Any] = field(default_factory=dict)
    optional: frozenset[str] = frozenset()
    nullable: bool = False

    def words(self) -> str:
        return "a mapping" + (" or null" if self.nullable else "")


@dataclass(frozen=True)
class MapOf:
    value: Any
    nullable: bool = False

    def words(self) -> str:
        return "a mapping" + (" or null" if self.nullable else "")


@dataclass(frozen=True)
class Seq:
    item: Any
    min_items: int = 0
    nullable: bool = False

    def words(self) -> str:
        return "a list" if not self.min_items else f"a list of at least {self.min_items}"


def _opt(fields: Mapping[str, Any], *required: str, nullable: bool = False) -> Obj:
    """A mapping whose keys are all optional but `required`."""
    return Obj(fields, frozenset(fields) - set(required), nullable)


COST = Num(nullable=True, low=0)
SECONDS = Num(nullable=True, low=0)
FRACTION = Num(nullable=True, low=0, high=1)
CI95 = Seq(Num(low=0, high=1), 2, nullable=True)  # a 95% interval [low, high] of a probability
LAYOUT_KEYS = {"gpus_per_replica": Num(low=1, integer=True),
               "expert_parallel": Num(low=1, integer=True),
               "data_parallel_attention": Num(low=1, integer=True), "engine": Text(),
               "kv_cache_dtype": Text()}
PERCENTILES = _opt({"mean": SECONDS, "p50": SECONDS, "p90": SECONDS, "p99": SECONDS})
PROFILE = _opt({"name": Text(nullable=True, scalar=True), "source": Text(),
                "fit_error_pct": Num(nullable=True, low=0), "step_time_scale": Num(low=0)})
SLO_CONFIG = _opt({"ttft_s": SECONDS, "tpot_s": SECONDS, "itl_s": SECONDS,
                   "percentile": Num(low=0, high=100)})
SCENARIO_CONFIG = _opt({"slo": SLO_CONFIG, "cost": Obj(), "deployment": Obj()})
POOL = Obj({"replicas": Num(low=1, integer=True), "gpus": Num(low=1, integer=True),
            "busy_fraction": FRACTION, "batch_size_mean": Num(low=0),
            "kv_cache_fraction_mean": Num(low=0)})  # a disaggregated run's pool

RUN = _opt({
    "scenario": Text(scalar=True),
    # itl (and the SLO's itl_met, itl_s) came later: older result files lack them.
    "latency_s": _opt({"ttft": PERCENTILES, "tpot": PERCENTILES, "e2e": PERCENTILES,
                       "queue": PERCENTILES, "itl": PERCENTILES}, "ttft", "tpot", "e2e"),
    "slo": _opt({"met": Flag(nullable=True), "ttft_met": Flag(nullable=True),
                 "tpot_met": Flag(nullable=True), "itl_met": Flag(nullable=True),
                 "attainment": FRACTION, "ttft_s": SECONDS, "tpot_s": SECONDS,
                 "itl_s": SECONDS, "percentile": Num(low=0, high=100)}, "met", "attainment"),
    # cached_input: only a run with a prefix cache has it.
    "cost": _opt({"fleet_usd_per_hour": COST, "gpu_hour_usd_by_item": MapOf(COST),
                  "usd_per_million_tokens": _opt({"input": COST, "cached_input": COST,
                                                  "output": COST, "blended": COST},
                                                 "input", "output", "blended"),
                  "usd_per_million_tokens_at_capacity": _opt({"input": COST,
                                                              "cached_input": COST,
                                                              "output": COST,
                                                              "blended": COST}),
                  "usd_per_million_tokens_capacity_split": _opt({"input": COST,
                                                                 "cached_input": COST,
                                                                 "output": COST})},
                 "fleet_usd_per_hour", "usd_per_million_tokens"),
    # Headroom keys came later than busy_fraction: older result files lack them.
    "utilization": _opt({"busy_fraction": Num(low=0),
                         "offered_requests_per_s": Num(low=0),
                         "capacity_requests_per_s": Num(nullable=True, low=0),
                         "load_fraction": Num(nullable=True, low=0),
                         "capacity_used_fraction": Num(low=0),
                         "mfu": Num(nullable=True, low=0), "mbu": Num(nullable=True, low=0)},
                        "busy_fraction"),
    # The layout keys beside tensor_parallel came later: older result files lack them.
    "fleet": Obj({"replicas": Num(low=0, integer=True), "gpus": Num(low=0),
                  "tensor_parallel": Num(low=1, integer=True), "model": Text(), "gpu": Text(),
                  **LAYOUT_KEYS}, frozenset(LAYOUT_KEYS)),
    "profile": PROFILE,
    "sim": _opt({"mode": Text()}),
    "provenance": _opt({"scenario": SCENARIO_CONFIG}),
    # Only a session workload's result has it.
    "sessions": Obj({"started": Num(low=0, integer=True),
                     "completed": Num(low=0, integer=True), "turns_mean": Num(low=0),
                     "prompt_tokens_mean_by_turn": Seq(Num(low=0)),
                     "truncated_turns": Num(low=0, integer=True)}),
    # Older result files lack it, and its `enabled`.
    "prefix_cache": Obj({"enabled": Flag(), "hit_ratio": FRACTION,
                         "hit_tokens": Num(low=0, integer=True),
                         "evicted_blocks": Num(low=0, integer=True),
                         "reloaded_tokens": Num(low=0, integer=True)},
                        frozenset({"enabled", "reloaded_tokens"})),
    # Only a run with speculative decoding has it.
    "speculative": Obj({"method": Text(), "num_tokens": Num(low=1, integer=True),
                        "acceptance_rate": Anything(), "draft_model": Text(),
                        "tokens_per_step": Num(low=1)}, frozenset({"draft_model"})),
    # Only a disaggregated run has it.
    "disaggregation": Obj({"prefill": POOL, "decode": POOL,
                           "kv_transfer": Obj({"mean_s": SECONDS, "p99_s": SECONDS,
                                               "bytes": Num(low=0)})}),
    # Only a run of a heterogeneous fleet (`deployment.pools`) has it: one entry a pool.
    "pools": Seq(Obj({"name": Text(), "gpu": Text(), "replicas": Num(low=0, integer=True),
                      "gpus": Num(low=0, integer=True), "gpu_hour_usd": COST,
                      "usd_per_hour": COST, "requests_measured": Num(low=0, integer=True),
                      "busy_fraction": Num(low=0), "batch_size_mean": Num(low=0),
                      "kv_cache_fraction_mean": Num(low=0), "ttft_mean_s": SECONDS,
                      "ttft_p99_s": SECONDS, "tpot_mean_s": SECONDS, "tpot_p99_s": SECONDS}),
                 1),
}, "latency_s", "slo", "cost", "utilization", "fleet", "profile", "sim")

BAND = Obj({q: COST for q in ("p5", "p25", "p50", "p75", "p95")})
LATENCY_BAND = Obj({q: SECONDS for q in ("p5", "p50", "p95")})
POINT = _opt({
    "point": Num(low=0, integer=True),
    "runs": Num(low=0, integer=True),
    "utilization": Num(low=0),
    "workload.arrival.rate_per_s": Num(nullable=True, low=0),
    "usd_per_million_tokens": Obj({"blended": BAND, "goodput": BAND}),
    "ttft_p99_s": LATENCY_BAND,
    "tpot_p99_s": LATENCY_BAND,
    "slo_met_probability": FRACTION,
    "slo_met_probability_ci": CI95,
    "slo_feasible": Flag(),
    "convergence": Obj({"half_width_pct": Num(nullable=True, low=0), "converged": Flag(),
                        "replications_for_2pct": Num(nullable=True, low=0)}),
}, "point", "runs", "usd_per_million_tokens", "ttft_p99_s", "tpot_p99_s",
    "slo_met_probability", "slo_feasible", "convergence")
SUMMARY = _opt({
    "scenario": Text(scalar=True),
    "seed": Num(low=0, integer=True),
    "replications": Num(low=1, integer=True),
    "sampling": Text(),
    "sweep": Obj({"axis": Text(), "keys": Seq(Text(), 1)}),
    "slo_confidence": Num(low=0, high=1),
    "capacity": _opt({"requests_per_s": Num(low=0)}, "requests_per_s", nullable=True),
    "uncertainty": MapOf(Obj()),
    # where the default step_time_scale came from (sim.montecarlo.model_error); null if not
    "model_error": _opt({"family": Text(), "n": Num(low=0, integer=True),
                         "sigma_log": Num(low=0)}, "family", "n", "sigma_log", nullable=True),
    "notes": Seq(Text()),
    "warnings": Seq(Text()),
    "points": Seq(POINT, 1),
}, "scenario", "seed", "replications", "sampling", "sweep", "slo_confidence", "uncertainty",
    "points")
MANIFEST = _opt({
    "scenario_config": _opt({**SCENARIO_CONFIG.fields}, "slo"),
    "profile": PROFILE,
    "columns": Seq(Text(), 1),
}, "scenario_config", "columns")

OPTION = _opt({
    "option": Text(),
    "replicas": Num(nullable=True, low=0, integer=True),
    "gpus": Num(nullable=True, low=0),
    "usd_per_month": COST,
    "slo_met_probability": FRACTION,
    "slo_met_probability_ci": CI95,
    "draws": Num(nullable=True, low=1, integer=True),
    "usd_per_million_tokens": _opt({"p50": COST, "p95": COST}, nullable=True),
    "split": Text(nullable=True),  # a disaggregated option's prefill:decode split, "1P:2D"
    "prefill_replicas": Num(nullable=True, low=1, integer=True),
    "decode_replicas": Num(nullable=True, low=1, integer=True),
    # a heterogeneous option's replicas per pool, {chat: 2, documents: 1}
    "pools": MapOf(Num(low=1, integer=True), nullable=True),
}, "option", "replicas", "gpus", "usd_per_month", "slo_met_probability")
PLAN = _opt({
    "scenario": Text(scalar=True),
    "target": _opt({"confidence": FRACTION}, nullable=True),
    "periods": Seq(_opt({"period": Text(scalar=True), "options": Seq(OPTION, 1),
                         "recommended": Text(nullable=True),
                         "peak_rate_per_s": Num(nullable=True, low=0)}, "period", "options"),
                   1),
    "profile": PROFILE,
    "scenario_config": _opt({"cost": Obj()}),
}, "periods")


def walk(schema: Any, value: Any, path: str, where: str) -> None:
    """Check `value` against `schema`; refuse naming `where` (the file) and the key path."""

    def refuse(found: Any, expected: str) -> None:
        raise InputError(f"{where}: {path or '(top level)'}", found, expected)

    if value is None and getattr(schema, "nullable", False):
        return
    if isinstance(schema, Anything):
        return
    if isinstance(schema, Num):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or (schema.integer and not float(value).is_integer()) \
                or (schema.low is not None and value < schema.low) \
                or (schema.high is not None and value > schema.high):
            refuse(value, schema.words())
    elif isinstance(schema, Text):
        ok = isinstance(value, str) or (schema.scalar and isinstance(value, int | float)
                                        and not isinstance(value, bool))
        if not ok:
            refuse(value, schema.words())
    elif isinstance(schema, Flag):
        if not isinstance(value, bool):
            refuse(value, schema.words())
    elif isinstance(schema, Obj):
        if not isinstance(value, dict):
            refuse(value, schema.words())
        for key, child in schema.fields.items():
            if key not in value:
                if key not in schema.optional:
                    raise InputError(f"{where}: {_join(path, key)}", MISSING,
                                     "present (the documented result keys)")
                continue
            walk(child, value[key], _join(path, key), where)
    elif isinstance(schema, MapOf):
        if not isinstance(value, dict):
            refuse(value, schema.words())
        for key, child in value.items():
            walk(schema.value, child, _join(path, key), where)
    elif isinstance(schema, Seq):
        if not isinstance(value, list) or len(value) < schema.min_items:
            refuse(value, schema.words())
        for i, item in enumerate(value):
            walk(schema.item, item, f"{path}[{i}]", where)
    else:  # pragma: no cover - a schema node this walker does not know
        raise TypeError(f"unknown schema node {schema!r}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def finite_everywhere(data: Any, where: str) -> None:
    """No NaN or infinity anywhere (Python's JSON reader accepts both, and 1e999 becomes
    infinity), and no nesting deeper than MAX_DEPTH (the report walks a scenario
    recursively): the key path of the first offender. Iterative, so any depth the JSON
    reader accepted is walked without recursion."""
    stack: list[tuple[str, Any, int]] = [("", data, 0)]
    while stack:
        path, value, depth = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{where}: {path or '(top level)'}", value,
                             "a finite number (JSON has no NaN or infinity)")
        if isinstance(value, dict | list) and depth >= MAX_DEPTH:
            raise InputError(f"{where}: {path}", f"nested {depth} levels deep",
                             f"at most {MAX_DEPTH} levels of nesting")
        if isinstance(value, dict):
            stack.extend((_join(path, str(k)), v, depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", v, depth + 1) for i, v in enumerate(value))
