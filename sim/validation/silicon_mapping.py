"""From a measured end-to-end row (`silicon_rows.SiliconRow`) to a closed-loop scenario, or the
reason the simulator cannot run it.

The benchmark behind each aggregated row keeps its concurrency (`silicon_concurrency` in the
row's source record, else `batch_size`) requests in flight with fixed ISL/OSL (`aiperf
--concurrency N`), so the scenario is a closed loop of that many clients with no think time on
one replica of the row's parallelism, engine and precision. Everything the row does not state
is chosen here and written down as an assumption (the batch limits, the KV-cache format, the
model a checkpoint's name stands for), so each comparison can be read with them in view. Rows
the simulator does not model (disaggregated serving, pipeline parallelism, int4 weight-only)
are skipped with the reason, never dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.engine.scheduler import ENGINE_PRESETS
from sim.errors import InputError
from sim.hardware import catalog
from sim.hardware.catalog import ModelSpec
from sim.hardware.hfconfig import CONFIG_SUFFIX
from sim.hardware.layout import ENGINES, Layout
from sim.scenario.load import read_model_config
from sim.validation.silicon_rows import SiliconRow

# AIConfigurator's system names → the catalogue's GPU names.
GPUS = {"a100_sxm": "a100-80gb", "h100_sxm": "h100-sxm", "h200_sxm": "h200", "b200_sxm": "b200",
        "gb200": "gb200", "b300_sxm": "b300", "gb300": "gb300", "l40s": "l40s",
        "rtx_pro_6000_server": "rtx-pro-6000"}
# gemm_quant_mode / moe_quant_mode → deployment.dtype ('' is an unquantised checkpoint)
QUANT_DTYPES = {"": "bf16", "fp8": "fp8", "fp8_block": "fp8", "nvfp4": "fp4"}
QUANT_NOT_MODELLED = {"int4_wo": "int4 weight-only not modelled"}
# A quantised or instruction-tuned checkpoint has its base model's architecture.
CHECKPOINT_SUFFIXES = ("-instruct", "-fp8", "-nvfp4", "-fp4", "-bf16")
FAMILIES = ("deepseek", "qwen", "llama", "gpt-oss", "minimax", "mixtral", "mistral", "gemma",
            "nemotron", "mimo", "kimi", "glm")
SEED = 1
LAYOUT_DEFAULTS = Layout()


class Skip(Exception):
    """The row cannot be simulated; the message says why (one line)."""


@dataclass(frozen=True)
class Labels:
    """What the summaries group a row by (known, or as far as known, even for a skip)."""

    gpu: str  # the row's system name, as published
    engine: str  # vllm | sglang | trtllm (the row's backend)
    model: str  # the model's name, lower case
    precision: str  # bf16 | fp8 | fp4, or the quantisation as published
    concurrency: int | None


@dataclass(frozen=True)
class RowPlan:
    """A closed loop ready to run: the scenario mapping less its run length, and the sizes."""

    row_id: str
    base: dict[str, Any]  # a scenario mapping without duration_s and warmup_s
    concurrency: int
    isl: int
    osl: int
    lifetime_hint_s: float  # one request's measured lifetime, sizing the first run only
    assumptions: tuple[str, ...]


class ModelFinder:
    """Model names → a scenario's `model:` value: a config.json in `--models DIR`, else a
    catalogue model. The folder is listed once (names compared in lower case)."""

    def __init__(self, folder: Path | None) -> None:
        self.files: dict[str, Path] = {}
        if folder is not None:
            for path in sorted(folder.glob(f"*{CONFIG_SUFFIX}")):
                org_name = path.name.removesuffix(CONFIG_SUFFIX)
                self.files.setdefault(org_name.lower(), path.resolve())
                self.files.setdefault(_name(org_name).lower(), path.resolve())

    def find(self, model_path: str, notes: list[str]) -> tuple[Any, ModelSpec]:
        """(the `model:` value, the model) for a hub path `org/name`."""
        found = self.lookup(model_path, notes)
        if found is None:
            raise Skip("model not in catalogue (give --models DIR)")
        return found

    def lookup(self, model_path: str, notes: list[str]) -> tuple[Any, ModelSpec] | None:
        """`find`, with None for a model in neither the folder nor the catalogue (a
        published table words that skip its own way); `Skip` for an unusable config."""
        org_name = model_path.strip().replace("/", "--")
        name = _name(org_name).lower()
        base = base_name(name)
        path = self.files.get(org_name.lower())
        if path is None and base != name and base in self.files:
            path = self.files[base]
            notes.append(f"{name} read from {path.name} (a checkpoint of the same "
                         "architecture)")
        if path is not None:
            try:
                return {"hf_config": str(path)}, read_model_config(path, "--models")
            except InputError as exc:
                raise Skip(f"model config not usable: {exc}") from None
        if base in catalog.models():
            if base != name:
                notes.append(f"{name} simulated as the catalogue's {base}")
            return base, catalog.models()[base]
        return None


def labels(row: SiliconRow) -> Labels:
    quant = row.gemm_quant_mode or row.moe_quant_mode
    return Labels(row.system, row.backend, _name(row.model_path.replace("/", "--")).lower(),
                  QUANT_DTYPES.get(quant, quant), row.concurrency)


def plan_row(row: SiliconRow, models: ModelFinder) -> RowPlan:
    """The closed loop for one row; `Skip` naming the first thing the simulator lacks."""
    if row.mode == "disagg":
        raise Skip("disaggregated serving not modelled yet")
    if row.mode != "agg":
        raise Skip(f"mode {row.mode!r} not understood (agg or disagg)")
    if row.backend not in ENGINES:
        raise Skip(f"backend {row.backend!r} not modelled (one of {', '.join(ENGINES)})")
    gpu = GPUS.get(row.system)
    if gpu is None:
        raise Skip(f"system {row.system!r} not in the GPU catalogue")
    dtype = _dtype(row)
    n, isl, osl = _counts(row)
    notes: list[str] = []
    model, spec = models.find(row.model_path, notes)
    parallel = _parallelism(row, spec.experts > 1, notes)
    # Everything but the concurrency is the engine's preset (sim.engine.scheduler).
    notes.append(preset_note(row.backend, gpu))
    notes.append(f"max_num_seqs {n} = the concurrency; kv_cache_dtype auto (not stated)")
    deployment: dict[str, Any] = {
        "replicas": 1, "tensor_parallel": parallel["tensor_parallel"], "dtype": dtype,
        "scheduler": {"max_num_seqs": n},
    }
    # Keys at the Layout's defaults are left to the scenario's own defaults.
    for key in ("data_parallel_attention", "expert_parallel"):
        if parallel[key] != getattr(LAYOUT_DEFAULTS, key):
            deployment[key] = parallel[key]
    if row.backend != LAYOUT_DEFAULTS.engine:
        deployment["engine"] = row.backend
    base = {
        "name": row.id, "seed": SEED, "drain_s": None, "model": model, "gpu": gpu,
        "profile": "auto", "deployment": deployment,
        "workload": {"arrival": {"process": "closed", "concurrency": n, "think_time_s": 0},
                     "prompt_tokens": {"dist": "fixed", "value": isl},
                     "output_tokens": {"dist": "fixed", "value": osl}},
        "slo": {"ttft_s": 60.0, "tpot_s": 1.0}, "cost": {"gpu_hour_usd": 0.0},
    }
    return RowPlan(row.id, base, n, isl, osl, _lifetime_hint_s(row, osl), tuple(notes))


def preset_note(engine: str, gpu: str) -> str:
    """What the engine's preset (`sim.engine.scheduler.ENGINE_PRESETS`) sets for a replica
    of this catalogue GPU, as a comparison's assumption."""
    preset = ENGINE_PRESETS[engine]
    return (f"{engine} preset: {preset.policy}, max_batched_tokens "
            f"{preset.batched_tokens(catalog.gpus()[gpu].memory_gib)}, "
            f"{'chunked' if preset.chunked_prefill else 'whole-prompt'} prefill, "
            f"admission {preset.admission}")


def base_name(name: str) -> str:
    """A checkpoint's name without organisation prefixes and checkpoint suffixes:
    `meta-llama-3.1-8b-instruct-fp8` → `llama-3.1-8b`."""
    base = name.lower().removeprefix("meta-")
    changed = True
    while changed:
        changed = False
        for suffix in CHECKPOINT_SUFFIXES:
            if base.endswith(suffix):
                base, changed = base.removesuffix(suffix), True
    return base


def model_family(name: str) -> str:
    """deepseek, qwen, llama, gpt-oss, minimax, …: the summaries' model groups."""
    base = base_name(name)
    return next((f for f in FAMILIES if base.startswith(f)), re.split(r"[-_.\d]", base)[0]
                or base)


def concurrency_band(n: int | None) -> str:
    if n is None:
        return "unknown"
    for low, high in ((1, 4), (5, 32), (33, 128)):
        if low <= n <= high:
            return f"{low}–{high}"
    return ">128"


# ---- one field each ------------------------------------------------------------------------


def _name(org_name: str) -> str:
    return org_name.split("--", 1)[-1]


def _dtype(row: SiliconRow) -> str:
    dtypes = set()
    for quant in (row.gemm_quant_mode, row.moe_quant_mode):
        if quant in QUANT_NOT_MODELLED:
            raise Skip(QUANT_NOT_MODELLED[quant])
        if quant not in QUANT_DTYPES:
            raise Skip(f"quantisation {quant!r} not modelled")
        dtypes.add(QUANT_DTYPES[quant])
    if len(dtypes) > 1:
        raise Skip(f"mixed precision not modelled (gemm {row.gemm_quant_mode or 'bf16'}, "
                   f"moe {row.moe_quant_mode or 'bf16'})")
    return dtypes.pop()


def _parallelism(row: SiliconRow, moe: bool, notes: list[str]) -> dict[str, int]:
    """The replica's degrees; moe_tp_size must be what they imply (GPUs ÷ moe_ep_size) on a
    MoE model, and means nothing on a dense one."""
    if row.pp_size is not None and row.pp_size > 1:
        raise Skip("pipeline parallel not modelled")
    tp = _degree("tp_size", row.tp_size)
    dp = 1
    if row.attention_dp_size is None:
        notes.append("attention_dp_size empty: no attention data parallelism")
    else:
        dp = _degree("attention_dp_size", row.attention_dp_size)
    gpus = tp * dp  # tp_size × attention_dp_size, as the engines lay a replica out
    if not moe:
        if row.moe_ep_size not in (None, 1) or row.moe_tp_size not in (None, 1, gpus):
            notes.append(f"dense model: moe_tp_size {row.moe_tp_size}, moe_ep_size "
                         f"{row.moe_ep_size} ignored")
        return {"tensor_parallel": tp, "data_parallel_attention": dp, "expert_parallel": 1}
    ep = _degree("moe_ep_size", row.moe_ep_size)
    if gpus % ep:
        raise Skip(f"moe_ep_size {ep} does not divide the replica's {gpus} GPUs")
    if row.moe_tp_size is not None and row.moe_tp_size != gpus // ep:
        raise Skip(f"moe_tp_size {row.moe_tp_size} disagrees with GPUs / moe_ep_size "
                   f"({gpus} / {ep})")
    return {"tensor_parallel": tp, "data_parallel_attention": dp, "expert_parallel": ep}


def _degree(column: str, value: int | None) -> int:
    if value is None or value < 1:
        raise Skip(f"{column} {'empty' if value is None else value} is not a parallel "
                   "degree ≥ 1")
    return value


def _counts(row: SiliconRow) -> tuple[int, int, int]:
    if not row.concurrency:
        raise Skip("batch_size (the concurrency) not stated")
    if not row.isl or not row.osl:
        raise Skip("isl or osl not stated")
    if row.osl < 2:
        raise Skip(f"osl {row.osl}: no TPOT to compare (it needs two output tokens)")
    return row.concurrency, row.isl, row.osl


ASSUMED_TPOT_MS = 20.0  # sizes the first run of a row that measured no TPOT
ASSUMED_TTFT_MS = 200.0


def _lifetime_hint_s(row: SiliconRow, osl: int) -> float:
    ttft = row.ttft_ms if row.ttft_ms and row.ttft_ms > 0 else ASSUMED_TTFT_MS
    tpot = row.tpot_ms if row.tpot_ms and row.tpot_ms > 0 else ASSUMED_TPOT_MS
    return (ttft + (osl - 1) * tpot) / 1000.0
