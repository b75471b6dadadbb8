"""From a published measurement row to a simulation set-up, or a reason it cannot be simulated.

A published row describes a benchmark in the words of its source ("Llama-3.3-70B-Instruct",
"H100", "TP4 EP4", "NVFP4", "unbounded (all requests queued)"). This module translates those
words into a model (a catalogue key or a `--models DIR` config, found the way the measured-row
CSV path finds them: `silicon_mapping.ModelFinder`), a catalogue GPU and a replica's layout
(engine, parallelism, formats), and writes down every assumption the translation needed (an
unstated precision, an engine's default batch limit, a closed loop approximated by an open
one) so the comparison can be read with them in view. Lengths are fixed, given as means, or
those of the public dataset the row was measured on (`sim.validation.datasets`). A row the
simulator does not model (pipeline parallelism, a dataset with no length table, a model found
nowhere) raises `Uncovered` with the reason; the caller reports it as skipped rather than
dropping it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, TypeGuard

from sim.hardware.catalog import ModelSpec
from sim.validation.datasets import TABLES, dataset_of, lengths_for
from sim.validation.engine_versions import V0Defaults, vllm_v0
from sim.validation.silicon_mapping import ModelFinder, Skip


class Uncovered(Exception):
    """The catalogue or the simulator does not cover this row; the message says why."""


# Published names whose model goes by another name (after an MLPerf benchmark's description
# in parentheses is dropped): (pattern, the name to look up, note). Names that differ from a
# catalogue key or a config's name only by checkpoint suffixes (-Instruct, -FP8, …) need no
# entry: the lookup drops those itself.
ALIASES: tuple[tuple[str, str, str | None], ...] = (
    (r"(meta-)?llama-3\.3-70b(-instruct)?(-fp8)?", "llama-3.1-70b",
     "Llama-3.3-70B simulated as llama-3.1-70b (identical shapes: 80 layers, hidden 8192, "
     "64 query / 8 KV heads, FFN 28672, vocab 128256)"),
    (r"hermes-3-llama-3\.1-405b(-fp8)?", "llama-3.1-405b",
     "Hermes-3-Llama-3.1-405B simulated as llama-3.1-405b (a fine-tune, same architecture)"),
    (r"(meta-)?llama-?2-7b(-chat)?(-hf)?(-99(\.9)?)?", "llama-2-7b", None),
    (r"(meta-)?llama-?2-70b(-chat)?(-hf)?(-99(\.9)?)?", "llama-2-70b", None),
    (r"llama3\.1-(8b|70b|405b)(-instruct)?(-99(\.9)?)?", "llama-3.1-{0}", None),
    (r"mixtral-8x7b(-instruct)?(-v0\.1)?", "mixtral-8x7b", None),
    (r"mixtral-8x22b(-instruct)?(-v0\.1)?", "mixtral-8x22b-v0.1",
     "Mixtral-8x22B-Instruct read as the v0.1 base config (same shapes but a 768-token "
     "larger vocabulary in the instruct model)"),
    (r"deepseek-r1(-0528)?", "deepseek-r1", None),
    (r"(eleutherai/)?gpt-?j(-6b)?(-99(\.9)?)?", "gpt-j-6b", None),  # MLPerf's gptj-99
    (r"(tiiuae/)?falcon-180b(-chat)?", "falcon-180b", None),
)

# The published GPU name, upper case without spaces, hyphens and underscores → (catalogue
# key, note).
GPUS = {
    "H100": ("h100-sxm", "H100 taken as the SXM 80 GB part"),
    "H100SXM": ("h100-sxm", None), "H100SXM5": ("h100-sxm", None),
    "H200": ("h200", None), "H200SXM": ("h200", None),
    "H20": ("h20", None),
    "B200": ("b200", None), "GB200": ("gb200", None),
    "B300": ("b300", None), "GB300": ("gb300", None),
    "A10080GB": ("a100-80gb", None), "A100SXM": ("a100-80gb", None),
    "A100": ("a100-80gb", "A100 taken as the SXM 80 GB part"),
    "L40S": ("l40s", None),
    "RTXPRO6000": ("rtx-pro-6000", None), "RTXPRO6000SERVER": ("rtx-pro-6000", None),
    "RTX6000PRO": ("rtx-pro-6000", None),
    "MI300X": ("mi300x", None), "MI325X": ("mi325x", None), "MI355X": ("mi355x", None),
}


@dataclass(frozen=True)
class EngineDefaults:
    """Batch limits an engine uses when the benchmark does not set them (stated, not known),
    and the `deployment.engine` whose operator tables and admission the replica uses."""

    family: str
    engine: str
    max_num_seqs: int
    max_batched_tokens: int


ENGINES = {
    "TensorRT-LLM": EngineDefaults("TensorRT-LLM", "trtllm", 2048, 16384),
    "vLLM": EngineDefaults("vLLM", "vllm", 256, 8192),
    "SGLang": EngineDefaults("SGLang", "sglang", 256, 8192),
    "other": EngineDefaults("other", "vllm", 256, 8192),
}

DEFAULT_LENGTH_SIGMA = 1.0  # log-space spread for lengths given only as means

# Server settings a benchmark harness passes when its rows do not say: the source repository
# (a row's `source.repo_path` up to ':') → (deployment keys, where the harness sets them).
HARNESS_SETTINGS: dict[str, tuple[dict[str, float], str]] = {
    "LambdaLabsML/vllm-benchmark": (
        {"gpu_memory_utilization": 0.95},
        "gpu_memory_utilization 0.95: the source's benchmark.py starts the server with "
        "--gpu-memory-utilization 0.95 (its default)"),
}


@dataclass(frozen=True)
class Parallelism:
    """One replica's degrees, read from a row's `parallelism` text."""

    tensor_parallel: int = 1
    data_parallel_attention: int = 1
    expert_parallel: int = 1

    @property
    def gpus(self) -> int:
        return self.tensor_parallel * self.data_parallel_attention


@dataclass(frozen=True)
class RowSetup:
    """Everything needed to build the scenario for one row, plus what was assumed."""

    row_id: str
    model: str  # the model's name (a catalogue key, or a config's lower-case name)
    model_ref: Any  # the scenario's `model:` value: that key, or {hf_config: path}
    gpu: str
    tensor_parallel: int
    replicas: int
    dtype: str
    prompt_tokens: dict[str, Any]  # a scenario length spec
    output_tokens: dict[str, Any]
    mean_prompt_tokens: float
    mean_output_tokens: float
    # offline (overloaded) | closed (N in flight, approximated) | poisson | burst (N at t = 0)
    load: str
    concurrency: int | None  # closed: requests in flight over the whole fleet; burst: N
    rate_per_s: float | None  # poisson: arrival rate
    policy: str
    max_num_seqs: int
    max_batched_tokens: int
    assumptions: tuple[str, ...]
    engine: str = "vllm"  # deployment.engine
    data_parallel_attention: int = 1
    expert_parallel: int = 1
    kv_cache_dtype: str = "auto"  # deployment.kv_cache_dtype
    host_overhead_s: float = 0.0  # host time per step beyond the step model (V0 vLLM)
    profile: Any = "auto"  # the scenario's `profile:` (a file when host_overhead_s is set)
    gpu_memory_utilization: float | None = None  # None: the scenario's default


def engine_family(row: dict[str, Any]) -> str:
    text = str(row.get("engine", "")).lower()
    if "tensorrt" in text or "trt-llm" in text or "trtllm" in text:
        return "TensorRT-LLM"
    if "vllm" in text:
        return "vLLM"
    if "sglang" in text:
        return "SGLang"
    return "other"


def setup_for_row(row: dict[str, Any], models: ModelFinder | None = None,
                  closed_loop: bool = False) -> RowSetup:
    """Translate one row; raise `Uncovered` naming the first thing the simulator lacks.
    `models` finds model names (None: the catalogue only); `closed_loop`: a concurrency row
    will run as a true closed loop (a sweep's point), not as an overloaded queue."""
    spec_decoding = str(row.get("spec_decoding") or "none").strip().lower()
    if spec_decoding not in ("none", "no", "off", "false"):
        # MTP and draft models emit several tokens per step: the step model has one.
        raise Uncovered("speculative decoding not modelled")
    notes: list[str] = []
    model_ref, spec = _model(row.get("model"), models or ModelFinder(None), notes)
    gpu = _gpu(row.get("gpu"), notes)
    dtype = _dtype(row.get("precision"), notes)
    parallel = parallelism(row.get("parallelism"), spec.is_moe, notes)
    gpu_count = row.get("gpu_count")
    if not _is_count(gpu_count) or gpu_count % parallel.gpus:
        raise Uncovered(f"gpu_count {gpu_count!r} is not a multiple of the replica's "
                        f"{parallel.gpus} GPUs ({row.get('parallelism')})")
    replicas = gpu_count // parallel.gpus
    if replicas > 1:
        notes.append("replicas = gpu_count / GPUs per replica, least-loaded routing")
    prompt, output, mean_in, mean_out = _lengths(row, spec, notes)
    engine = ENGINES[engine_family(row)]
    if engine.family == "other":
        notes.append(f"engine {row.get('engine')!r}: vLLM-like limits and tables assumed")
    load, concurrency, rate = _load(row, notes)
    v0 = vllm_v0(row, dtype) if engine.family == "vLLM" else None
    harness = _harness(row, notes)
    policy, max_seqs, max_tokens = _scheduler(row, engine, load, concurrency, replicas, prompt,
                                              notes, closed_loop, v0)
    kv_cache_dtype = v0.kv_cache_dtype if v0 else _checkpoint_kv(row, dtype, notes)
    return RowSetup(row["id"], spec.name, model_ref, gpu, parallel.tensor_parallel, replicas,
                    dtype, prompt, output, mean_in, mean_out, load, concurrency, rate, policy,
                    max_seqs, max_tokens, tuple(notes), engine.engine,
                    parallel.data_parallel_attention, parallel.expert_parallel,
                    kv_cache_dtype, v0.host_overhead_s if v0 else 0.0,
                    gpu_memory_utilization=harness.get("gpu_memory_utilization"))


# Offline benchmarks that queue a stated number of requests at once and time them until the
# last one finishes (`trtllm-bench throughput`: "all requests are queued in rapid succession",
# Total Output Throughput = output tokens / Total Latency), by the source's `repo:path` →
# ({(isl, osl): requests}, where the source states them).
BURST_REQUESTS: dict[str, tuple[dict[tuple[int, int], int], str]] = {
    "NVIDIA/TensorRT-LLM:docs/source/performance/perf-overview.md": (
        {(128, 128): 30000, (128, 2048): 3000, (128, 4096): 1500, (1000, 2000): 1500,
         (2048, 128): 3000, (2048, 2048): 1500, (5000, 500): 1500, (1000, 1000): 3000,
         (500, 2000): 3000, (20000, 2000): 1000},
        "the source's $num_requests for this ISL/OSL (its \"Preparing a Dataset\" table), "
        "queued at once by trtllm-bench throughput"),
}


# Sources whose benchmarks ran quantised checkpoints that declare their KV format, which the
# row's model name (a base model's config) does not carry: source `repo:path` → (the weight
# formats it covers, the KV format, why). TensorRT-LLM's perf overview lists its "FP8 Models"
# and "FP4 Models" as NVIDIA's ModelOpt checkpoints (nvidia/<model>-FP8, -FP4), whose
# hf_quant_config declares kv_cache_quant_algo FP8.
CHECKPOINT_KV: dict[str, tuple[tuple[str, ...], str, str]] = {
    "NVIDIA/TensorRT-LLM:docs/source/performance/perf-overview.md": (
        ("fp8", "fp4"), "fp8", "the source's FP8/FP4 models are NVIDIA's ModelOpt checkpoints "
        "(nvidia/<model>-FP8, -FP4), which declare an FP8 KV cache"),
}


# ---- one field each ------------------------------------------------------------------------


def _checkpoint_kv(row: dict[str, Any], dtype: str, notes: list[str]) -> str:
    """The KV format the row's checkpoint declares where its source says which checkpoint
    it ran (`CHECKPOINT_KV`), else `auto` (the model's own)."""
    formats, kv, why = CHECKPOINT_KV.get(_repo_path(row), ((), "auto", ""))
    if dtype not in formats:
        return "auto"
    notes.append(f"kv_cache_dtype {kv}: {why}")
    return kv


def _repo_path(row: dict[str, Any]) -> str:
    """The row's source as `owner/repo:path` (its commit dropped), '' when not given."""
    source = row.get("source")
    repo_path = source.get("repo_path") if isinstance(source, dict) else None
    return repo_path.split("@", 1)[0] if isinstance(repo_path, str) else ""


def _harness(row: dict[str, Any], notes: list[str]) -> dict[str, float]:
    """The deployment keys the row's benchmark harness sets (`HARNESS_SETTINGS`)."""
    keys, why = HARNESS_SETTINGS.get(_repo_path(row).split(":", 1)[0], ({}, ""))
    if keys:
        notes.append(why)
    return keys


def _model(name: Any, models: ModelFinder, notes: list[str]) -> tuple[Any, ModelSpec]:
    """(the scenario's `model:` value, the model) for a published name."""
    text = str(name).strip()
    plain = re.sub(r"\s*\(.*\)\s*$", "", text)  # "Llama-2-70B-chat (MLPerf llama2-70b, …)"
    if plain != text:
        notes.append(f"model {text!r} read as {plain!r}")
    query, alias_note = plain, None
    for pattern, target, note in ALIASES:
        match = re.fullmatch(pattern, plain, flags=re.IGNORECASE)
        if match:
            query, alias_note = target.format(*match.groups()), note
            break
    found_notes: list[str] = []
    try:
        found = models.lookup(query, found_notes)
    except Skip as exc:
        raise Uncovered(str(exc)) from None
    if found is None:
        where = " nor in --models DIR" if models.files else " (give --models DIR)"
        raise Uncovered(f"model {plain!r} not in the catalogue{where}")
    notes.extend([alias_note] if alias_note else found_notes)
    return found


def _gpu(name: Any, notes: list[str]) -> str:
    key, note = GPUS.get(re.sub(r"[\s_-]", "", str(name)).upper(), (None, None))
    if key is None:
        raise Uncovered(f"GPU {name!r} not in the catalogue")
    if note:
        notes.append(note)
    return key


def _dtype(precision: Any, notes: list[str]) -> str:
    text = str(precision).strip()
    upper = text.upper()
    if "FP4" in upper:  # FP4, NVFP4, MXFP4
        if upper != "FP4":
            notes.append(f"{text} run as fp4 (4-bit weights, FP8 KV cache)")
        return "fp4"
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


_DEGREE = re.compile(r"(ATTN-?DP|ADP|DEP|TP|EP|PP|DP)\s*(\d+)", flags=re.IGNORECASE)


def parallelism(text: Any, moe: bool, notes: list[str]) -> Parallelism:
    """A replica's degrees from "TP8", "TP4 EP4", "DEP8", "TP8 DP8 EP8", "TP1 PP2", ….

    `DEP<k>` is attention data parallelism with expert parallelism over the same k GPUs
    (tensor_parallel 1), as TensorRT-LLM and InferenceX label it; `DP<k>` next to an `EP`
    degree is the same thing in vLLM's and SGLang's words (the DP ranks share one expert
    group), while `DP<k>` alone means k independent replicas, which gpu_count already gives.
    Pipeline parallelism is not modelled."""
    words = str(text).strip()
    found = _DEGREE.findall(words)
    rest = _DEGREE.sub("", words).strip(" ,+x/·-")
    if not found or rest:
        raise Uncovered(f"parallelism {words!r} not understood (expected forms like TP8, "
                        "TP4 EP4, DEP8, TP2 DP4 EP8)")
    degrees: dict[str, int] = {}
    for kind, value in found:
        key = kind.upper().replace("-", "")
        if key in degrees:
            raise Uncovered(f"parallelism {words!r} names {key} twice")
        degrees[key] = int(value)
    if min(degrees.values()) < 1:
        raise Uncovered(f"parallelism {words!r}: every degree must be ≥ 1")
    if degrees.get("PP", 1) > 1:
        raise Uncovered("pipeline parallel not modelled")
    dep = degrees.get("DEP")
    tp = degrees.get("TP", 1)
    ep = degrees.get("EP", dep or 1)
    dp = dep or degrees.get("ATTNDP") or degrees.get("ADP") or 1
    if "DP" in degrees:
        if "EP" in degrees:
            dp = degrees["DP"]
        else:
            notes.append(f"{words}: DP{degrees['DP']} read as independent replicas")
    if dep is not None and "TP" in degrees and tp != 1:
        raise Uncovered(f"parallelism {words!r}: DEP{dep} with TP{tp} not understood")
    if moe and ep == 1 and dp == 1 and tp > 1:
        notes.append(f"expert parallelism not stated: each expert split over the {tp} GPUs "
                     "(expert_parallel 1)")
    if dp > 1 or ep > 1:
        notes.append(f"{words}: tensor_parallel {tp}, data_parallel_attention {dp}, "
                     f"expert_parallel {ep}")
    return Parallelism(tp, dp, ep)


def _lengths(row: dict[str, Any], spec: ModelSpec,
             notes: list[str]) -> tuple[dict[str, Any], dict[str, Any], float, float]:
    isl, osl = row.get("isl"), row.get("osl")
    if _is_count(isl) and _is_count(osl):
        context = spec.max_context
        if isl + osl > context:
            raise Uncovered(f"isl + osl = {isl + osl} exceeds {spec.name}'s context of "
                            f"{context}")
        return {"dist": "fixed", "value": isl}, {"dist": "fixed", "value": osl}, isl, osl
    mean_in, mean_out = row.get("isl_mean"), row.get("osl_mean")
    if not (_is_positive(mean_in) and _is_positive(mean_out)):
        return _dataset_lengths(row, spec, notes)
    sigma_in = row.get("isl_sigma", DEFAULT_LENGTH_SIGMA)
    sigma_out = row.get("osl_sigma", DEFAULT_LENGTH_SIGMA)
    if not (is_number(sigma_in) and is_number(sigma_out)) or min(sigma_in, sigma_out) < 0:
        raise Uncovered(f"length sigmas {sigma_in!r}, {sigma_out!r} not numbers ≥ 0")
    notes.append(f"variable lengths as lognormal: prompt mean {mean_in:g} (σ {sigma_in:g}), "
                 f"output mean {mean_out:g} (σ {sigma_out:g})")
    return ({"dist": "lognormal", "mean": mean_in, "sigma": sigma_in},
            {"dist": "lognormal", "mean": mean_out, "sigma": sigma_out},
            float(mean_in), float(mean_out))


def _dataset_lengths(row: dict[str, Any], spec: ModelSpec, notes: list[str]
                     ) -> tuple[dict[str, Any], dict[str, Any], float, float]:
    """Lengths neither fixed nor given as means: those of the dataset the row names, when we
    ship its length table (the row's own means, where stated, win over it)."""
    found = dataset_of(row)
    if found is None:
        raise Uncovered(f"lengths not fixed (isl {row.get('isl')!r}, osl {row.get('osl')!r}), "
                        "no isl_mean/osl_mean stated and no dataset named")
    name, how = found
    table = lengths_for(name)
    if table is None:
        raise Uncovered(f"lengths from the {name} dataset ({how}): no length table for it "
                        f"(tables: {', '.join(TABLES)})")
    if table.max_total_tokens > spec.max_context:
        raise Uncovered(f"{name} requests of up to {table.max_total_tokens} tokens exceed "
                        f"{spec.name}'s context of {spec.max_context}")
    notes.append(f"lengths drawn from the {name} table ({how}): {table.about}, prompt mean "
                 f"{table.mean_prompt_tokens:.0f}, output mean {table.mean_output_tokens:.0f} "
                 "tokens, prompt and output independent; outputs run to the dataset reply's "
                 "length (a model stopping early at EOS is not modelled)")
    return (table.prompt_tokens, table.output_tokens, table.mean_prompt_tokens,
            table.mean_output_tokens)


# `benchmark_serving.py --num-prompts N --request-rate inf` in a row's words: every prompt is
# sent at once and throughput is output tokens over the time until the last one finishes.
_PROMPTS = re.compile(r"num-prompts?\s*=\s*(\d+)", flags=re.IGNORECASE)
_RATE_INF = re.compile(r"(request[\s_-]rate|rps)\s*=?\s*inf\b", flags=re.IGNORECASE)


def _load(row: dict[str, Any], notes: list[str]) -> tuple[str, int | None, float | None]:
    scenario = str(row.get("scenario", ""))
    prompts = _PROMPTS.search(scenario)
    if prompts and _RATE_INF.search(scenario) and row.get("request_rate_per_s") is None:
        notes.append("burst: benchmark_serving.py --request-rate inf sends every prompt at once")
        return "burst", int(prompts.group(1)), None
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
        sizes, where = BURST_REQUESTS.get(_repo_path(row), ({}, ""))
        isl, osl = row.get("isl"), row.get("osl")
        requests = sizes.get((isl, osl)) if _is_count(isl) and _is_count(osl) else None
        if requests is not None:
            notes.append(f"burst of {requests} requests: {where}")
            return "burst", requests, None
        return "offline", None, None
    raise Uncovered(f"concurrency {concurrency!r} not understood")


def _scheduler(row: dict[str, Any], engine: EngineDefaults, load: str,
               concurrency: int | None, replicas: int, prompt: dict[str, Any],
               notes: list[str], closed_loop: bool = False,
               v0: V0Defaults | None = None) -> tuple[str, int, int]:
    """Policy, max_num_seqs and max_batched_tokens for the row, with the reasons noted
    (`v0`: the V0 vLLM version's own, `sim.validation.engine_versions`)."""
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
    if load == "closed" and closed_loop:
        notes.append(f"closed loop of `concurrency` clients with no think time, {why}; "
                     "TTFT from send (queue included)")
    elif load == "closed":
        notes.append(f"closed loop approximated by an overloaded queue, {why}; TTFT from "
                     "admission (queue excluded)")
    elif load == "offline":
        notes.append(f"offline: overloaded Poisson arrivals, {why}")
    elif load == "burst":
        notes.append(f"{concurrency} requests sent at t = 0, {why}; output tokens / time until "
                     "the last finishes, TTFT from the send")
    else:
        notes.append(f"Poisson arrivals at the row's rate, {why}")
    if static:
        prompt_len = prompt.get("value", 1)
        notes.append("static batching: whole batch prefilled in one step")
        return "static", max_seqs, max(max_seqs * prompt_len, 1)
    if v0 is not None:
        notes.extend(v0.notes)
        return v0.policy, max_seqs, v0.max_batched_tokens
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
