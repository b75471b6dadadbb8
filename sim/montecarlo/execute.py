"""Running a sweep design's runs on a `concurrent.futures` executor, yielding rows as they finish.

Runs are independent tasks (a scenario and a seed in, a flat row of headline metrics out), so
any executor will do: a local `ProcessPoolExecutor` by default, or a Dask cluster's
`Client.get_executor()` when one machine is not enough. Rows come back in completion order,
each carrying its run index; the results are the same whichever executor ran them.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from typing import Any

from sim.errors import InputError
from sim.metrics.cost import COST_ITEMS
from sim.metrics.record import RunRecord
from sim.montecarlo.design import RunSpec
from sim.runner.single import run

# runs.csv metric columns, in file order (the names are a file contract): column → the
# RunRecord field it holds, which has the column's name for all but one.
METRICS: dict[str, str] = {
    **{column: column for column in (
        "usd_per_million_input", "usd_per_million_output", "usd_per_million_blended",
        "usd_per_million_goodput", "fleet_usd_per_hour", "energy_j_per_token",
        "requests_per_s", "input_tokens_per_s", "output_tokens_per_s", "goodput_tokens_per_s",
        "ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s", "busy_fraction",
        "gpu_hour_usd", "slo_attainment", "slo_met", "requests_completed",
        "requests_unfinished")},
    "preempted": "preemptions",
}

# What a GPU-hour was made of, one column per item (the record's fields of the same names):
# rental for rented GPUs, the TCO items for owned ones, empty where an item does not apply.
# Reports draw the cost waterfall of a sweep's median run from these.
ITEM_COLUMNS = tuple(f"gpu_hour_usd_{item}" for item in COST_ITEMS)


def metrics_row(record: RunRecord) -> dict[str, Any]:
    """The headline numbers of one run, as runs.csv holds them."""
    row = {column: getattr(record, name) for column, name in METRICS.items()}
    row.update({column: getattr(record, column) for column in ITEM_COLUMNS})
    return row


def run_one(spec: RunSpec) -> dict[str, Any]:
    """One task: simulate the run's scenario with its seed (executed in a worker); the row
    travels back rather than the result, whose per-request columns nobody needs here."""
    return metrics_row(run(spec.scenario, seed=spec.seed).record)


def execute(runs: Iterable[RunSpec], executor: Executor) -> Iterator[tuple[RunSpec, dict]]:
    """Submit every run, then yield (run, metrics) as each finishes."""
    futures = {executor.submit(run_one, spec): spec for spec in runs}
    try:
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:  # interrupted or failed: do not start what is still queued
        for future in futures:
            future.cancel()


@contextmanager
def open_executor(workers: int | None = None, scheduler: str | None = None) -> Iterator[Executor]:
    """Local worker processes (default: one per CPU), or a Dask scheduler's executor.
    Workers are spawned, so a script that uses this needs the `if __name__ == "__main__":`
    guard (the CLI and notebooks need nothing)."""
    if scheduler is None:
        # 'spawn' starts clean interpreters: safe whatever threads the caller has running.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers or os.cpu_count(), mp_context=context) as pool:
            yield pool
        return
    try:
        from distributed import Client
    except ImportError:
        raise InputError("--scheduler", scheduler, "dask's distributed package installed "
                         "(pip install 'tokenfactory[cluster]')") from None
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError("--scheduler", scheduler, f"a reachable Dask scheduler address such "
                         f"as tcp://HOST:8786 ({exc})") from None
    try:
        yield client.get_executor()
    finally:
        client.close()
