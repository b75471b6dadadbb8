"""Derive the compact operator tables from NVIDIA AIConfigurator's measured database.

    python -m calibration.sources.aic AIC_DIR [--out calibration/operators]

AIC_DIR is AIConfigurator's `aiconfigurator_core` data folder (github.com/ai-dynamo/
aiconfigurator, Apache-2.0): `kernels/<system>/<op>/<engine>/<version>/*.parquet` holds
latencies NVIDIA measured with each engine's own kernels. One
`<gpu>_<engine>.json.gz` per GPU and engine is written in the schema of
`sim.steptime.operators` (every time in milliseconds for one call on one GPU). The parquet
tables stay outside the project; pandas and pyarrow are needed here only, never by the
simulator. Floats are rounded to 4 significant digits and keys sorted, so a rebuild from the
same data is byte-identical.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sim.calibrate import operator_fits as fits
from sim.steptime.operators import OperatorTables

# AIConfigurator's system names → our catalogue's GPU names.
SYSTEMS = {
    "a100_sxm": "a100-80gb", "h100_sxm": "h100-sxm", "h200_sxm": "h200", "b200_sxm": "b200",
    "gb200": "gb200", "b300_sxm": "b300", "gb300": "gb300", "l40s": "l40s",
    "rtx_pro_6000_server": "rtx-pro-6000",
}
ENGINES = ("vllm", "sglang", "trtllm")
# Precision names as AIConfigurator writes them → the names the tables are keyed by (the
# `Layout` dtypes where one exists; names without an entry are kept as they are).
DTYPE_NAMES = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "fp8": "fp8",
               "fp8_block": "fp8_block", "nvfp4": "fp4"}
ELEMENT_BYTES = {"bfloat16": 2, "half": 2, "float16": 2, "int8": 1}
MIN_SHAPE_DIM = 128  # GEMM n and k below this are no weight a served model has
GEMM_M_TARGETS = [2**i for i in range(16)]  # 1 … 32768 tokens, one knot per doubling
MOE_TOKEN_TARGETS = [2**i for i in range(15)]  # 1 … 16384 tokens
MOE_MIN_POINTS = 4
# Token-to-expert routing, most realistic first: measured serving traffic is skewed, and a
# balanced split understates the busiest expert's work.
MOE_DISTRIBUTIONS = ("power_law_1.01", "power_law_1.2", "balanced")
SIGNIFICANT_DIGITS = 4
MLA_MODEL_CONFIG = "model_configs/deepseek-ai--DeepSeek-V3_config.json"

MODULE_INCLUDES = (
    "A module row times the whole MLA attention block's forward on one GPU, as the engine's "
    "own modelling code builds it (collector/<engine>/collect_mla_module.py): the fused q/kv "
    "down-projection (n=2112, k=hidden), q_b_proj, the kv_b_proj up-projection (absorbed "
    "into per-head BMMs in decode), RoPE, the attention kernel and o_proj. The add+norm "
    "before it is not included. A composer using these fits must not add those GEMMs (or "
    "the mla_bmm pre/post BMMs) again. Decode rows: `step` is the sequence length including "
    "the new token, so KV tokens = batch × step.")
KERNEL_INCLUDES = (
    "These rows time the bare MLA attention kernel only (collector/<engine>/collect_mla.py): "
    "no projections, no o_proj, no absorbed BMMs; a composer adds those as GEMMs. Decode "
    "rows: `step` is the context already cached, so KV tokens = batch × (step + 1). "
    "gemm_dtype is '' on these fits.")


@dataclass(frozen=True)
class Table:
    """One parquet table: its rows, where it came from (relative to AIC_DIR), engine version."""

    frame: Any  # pandas.DataFrame
    path: str
    version: str


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def _read(aic: Path, system: str, family: str, engine: str, filename: str) -> Table | None:
    import pandas as pd

    hits = list((aic / "kernels" / system / family / engine).glob(f"*/{filename}"))
    if not hits:
        return None
    path = max(hits, key=lambda p: _version_key(p.parent.name))
    return Table(pd.read_parquet(path), path.relative_to(aic).as_posix(), path.parent.name)


def _name(dtype: str) -> str:
    return DTYPE_NAMES.get(dtype, dtype)


def _attention_key(kv_dtype: str, math_dtype: str) -> str:
    """Attention fits are keyed by KV-cache dtype; FP8 attention math gets its own key."""
    if math_dtype == "bfloat16":
        return _name(kv_dtype)
    return f"{_name(kv_dtype)}_fmha_{_name(math_dtype)}"


# --- GEMM ----------------------------------------------------------------------------------

def _gemm(frame: Any) -> tuple[dict[str, Any], np.ndarray, float]:
    """Grids per dtype, their leave-one-out errors, and the % of points lowered to make
    latency non-decreasing in m (`operator_fits.padded_minimum`)."""
    frame = frame[(frame.n >= MIN_SHAPE_DIM) & (frame.k >= MIN_SHAPE_DIM)]
    grids: dict[str, Any] = {}
    errors, lowered, measured = [], [], []
    for dtype, part in frame.groupby("gemm_dtype"):
        fastest = part.loc[part.groupby(["m", "n", "k"]).latency.idxmin()]
        m = fits.nearest_log_subset(sorted(int(v) for v in fastest.m.unique()), GEMM_M_TARGETS)
        fastest = fastest[fastest.m.isin(m)]
        n = sorted(int(v) for v in fastest.n.unique())
        k = sorted(int(v) for v in fastest.k.unique())
        cube = np.full((len(m), len(n), len(k)), np.nan)
        index = ({v: i for i, v in enumerate(m)}, {v: i for i, v in enumerate(n)},
                 {v: i for i, v in enumerate(k)})
        for row in fastest.itertuples():
            cube[index[0][row.m], index[1][row.n], index[2][row.k]] = row.latency
        monotone = fits.padded_minimum(cube, axis=0)
        lowered.append(int(np.sum(monotone < cube)))
        measured.append(int(np.sum(np.isfinite(cube))))
        cube = monotone
        errors.append(fits.loo_grid_errors_pct(
            [np.array(m, float), np.array(n, float), np.array(k, float)], cube))
        grids[_name(str(dtype))] = {
            "m": m, "n": n, "k": k,
            "ms": [[[None if np.isnan(v) else float(v) for v in row] for row in plane]
                   for plane in cube],
            "kernels": sorted(str(s) for s in fastest.kernel_source.unique()),
        }
    return (grids, np.concatenate(errors) if errors else np.empty(0),
            _pct(sum(lowered), sum(measured)))


def _pct(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else 0.0


# --- attention (plain and MLA) -------------------------------------------------------------

def _fit_rows(features: np.ndarray, latency_ms: np.ndarray) -> tuple[np.ndarray, float]:
    coefficients = fits.fit_relative(features, latency_ms)
    error = fits.relative_errors_pct(features @ coefficients, latency_ms)
    return coefficients, float(np.median(error))


def _prefill_fit(part: Any, window: int) -> dict[str, Any]:
    rows = part.groupby(["batch_size", "isl"], as_index=False).latency.min()
    batch = rows.batch_size.to_numpy(float)
    isl = rows.isl.to_numpy(float)
    y = rows.latency.to_numpy(float)
    x = np.column_stack([np.ones_like(y), batch * isl, batch * fits.causal_pairs(isl, window)])
    c, error = _fit_rows(x, y)
    return {"fixed_ms": c[0], "ms_per_token": c[1], "ms_per_pair": c[2], "points": len(y),
            "fit_error_pct": error}


def _decode_fit(part: Any, window: int, step_includes_new_token: bool) -> dict[str, Any]:
    rows = part.groupby(["batch_size", "step"], as_index=False).latency.min()
    batch = rows.batch_size.to_numpy(float)
    context = rows.step.to_numpy(float) + (0.0 if step_includes_new_token else 1.0)
    y = rows.latency.to_numpy(float)
    x = np.column_stack([np.ones_like(y), batch, batch * fits.cached_tokens(context, window)])
    c, error = _fit_rows(x, y)
    return {"fixed_ms": c[0], "ms_per_seq": c[1], "ms_per_kv_token": c[2], "points": len(y),
            "fit_error_pct": error}


def _attention(frame: Any, decode: bool) -> dict[str, list[dict[str, Any]]]:
    if "window_size" not in frame.columns:  # older collections timed full attention only
        frame = frame.assign(window_size=0)
    keys = ["kv_cache_dtype", "attn_dtype", "num_heads", "num_key_value_heads", "head_dim",
            "window_size"]
    out: dict[str, list[dict[str, Any]]] = {}
    for (kv, math, heads, kv_heads, head_dim, window), part in frame.groupby(keys):
        fit = (_decode_fit(part, int(window), False) if decode
               else _prefill_fit(part, int(window)))
        out.setdefault(_attention_key(str(kv), str(math)), []).append({
            "heads": int(heads), "kv_heads": int(kv_heads), "head_dim": int(head_dim),
            "window": int(window), **fit})
    return out


def _mla(frame: Any, decode: bool, module: bool, head_dim: int) -> dict[str, list[dict[str, Any]]]:
    keys = ["kv_cache_dtype", "mla_dtype", "num_heads"] + (["gemm_type"] if module else [])
    out: dict[str, list[dict[str, Any]]] = {}
    for key, part in frame.groupby(keys):
        kv, math, heads = key[:3]
        fit = _decode_fit(part, 0, module) if decode else _prefill_fit(part, 0)
        out.setdefault(_attention_key(str(kv), str(math)), []).append({
            "heads": int(heads), "kv_heads": 1, "head_dim": head_dim, "window": 0,
            "gemm_dtype": _name(str(key[3])) if module else "", **fit})
    for entries in out.values():
        entries.sort(key=lambda e: (e["gemm_dtype"], e["heads"]))
    return out


def _fit_summary(families: dict[str, list[dict[str, Any]]]) -> dict[str, float | int]:
    errors = np.array([e["fit_error_pct"] for entries in families.values() for e in entries])
    return fits.summary_pct(errors)


# --- MoE -----------------------------------------------------------------------------------

def _moe(frame: Any) -> tuple[dict[str, list[dict[str, Any]]], np.ndarray, float, dict[str, int]]:
    shape = ["hidden_size", "inter_size", "topk", "num_experts", "moe_tp_size", "moe_ep_size"]
    out: dict[str, list[dict[str, Any]]] = {}
    errors, kept = [], {d: 0 for d in MOE_DISTRIBUTIONS}
    lowered = points = 0
    for key, part in frame.groupby(["moe_dtype", *shape]):
        present = set(part.distribution.unique())
        chosen = next((d for d in MOE_DISTRIBUTIONS if d in present), None)
        if chosen is None:
            continue
        curve = part[part.distribution == chosen].groupby("num_tokens").latency.min()
        measured = sorted(int(t) for t in curve.index)
        if len(measured) < MOE_MIN_POINTS:
            continue
        tokens = fits.nearest_log_subset(measured, MOE_TOKEN_TARGETS)
        raw = np.array([float(curve[t]) for t in tokens])
        monotone = fits.padded_minimum(raw)
        lowered, points = lowered + int(np.sum(monotone < raw)), points + len(raw)
        ms = [float(v) for v in monotone]
        errors.append(fits.loo_curve_errors_pct(np.array(tokens, float), monotone))
        kept[chosen] += 1
        hidden, inter, topk, experts, tp, ep = (int(v) for v in key[1:])
        out.setdefault(_name(str(key[0])), []).append({
            "hidden": hidden, "inter": inter, "topk": topk, "experts": experts, "moe_tp": tp,
            "moe_ep": ep, "distribution": chosen, "tokens": tokens, "ms": ms})
    return out, np.concatenate(errors) if errors else np.empty(0), _pct(lowered, points), kept


# --- collectives ---------------------------------------------------------------------------

def _curves(frame: Any, dtype_column: str) -> tuple[dict[str, Any], np.ndarray, float]:
    out: dict[str, dict[str, list[float]]] = {}
    errors = []
    lowered = points = 0
    for gpus, part in frame.groupby("num_gpus"):
        element_bytes = part[dtype_column].map(ELEMENT_BYTES)
        curve = part.assign(bytes=part.message_size * element_bytes).groupby("bytes").latency.min()
        x = [float(v) for v in curve.index]
        raw = curve.to_numpy(float)
        monotone = fits.padded_minimum(raw)
        lowered, points = lowered + int(np.sum(monotone < raw)), points + len(raw)
        errors.append(fits.loo_curve_errors_pct(np.array(x), monotone))
        out[str(int(gpus))] = {"x": x, "ms": [float(v) for v in monotone]}
    return out, np.concatenate(errors) if errors else np.empty(0), _pct(lowered, points)


def _graph_rows(frame: Any) -> Any:
    """The CUDA-graph custom all-reduce rows (what engines run in decode); TensorRT-LLM's table
    has a single implementation and no backend column."""
    if "backend" in frame.columns:
        return frame[frame.backend.str.endswith("_graph")]
    return frame


# --- assembling ----------------------------------------------------------------------------

def _commit(aic: Path) -> str:
    readme = aic / "README.md"
    found = re.search(r"commit `([0-9a-f]{40})`", readme.read_text()) if readme.is_file() else None
    return found.group(1) if found else "unknown"


def _mla_head_dim(aic: Path) -> int:
    config = json.loads((aic / MLA_MODEL_CONFIG).read_text())
    return int(config["kv_lora_rank"]) + int(config["qk_rope_head_dim"])


def build_one(aic: Path, system: str, engine: str) -> dict[str, Any] | None:
    """The tables of one GPU in one engine as a plain mapping, or None when it has none."""
    def read(family: str, filename: str, owner: str = engine) -> Table | None:
        table = _read(aic, system, family, owner, filename)
        if table is not None:
            sources[f"{family}/{filename.removesuffix('.parquet')}"] = {
                "file": table.path, "version": table.version}
        return table

    sources: dict[str, dict[str, str]] = {}
    out: dict[str, Any] = {"gpu": SYSTEMS[system], "aic_system": system, "engine": engine}
    fit_error: dict[str, Any] = {}
    notes: dict[str, str] = {}

    gemm = read("gemm", "gemm_perf.parquet")
    if gemm is not None:
        out["gemm"], errors, lowered = _gemm(gemm.frame)
        fit_error["gemm"] = {**fits.summary_pct(errors), "lowered_pct": lowered}

    for family, filename, decode in (("context_attention", "context_attention_perf.parquet", False),
                                     ("generation_attention", "generation_attention_perf.parquet",
                                      True)):
        table = read("attention", filename)
        if table is not None:
            out[family] = _attention(table.frame, decode)
            fit_error[family] = _fit_summary(out[family])

    head_dim = _mla_head_dim(aic)
    for family, phase, decode in (("mla_context", "context", False),
                                  ("mla_generation", "generation", True)):
        table = read("mla", f"mla_{phase}_module_perf.parquet")
        module = table is not None
        if table is None:
            table = read("mla", f"{phase}_mla_perf.parquet")
        if table is not None:
            out[family] = _mla(table.frame, decode, module, head_dim)
            fit_error[family] = _fit_summary(out[family])
            notes[family] = MODULE_INCLUDES if module else KERNEL_INCLUDES

    moe = read("moe", "moe_perf.parquet")
    if moe is not None:
        out["moe"], errors, lowered, kept = _moe(moe.frame)
        fit_error["moe"] = {**fits.summary_pct(errors), "lowered_pct": lowered}
        notes["moe_distribution_shapes"] = ", ".join(f"{d}: {n}" for d, n in kept.items())

    engine_tables = bool(sources)
    custom = read("comm", "custom_allreduce_perf.parquet")
    nccl = read("comm", "nccl_perf.parquet", owner="nccl")
    if custom is not None:
        out["all_reduce"], errors, lowered = _curves(_graph_rows(custom.frame),
                                                     "allreduce_dtype")
        notes["all_reduce"] = "the engine's custom all-reduce, CUDA-graph backend"
    elif nccl is not None:
        rows = nccl.frame[(nccl.frame.op_name == "all_reduce") & (nccl.frame.nccl_dtype == "half")]
        out["all_reduce"], errors, lowered = _curves(rows, "nccl_dtype")
        notes["all_reduce"] = "NCCL all_reduce (the engine has no custom all-reduce table)"
    if "all_reduce" in out:
        fit_error["all_reduce"] = {**fits.summary_pct(errors), "lowered_pct": lowered}
    if nccl is not None:
        rows = nccl.frame[(nccl.frame.op_name == "alltoall") & (nccl.frame.nccl_dtype == "half")]
        out["all_to_all"], errors, lowered = _curves(rows, "nccl_dtype")
        fit_error["all_to_all"] = {**fits.summary_pct(errors), "lowered_pct": lowered}
    if not engine_tables:
        return None

    out["fit_error"] = {"method": (
        "gemm, moe, all_reduce, all_to_all: leave-one-out over interior knots (each knot "
        "predicted from its two neighbours, log-log, along each axis of a grid), |error| %; "
        "attention and MLA fits: median and p90 over head shapes of each fit's median "
        "|relative error| % on its own rows; lowered_pct: % of table points lowered to the "
        "time of a larger measured size so that latency never falls as size grows (a call "
        "can always run padded to a larger size)"), **fit_error}
    out["provenance"] = {
        "source": "NVIDIA AIConfigurator, measured operator database (arXiv 2601.06288)",
        "repository": "github.com/ai-dynamo/aiconfigurator",
        "commit": _commit(aic),
        "licence": "Apache-2.0",
        "tables": sources,
        "units": "milliseconds for one call on one GPU; collective x in bytes per GPU",
        "dtype_names": {**DTYPE_NAMES, "other": "kept as AIConfigurator names them (int4_wo, "
                        "int8_wo, sq, w4a16_mxfp4, w4a8_mxfp4_mxfp8)"},
        "attention_keys": ("keyed by KV-cache dtype (bf16, fp8); '<kv>_fmha_fp8' holds rows "
                           "whose attention math itself ran in FP8"),
        "gemm": (f"fastest kernel at each (m, n, k); m at the measured values nearest each "
                 f"power of two 1…32768, n and k ≥ {MIN_SHAPE_DIM} as measured; null = not "
                 "measured; each point lowered to the time of any larger m that is faster "
                 "(fit_error.gemm.lowered_pct says how many)"),
        "attention": ("prefill: tokens = batch × isl, pairs = batch × Σ min(i, window); "
                      "decode: step = context already cached, KV tokens = batch × min(step + "
                      "1, window); fastest kernel per row; non-negative least squares in "
                      "relative error"),
        "mla": (f"per query heads on one GPU; head_dim = kv_lora_rank + qk_rope_head_dim = "
                f"{head_dim} of DeepSeek-V3 ({MLA_MODEL_CONFIG}), kv_heads = 1"),
        "moe": (f"fastest kernel per point; tokens at the measured values nearest each power "
                f"of two 1…16384; the distribution kept is the first present of "
                f"{', '.join(MOE_DISTRIBUTIONS)}; shapes with fewer than {MOE_MIN_POINTS} "
                "token points are dropped"),
        "all_to_all": ("NCCL alltoall (nccl-tests alltoall_perf), fp16; x = message_size × 2 "
                       "= the whole send buffer of one GPU in bytes (nccl-tests -b), 1/gpus "
                       "of it to each peer"),
        "all_reduce_bytes": "x = message_size (elements) × 2 bytes (bf16 / fp16)",
        "notes": notes,
    }
    return out


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def render(tables: dict[str, Any]) -> str:
    """The file text: validated against the schema, floats rounded, fields left at their
    defaults (window 0, a decode fit's per-token term …) left out, keys sorted, compact."""
    model = OperatorTables.model_validate_json(json.dumps(_rounded(tables)))
    data = model.model_dump(mode="json", exclude_defaults=True)
    return json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n"


def build(aic: Path, out: Path, systems: list[str] | None = None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for system in systems or sorted(SYSTEMS):
        if not (aic / "kernels" / system).is_dir():
            continue
        for engine in ENGINES:
            tables = build_one(aic, system, engine)
            if tables is None:
                continue
            path = out / f"{tables['gpu']}_{engine}.json.gz"
            # mtime=0: the same tables give the same bytes, so a rebuild can be compared.
            path.write_bytes(gzip.compress(render(tables).encode("utf-8"), compresslevel=9,
                                           mtime=0))
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calibration.sources.aic",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("aic_dir", type=Path, help="AIConfigurator's data folder (kernels/ …)")
    parser.add_argument("--out", type=Path, default=Path("calibration/operators"))
    args = parser.parse_args(argv)
    written = build(args.aic_dir, args.out)
    total = sum(p.stat().st_size for p in written)
    sys.stdout.write(f"wrote {len(written)} files, {total / 1e6:.2f} MB, to {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
