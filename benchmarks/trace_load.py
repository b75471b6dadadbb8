"""How fast does a big trace load and replay? Time and peak memory for a 1M-row Azure CSV.

    python benchmarks/trace_load.py [--rows N] [--seed S] [--csv-module]

Writes an Azure-format trace (TIMESTAMP with 7 fractional digits, ContextTokens,
GeneratedTokens; Poisson arrivals at 300 req/s, lognormal lengths) to a temporary directory,
then measures `read_trace` and the replay (`generate` on a scenario that replays the file)
separately. Time is wall-clock of one run; peak memory is what tracemalloc saw numpy and
Python allocate during a second run (the file's own bytes included); the process's maximum
resident set is printed at the end.
`--csv-module` also times a plain `csv.reader` pass over the file, for comparison.
"""

from __future__ import annotations

import argparse
import csv
import resource
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

RATE_PER_S = 300.0
START = np.datetime64("2023-11-16T18:15:46.6805900", "ns")


def write_azure_trace(path: Path, rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    gaps_ns = rng.exponential(1e9 / RATE_PER_S, rows).astype(np.int64)
    stamps = START + np.cumsum(gaps_ns).astype("timedelta64[ns]")
    # 'YYYY-MM-DDTHH:MM:SS.fffffffff' → the Azure layout: a space and 7 fractional digits.
    text = np.char.replace(np.datetime_as_string(stamps, unit="ns"), "T", " ")
    text = np.char.ljust(text, 27)  # drop the last two digits (100 ns ticks)
    text = np.array([s[:27] for s in text.tolist()])
    prompt = np.maximum(np.rint(rng.lognormal(6.6, 1.0, rows)), 1).astype(np.int64)
    output = np.maximum(np.rint(rng.lognormal(5.0, 0.9, rows)), 1).astype(np.int64)
    lines = [f"{s},{p},{o}" for s, p, o in zip(text.tolist(), prompt.tolist(), output.tolist(),
                                              strict=True)]
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + "\n".join(lines) + "\n",
                    encoding="utf-8")


def measured(step: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, peak traced MiB) of a step: timed on its own first, since
    tracemalloc slows every allocation, then run again under tracemalloc for the peak."""
    started = time.perf_counter()
    value = step()
    wall_s = time.perf_counter() - started
    tracemalloc.start()
    step()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return value, wall_s, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--csv-module", action="store_true",
                        help="also time a csv.reader pass over the file")
    args = parser.parse_args()

    import sim
    from sim.scenario.traces import read_trace
    from sim.workload import generate

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "azure_1m.csv"
        write_azure_trace(path, args.rows, args.seed)
        size_mib = path.stat().st_size / 2**20
        print(f"trace        {args.rows:,} rows, {size_mib:,.1f} MiB (Azure CSV)")

        trace, load_s, load_mib = measured(lambda: read_trace(path))
        print(f"read_trace   {load_s:.3f} s, peak {load_mib:,.0f} MiB traced "
              f"({args.rows / load_s:,.0f} rows/s)")

        horizon_s = float(trace.arrival_s[-1]) + 1.0
        scenario = sim.load_scenario({
            "name": "trace-load", "duration_s": horizon_s, "model": "llama-3.1-8b",
            "gpu": "h100-sxm", "workload": {"trace": {"path": str(path), "scale": 1.5}},
            "slo": {"ttft_s": 2, "tpot_s": 0.05}, "cost": {"gpu_hour_usd": 2.5}})
        streams = dict(zip(("arrivals", "prompt_tokens", "output_tokens"),
                           np.random.SeedSequence(args.seed).spawn(3), strict=True))
        workload, replay_s, replay_mib = measured(
            lambda: generate(scenario.workload, horizon_s, streams))
        print(f"replay       {replay_s:.3f} s, peak {replay_mib:,.0f} MiB traced "
              f"({len(workload):,} requests at scale 1.5)")

        if args.csv_module:
            def csv_pass() -> int:
                with path.open(newline="", encoding="utf-8") as handle:
                    return sum(1 for _ in csv.reader(handle))

            _, csv_s, _ = measured(csv_pass)
            print(f"csv.reader   {csv_s:.3f} s just to split the rows into Python lists "
                  "(no parsing)")
    max_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process      max resident set {max_rss_mib:,.0f} MiB (writing the file included)")


if __name__ == "__main__":
    main()
