"""Fitting a step-time profile from operator measurements.

Linear layers become a piecewise-linear table over tokens (knots at powers of two);
attention becomes least-squares coefficients; operators
that were not measured fall back to roofline terms with the GPU's fitted efficiencies, and the
profile's provenance says which component came from where. The fit error is reported per
operator (leave-one-out for tables, residuals for least squares) and for composed steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.calibrate.measurements import Measurements
from sim.calibrate.roofline import EfficiencyFit
from sim.errors import InputError
from sim.hardware.catalog import GpuSpec, ModelSpec
from sim.hardware.memory import DTYPE_BYTES
from sim.steptime.library import ProfileFile, StepCoefficients, Table

STEP_CONTEXT_TOKENS = 1024  # per sequence, for the composed-step error of decode steps


def check_compatible(sets: list[Measurements], names: list[str]) -> None:
    """One profile comes from one GPU, model, TP degree and dtype."""
    keys = ("gpu", "model", "tensor_parallel", "dtype")
    first = {k: sets[0].header[k] for k in keys}
    for m, name in zip(sets[1:], names[1:], strict=True):
        for k in keys:
            if m.header[k] != first[k]:
                raise InputError(f"{name}: header {k}", m.header[k],
                                 f"the same {k} as {names[0]} ({first[k]}): one profile is one "
                                 "GPU, model, tensor parallel degree and dtype")


def merge(sets: list[Measurements]) -> Measurements:
    if len(sets) == 1:
        return sets[0]
    cat = {f: np.concatenate([getattr(m, f) for m in sets])
           for f in ("op", "tokens", "batch", "context_tokens", "seconds")}
    return Measurements(header=dict(sets[0].header), op=cat["op"], tokens=cat["tokens"],
                        batch=cat["batch"], context_tokens=cat["context_tokens"],
                        seconds=cat["seconds"])


def fit_profile(m: Measurements, name: str, gpu: GpuSpec, model: ModelSpec,
                efficiency: EfficiencyFit, overhead_s: float,
                all_reduce: Table | None = None, where: str = "measurements") -> ProfileFile:
    tp = m.tensor_parallel
    dtype = m.header["dtype"]
    bytes_per_param = DTYPE_BYTES.get(dtype, 2.0)
    roof = _Roofline(gpu, model, tp, bytes_per_param, efficiency)
    components: dict[str, str] = {}
    errors: dict[str, dict] = {}

    linear_fit = _linear_table(m, where)
    linear, errors["layer_linear"] = linear_fit.table, linear_fit.errors
    components["layer_linear"] = "measured"

    lm_rows = m.select("lm_head")
    if lm_rows.sum() >= 2:
        lm_fit = smooth_table(m.tokens[lm_rows], m.seconds[lm_rows])
        lm_head, errors["lm_head"] = lm_fit.table, lm_fit.errors
        components["lm_head"] = "measured"
    else:
        lm_head = roof.lm_head_table()
        components["lm_head"] = "roofline (fitted efficiencies)"

    prefill = m.select("attn_prefill")
    if prefill.sum() >= 3:
        tokens, context = m.tokens[prefill], m.context_tokens[prefill]
        pairs = tokens * (context + (tokens + 1) / 2)
        (pre_a, pre_pair), errors["attn_prefill"], _ = _least_squares(
            np.column_stack([np.ones_like(pairs), pairs]), m.seconds[prefill])
        components["attn_prefill"] = "measured"
    else:
        pre_a, pre_pair = 0.0, roof.prefill_s_per_pair()
        components["attn_prefill"] = "roofline (fitted efficiencies)"

    decode = m.select("attn_decode")
    decode_fit = None
    if decode.sum() >= 4:
        design = np.column_stack([np.ones(int(decode.sum())), m.batch[decode],
                                  m.context_tokens[decode]])
        (dec_a, dec_seq, dec_kv), errors["attn_decode"], predicted = _least_squares(
            design, m.seconds[decode])
        decode_fit = (m.batch[decode], m.seconds[decode], predicted)
        components["attn_decode"] = "measured"
    else:
        dec_a, dec_seq, dec_kv = 0.0, 0.0, roof.decode_s_per_kv_token()
        components["attn_decode"] = "roofline (fitted efficiencies)"

    if tp > 1:
        if all_reduce is None:
            all_reduce = roof.all_reduce_table()
            components["all_reduce"] = "roofline (ring over the interconnect)"
        else:
            components["all_reduce"] = "measured"
    components["overhead"] = "assumed per-step engine overhead"

    step = StepCoefficients(
        layers=model.layers, layer_linear_s=linear, all_reduce_s=all_reduce if tp > 1 else None,
        lm_head_s=lm_head, prefill_attention_s=pre_a, prefill_attention_s_per_pair=pre_pair,
        decode_attention_s=dec_a, decode_attention_s_per_seq=dec_seq,
        decode_attention_s_per_kv_token=dec_kv, overhead_s=overhead_s)
    errors["step"] = _composed_step_error(linear_fit, decode_fit, step)
    provenance: dict[str, str | dict[str, str]] = {k: v for k, v in m.header.items() if v}
    provenance["components"] = components
    return ProfileFile(name=name, gpu=gpu.name, model=model.name, tensor_parallel=tp,
                       dtype=dtype, source="measured", provenance=provenance, step=step,
                       fit_error=errors)


@dataclass(frozen=True)
class TableFit:
    """A fitted table, its error report, and each measured point's out-of-sample prediction."""

    table: Table
    errors: dict
    x: np.ndarray
    measured: np.ndarray
    predicted: np.ndarray


def _linear_table(m: Measurements, where: str) -> TableFit:
    rows = m.select("layer_linear")
    if rows.sum() < 2:
        raise InputError(where, f"{int(rows.sum())} layer_linear rows",
                         "layer_linear timings at two or more token counts")
    tokens, seconds = m.tokens[rows], m.seconds[rows]
    order = np.argsort(tokens)
    tokens, seconds = tokens[order], seconds[order]
    running_max = np.maximum.accumulate(seconds)
    garbage = np.flatnonzero(seconds < 0.5 * running_max)
    if garbage.size:
        i = int(garbage[0])
        raise InputError(f"{where}: layer_linear at {tokens[i]:g} tokens", f"{seconds[i]:.3g} s",
                         f"roughly non-decreasing times (under half of {running_max[i]:.3g} s "
                         "at fewer tokens looks like a broken measurement)")
    return smooth_table(tokens, seconds)


def smooth_table(x: np.ndarray, y: np.ndarray) -> TableFit:
    """Median per x, then a piecewise-linear curve with knots at powers of two.

    Dense, noisy sweeps (hundreds of token counts) are smoothed by weighted least squares onto
    the knots and scored by their residuals; sparse grids (about one point per knot) keep every
    point as a knot and are scored leave-one-out."""
    xs = np.unique(x)
    ys = np.array([np.median(y[x == v]) for v in xs])
    if xs.size < 2:
        raise InputError("measurements", f"{xs.size} distinct token counts", "two or more")
    powers = 2.0 ** np.arange(0, 31)
    inside = powers[(powers > xs[0]) & (powers < xs[-1])]
    knots = np.unique(np.concatenate([[xs[0], xs[-1]], inside]))
    if xs.size <= knots.size + 2:
        return _exact_table(xs, ys)
    basis = np.column_stack([np.interp(xs, knots, np.eye(knots.size)[j])
                             for j in range(knots.size)])
    values, *_ = np.linalg.lstsq(basis / ys[:, None], np.ones_like(ys), rcond=None)
    predicted = basis @ values
    rel = np.abs(predicted - ys) / ys
    errors = {**_scores(rel), "points": int(xs.size), "knots": int(knots.size),
              "method": "least squares on power-of-two knots"}
    return TableFit(Table(x=knots.tolist(), y=values.tolist()), errors, xs, ys, predicted)


def _exact_table(xs: np.ndarray, ys: np.ndarray) -> TableFit:
    """Every point a knot; each interior point predicted from its neighbours to score it."""
    predicted = ys.copy()
    for i in range(1, xs.size - 1):
        predicted[i] = np.interp(xs[i], np.delete(xs, i), np.delete(ys, i))
    rel = (np.abs(predicted - ys) / ys)[1:-1] if xs.size > 2 else np.zeros(1)
    errors = {**_scores(rel), "points": int(xs.size), "knots": int(xs.size),
              "method": "leave-one-out interpolation"}
    return TableFit(Table(x=xs.tolist(), y=ys.tolist()), errors, xs, ys, predicted)


def _least_squares(design: np.ndarray, seconds: np.ndarray
                   ) -> tuple[list[float], dict, np.ndarray]:
    """Non-negative least squares on relative error (drop negative terms and refit)."""
    active = np.ones(design.shape[1], dtype=bool)
    weights = 1.0 / seconds
    coef = np.zeros(design.shape[1])
    while True:
        a = design[:, active] * weights[:, None]
        sol, *_ = np.linalg.lstsq(a, seconds * weights, rcond=None)
        if np.all(sol >= 0) or active.sum() == 1:
            coef[active] = np.clip(sol, 0, None)
            break
        active[np.flatnonzero(active)[np.argmin(sol)]] = False
    predicted = design @ coef
    rel = np.abs(predicted - seconds) / seconds
    errors = {**_scores(rel), "points": int(seconds.size), "method": "least squares"}
    return [float(c) for c in coef], errors, predicted


def _composed_step_error(linear: TableFit, decode: tuple | None,
                         step: StepCoefficients) -> dict:
    """Whole decode steps built from the measurements vs the same steps from the profile.

    Each operator enters with its out-of-sample prediction (leave-one-out for sparse tables),
    so an exact interpolation does not score itself as perfect. Where decode attention was
    measured, every measured (batch, KV) point is a step; otherwise every linear-layer point
    is a step of that many sequences with the profile's attention term on both sides."""
    layers = step.layers
    if decode is not None:
        batches, attn_measured, attn_predicted = decode
    else:
        batches = linear.x
        attn = step.decode_attention_s_per_kv_token * batches * STEP_CONTEXT_TOKENS
        attn_measured = attn_predicted = attn
    lin_measured = np.interp(batches, linear.x, linear.measured)
    lin_predicted = np.interp(batches, linear.x, linear.predicted)
    rest = np.array([step.overhead_s + step.lm_head_s.at(b) + (
        layers * step.all_reduces_per_layer * step.all_reduce_s.at(b)
        if step.all_reduce_s is not None else 0.0) for b in batches])
    truth = rest + layers * (lin_measured + attn_measured)
    predicted = rest + layers * (lin_predicted + attn_predicted)
    rel = np.abs(predicted - truth) / truth
    method = ("measured decode-attention points" if decode is not None
              else f"decode steps of B = tokens sequences, {STEP_CONTEXT_TOKENS} context each")
    return {**_scores(rel), "points": int(rel.size), "method": method}


def _scores(rel: np.ndarray) -> dict[str, float]:
    """Relative errors as percentages: mean (MAPE), median and worst."""
    return {"mape_pct": round(100 * float(rel.mean()), 3),
            "median_pct": round(100 * float(np.median(rel)), 3),
            "worst_pct": round(100 * float(rel.max()), 3)}


class _Roofline:
    """Roofline terms for the operators a measurement set lacks."""

    def __init__(self, gpu: GpuSpec, model: ModelSpec, tp: int, bytes_per_param: float,
                 eff: EfficiencyFit) -> None:
        self.gpu, self.model, self.tp, self.bpp, self.eff = gpu, model, tp, bytes_per_param, eff
        self.bw = gpu.memory_bandwidth_tb_s * 1e12 * eff.bandwidth_efficiency
        self.peak = gpu.bf16_tflops * 1e12 * eff.compute_efficiency

    def lm_head_table(self) -> Table:
        params = self.model.vocab * self.model.hidden / self.tp
        xs = [1.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0]
        ys = [max(params * self.bpp / self.bw, 2 * params * n / self.peak) for n in xs]
        return Table(x=xs, y=ys)

    def prefill_s_per_pair(self) -> float:
        assert self.model.head_dim is not None  # ModelSpec derives it at construction
        return 4.0 * self.model.heads * self.model.head_dim / self.tp / self.peak

    def decode_s_per_kv_token(self) -> float:
        assert self.model.head_dim is not None  # ModelSpec derives it at construction
        per_layer = 2.0 * self.model.kv_heads * self.model.head_dim * self.bpp
        return per_layer / self.tp / self.bw

    def all_reduce_table(self) -> Table:
        one_way = (self.gpu.interconnect_gb_s or 64.0) / 2 * 1e9 * 0.7
        ring = 2.0 * (self.tp - 1) / self.tp
        xs = [1.0, 16384.0]
        return Table(x=xs, y=[1e-5 + ring * x * self.model.hidden * 2.0 / one_way for x in xs])
