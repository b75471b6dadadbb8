"""Reading one operator's time out of the measured tables, at shapes they may not hold.

Latency grows as a power of a GEMM's sizes (flat while launch- or weight-bound, linear in m
once compute-bound), so every table is interpolated in log–log space: exact at measured
points, and a straight line in log–log between and beyond them. Beyond the last point the
slope is held between 0 and 1 (more work is never faster, and never more than proportionally
slower); below the first point the first value is kept, an upper bound. Each lookup says
whether it hit measured points, interpolated or extrapolated, for the provenance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.steptime.operators import AttentionFit, Curve, GemmGrid, MoeTable

MEASURED, INTERPOLATED, EXTRAPOLATED = "measured", "interpolated", "extrapolated"


def worst(*statuses: str) -> str:
    order = (MEASURED, INTERPOLATED, EXTRAPOLATED)
    return max(statuses, key=order.index)


def loglog(x_known: np.ndarray, y_known: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y at x from (x_known, y_known), positive and x_known increasing (module docstring)."""
    lx, ly, q = np.log(x_known), np.log(y_known), np.log(np.maximum(x, 1e-300))
    out = np.interp(q, lx, ly)
    if len(lx) >= 2:
        slope = min(max((ly[-1] - ly[-2]) / (lx[-1] - lx[-2]), 0.0), 1.0)
        beyond = q > lx[-1]
        out[beyond] = ly[-1] + slope * (q[beyond] - lx[-1])
    return np.exp(out)


def _status(axis: list[int] | list[float], value: float) -> str:
    if value in axis:
        return MEASURED
    return INTERPOLATED if axis[0] <= value <= axis[-1] else EXTRAPOLATED


def _bracket(axis: list[int], value: float) -> tuple[int, int, float, float]:
    """Indices around `value` on a sorted axis, the log-space weight of the upper one
    (0 below the axis: clamped; above 1 past its end) and the log-space span between them."""
    if len(axis) == 1 or value <= axis[0]:
        return 0, 0, 0.0, 1.0
    hi = min(int(np.searchsorted(axis, value)), len(axis) - 1)
    lo = hi - 1
    span = math.log(axis[hi] / axis[lo])
    return lo, hi, math.log(value / axis[lo]) / span, span


def _lerp(low: float, high: float, weight: float, span: float) -> float:
    """Between two log latencies; past the upper one with the slope held in [0, 1]."""
    if weight <= 1.0:
        return low + (high - low) * weight
    slope = min(max((high - low) / span, 0.0), 1.0)
    return high + slope * (weight - 1.0) * span


def gemm_curve(grid: GemmGrid, n: int, k: int) -> tuple[np.ndarray, np.ndarray, str] | None:
    """The grid's latency (ms) over its m values for an (n, k) weight, bilinear in log space
    over the four measured (n, k) around it; m values with a hole among the four are left
    out. None when no m value has all four."""
    n0, n1, wn, sn = _bracket(grid.n, n)
    k0, k1, wk, sk = _bracket(grid.k, k)
    ms, ys = [], []
    for i, m in enumerate(grid.m):
        corners = [grid.ms[i][a][b] for a in (n0, n1) for b in (k0, k1)]
        values = [c for c in corners if c is not None and c > 0]
        if len(values) < 4:
            continue
        c00, c01, c10, c11 = (math.log(c) for c in values)
        low, high = _lerp(c00, c01, wk, sk), _lerp(c10, c11, wk, sk)
        ms.append(m)
        ys.append(math.exp(_lerp(low, high, wn, sn)))
    if not ms:
        return None
    return np.asarray(ms, float), np.asarray(ys), worst(_status(grid.n, n), _status(grid.k, k))


def gemm_ms(grid: GemmGrid, n: int, k: int, m: np.ndarray) -> tuple[np.ndarray, str] | None:
    """Latency (ms) of an m × k by k × n GEMM at each m; None where the grid cannot say."""
    curve = gemm_curve(grid, n, k)
    if curve is None:
        return None
    xs, ys, status = curve
    m_status = EXTRAPOLATED if float(np.max(m)) > xs[-1] else MEASURED
    return loglog(xs, ys, m), worst(status, m_status)


def curve_ms(curve: Curve, x: np.ndarray) -> tuple[np.ndarray, str]:
    """A measured curve (bytes or tokens → ms) at x."""
    xs, ys = np.asarray(curve.x, float), np.asarray(curve.ms, float)
    status = EXTRAPOLATED if float(np.max(x)) > xs[-1] else MEASURED
    return loglog(xs, ys, x), status


def leave_one_out_pct(xs: np.ndarray, ys: np.ndarray) -> list[float]:
    """|relative error| (%) of predicting each interior point of a curve from the others
    with the same log–log interpolation the composition uses."""
    errors = []
    for i in range(1, len(xs) - 1):
        keep = np.arange(len(xs)) != i
        predicted = loglog(xs[keep], ys[keep], xs[i:i + 1])[0]
        errors.append(abs(predicted / ys[i] - 1.0) * 100.0)
    return errors


@dataclass(frozen=True)
class ScaledFit:
    """A measured attention fit and the factors that carry it to another head shape:
    `compute` multiplies the per-token, per-pair and per-sequence terms (∝ query heads ×
    head_dim), `memory` the per-KV-token term (∝ key-value heads × head_dim)."""

    fit: AttentionFit
    compute: float
    memory: float
    status: str


def pick_fit(fits: list[AttentionFit], heads: int, kv_heads: int, head_dim: int | None,
             window: int, gemm_dtype: str = "") -> ScaledFit | None:
    """The measured head shape nearest to (heads, kv_heads, head_dim) — same window and
    projection dtype where the tables have one — scaled to it (see `ScaledFit`).
    head_dim None: any (MLA modules, whose latent width is the model's own)."""
    if not fits:
        return None
    same_window = [f for f in fits if f.window == window] or fits
    same_dtype = [f for f in same_window if f.gemm_dtype == gemm_dtype] or same_window

    def dim(f: AttentionFit) -> int:
        return f.head_dim if head_dim is None else head_dim

    def distance(f: AttentionFit) -> float:
        return (abs(math.log(f.heads / heads)) + abs(math.log(f.kv_heads / kv_heads))
                + abs(math.log(f.head_dim / dim(f))))

    fit = min(same_dtype, key=distance)
    exact = distance(fit) == 0 and fit.window == window and fit.gemm_dtype == gemm_dtype
    return ScaledFit(fit, heads * dim(fit) / (fit.heads * fit.head_dim),
                     kv_heads * dim(fit) / (fit.kv_heads * fit.head_dim),
                     MEASURED if exact else EXTRAPOLATED)


@dataclass(frozen=True)
class ScaledMoe:
    """A measured expert-layer table carried to another shape: it is read at `token_factor`
    × the tokens (the same token–expert assignments per expert: ∝ top-k / experts) and its
    time multiplied by `time_factor` (one assignment's work on one GPU: hidden × inter /
    moe_tp, and the experts each GPU holds: experts / moe_ep, relative to the table's)."""

    table: MoeTable
    token_factor: float
    time_factor: float
    status: str


def pick_moe(tables: list[MoeTable], hidden: int, inter: int, topk: int, experts: int,
             moe_tp: int, moe_ep: int) -> ScaledMoe | None:
    if not tables:
        return None
    wanted = (hidden, inter, topk, experts, moe_tp, moe_ep)

    def distance(t: MoeTable) -> float:
        have = (t.hidden, t.inter, t.topk, t.experts, t.moe_tp, t.moe_ep)
        return sum(abs(math.log(h / w)) for h, w in zip(have, wanted, strict=True))

    t = min(tables, key=distance)
    if distance(t) == 0:
        return ScaledMoe(t, 1.0, 1.0, MEASURED)
    tokens = (topk / experts) / (t.topk / t.experts)
    per_gpu = (hidden * inter / moe_tp * experts / moe_ep) / (
        t.hidden * t.inter / t.moe_tp * t.experts / t.moe_ep)
    return ScaledMoe(t, tokens, per_gpu, EXTRAPOLATED)


def moe_ms(scaled: ScaledMoe, tokens: np.ndarray) -> tuple[np.ndarray, str]:
    t = scaled.table
    xs = np.asarray(t.tokens, float)
    query = np.maximum(tokens * scaled.token_factor, 1.0)
    status = EXTRAPOLATED if float(np.max(query)) > xs[-1] else scaled.status
    return loglog(xs, np.asarray(t.ms, float), query) * scaled.time_factor, status
