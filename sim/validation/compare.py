"""Measured against simulated, row by row: one `Comparison` per measured row and metric.

Every row of a file yields at least one comparison, so nothing is dropped silently: a row the
simulator does not cover yields one `skipped: <reason>` entry per metric it measured. The
records are flat and carry the labels the summaries group by (GPU as published, engine
family, catalogue model) and the assumptions made for the row.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypedDict

from sim.validation.burst import simulate_burst
from sim.validation.files import Table
from sim.validation.host_overhead import with_host_overhead
from sim.validation.mapping import (
    LATENCY_FIELDS,
    THROUGHPUT,
    Measured,
    RowSetup,
    Uncovered,
    engine_family,
    measured_metrics,
    setup_for_row,
)
from sim.validation.silicon_mapping import ModelFinder
from sim.validation.simulate import Simulated, capacity_estimate, simulate

COMPARED = "compared"
CSV_COLUMNS = ("id", "metric", "measured", "simulated", "error_pct", "status", "profile_source",
               "assumptions")
Progress = Callable[[int, int], None]
# (the row's set-up, its usable measured values) → the simulated numbers, or `Uncovered`
Simulator = Callable[[RowSetup, dict[str, float]], Simulated]


class Labels(TypedDict):
    """The labels every comparison of one row carries (`Comparison`'s fields of the same
    names)."""

    gpu: str
    engine: str
    kind: str
    group: str
    load: float | None


@dataclass(frozen=True)
class Comparison:
    id: str
    metric: str
    measured: float | None
    simulated: float | None
    status: str  # "compared" or "skipped: <reason>"
    # measured-operators | measured | fitted-roofline | roofline ('' when skipped)
    profile_source: str = ""
    assumptions: tuple[str, ...] = ()
    observed: str = ""  # what the simulation did (batch reached, preemptions)
    gpu: str = ""  # as published
    engine: str = ""  # family: TensorRT-LLM | vLLM | SGLang | other
    model: str = ""  # catalogue key or config name ('' when found in neither)
    kind: str = "row"  # row (measurements file) | sweep (a load point) | knee
    group: str = ""  # the sweep a point or knee belongs to
    load: float | None = None  # the sweep point's concurrency or request rate

    @property
    def compared(self) -> bool:
        return self.status == COMPARED

    @property
    def error_pct(self) -> float | None:
        """(simulated − measured) / measured × 100, from the values as written."""
        if not self.compared or not self.measured or self.simulated is None:
            return None
        return (self.simulated - self.measured) / self.measured * 100.0


def matches(row_id: str, pattern: str | None) -> bool:
    """`--rows`: a glob when it has wildcard characters, else a substring of the id."""
    if not pattern:
        return True
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(row_id, pattern)
    return pattern in row_id


def compare_rows(table: Table, pattern: str | None = None, progress: Progress | None = None,
                 models: ModelFinder | None = None) -> list[Comparison]:
    """Every row matching `pattern`; `models` finds the rows' model names (None: the
    catalogue only)."""
    rows = [row for row in table.rows if matches(row["id"], pattern)]
    out: list[Comparison] = []
    for done, row in enumerate(rows, start=1):
        out.extend(compare_row(row, models=models))
        if progress is not None:
            progress(done, len(rows))
    return out


def compare_row(row: dict[str, Any], kind: str = "row", group: str = "",
                load: float | None = None, models: ModelFinder | None = None,
                simulator: Simulator | None = None,
                closed_loop: bool = False) -> list[Comparison]:
    """Simulate one row (if covered) and compare each of its measured metrics. `simulator`
    runs the set-up (None: `simulate`, the benchmark's load approximated as the module says,
    or `simulate_burst` for a burst of prompts), with the row's host time per step where its
    engine version had one (`host_overhead`); `closed_loop` is `setup_for_row`'s."""
    metrics = measured_metrics(row)
    labels: Labels = {"gpu": str(row.get("gpu", "")), "engine": engine_family(row),
                      "kind": kind, "group": group, "load": load}
    setup = None
    try:
        setup = setup_for_row(row, models, closed_loop)
        # Only a measured value > 0 comes without a skip reason (`mapping._value`).
        usable = {m.metric: m.value for m in metrics if m.skip is None and m.value is not None}
        if not usable:
            return [_skipped(row, m, m.skip, labels, setup.model) for m in metrics]
        with with_host_overhead(setup) as ready:
            simulated = (simulator or _simulate)(ready, usable)
    except Uncovered as exc:
        model = setup.model if setup is not None else ""
        return [_skipped(row, m, str(exc), labels, model) for m in metrics]
    out = []
    for m in metrics:
        if m.skip is not None:
            out.append(_skipped(row, m, m.skip, labels, setup.model))
            continue
        value = _simulated_value(simulated, m.metric)
        notes = (*setup.assumptions, *([m.note] if m.note else []))
        if value is None:
            out.append(_skipped(row, m, "the simulation measured no request for it", labels,
                                setup.model))
            continue
        out.append(Comparison(row["id"], m.metric, m.value, round(value, 3), COMPARED,
                              simulated.profile_source, notes,
                              simulated.observed(setup.max_num_seqs), model=setup.model,
                              **labels))
    return out


def _simulate(setup: RowSetup, usable: dict[str, float]) -> Simulated:
    if setup.load == "burst":
        return simulate_burst(setup)
    return simulate(setup, capacity_estimate(setup, usable))


def _simulated_value(simulated: Simulated, metric: str) -> float | None:
    if metric == THROUGHPUT:
        return simulated.output_tokens_per_s
    which, stat = LATENCY_FIELDS[metric]
    return simulated.latency_ms[which][stat]


def _skipped(row: dict[str, Any], m: Measured, reason: str | None, labels: Labels,
             model: str = "") -> Comparison:
    return Comparison(row["id"], m.metric, m.value, None, f"skipped: {reason}", model=model,
                      **labels)


# ---- CSV -----------------------------------------------------------------------------------


def to_csv(comparisons: Iterable[Comparison]) -> str:
    """The CSV contract: id, metric, measured, simulated, error_pct, status, then extras."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for c in comparisons:
        writer.writerow(contract_cells(c))
    return buffer.getvalue()


def contract_cells(c: Comparison) -> list[str]:
    """One comparison's cells of the CSV contract (`CSV_COLUMNS`), which every format's CSV
    starts with."""
    error = c.error_pct
    notes = (*c.assumptions, c.observed) if c.observed else c.assumptions
    return [c.id, c.metric, _number(c.measured), _number(c.simulated),
            "" if error is None else f"{error:.3f}", c.status, c.profile_source,
            "; ".join(notes)]


def _number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:g}" if value == int(value) and abs(value) < 1e15 else repr(value)
