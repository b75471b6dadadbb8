"""From a published measurement row to a simulation set-up, or a reason it cannot be simulated.

A published row describes a benchmark in the words of its source ("Llama-3.3-70B-Instruct",
"H100", "TP2", "FP8", "unbounded (all requests queued)"). This module translates those words
into catalogue keys and deployment settings, and writes down every assumption the translation
needed (an unstated precision, an engine's default batch limit, a closed loop approximated by
an open one) so the comparison can be read with them in view. A row the simulator does not
model (FP4, expert parallelism, dataset-defined lengths, a model not in the catalogue) raises
`Uncovered` with the reason; the caller reports it as skipped rather than dropping it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, TypeGuard

from sim.hardware import catalog


class Uncovered(Exception):
    """The catalogue or the simulator does not cover this row; the message says why."""


# (pattern on the published model name, catalogue key, note). Fine-tunes and quantised
# checkpoints share their base model's architecture, so the suffixes are ignored.
_SUFFIX = r"(-instruct)?(-fp8)?"
MODELS: tuple[tuple[str, str, str | None], ...] = (
    (rf"(meta-)?llama-3\.1-8b{_SUFFIX}", "llama-3.1-8b", None),
    (rf"(meta-)?llama-3\.1-70b{_SUFFIX}", "llama-3.1-70b", None),
    (rf"(meta-)?llama-3\.3-70b{_SUFFIX}", "llama-3.1-70b",
     "Llama-3.3-70B simulated as llama-3.1-70b (same architecture)"),
    (rf"(meta-)?llama-3\.1-405b{_SUFFIX}", "llama-3.1-405b", None),
    (r"(meta-)?llama-2-7b(-chat)?(-hf)?", "llama-2-7b", None),
    (r"(meta-)?llama-2-70b(-chat)?(-hf)?", "llama-2-70b", None),
    (r"mixtral-8x7b(-instruct)?(-v0\.1)?", "mixtral-8x7b", None),
    (rf"qwen2\.5-72b{_SUFFIX}", "qwen2.5-72b", None),
)

GPUS = {
    "H100": ("h100-sxm", "H100 taken as the SXM 80 GB part"),
    "H200": ("h200", None),
    "B200": ("b200", None),
    "GB200": ("gb200", None),
    "A100-80GB": ("a100-80gb", None),
    "L40S": ("l40s", None),
    "MI300X": ("mi300x", None),
    "MI325X": ("mi325x", None),
}


@dataclass(frozen=True)
class EngineDefaults:
    """Batch limits an engine uses when the benchmark does not set them (stated, not known)."""

    family: str
    max_num_seqs: int
    max_batched_tokens: int


ENGINES = {
    "TensorRT-LLM": EngineDefaults("TensorRT-LLM", 2048, 16384),
    "vLLM": EngineDefaults("vLLM", 256, 8192),
    "SGLang": EngineDefaults("SGLang", 256, 8192),
    "other": EngineDefaults("other", 256, 8192),
}

DEFAULT_LENGTH_SIGMA = 1.0  # log-space spread for lengths given only as means


@dataclass(frozen=True)
class RowSetup:
    """Everything needed to build the scenario for one row, plus what was assumed."""

    row_id: str
    model: str
    gpu: str
    tensor_parallel: int
    replicas: int
    dtype: str
    prompt_tokens: dict[str, Any]  # a scenario length spec
    output_tokens: dict[str, Any]
    mean_prompt_tokens: float
    mean_output_tokens: float
    load: str  # offline (overloaded) | closed (N in flight, approximated) | poisson
    concurrency: int | None  # closed: requests in flight over the whole fleet
    rate_per_s: float | None  # poisson: arrival rate
    policy: str
    max_num_seqs: int
    max_batched_tokens: int
    assumptions: tuple[str, ...]


def engine_family(row: dict[str, Any]) -> str:
    text = str(row.get("engine", "")).lower()
    if "tensorrt" in text:
        return "TensorRT-LLM"
    if "vllm" in text:
        return "vLLM"
    if "sglang" in text:
        return "SGLang"
    return "other"


def setup_for_row(row: dict[str, Any]) -> RowSetup:
    """Translate one row; raise `Uncovered` naming the first thing the simulator lacks."""
    notes: list[str] = []
    model = _model(row.get("model"), notes)
    gpu = _gpu(row.get("gpu"), notes)
    dtype = _dtype(row.get("precision"), notes)
    tp = _tensor_parallel(row.get("parallelism"))
    gpu_count = row.get("gpu_count")
    if not _is_count(gpu_count) or gpu_count % tp:
        raise Uncovered(f"gpu_count {gpu_count!r} is not a multiple of TP{tp}")
    replicas = gpu_count // tp
    if replicas > 1:
        notes.append("replicas = gpu_count / TP, least-loaded routing")
    prompt, output, mean_in, mean_out = _lengths(row, model, notes)
    engine = ENGINES[engine_family(row)]
    if engine.family == "other":
        notes.append(f"engine {row.get('engine')!r}: vLLM-like limits assumed")
    load, concurrency, rate = _load(row)
    policy, max_seqs, max_tokens = _scheduler(row, engine, load, concurrency, replicas, prompt,
                                              notes)
    return RowSetup(row["id"], model, gpu, tp, replicas, dtype, prompt, output, mean_in, mean_out,
                load, concurrency, rate, policy, max_seqs, max_tokens, tuple(notes))


# ---- one field each ------------------------------------------------------------------------


def _model(name: Any, notes: list[str]) -> str:
    text = str(name).strip()
    for pattern, key, note in MODELS:
        if re.fullmatch(pattern, text, flags=re.IGNORECASE):
            if note:
                notes.append(note)
            return key
    raise Uncovered(f"model {text!r} not in the catalogue")


def _gpu(name: Any, notes: list[str]) -> str:
    key, note = GPUS.get(str(name).strip(), (None, None))
    if key is None:
        raise Uncovered(f"GPU {name!r} not in the catalogue")
    if note:
        notes.append(note)
    return key


def _dtype(precision: Any, notes: list[str]) -> str:
    text = str(precision).strip()
    upper = text.upper()
    if "FP4" in upper:
        raise Uncovered("FP4 not modelled")
    if upper == "FP8":
        return "fp8"
    if upper.startswith("BF16") and "NOT STATED" in upper:
        notes.append("precision not stated: BF16 assumed")
        return "bf16"
    if upper == "BF16":
        return "bf16"
    if upper in ("FP16", "BF16/FP16"):
        notes.append(f"{text} run as bf16 (same bytes and tensor-core peak)")
        return "bf16"
    raise Uncovered(f"precision {text!r} not modelled")


def _tensor_parallel(parallelism: Any) -> int:
    text = str(parallelism).strip()
    match = re.fullmatch(r"TP\s*(\d+)", text, flags=re.IGNORECASE)
    if match and int(match.group(1)) >= 1:
        return int(match.group(1))
    if re.search(r"\b(PP|EP|DP)\s*\d", text, flags=re.IGNORECASE):
        raise Uncovered(f"pipeline/expert/data parallelism not modelled ({text})")
    raise Uncovered(f"parallelism {text!r} not understood (expected TP<k>)")


def _lengths(row: dict[str, Any], model: str,
             notes: list[str]) -> tuple[dict[str, Any], dict[str, Any], float, float]:
    isl, osl = row.get("isl"), row.get("osl")
    if _is_count(isl) and _is_count(osl):
        context = catalog.models()[model].max_context
        if isl + osl > context:
            raise Uncovered(f"isl + osl = {isl + osl} exceeds {model}'s context of {context}")
        return {"dist": "fixed", "value": isl}, {"dist": "fixed", "value": osl}, isl, osl
    mean_in, mean_out = row.get("isl_mean"), row.get("osl_mean")
    if not (_is_positive(mean_in) and _is_positive(mean_out)):
        raise Uncovered(f"lengths not fixed (isl {isl!r}, osl {osl!r}) and no isl_mean/osl_mean "
                        "stated")
    sigma_in = row.get("isl_sigma", DEFAULT_LENGTH_SIGMA)
    sigma_out = row.get("osl_sigma", DEFAULT_LENGTH_SIGMA)
    if not (is_number(sigma_in) and is_number(sigma_out)) or min(sigma_in, sigma_out) < 0:
        raise Uncovered(f"length sigmas {sigma_in!r}, {sigma_out!r} not numbers ≥ 0")
    notes.append(f"variable lengths as lognormal: prompt mean {mean_in:g} (σ {sigma_in:g}), "
                 f"output mean {mean_out:g} (σ {sigma_out:g})")
    return ({"dist": "lognormal", "mean": mean_in, "sigma": sigma_in},
            {"dist": "lognormal", "mean": mean_out, "sigma": sigma_out},
            float(mean_in), float(mean_out))


def _load(row: dict[str, Any]) -> tuple[str, int | None, float | None]:
    rate = row.get("request_rate_per_s")
    concurrency = row.get("concurrency")
    if rate is not None:
        if rate == "inf" or (is_number(rate) and math.isinf(rate)):
            return "offline", None, None
        if _is_positive(rate):
            return "poisson", None, float(rate)
        raise Uncovered(f"request rate {rate!r} not understood")
    if _is_count(concurrency):
        return "closed", concurrency, None
    text = f"{concurrency} {row.get('scenario', '')}".lower()
    if "unbounded" in text or "offline" in text:
        return "offline", None, None
    raise Uncovered(f"concurrency {concurrency!r} not understood")


def _scheduler(row: dict[str, Any], engine: EngineDefaults, load: str,
               concurrency: int | None, replicas: int, prompt: dict[str, Any],
               notes: list[str]) -> tuple[str, int, int]:
    """Policy, max_num_seqs and max_batched_tokens for the row, with the reasons noted."""
    batch = row.get("batch_size")
    cap_match = re.search(r"<=\s*(\d+)", batch) if isinstance(batch, str) else None
    engine_cap = int(cap_match.group(1)) if cap_match else engine.max_num_seqs
    static = "static" in f"{row.get('scenario', '')} {row.get('engine', '')}".lower()
    if _is_count(batch):
        max_seqs, why = batch, "max_num_seqs = the row's batch size"
    elif load == "closed":
        assert concurrency is not None  # _load: a closed loop comes with its concurrency
        max_seqs = min(math.ceil(concurrency / replicas), engine_cap)
        why = f"max_num_seqs = concurrency per replica (at most {engine_cap})"
    else:
        max_seqs = engine_cap
        why = (f"max_num_seqs {engine_cap} ({'stated' if cap_match else 'assumed'} "
               f"{engine.family} limit)")
    if load == "closed":
        notes.append(f"closed loop approximated by an overloaded queue, {why}; TTFT from "
                     "admission (queue excluded)")
    elif load == "offline":
        notes.append(f"offline: overloaded Poisson arrivals, {why}")
    else:
        notes.append(f"Poisson arrivals at the row's rate, {why}")
    if static:
        prompt_len = prompt.get("value", 1)
        notes.append("static batching: whole batch prefilled in one step")
        return "static", max_seqs, max(max_seqs * prompt_len, 1)
    notes.append(f"chunked prefill, max_batched_tokens {engine.max_batched_tokens} "
                 f"(assumed {engine.family} default)")
    return "chunked-prefill", max_seqs, engine.max_batched_tokens


# ---- what was measured --------------------------------------------------------------------

# Latency fields compared, and the statistic of the simulated per-request values each means.
LATENCY_FIELDS = {
    "ttft_ms": ("ttft", "mean"), "ttft_ms_median": ("ttft", "p50"), "ttft_ms_p99": ("ttft", "p99"),
    "tpot_ms": ("tpot", "mean"), "tpot_ms_median": ("tpot", "p50"), "tpot_ms_p99": ("tpot", "p99"),
}
THROUGHPUT = "output_tokens_per_s"


@dataclass(frozen=True)
class Measured:
    """One measured metric of a row; `skip` says why it cannot be compared (None: it can)."""

    metric: str
    value: float | None
    skip: str | None = None
    note: str | None = None


def measured_metrics(row: dict[str, Any]) -> list[Measured]:
    """The row's comparable metrics; a row with none still yields one entry saying so."""
    found = []
    total = row.get("output_tokens_per_s_total")
    reported = row.get("output_tokens_per_s_reported")
    if total is not None:
        found.append(_value(THROUGHPUT, total))
    elif reported is not None:
        if row.get("gpu_count") == 1:
            found.append(_value(THROUGHPUT, reported, "throughput reported without saying per "
                                "GPU or total; one GPU, so the same"))
        else:
            found.append(Measured(THROUGHPUT, _number_or_none(reported),
                                  "throughput unit ambiguous (per GPU or total not stated) on a "
                                  "multi-GPU row"))
    for name in LATENCY_FIELDS:
        if row.get(name) is not None:
            found.append(_value(name, row[name]))
    return found or [Measured("-", None, "no measured metric the simulator can compare")]


def _value(metric: str, value: Any, note: str | None = None) -> Measured:
    if _is_positive(value):
        return Measured(metric, float(value), None, note)
    return Measured(metric, _number_or_none(value), f"measured value {value!r} is not a number > 0")


def _number_or_none(value: Any) -> float | None:
    return float(value) if is_number(value) else None


# ---- value checks --------------------------------------------------------------------------


def is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_positive(value: object) -> TypeGuard[float]:
    return is_number(value) and math.isfinite(value) and value > 0


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
