"""Reading a team's own benchmark results: `vllm bench serve --save-result` JSON, GuideLLM's
benchmark report JSON and AIPerf's (or GenAI-Perf's) `profile_export*.json`.

Each file becomes one or more `BenchmarkPoint`s: the model the file names, the load (a closed
loop of N clients, or an open loop at a request rate), the mean prompt and output lengths,
and the measured TTFT and TPOT (mean, and median / p99 where the file gives them, in ms) and
output tokens/s. The deployment (GPU, engine, parallelism, precision) is not in these files;
the command takes it from flags (`sim.validation.results_compare`). A load the simulator
cannot reproduce as stated (every request sent at once, a rate *and* a concurrency cap,
evenly spaced arrivals) is kept with the reason in `skip`, never dropped. A file missing what
every point needs (the TTFT, the TPOT, the lengths) is bad input: `InputError` naming the key.

Where each field comes from (the tools' own documentation and source):

* vLLM: `vllm/benchmarks/serve.py` writes `model_id`, `request_rate` (a number, or "inf"),
  `burstiness` (the gamma shape of inter-arrival times; 1 is Poisson), `max_concurrency`
  (null: no cap), `completed`, `total_input_tokens`, `total_output_tokens`,
  `output_throughput` (tokens/s) and `{mean,median,p99}_{ttft,tpot}_ms` (milliseconds).
* GuideLLM (`guidellm/benchmark/schemas`): `benchmarks[]`, each with its scheduling strategy
  (`config.strategy`, `args.strategy` before 0.4: `type_` synchronous | concurrent
  (`streams`) | poisson | constant (`rate`) | throughput) and `metrics.<name>.successful`
  distribution summaries (`mean`, `median`, `percentiles.p99`) of `time_to_first_token_ms`,
  `time_per_output_token_ms`, `prompt_token_count`, `output_token_count` and
  `output_tokens_per_second`; the model in `config.backend.model` (`worker.backend_model`
  before 0.4).
* AIPerf (`docs/reference/json-export-schema.md`) and GenAI-Perf: one stats block per metric
  (`unit`, `avg`, `p50`, `p99`; the unit is authoritative) for `time_to_first_token`,
  `inter_token_latency` (= (request latency − TTFT) / (output tokens − 1), i.e. TPOT),
  `input_sequence_length`, `output_sequence_length` and `output_token_throughput`; the load in
  `input_config.loadgen.{concurrency,request_rate}` (GenAI-Perf: `input_config.concurrency`,
  `input_config.request_rate`) and the model in `input_config.endpoint.model_names`
  (GenAI-Perf: `input_config.model`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import MISSING, InputError

VLLM = "vllm bench serve --save-result JSON"
GUIDELLM = "GuideLLM benchmark report JSON (benchmarks.json)"
AIPERF = "AIPerf / GenAI-Perf profile_export*.json"
FORMATS = (VLLM, GUIDELLM, AIPERF)
# Milliseconds per unit of the time units the AIPerf family writes.
TIME_UNITS_MS = {"ms": 1.0, "s": 1000.0, "sec": 1000.0, "us": 1e-3, "ns": 1e-6}


@dataclass(frozen=True)
class BenchmarkPoint:
    """One measured load point; `measured` holds only what the file gives (metric → value)."""

    id: str
    tool: str  # one of FORMATS
    model: str | None  # as the file names it (a hub path such as org/name), None: not stated
    concurrency: int | None  # closed loop: clients, each sending when its last one finished
    rate_per_s: float | None  # open loop: requests per second
    arrival_cv: float  # of inter-arrival times (1: Poisson)
    prompt_tokens_mean: float
    output_tokens_mean: float
    measured: dict[str, float] = field(default_factory=dict)  # ttft_ms, tpot_ms_p99, …
    skip: str | None = None  # why the load cannot be simulated as stated


# ---- vLLM ----------------------------------------------------------------------------------


def read_vllm(raw: dict[str, Any], path: Path) -> tuple[BenchmarkPoint, ...]:
    """One point: a `--save-result` file holds one run."""
    where = str(path)
    completed = _number(raw, "completed", where, "the number of completed requests")
    if completed <= 0:
        raise InputError(f"{where}: completed", completed, "at least one completed request")
    isl = _number(raw, "total_input_tokens", where, "a token count") / completed
    osl = _number(raw, "total_output_tokens", where, "a token count") / completed
    measured = {
        "ttft_ms": _number(raw, "mean_ttft_ms", where, "the mean TTFT in milliseconds"),
        "tpot_ms": _number(raw, "mean_tpot_ms", where, "the mean TPOT in milliseconds"),
    }
    for key, metric in (("median_ttft_ms", "ttft_ms_median"), ("p99_ttft_ms", "ttft_ms_p99"),
                        ("median_tpot_ms", "tpot_ms_median"), ("p99_tpot_ms", "tpot_ms_p99"),
                        ("output_throughput", "output_tokens_per_s")):
        if raw.get(key) is not None:
            measured[metric] = _number(raw, key, where, "a number")
    rate = raw.get("request_rate", "inf")
    rate_per_s = None if rate in ("inf", None) else _number(raw, "request_rate", where,
                                                             "requests per second, or \"inf\"")
    cap = raw.get("max_concurrency")
    concurrency = None if cap is None else int(_number(raw, "max_concurrency", where,
                                                       "a number of requests, or null"))
    burstiness = raw.get("burstiness", 1.0)
    cv = 1.0 if burstiness is None else 1.0 / math.sqrt(
        _positive(raw, "burstiness", where))  # gamma of shape k: cv = 1 / sqrt(k)
    skip = None
    if rate_per_s is None and concurrency is None:
        skip = ("request_rate inf without max_concurrency: every request sent at once (a "
                "burst, not a steady load)")
    elif rate_per_s is not None and concurrency is not None:
        skip = (f"request_rate {rate_per_s:g}/s capped at max_concurrency {concurrency}: "
                "a capped open loop is not modelled")
    model = raw.get("model_id")
    return (BenchmarkPoint(path.stem, VLLM, model if isinstance(model, str) else None,
                           concurrency if rate_per_s is None else None, rate_per_s, cv, isl,
                           osl, measured, skip),)


# ---- GuideLLM ------------------------------------------------------------------------------


def read_guidellm(raw: dict[str, Any], path: Path) -> tuple[BenchmarkPoint, ...]:
    """One point per entry of `benchmarks` (a sweep writes one per load)."""
    benchmarks = raw["benchmarks"]
    if not benchmarks:
        raise InputError(f"{path}: benchmarks", benchmarks, "a non-empty list of benchmarks")
    report_model = _dig(raw, "args", "model")
    points = []
    for index, bench in enumerate(benchmarks):
        where = f"{path}: benchmarks[{index}]"
        if not isinstance(bench, dict):
            raise InputError(where, bench, "a mapping with `metrics`")
        metrics = bench.get("metrics", MISSING)
        if not isinstance(metrics, dict):
            raise InputError(f"{where}.metrics", metrics, "a mapping of metric summaries")
        strategy = _dig(bench, "config", "strategy") or _dig(bench, "args", "strategy") or {}
        kind = strategy.get("type_") if isinstance(strategy, dict) else None
        concurrency, rate_per_s, skip = _guidellm_load(kind, strategy, where)
        ttft = _summary(metrics, "time_to_first_token_ms", where)
        tpot = _summary(metrics, "time_per_output_token_ms", where)
        measured = _latencies(ttft, tpot, "mean", "median")
        if isinstance(metrics.get("output_tokens_per_second"), dict):
            measured["output_tokens_per_s"] = _summary(metrics, "output_tokens_per_second",
                                                       where)["mean"]
        model = (_dig(bench, "config", "backend", "model") or _dig(bench, "worker",
                                                                   "backend_model")
                 or report_model)
        label = kind or "unknown"
        load = "" if concurrency is None and rate_per_s is None else \
            f"-{concurrency}" if concurrency is not None else f"-{rate_per_s:g}"
        points.append(BenchmarkPoint(
            f"{path.stem}/{index}-{label}{load}", GUIDELLM,
            model if isinstance(model, str) else None, concurrency, rate_per_s, 1.0,
            _summary(metrics, "prompt_token_count", where)["mean"],
            _summary(metrics, "output_token_count", where)["mean"], measured, skip))
    return tuple(points)


def _guidellm_load(kind: Any, strategy: Any,
                   where: str) -> tuple[int | None, float | None, str | None]:
    """(concurrency, rate, skip) of a GuideLLM strategy."""
    if kind == "synchronous":
        return 1, None, None
    if kind == "concurrent":
        streams = strategy.get("streams")
        if not _is_number(streams) or streams < 1:
            raise InputError(f"{where}.config.strategy.streams", streams, "a count ≥ 1")
        return int(streams), None, None
    if kind == "poisson":
        rate = strategy.get("rate")
        if not _is_number(rate) or rate <= 0:
            raise InputError(f"{where}.config.strategy.rate", rate, "requests per second > 0")
        return None, float(rate), None
    if kind == "constant":
        return None, None, "constant-rate (evenly spaced) arrivals not modelled"
    if kind == "throughput":
        return None, None, "throughput strategy (as many requests as possible) not modelled"
    return None, None, f"scheduling strategy {kind!r} not understood"


def _summary(metrics: dict[str, Any], name: str, where: str) -> dict[str, float]:
    """mean, median and p99 of a metric's `successful` requests (those it states)."""
    block = metrics.get(name, MISSING)
    successful = block.get("successful", MISSING) if isinstance(block, dict) else MISSING
    if not isinstance(successful, dict) or not _is_number(successful.get("mean")):
        raise InputError(f"{where}.metrics.{name}.successful.mean",
                         successful.get("mean", MISSING) if isinstance(successful, dict)
                         else block, "a number (GuideLLM writes it for every run)")
    out = {"mean": float(successful["mean"])}
    if _is_number(successful.get("median")):
        out["median"] = float(successful["median"])
    p99 = _dig(successful, "percentiles", "p99")
    if _is_number(p99):
        out["p99"] = float(p99)
    return out


# ---- AIPerf / GenAI-Perf -------------------------------------------------------------------


def aiperf_blocks(raw: dict[str, Any]) -> dict[str, Any]:
    """The metric blocks: at the top level, or under `records` in early AIPerf files."""
    records = raw.get("records")
    return records if isinstance(records, dict) else raw


def read_aiperf(raw: dict[str, Any], path: Path) -> tuple[BenchmarkPoint, ...]:
    """One point: an export holds one profile run."""
    where = str(path)
    blocks = aiperf_blocks(raw)
    ttft = _stats_ms(blocks, "time_to_first_token", where)
    tpot = _stats_ms(blocks, "inter_token_latency", where)
    measured = _latencies(ttft, tpot, "avg", "p50")
    throughput = blocks.get("output_token_throughput")
    if isinstance(throughput, dict) and _is_number(throughput.get("avg")):
        measured["output_tokens_per_s"] = float(throughput["avg"])
    config = _mapping(raw.get("input_config"))
    loadgen = _mapping(config.get("loadgen")) or config
    concurrency: Any = loadgen.get("concurrency")
    rate: Any = loadgen.get("request_rate")
    skip = None
    if _is_number(rate) and rate > 0:
        if _is_number(concurrency) and concurrency > 0:
            skip = (f"request_rate {rate:g}/s capped at concurrency {concurrency:g}: a capped "
                    "open loop is not modelled")
        concurrency = None
    elif _is_number(concurrency) and concurrency >= 1:
        rate = None
    else:
        concurrency, rate = None, None
        skip = "input_config states neither a concurrency nor a request rate"
    return (BenchmarkPoint(
        path.stem, AIPERF, _aiperf_model(config), None if concurrency is None
        else int(concurrency), None if rate is None else float(rate), 1.0,
        _stats(blocks, "input_sequence_length", where)["avg"],
        _stats(blocks, "output_sequence_length", where)["avg"], measured, skip),)


def _aiperf_model(config: dict[str, Any]) -> str | None:
    names = _dig(config, "endpoint", "model_names") or config.get("model")
    if isinstance(names, list) and names and isinstance(names[0], str):
        return names[0]
    return names if isinstance(names, str) else None


def _stats(blocks: dict[str, Any], name: str, where: str) -> dict[str, float]:
    block = blocks.get(name, MISSING)
    if not isinstance(block, dict) or not _is_number(block.get("avg")):
        raise InputError(f"{where}: {name}.avg",
                         block.get("avg", MISSING) if isinstance(block, dict) else block,
                         "a number (a streaming run's export has it)")
    return {k: float(block[k]) for k in ("avg", "p50", "p99") if _is_number(block.get(k))}


def _stats_ms(blocks: dict[str, Any], name: str, where: str) -> dict[str, float]:
    """A latency block in milliseconds, whatever unit it states."""
    stats = _stats(blocks, name, where)
    unit = blocks[name].get("unit", "ms")
    if unit not in TIME_UNITS_MS:
        raise InputError(f"{where}: {name}.unit", unit, "one of " + ", ".join(TIME_UNITS_MS))
    return {k: v * TIME_UNITS_MS[unit] for k, v in stats.items()}


# ---- values --------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and \
        math.isfinite(value)


def _number(raw: dict[str, Any], key: str, where: str, expected: str) -> float:
    value = raw.get(key, MISSING)
    if not _is_number(value) or value < 0:
        raise InputError(f"{where}: {key}", value, f"{expected} (a finite number ≥ 0)")
    return float(value)


def _positive(raw: dict[str, Any], key: str, where: str) -> float:
    value = _number(raw, key, where, "a number > 0")
    if value <= 0:
        raise InputError(f"{where}: {key}", value, "a number > 0")
    return value


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dig(raw: Any, *keys: str) -> Any:
    """raw[k1][k2]…, or None where a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(raw, dict):
            return None
        raw = raw.get(key)
    return raw


def _latencies(ttft: dict[str, float], tpot: dict[str, float], mean_key: str,
               median_key: str) -> dict[str, float]:
    """The compared TTFT and TPOT figures (ms) from one tool's summaries: the mean, and the
    median and p99 where the tool gives them, under the tool's own key names."""
    measured = {"ttft_ms": ttft[mean_key], "tpot_ms": tpot[mean_key]}
    for metric, stats in (("ttft_ms", ttft), ("tpot_ms", tpot)):
        if median_key in stats:
            measured[f"{metric}_median"] = stats[median_key]
        if "p99" in stats:
            measured[f"{metric}_p99"] = stats["p99"]
    return measured
