"""Load sweeps: every load point compared like a row, then where latency turns up (the knee).

A capacity planner mostly cares where a deployment stops absorbing load: the *knee*, taken
here as the lowest load at which median TTFT (mean where no median was published) exceeds
`KNEE_FACTOR` times its value at the sweep's lowest load. Comparing the simulated knee with
the measured one checks the queueing and batching behaviour, not just peak throughput.

A point at a concurrency runs as the closed loop it was measured as (`sweep_loop`); a point
at a request rate as Poisson arrivals at that rate, and an offline (`inf`) point as an
overloaded queue, the way a table's rows run (`compare.compare_row`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict

from sim.validation.compare import COMPARED, Comparison, compare_row, matches
from sim.validation.files import Table
from sim.validation.mapping import is_number
from sim.validation.silicon_mapping import ModelFinder
from sim.validation.sweep_loop import simulate_closed

KNEE_FACTOR = 3.0
KNEE_METRICS = ("ttft_ms_median", "ttft_ms")  # in order of preference

Progress = Callable[[int, int], None]


class _KneeLabels(TypedDict):
    kind: str
    group: str
    gpu: str
    engine: str


def compare_sweeps(table: Table, pattern: str | None = None, progress: Progress | None = None,
                   models: ModelFinder | None = None) -> list[Comparison]:
    """Each point of each sweep (ids `sweep_id/<point>`), then one knee entry per sweep;
    `models` finds the sweeps' model names (None: the catalogue only)."""
    rows = [row for row in table.rows if matches(row["id"], pattern)]
    by_sweep: dict[str, list[dict]] = {}
    for row in rows:
        by_sweep.setdefault(row["sweep_id"], []).append(row)
    out: list[Comparison] = []
    done = 0
    for sweep_id, points in by_sweep.items():
        compared = []
        for row in points:
            axis, load = _load(row)
            closed = axis == "concurrency"
            compared.extend(compare_row(row, kind="sweep", group=sweep_id, load=load,
                                        models=models, closed_loop=closed,
                                        simulator=simulate_closed if closed else None))
            done += 1
            if progress is not None:
                progress(done, len(rows))
        out.extend(compared)
        out.append(knee(sweep_id, points, compared))
    return out


def knee(sweep_id: str, points: list[dict], compared: list[Comparison]) -> Comparison:
    """The knee entry of one sweep: measured and simulated load where TTFT turns up."""
    axis = next((a for a, _ in map(_load, points) if a), "load")
    knee_metric = f"knee_{axis}"
    label: _KneeLabels = {"kind": "knee", "group": sweep_id,
                          "gpu": str(points[0].get("gpu", "")),
                          "engine": compared[0].engine if compared else ""}
    metric = next((m for m in KNEE_METRICS if any(c.metric == m for c in compared)), None)
    # (load, comparison) of the sweep's points that compare this metric
    ours = [(c.load, c) for c in compared if c.metric == metric and c.load is not None]
    if not any(c.compared for c in compared):
        why = compared[0].status.removeprefix("skipped: ") if compared else "no load points"
        return Comparison(f"{sweep_id}/knee", knee_metric, None, None, f"skipped: {why}", **label)
    if metric is None or len(ours) < 2:
        return Comparison(f"{sweep_id}/knee", knee_metric, None, None,
                          "skipped: fewer than 2 load points with a TTFT", **label)
    if not all(c.compared for _, c in ours):
        return Comparison(f"{sweep_id}/knee", knee_metric, None, None,
                          "skipped: not every load point could be simulated", **label)
    ours.sort(key=lambda point: point[0])
    loads = [load for load, _ in ours]
    measured = knee_load(loads, [c.measured for _, c in ours])
    simulated = knee_load(loads, [c.simulated for _, c in ours])
    source = ours[0][1].profile_source
    if measured is None or simulated is None:
        missing = " and ".join(name for name, k in (("measured", measured),
                                                     ("simulated", simulated)) if k is None)
        found = (f" (measured knee at {measured:g})" if measured is not None else
                 f" (simulated knee at {simulated:g})" if simulated is not None else "")
        status = (f"skipped: {missing} {metric} stays below {KNEE_FACTOR:g}× its value at "
                  f"{loads[0]:g} across the sweep{found}")
        return Comparison(f"{sweep_id}/knee", knee_metric, measured, simulated, status, source,
                          **label)
    return Comparison(f"{sweep_id}/knee", knee_metric, measured, simulated, COMPARED,
                      source, (f"knee: lowest load where {metric} > {KNEE_FACTOR:g}× its "
                               f"value at {loads[0]:g}",), **label)


def knee_load(loads: list[float], ttft: list[float | None]) -> float | None:
    """The lowest load whose TTFT exceeds KNEE_FACTOR × the TTFT at the lowest load."""
    if not ttft or ttft[0] is None:
        return None
    for load, value in zip(loads, ttft, strict=True):
        if value is not None and value > KNEE_FACTOR * ttft[0]:
            return load
    return None


def _load(row: dict) -> tuple[str | None, float | None]:
    """(axis, value) of a sweep point; `inf` rates are offline points, outside the knee."""
    if is_number(row.get("concurrency")):
        return "concurrency", float(row["concurrency"])
    rate = row.get("request_rate_per_s")
    if is_number(rate) and rate != float("inf"):
        return "request_rate_per_s", float(rate)
    return None, None
