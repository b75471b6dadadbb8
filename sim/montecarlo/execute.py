"""Running a plan's runs on a `concurrent.futures` executor, yielding rows as they finish.

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
from sim.montecarlo.design import RunSpec
from sim.runner.single import run

# runs.csv metric columns: name → path into the result dictionary (the --json contract).
METRICS: dict[str, tuple[str, ...]] = {
    "usd_per_million_input": ("cost", "usd_per_million_tokens", "input"),
    "usd_per_million_output": ("cost", "usd_per_million_tokens", "output"),
    "usd_per_million_blended": ("cost", "usd_per_million_tokens", "blended"),
    "usd_per_million_goodput": ("cost", "usd_per_million_tokens", "goodput"),
    "fleet_usd_per_hour": ("cost", "fleet_usd_per_hour"),
    "energy_j_per_token": ("cost", "energy_j_per_token"),
    "requests_per_s": ("throughput", "requests_per_s"),
    "input_tokens_per_s": ("throughput", "input_tokens_per_s"),
    "output_tokens_per_s": ("throughput", "output_tokens_per_s"),
    "goodput_tokens_per_s": ("throughput", "goodput_tokens_per_s"),
    "ttft_p50_s": ("latency_s", "ttft", "p50"),
    "ttft_p99_s": ("latency_s", "ttft", "p99"),
    "tpot_p50_s": ("latency_s", "tpot", "p50"),
    "tpot_p99_s": ("latency_s", "tpot", "p99"),
    "busy_fraction": ("utilization", "busy_fraction"),
    "gpu_hour_usd": ("cost", "gpu_hour_usd"),
    "slo_attainment": ("slo", "attainment"),
    "slo_met": ("slo", "met"),
    "requests_completed": ("requests", "completed"),
    "requests_unfinished": ("requests", "unfinished"),
    "preempted": ("requests", "preempted"),
}

# What a GPU-hour was made of (cost.gpu_hour_usd_by_item), one column per item: rental for
# rented GPUs, the TCO items for owned ones, empty where an item does not apply. Reports
# draw the cost waterfall of a sweep's median run from these.
COST_ITEMS = ("rental", "capex", "maintenance", "hosting", "power")
ITEM_COLUMNS = tuple(f"gpu_hour_usd_{item}" for item in COST_ITEMS)


def metrics_row(result: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of one run's result, as runs.csv holds them."""
    row = {}
    for column, path in METRICS.items():
        value: Any = result
        for part in path:
            value = value[part]
        row[column] = value
    by_item = result["cost"]["gpu_hour_usd_by_item"]
    row.update({f"gpu_hour_usd_{item}": by_item.get(item) for item in COST_ITEMS})
    return row


def run_one(spec: RunSpec) -> dict[str, Any]:
    """One task: simulate the run's scenario with its seed (executed in a worker)."""
    return metrics_row(run(spec.scenario, seed=spec.seed).to_dict())


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
