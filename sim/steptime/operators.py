"""Measured operator tables: the derived files a composed step model reads.

`calibration/operators/<gpu>_<engine>.json.gz` (gzip-compressed JSON) holds, for one GPU
(our catalogue name) timed in one engine's build, compact tables derived from NVIDIA
AIConfigurator's measured operator database (`calibration.sources.aic` writes them from the
parquet files; nothing here reads parquet). Every time is in **milliseconds for one call on
one GPU**, as measured.

- `gemm[dtype]`: a latency grid over m (tokens) × n × k (the weight's shape on one GPU),
  the fastest kernel the engine has for that dtype at each point; `null` where the grid was
  not measured.
- `context_attention[kv_dtype]` / `generation_attention[kv_dtype]`: per head shape on one
  GPU (query heads, key-value heads, head_dim, window; 0 = full attention), a fit of the
  measured latencies: prefill `fixed_ms + ms_per_token × tokens + ms_per_pair × causal
  query-key pairs`; decode `fixed_ms + ms_per_seq × batch + ms_per_kv_token × KV tokens`
  (the F(B) + c·KV form event skipping needs), each with its fit error.
- `mla_context[kv_dtype]` / `mla_generation[kv_dtype]`: the same fits for DeepSeek-style
  latent-attention modules, per query heads on one GPU and GEMM dtype.
- `moe[dtype]`: per expert-layer shape (hidden, inter, top-k, experts, moe_tp, moe_ep) a
  latency table over tokens in the step, under the realistic (skewed) token-to-expert
  distribution named in `distribution`.
- `all_reduce[gpus]` / `all_to_all[gpus]`: latency over message bytes (the engine's CUDA
  graph custom all-reduce; NCCL all-to-all for expert parallelism).
- `provenance`: source, commit, the table files and engine versions they came from.
- `fit_error`: leave-one-out error of each table family (interior points), in percent.
"""

from __future__ import annotations

import gzip
from functools import cache
from importlib import resources
from typing import Any

from pydantic import Field

from sim.scenario.base import Strict


class Curve(Strict):
    """y(x) measured at knots, x strictly increasing (bytes or tokens); milliseconds."""

    x: list[float] = Field(min_length=1)
    ms: list[float] = Field(min_length=1)


class GemmGrid(Strict):
    m: list[int]
    n: list[int]
    k: list[int]
    ms: list[list[list[float | None]]]  # [m][n][k]
    kernels: list[str] = []  # the kernel sources the fastest-of came from


class AttentionFit(Strict):
    """A fit of one head shape's measured latencies (module docstring for the forms)."""

    heads: int  # query heads on one GPU
    kv_heads: int  # key-value heads on one GPU (MLA: 1, the shared latent)
    head_dim: int
    window: int = 0  # sliding window in tokens, 0 = full attention
    gemm_dtype: str = ""  # MLA modules: the projections' dtype; "" for plain attention
    fixed_ms: float
    ms_per_token: float = 0.0  # prefill: per prompt token in the call
    ms_per_pair: float = 0.0  # prefill: per causal query-key pair
    ms_per_seq: float = 0.0  # decode: per sequence in the batch
    ms_per_kv_token: float = 0.0  # decode: per cached token read
    points: int  # measured rows the fit used
    fit_error_pct: float  # median |relative error| of the fit on those rows


class MoeTable(Strict):
    hidden: int
    inter: int
    topk: int
    experts: int
    moe_tp: int
    moe_ep: int
    distribution: str
    tokens: list[int]
    ms: list[float]


class OperatorTables(Strict):
    gpu: str  # our catalogue's name (`calibration/gpus.yaml`)
    aic_system: str  # AIConfigurator's name for it (h200_sxm …)
    engine: str  # vllm | sglang | trtllm
    provenance: dict[str, Any]
    gemm: dict[str, GemmGrid] = {}
    context_attention: dict[str, list[AttentionFit]] = {}
    generation_attention: dict[str, list[AttentionFit]] = {}
    mla_context: dict[str, list[AttentionFit]] = {}
    mla_generation: dict[str, list[AttentionFit]] = {}
    moe: dict[str, list[MoeTable]] = {}
    all_reduce: dict[str, Curve] = {}  # by GPUs in the group
    all_to_all: dict[str, Curve] = {}  # by GPUs in the group
    fit_error: dict[str, Any] = {}


def _folder() -> Any:
    return resources.files("calibration").joinpath("operators")


@cache
def available() -> tuple[tuple[str, str], ...]:
    """The (gpu, engine) pairs shipped tables exist for."""
    folder = _folder()
    if not folder.is_dir():
        return ()
    found = []
    for entry in folder.iterdir():
        stem, dot, ext = entry.name.rpartition(".json")
        if dot and ext == ".gz" and "_" in stem:
            gpu, _, engine = stem.rpartition("_")
            found.append((gpu, engine))
    return tuple(sorted(found))


@cache
def tables(gpu: str, engine: str) -> OperatorTables | None:
    """The shipped tables of `gpu` timed in `engine`, or None when there are none."""
    if (gpu, engine) not in available():
        return None
    packed = _folder().joinpath(f"{gpu}_{engine}.json.gz").read_bytes()
    return OperatorTables.model_validate_json(gzip.decompress(packed))
