"""From a measured end-to-end row (`silicon_rows.SiliconRow`) to a closed-loop scenario, or the
reason the simulator cannot run it.

The benchmark behind each row keeps its concurrency (`silicon_concurrency` in the row's source
record, else `batch_size`) requests in flight with fixed ISL/OSL (`aiperf --concurrency N`), so
the scenario is a closed loop of that many clients with no think time, on the row's engine and
precision: an aggregated row on one replica of its parallelism, a disaggregated one on a
prefill pool and a decode pool (`deployment.disaggregation`), each of its own parallelism and
worker count, with the prefill→decode KV link of the row's system (`KV_LINKS`). Everything
the row does not state is chosen here and written down as an assumption (the batch limits,
the KV-cache format, the worker counts, the model a checkpoint's name stands for), so each
comparison can be read with them in view. Rows the simulator does not model (pipeline
parallelism, int4 weight-only) are skipped with the reason, never dropped.
"""

from __future__ import annotations

import math
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
from sim.scenario.disaggregation import pool_kv_capacity
from sim.scenario.load import load_scenario, read_model_config
from sim.validation.silicon_rows import POOLS, PoolColumns, SiliconRow

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
MODES = ("agg", "disagg")
ASSUMED = " (assumed)"  # ends the pools label of a row that leaves a worker count empty


@dataclass(frozen=True)
class KvLink:
    """A system's prefill→decode KV path, per GPU and one direction, in GB/s (1e9 bytes/s):
    each GPU of a prefill replica sends the KV it holds over its own port, so a replica's
    link is its GPU count times this. On an NVLink rack (`rack_gpus` GPUs) the pools talk
    over NVLink while they fit in one rack, else over the racks' network."""

    gpu_gb_s: float
    rack_gpus: int | None = None  # None: 8-GPU nodes, pools on different nodes (their NICs)
    inter_rack_gb_s: float | None = None


# AIConfigurator's system sheets (systems/<system>.yaml, commit 095f58a5, Apache-2.0), not
# fitted to any row: `inter_node_bw` per GPU one way — one NIC per GPU on HGX nodes (A100
# ConnectX-6 200 Gb/s, H100/H200/L40S ConnectX-7 NDR 400 Gb/s, B200/B300 ConnectX-8 XDR
# 800 Gb/s as the sheets state, RTX PRO 6000 the sheet's 400 Gb/s placeholder); on GB200/GB300
# NVL72 racks NVLink 5 through the rack's NVSwitches (900 GB/s), `inter_rack_bw` (ConnectX-8
# InfiniBand, 100 GB/s) beyond 72 GPUs; `p2p_latency` 10 µs on every system.
KV_LINKS = {"a100_sxm": KvLink(25.0), "h100_sxm": KvLink(50.0), "h200_sxm": KvLink(50.0),
            "b200_sxm": KvLink(100.0), "b300_sxm": KvLink(100.0), "l40s": KvLink(50.0),
            "rtx_pro_6000_server": KvLink(50.0), "gb200": KvLink(900.0, 72, 100.0),
            "gb300": KvLink(900.0, 72, 100.0)}
KV_LINK_LATENCY_S = 1e-5


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
    mode: str = "agg"  # agg | disagg (as published)
    pools: str = ""  # a disaggregated row's xPyD: "2P1D", "1P?D (assumed)" where not stated


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
                  QUANT_DTYPES.get(quant, quant), row.concurrency, row.mode, _pools(row))


def plan_row(row: SiliconRow, models: ModelFinder) -> RowPlan:
    """The closed loop for one row; `Skip` naming the first thing the simulator lacks."""
    if row.mode not in MODES:
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
    base = {
        "name": row.id, "seed": SEED, "drain_s": None, "model": model, "gpu": gpu,
        "profile": "auto",
        "workload": {"arrival": {"process": "closed", "concurrency": n, "think_time_s": 0},
                     "prompt_tokens": {"dist": "fixed", "value": isl},
                     "output_tokens": {"dist": "fixed", "value": osl}},
        "slo": {"ttft_s": 60.0, "tpot_s": 1.0}, "cost": {"gpu_hour_usd": 0.0},
    }
    moe = spec.experts > 1
    if row.mode == "agg":
        deployment = _aggregated(row, moe, n, gpu, dtype, notes)
    else:
        decode_replicas = None
        if row.decode.num_workers is None:
            one = _disaggregated(row, moe, n, gpu, dtype, [])
            decode_replicas = held_decode_replicas(_engine(row, {**base, "deployment": one}),
                                                   n, isl + osl)
        deployment = _disaggregated(row, moe, n, gpu, dtype, notes, decode_replicas)
    return RowPlan(row.id, _engine(row, {**base, "deployment": deployment}), n, isl, osl,
                   _lifetime_hint_s(row, osl), tuple(notes))


def _engine(row: SiliconRow, base: dict[str, Any]) -> dict[str, Any]:
    """The scenario mapping with the row's engine, where it is not the default."""
    if row.backend != LAYOUT_DEFAULTS.engine:
        base["deployment"] = {**base["deployment"], "engine": row.backend}
    return base


def held_decode_replicas(base: dict[str, Any], clients: int, request_tokens: int) -> int:
    """The fewest decode replicas whose KV caches hold every client's request at once,
    for a row that leaves `decode_num_workers` empty: each row that states its pools has
    a concurrency of exactly its decode pool's batch (decode_batch_size × attention-DP
    ranks × workers, 134 of 134), so the deployments were sized to hold their clients.
    `base` has one decode replica; a mapping the scenario layer rejects keeps it (the run
    then skips the row with the reason)."""
    try:
        scenario = load_scenario({**base, "warmup_s": 0.0, "duration_s": 1.0})
        pools = scenario.pools
        assert pools is not None  # a disaggregated mapping
        replica_tokens = pool_kv_capacity(scenario.model, pools.decode)
    except InputError:
        return 1
    return max(1, math.ceil(clients * request_tokens / max(replica_tokens, 1)))


def _aggregated(row: SiliconRow, moe: bool, n: int, gpu: str, dtype: str,
                notes: list[str]) -> dict[str, Any]:
    """One replica of the row's parallelism; everything but the concurrency is the engine's
    preset (sim.engine.scheduler)."""
    parallel = _parallelism(row.aggregated, "", moe, notes)
    notes.append(preset_note(row.backend, gpu))
    notes.append(f"max_num_seqs {n} = the concurrency; kv_cache_dtype auto (not stated)")
    return {"replicas": 1, "tensor_parallel": parallel["tensor_parallel"], "dtype": dtype,
            "scheduler": {"max_num_seqs": n}, **_non_default(parallel)}


def _disaggregated(row: SiliconRow, moe: bool, n: int, gpu: str, dtype: str,
                   notes: list[str], decode_replicas: int | None = None) -> dict[str, Any]:
    """A prefill pool and a decode pool, each `*_num_workers` replicas of its own
    parallelism, with a batch limit mirroring the aggregated one: the clients one replica
    serves (`*_batch_size` is one attention-DP rank's, so a replica's is that × its ranks;
    not stated, the concurrency). An empty prefill count is one replica, an empty decode
    count `decode_replicas` (`held_decode_replicas`; None: one). Engine and precision are
    the deployment's, both pools'."""
    pools: dict[str, Any] = {}
    gpus: dict[str, int] = {}
    for pool, columns in zip(POOLS, (row.prefill, row.decode), strict=True):
        parallel = _parallelism(columns, f"{pool}_", moe, notes)
        dp = parallel["data_parallel_attention"]
        replicas = _workers(pool, columns.num_workers)
        if pool == "decode" and columns.num_workers is None and decode_replicas is not None:
            replicas = decode_replicas
        pools[pool] = {"replicas": replicas, "tensor_parallel": parallel["tensor_parallel"],
                       **_non_default(parallel),
                       "scheduler": {"max_num_seqs": _max_num_seqs(pool, columns, dp, n,
                                                                   notes)}}
        gpus[pool] = parallel["tensor_parallel"] * dp
    if row.prefill.num_workers is None:
        notes.append("prefill_num_workers empty: one prefill replica")
    if row.decode.num_workers is None:
        notes.append(f"decode_num_workers empty: {pools['decode']['replicas']} decode "
                     "replicas, the fewest whose KV caches hold every client's request")
    fleet_gpus = sum(pools[pool]["replicas"] * gpus[pool] for pool in POOLS)
    bandwidth_gb_s = kv_link_gb_s(row.system, gpus["prefill"], fleet_gpus, notes)
    notes.append(preset_note(row.backend, gpu))
    notes.append("kv_cache_dtype auto (not stated)")
    notes.append("TTFT to the decode side's admission (the client's stream comes from the "
                 "decode worker)")
    return {"dtype": dtype, "disaggregation": {
        **pools, "kv_transfer": {"bandwidth_gb_s": bandwidth_gb_s,
                                 "latency_s": KV_LINK_LATENCY_S}}}


def kv_link_gb_s(system: str, replica_gpus: int, fleet_gpus: int, notes: list[str]) -> float:
    """GB/s of one prefill replica's KV link (`KvLink`), written down as an assumption."""
    link = KV_LINKS.get(system)
    if link is None:
        raise Skip(f"no prefill→decode KV link figure for system {system!r}")
    per_gpu_gb_s, path = link.gpu_gb_s, "NVLink" if link.rack_gpus else "NIC"
    if link.rack_gpus is not None and fleet_gpus > link.rack_gpus:
        assert link.inter_rack_gb_s is not None  # every rack system has its network figure
        per_gpu_gb_s, path = link.inter_rack_gb_s, f"InfiniBand ({fleet_gpus} GPUs span racks)"
    bandwidth_gb_s = per_gpu_gb_s * replica_gpus
    notes.append(f"KV link {bandwidth_gb_s:g} GB/s a prefill replica ({replica_gpus} GPUs × "
                 f"{per_gpu_gb_s:g} GB/s {path}), latency {KV_LINK_LATENCY_S * 1e6:g} µs: "
                 f"AIConfigurator systems/{system}.yaml")
    return bandwidth_gb_s


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


def _pools(row: SiliconRow) -> str:
    """xPyD of a disaggregated row ('' for an aggregated one): an empty prefill count is 1,
    an empty decode count '?' (as many as hold the clients, `held_decode_replicas`)."""
    if row.mode != "disagg":
        return ""
    counts = (row.prefill.num_workers, row.decode.num_workers)
    label = f"{counts[0] or 1}P{counts[1] or '?'}D"
    return label + ASSUMED if None in counts else label


def _non_default(parallel: dict[str, int]) -> dict[str, int]:
    """Keys at the Layout's defaults are left to the scenario's own defaults."""
    return {key: parallel[key] for key in ("data_parallel_attention", "expert_parallel")
            if parallel[key] != getattr(LAYOUT_DEFAULTS, key)}


def _parallelism(columns: PoolColumns, prefix: str, moe: bool,
                 notes: list[str]) -> dict[str, int]:
    """A replica's degrees from its columns (`prefix` names them: '' for an aggregated row,
    prefill_ or decode_ for a pool); moe_tp_size must be what they imply (GPUs ÷
    moe_ep_size) on a MoE model, and means nothing on a dense one."""
    if columns.pp_size is not None and columns.pp_size > 1:
        raise Skip("pipeline parallel not modelled")
    tp = _degree(f"{prefix}tp_size", columns.tp_size)
    dp = 1
    if columns.attention_dp_size is None:
        notes.append(f"{prefix}attention_dp_size empty: no attention data parallelism")
    else:
        dp = _degree(f"{prefix}attention_dp_size", columns.attention_dp_size)
    gpus = tp * dp  # tp_size × attention_dp_size, as the engines lay a replica out
    moe_tp, moe_ep = columns.moe_tp_size, columns.moe_ep_size
    if not moe:
        if moe_ep not in (None, 1) or moe_tp not in (None, 1, gpus):
            notes.append(f"dense model: {prefix}moe_tp_size {moe_tp}, {prefix}moe_ep_size "
                         f"{moe_ep} ignored")
        return {"tensor_parallel": tp, "data_parallel_attention": dp, "expert_parallel": 1}
    ep = _degree(f"{prefix}moe_ep_size", moe_ep)
    if gpus % ep:
        raise Skip(f"{prefix}moe_ep_size {ep} does not divide the replica's {gpus} GPUs")
    if moe_tp is not None and moe_tp != gpus // ep:
        raise Skip(f"{prefix}moe_tp_size {moe_tp} disagrees with GPUs / {prefix}moe_ep_size "
                   f"({gpus} / {ep})")
    return {"tensor_parallel": tp, "data_parallel_attention": dp, "expert_parallel": ep}


def _workers(pool: str, value: int | None) -> int:
    """A pool's replicas: `*_num_workers`, one where empty (the fewest a pool can have)."""
    if value is None:
        return 1
    if value < 1:
        raise Skip(f"{pool}_num_workers {value} is not a replica count ≥ 1")
    return value


def _max_num_seqs(pool: str, columns: PoolColumns, dp: int, n: int, notes: list[str]) -> int:
    """One replica's sequences: its ranks' batch limits (the engines' max_batch_size is per
    attention-DP rank: the stated rows' decode_batch_size × ranks × workers is their
    concurrency), or, not stated, the concurrency, so the closed loop sets the batch."""
    if columns.batch_size is None:
        notes.append(f"{pool}_batch_size empty: {pool} max_num_seqs {n} = the concurrency")
        return n
    if columns.batch_size < 1:
        raise Skip(f"{pool}_batch_size {columns.batch_size} is not a batch limit ≥ 1")
    notes.append(f"{pool} max_num_seqs {columns.batch_size * dp} = {pool}_batch_size "
                 f"{columns.batch_size} × {dp} attention-DP ranks")
    return columns.batch_size * dp


def _degree(column: str, value: int | None) -> int:
    if value is None or value < 1:
        raise Skip(f"{column} {'empty' if value is None else value} is not a parallel "
                   "degree ≥ 1")
    return value


def _counts(row: SiliconRow) -> tuple[int, int, int]:
    if not row.concurrency:
        column = "silicon_concurrency" if row.mode == "disagg" else "batch_size"
        raise Skip(f"{column} (the concurrency) not stated")
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
