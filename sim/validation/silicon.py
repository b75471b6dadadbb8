"""Measured end-to-end rows (the CSV format of `silicon_sample.csv`) simulated as closed loops
and compared: TTFT and TPOT, one `SiliconComparison` per row and metric.

**What is measured, and how.** The rows come from `aiperf profile --concurrency N` runs with
fixed ISL/OSL: N clients, each sending its next request the moment its last one finished.
AIConfigurator's code and documents do not say which statistic its rows hold; aiperf's
summary leads with the mean, and with fixed lengths every request does the same work, so mean
and median differ little. The simulation reports the **mean** over the metrics window of
TTFT from the request's *send* (as a client sees it: any wait in the server's queue
included) and TPOT = (E2E − TTFT) / (OSL − 1) per request, as aiperf computes it. A
disaggregated row is simulated as its benchmark's profiling phase instead, with TTFT ending
at the decode side (`sim.validation.silicon_phase`); what follows is the aggregated rows'.

**How long to run.** A closed loop with fixed lengths and no think time is deterministic; what
needs care is the start, where all N clients send at once and the first wave's prefills
queue behind each other. With nothing random to spread them, the waves dissolve slowly — over
tens of request lifetimes where a batch's prompts take several steps to prefill — so the run
is `WARMUP_LIFETIMES` request lifetimes of warm-up and `WINDOW_LIFETIMES` lifetimes of window
(requests *sent* in the window are measured; the run drains until they finish). Runs are
cheap (events ∝ requests), so the lengths are set by that settling, not by cost. The first
run is sized with the row's measured lifetime (TTFT + (OSL − 1) × TPOT) — sizing only — and
rerun with the simulated lifetime when the simulation turned out slower than that, so the
window never holds fewer lifetimes than asked. `test_validate_silicon` checks that doubling
both lengths moves the means by < 2 %; on 67 rows of the shared file (one per engine,
concurrency band and ISL) it does for 61 TTFTs and 66 TPOTs, while a few rows whose batch of
prompts takes many steps to prefill still drift (TTFT down by up to a third).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import sim
from sim.errors import InputError
from sim.montecarlo.execute import open_executor
from sim.validation.compare import COMPARED, CSV_COLUMNS, Comparison, contract_cells, matches
from sim.validation.silicon_mapping import Labels, ModelFinder, RowPlan, Skip, labels, plan_row
from sim.validation.silicon_phase import (
    Phase,
    is_disaggregated,
    mean_ms,
    replica_kv_tokens,
    run_profiling_phase,
)
from sim.validation.silicon_phase import observed as phase_observed
from sim.validation.silicon_rows import SiliconRow, SiliconTable

WARMUP_LIFETIMES = 16.0
WINDOW_LIFETIMES = 16.0
LONG_ENOUGH = 0.8  # a run whose simulated lifetime is ≤ its sizing lifetime ÷ this is kept
ATTEMPTS = 3
METRICS = ("ttft_ms", "tpot_ms")
SILICON_COLUMNS = ("gpu", "engine", "model", "precision", "concurrency")
SILICON_CSV_COLUMNS = (*CSV_COLUMNS, *SILICON_COLUMNS)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SiliconComparison(Comparison):
    precision: str = ""  # bf16 | fp8 | fp4, or the row's quantisation when not modelled
    concurrency: int | None = None
    mode: str = "agg"  # agg | disagg: the row's serving mode, as published
    pools: str = ""  # a disaggregated row's xPyD (silicon_mapping.Labels.pools)


@dataclass(frozen=True)
class Outcome:
    """What a closed-loop simulation of one row gave, or why it gave nothing (`skip`)."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    profile_source: str = ""
    observed: str = ""
    skip: str | None = None


def compare_silicon(table: SiliconTable, models_dir: Path | None, workers: int = 1,
                    pattern: str | None = None, progress: Progress | None = None,
                    disaggregated: bool = False) -> list[SiliconComparison]:
    """Every row matching `pattern` (all: None), in file order whatever `workers` is; the
    disaggregated rows only with `disaggregated` (each runs two pools, for minutes and
    gigabytes at the concurrencies of thousands these rows measure), else skipped saying so."""
    rows = [row for row in table.rows if matches(row.id, pattern)]
    finder = ModelFinder(models_dir)
    outcomes: dict[int, Outcome] = {}
    plans: dict[int, RowPlan] = {}
    for index, row in enumerate(rows):
        if row.mode == "disagg" and not disaggregated:
            outcomes[index] = Outcome(skip=DISAGGREGATED_OPT_IN)
            continue
        try:
            plans[index] = plan_row(row, finder)
        except Skip as exc:
            outcomes[index] = Outcome(skip=str(exc))
    report = progress or (lambda done, total: None)
    report(len(outcomes), len(rows))
    for index, outcome in _simulate_all(plans, workers):
        outcomes[index] = outcome
        report(len(outcomes), len(rows))
    return [c for index, row in enumerate(rows)
            for c in _comparisons(row, plans.get(index), outcomes[index])]


DISAGGREGATED_OPT_IN = ("disaggregated: compared with --disaggregated (slow: two pools at "
                        "concurrencies of thousands)")


def _simulate_all(plans: dict[int, RowPlan],
                  workers: int) -> Iterable[tuple[int, Outcome]]:
    """(row index, outcome) as each finishes: in this process for one worker, else on a
    local pool (each run is a function of its plan alone, so the order does not matter)."""
    if workers == 1 or len(plans) <= 1:
        for index, plan in plans.items():
            yield index, simulate_plan(plan)
        return
    with open_executor(min(workers, len(plans))) as executor:
        futures = {executor.submit(simulate_plan, plan): index for index, plan in plans.items()}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:  # interrupted or failed: start nothing more
            for future in futures:
                future.cancel()


def simulate_plan(plan: RowPlan) -> Outcome:
    """Run the row's closed loop long enough (see the module's docstring); a disaggregated
    row as its benchmark's profiling phase (`sim.validation.silicon_phase`)."""
    try:
        if is_disaggregated(plan):
            return _phase_outcome(run_profiling_phase(plan), plan)
        result = run_closed_loop(plan)
    except Skip as exc:
        return Outcome(skip=str(exc))
    return _outcome(result, plan)


def _phase_outcome(phase: Phase, plan: RowPlan) -> Outcome:
    ttft_ms, tpot_ms = mean_ms(phase.client_ttft_s), mean_ms(phase.client_tpot_s(plan.osl))
    if ttft_ms is None or tpot_ms is None:
        return Outcome(skip="the simulation finished no request of the profiling phase")
    observed_text = phase_observed(phase, plan.concurrency)
    if phase.result.record.requests_preempted:
        observed_text += f", {phase.result.record.requests_preempted} preempted"
    return Outcome(ttft_ms, tpot_ms, phase.result.record.profile_source, observed_text)


def run_closed_loop(plan: RowPlan) -> sim.Result:
    """The plan's closed loop, run long enough (see the module's docstring); `Skip` when a
    request cannot fit the KV cache or the scenario layer rejects the plan. Load sweeps'
    concurrency points (`sweep_loop`) run through here too."""
    lifetime_s = plan.lifetime_hint_s
    for _attempt in range(ATTEMPTS):
        warmup_s = WARMUP_LIFETIMES * lifetime_s
        mapping = {**plan.base, "warmup_s": warmup_s,
                   "duration_s": warmup_s + WINDOW_LIFETIMES * lifetime_s}
        try:
            scenario = sim.load_scenario(mapping)
            kv_tokens = replica_kv_tokens(scenario)
            request_tokens = plan.isl + plan.osl
            if request_tokens > kv_tokens:
                raise Skip(f"one request (ISL + OSL = {request_tokens} tokens) needs more KV "
                           f"cache than the replica's {kv_tokens}")
            result = sim.run(scenario, warn_window=False)
        except InputError as exc:
            raise Skip(f"scenario rejected: {exc}") from None
        simulated_s = mean_lifetime_s(result)
        if simulated_s <= lifetime_s / LONG_ENOUGH:
            break
        lifetime_s = simulated_s
    return result


def window(result: sim.Result) -> np.ndarray:
    """The requests sent inside [warmup_s, duration_s) that finished."""
    e, sent_s = result.engine, result.workload.arrival_s
    start_s, end_s = result.scenario.warmup_s, result.scenario.duration_s
    return (sent_s >= start_s) & (sent_s < end_s) & np.isfinite(e.finish_s)


def mean_lifetime_s(result: sim.Result) -> float:
    """Mean send-to-last-token time of the window's requests (of every finished request when
    the window has none: the run was far too short for the simulated lifetime)."""
    e, sent_s = result.engine, result.workload.arrival_s
    chosen = window(result)
    if not chosen.any():
        chosen = np.isfinite(e.finish_s)
    return float((e.finish_s[chosen] - sent_s[chosen]).mean()) if chosen.any() else math.inf


def _outcome(result: sim.Result, plan: RowPlan) -> Outcome:
    e, sent_s = result.engine, result.workload.arrival_s
    chosen = window(result)
    if not chosen.any():
        return Outcome(skip="the simulation finished no request in its metrics window")
    ttft_s = e.first_token_s[chosen] - sent_s[chosen]
    tpot_s = (e.finish_s[chosen] - e.first_token_s[chosen]) / (plan.osl - 1)
    record = result.record
    window_s = result.scenario.duration_s - result.scenario.warmup_s
    observed = (f"sim: mean batch {record.batch_size_mean:.0f} of {plan.concurrency}, "
                f"{int(chosen.sum())} requests in a window of "
                f"{window_s / mean_lifetime_s(result):.1f} lifetimes")
    if record.requests_preempted:
        observed += f", {record.requests_preempted} preempted"
    return Outcome(float(ttft_s.mean()) * 1000.0, float(tpot_s.mean()) * 1000.0,
                   record.profile_source, observed)


def _comparisons(row: SiliconRow, plan: RowPlan | None,
                 outcome: Outcome) -> list[SiliconComparison]:
    tags = labels(row)
    out = []
    for metric, measured, simulated in (("ttft_ms", row.ttft_ms, outcome.ttft_ms),
                                        ("tpot_ms", row.tpot_ms, outcome.tpot_ms)):
        if outcome.skip is not None:
            status = f"skipped: {outcome.skip}"
        elif measured is None or measured <= 0:
            status = f"skipped: measured value {measured!r} is not a number > 0"
        elif simulated is None:
            status = "skipped: the simulation measured no request for it"
        else:
            status = COMPARED
        out.append(_comparison(row, metric, measured, simulated if status == COMPARED else None,
                               status, plan, outcome, tags))
    return out


def _comparison(row: SiliconRow, metric: str, measured: float | None, simulated: float | None,
                status: str, plan: RowPlan | None, outcome: Outcome,
                tags: Labels) -> SiliconComparison:
    compared = status == COMPARED
    return SiliconComparison(
        row.id, metric, measured, None if simulated is None else round(simulated, 3), status,
        outcome.profile_source if compared else "",
        plan.assumptions if plan is not None and compared else (),
        outcome.observed if compared else "", gpu=tags.gpu, engine=tags.engine,
        model=tags.model, kind="silicon", load=tags.concurrency, precision=tags.precision,
        concurrency=tags.concurrency, mode=tags.mode, pools=tags.pools)


# ---- CSV -----------------------------------------------------------------------------------


def silicon_csv(comparisons: Iterable[SiliconComparison]) -> str:
    """The CSV contract's columns, then gpu, engine, model, precision and concurrency."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SILICON_CSV_COLUMNS)
    for c in comparisons:
        writer.writerow([*contract_cells(c), c.gpu, c.engine, c.model, c.precision,
                         "" if c.concurrency is None else c.concurrency])
    return buffer.getvalue()
