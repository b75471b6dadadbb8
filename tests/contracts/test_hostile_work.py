"""Hostile work: scenarios whose every number is within its bound but whose product would
allocate tens of GiB or run for hours, and files that never end or hold one absurd time.

Each row runs a real `python -m sim` bounded in time and memory (`check_rejected_bounded`:
a 4 GiB address space and a timeout), so a refusal that came too late fails the row rather
than the machine: a rate at its bound for ten minutes, a ×1000 spike, a trace replayed
×1000, an autoscaler deciding every 0.1 s for 115 days, 100,000 replicas of 65,536
sequences, a sweep of 100,000 runs, a plan of 600 months, a stress test of 10,000 draws,
/dev/urandom or a FIFO as a length file or a trace, a trace with a timestamp in year 9999 or
at 1e300 ms, and a trace window past the trace's end. The last tests are the positive side:
gamma arrivals at the schema's largest cv, and the statistics of a trace spanning nine
years, run to the end inside the same bounds.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import builders
import pytest
from builders import Builder, params, replay_scenario, scenario_file, short, tiny

ADDRESS_SPACE_BYTES = 4 * 1024**3  # the same bound as conftest's check_rejected_bounded

SCALING = {"policy": "target-utilization", "target": 0.5, "min_replicas": 1, "max_replicas": 4,
           "provisioning_delay_s": 5.0}
PLAN = {"options": [{"name": "base"}], "target": {"draws": 2}}
HEADER = "timestamp,prompt_tokens,output_tokens\n"
# 40 requests half a second apart: a trace of 19.5 s.
SMALL_TRACE = HEADER + "".join(f"{i * 0.5:g},100,20\n" for i in range(40))
# 30,000 requests 10 ms apart: ×1000 is 30 million replayed requests.
LONG_TRACE = HEADER + "".join(f"{i * 0.01:.2f},100,20\n" for i in range(30_000))
AZURE_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
AZURE_YEAR_9999 = AZURE_HEADER + "".join(
    f"2023-11-16 18:15:{i:02d}.0000000,100,20\n" for i in range(30)) + (
    "9999-11-16 18:15:00.0000000,100,20\n")
MOONCAKE_1E300 = "".join(
    f'{{"timestamp": {i * 1000}, "input_length": 100, "output_length": 20}}\n'
    for i in range(30)) + '{"timestamp": 1e300, "input_length": 100, "output_length": 20}\n'
# Three requests over nine years: within the span bound, 2.8e8 one-second bins.
NINE_YEARS = HEADER + "0,100,20\n1,100,20\n284000000,100,20\n"


@dataclass(frozen=True)
class Case(builders.Case):
    """A row of this table; `timeout_s` is the row's wall-clock limit."""

    timeout_s: float = 30.0


def _replay(trace: dict[str, Any], duration_s: float = 20.0) -> dict[str, Any]:
    return replay_scenario({"path": "trace.csv", **trace}, duration_s)


def _sweep(sweep: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return short(sweep=sweep, **changes)


def _plan(**plan: Any) -> dict[str, Any]:
    return {**short(), "plan": {**PLAN, **plan}}


def _stress(**stress: Any) -> dict[str, Any]:
    return {**short(), "stress": stress}


def _growth(months: int, start_rate_per_s: float, growth_per_month: float) -> dict[str, Any]:
    return {"start": {"name": "2030-01", "peak_rate_per_s": start_rate_per_s},
            "months": months, "growth_per_month": growth_per_month}


def _sparse_file(name: str, size_bytes: int, data: dict[str, Any]) -> Builder:
    """A builder writing the scenario `data` and a file `name` of `size_bytes` that takes no
    disk space (a hole: the reader must refuse it by its size, not read it)."""

    def build(tmp: Path) -> list[str]:
        with (tmp / name).open("wb") as handle:
            handle.truncate(size_bytes)
        return scenario_file(data)(tmp)

    return build


def _fifo(name: str, data: dict[str, Any]) -> Builder:
    """A builder writing the scenario `data` and a FIFO `name` nobody writes to (opening it
    to read would block for ever)."""

    def build(tmp: Path) -> list[str]:
        os.mkfifo(tmp / name)
        return scenario_file(data)(tmp)

    return build


def _trace_command(action: str, trace: str, *flags: str) -> Builder:
    """`tokenfactory trace ACTION trace.csv FLAGS` on the text `trace`."""

    def build(tmp: Path) -> list[str]:
        (tmp / "trace.csv").write_text(trace, encoding="utf-8")
        return [action, str(tmp / "trace.csv"), *flags]

    return build


EMPIRICAL = {"dist": "empirical", "path": "lengths.txt"}
LIMIT = ("--max-requests",)
TOTAL = ("--max-total-requests",)

CASES = [
    # ---- one run: requests, tables, decisions, events ----
    Case("rate-at-its-bound-for-ten-minutes",
         tiny(workload__arrival__rate_per_s=1e6, duration_s=600),
         "workload.arrival.rate_per_s", "1000000.0",
         ("20,000,000 requests per run", "600,000,000 = rate × duration_s", *LIMIT)),
    Case("spike-of-x1000-for-eight-minutes",
         tiny(duration_s=600, workload__arrival={
             "process": "poisson", "rate_per_s": 100.0,
             "spikes": [{"at_s": 5.0, "duration_s": 500.0, "multiplier": 1000.0}]}),
         "workload.arrival.spikes.0.multiplier", "1000.0",
         ("requests per run", "50,010,000", "spike 0", *LIMIT)),
    Case("one-second-spike-drawn-at-its-peak-all-run",
         tiny(duration_s=600, workload__arrival={
             "process": "poisson", "rate_per_s": 1000.0,
             "spikes": [{"at_s": 5.0, "duration_s": 1.0, "multiplier": 1000.0}]}),
         "workload.arrival.spikes.0.multiplier", "1000.0",
         ("200,000,000 arrival candidates", "peak rate × duration_s", *LIMIT)),
    Case("diurnal-day-at-a-thousand-a-second",
         tiny(duration_s=86_400, workload__arrival={
             "process": "poisson", "rate_per_s": 1000.0, "profile": "diurnal",
             "peak_to_trough": 3.0, "peak_hour": 14.0}),
         "workload.arrival.rate_per_s", "1000.0", ("86,400,000", "integral of the rate")),
    Case("gamma-at-its-bound-for-115-days",
         tiny(duration_s=1e7, workload__arrival={"process": "gamma", "rate_per_s": 10.0,
                                                 "cv": 100.0}),
         "workload.arrival.rate_per_s", "10.0", ("100,010,000", "cv²")),
    Case("trace-replayed-x1000", _replay({"scale": 1000.0}, duration_s=400.0),
         "workload.trace.scale", "1000.0", ("30,000,000", "30,000 trace requests", *LIMIT),
         setup={"trace.csv": LONG_TRACE}),
    Case("autoscaling-every-tenth-of-a-second-for-115-days",
         tiny(duration_s=1e7, warmup_s=1.0, workload__arrival__rate_per_s=1.0,
              deployment__autoscaling={**SCALING, "interval_s": 0.1}),
         "deployment.autoscaling.interval_s", "0.1",
         ("autoscaling decisions", "100,000,000", *LIMIT)),
    Case("provisioning-retried-every-tenth-of-a-second-for-12-days",
         tiny(duration_s=1e6, warmup_s=1.0, workload__arrival__rate_per_s=1.0,
              deployment__autoscaling={**SCALING, "max_replicas": 100,
                                       "provisioning": {"success_probability": 0.01,
                                                        "retry_s": 0.1}}),
         "deployment.autoscaling.provisioning.retry_s", "0.1",
         ("provisioning retries", "1,000,000,000", *LIMIT)),
    Case("max-replicas-of-max-sequences",
         tiny(deployment__replicas=100_000, deployment__scheduler__max_num_seqs=65_536),
         "deployment.replicas", "100000", ("per-batch step times", "6,553,700,000")),
    Case("failures-at-their-bound-on-a-big-fleet",
         tiny(duration_s=1e5, deployment__replicas=1000, deployment__tensor_parallel=8,
              deployment__failures={"mtbf_h": 1e-3, "mttr_h": 1e-3}),
         "deployment.failures.mtbf_h", "0.001", ("fault events",)),
    # ---- many runs ----
    Case("sweep-of-100000-runs",
         _sweep({"grid": {"deployment.replicas": list(range(1, 1001))}, "replications": 100}),
         "sweep.grid", "{'deployment.replicas': [1, 2, 3", ("at most 50,000 runs",
                                                              "1,000 points × 100 replications"),
         command="sweep"),
    Case("sweep-replications-flag-of-60000", _sweep({"utilization": [0.5]}), "--replications",
         "60000", ("at most 50,000 runs",), command="sweep", flags=("--replications", "60000")),
    Case("sweep-of-300-million-requests",
         _sweep({"grid": {"workload.arrival.rate_per_s": [1e5, 2e5]}, "replications": 100}),
         "sweep.replications", "100", ("200,000,000 requests in all", "2 points × 100", *TOTAL),
         command="sweep"),
    Case("sweep-point-beyond-one-run",
         builders.scenario(sweep={"grid": {"workload.arrival.rate_per_s": [1e6]},
                                  "replications": 2}),
         "sweep.grid.workload.arrival.rate_per_s", "1000000.0", ("requests per run", *LIMIT),
         command="sweep"),
    Case("plan-of-600-months-growing-to-a-high-peak",
         _plan(growth=_growth(600, 100.0, 0.01)),
         "plan.growth.months", "600", ("200,000,000 requests in all", "600 periods", *TOTAL),
         command="plan"),
    Case("plan-of-10000-draws-over-600-months",
         _plan(growth=_growth(600, 1.0, 0.0), target={"draws": 10_000}),
         "plan.target.draws", "10000", ("at most 50,000 runs", "6,000,000"), command="plan"),
    Case("plan-peak-at-its-bound-for-ten-minutes",
         _plan(periods=[{"name": "m1", "peak_rate_per_s": 1e6}], run={"duration_s": 600.0}),
         "plan.periods[0].peak_rate_per_s", "1000000.0", ("requests per run", *LIMIT),
         command="plan"),
    Case("plan-spike-of-x1000-most-of-a-run",
         _plan(periods=[{"name": "m1", "peak_rate_per_s": 100.0}], run={"duration_s": 600.0},
               spikes=[{"multiplier": 1000.0, "duration_s": 570.0}]),
         "plan.spikes[0].multiplier", "1000.0", ("requests per run", "spike 0"),
         command="plan"),
    Case("stress-spike-of-x1000-most-of-a-run",
         {**tiny(duration_s=600, workload__arrival__rate_per_s=100.0),
          "stress": {"multipliers": [], "spike": {"multiplier": 1000.0, "duration_s": 590.0},
                     "draws": 2}},
         "stress.spike.multiplier", "1000.0", ("requests per run",), command="stress"),
    Case("stress-of-10000-draws-at-x1000",
         _stress(multipliers=[1000.0], draws=10_000),
         "stress.draws", "10000", ("200,000,000 requests in all", *TOTAL), command="stress"),
    Case("stress-multiplier-at-its-bound-beyond-one-run",
         {**tiny(duration_s=600, workload__arrival__rate_per_s=100.0),
          "stress": {"multipliers": [1.5, 1000.0], "draws": 2}},
         "stress.multipliers[1]", "1000.0", ("requests per run", *LIMIT), command="stress"),
    # ---- files ----
    Case("urandom-as-a-length-file", tiny(workload__prompt_tokens={
        "dist": "empirical", "path": "/dev/urandom"}),
         "workload.prompt_tokens.path", "'/dev/urandom'", ("regular file", "character device")),
    Case("fifo-as-a-length-file", _fifo("lengths.txt", tiny(workload__prompt_tokens=EMPIRICAL)),
         "workload.prompt_tokens.path", "lengths.txt", ("regular file", "FIFO")),
    Case("fifo-as-a-trace", _fifo("trace.csv", _replay({})), "workload.trace.path",
         "trace.csv", ("regular trace file", "FIFO")),
    Case("length-file-of-65-mib",
         _sparse_file("lengths.txt", 65 << 20, tiny(workload__prompt_tokens=EMPIRICAL)),
         "workload.prompt_tokens.path", "lengths.txt", ("at most 64 MiB", "65 MiB")),
    Case("trace-file-over-1-gib", _sparse_file("trace.csv", (1 << 30) + 1, _replay({})),
         "workload.trace.path", "trace.csv", ("at most 1 GiB",)),
    Case("azure-trace-in-year-9999", _replay({"format": "azure"}), "trace.csv:32:TIMESTAMP",
         "'9999-11-16 18:15:00.0000000'", ("from 1678 to 2262",),
         setup={"trace.csv": AZURE_YEAR_9999}, key_first=False),
    Case("mooncake-trace-at-1e300-ms", _replay({"path": "trace.jsonl", "format": "mooncake"}),
         "trace.jsonl:31:timestamp", "'1e300'", ("within 10 years", "years)"),
         setup={"trace.jsonl": MOONCAKE_1E300}, key_first=False),
    Case("trace-stats-on-1e300-s", _trace_command("stats", SMALL_TRACE + "1e300,100,20\n"),
         "trace.csv:42:timestamp", "'1e300'", ("within 10 years",), command="trace",
         output=False, key_first=False),
    Case("trace-fit-on-year-9999", _trace_command("fit", AZURE_YEAR_9999, "-o", "fit.yaml"),
         "trace.csv:32:TIMESTAMP", "'9999-11-16", ("from 1678 to 2262",), command="trace",
         output=False, key_first=False),
    Case("trace-fit-with-a-minute-window-over-nine-years",
         _trace_command("fit", NINE_YEARS, "-o", "fit.yaml"), "--window-s", "60.0",
         ("at most 100,000 windows",), command="trace", output=False),
    Case("trace-window-past-its-end", _replay({"start_s": 1000.0}), "workload.trace.start_s",
         "1000.0", ("inside the trace", "19.5 s"), setup={"trace.csv": SMALL_TRACE}),
    Case("trace-window-in-a-sweep", _sweep(
        {"grid": {"workload.trace.start_s": [0.0, 1000.0]}, "replications": 2},
        workload={"trace": {"path": "trace.csv"}}),
         "sweep.grid.workload.trace.start_s", "1000.0", ("inside the trace",),
         command="sweep", setup={"trace.csv": SMALL_TRACE}),
]


@pytest.mark.parametrize("case", params(CASES))
def test_hostile_work_is_refused_up_front(
        case: Case, check_rejected_bounded: Callable[..., None]) -> None:
    check_rejected_bounded(case, timeout_s=case.timeout_s)


def test_case_ids_are_unique() -> None:
    assert len({case.id for case in CASES}) == len(CASES)


# ---- what must still run, in the same bounds ---------------------------------------------


def _bounded() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_BYTES, ADDRESS_SPACE_BYTES))


def _run_bounded(argv: list[str], cwd: Path, timeout_s: float = 60.0
                 ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sim", *argv], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout_s, preexec_fn=_bounded)


def test_gamma_at_its_largest_cv_runs(tmp_path: Path) -> None:
    """cv 100, the schema's bound: clusters of ~10⁴ requests (cv²), well inside the limits;
    it runs to the end and its result is written."""
    scenario = tiny(workload__arrival={"process": "gamma", "rate_per_s": 2.0, "cv": 100.0})
    path = scenario_file(scenario)(tmp_path)[0]
    proc = _run_bounded(["run", path, "--json", "out.json", "--quiet"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out.json").is_file()


def test_stats_of_a_trace_spanning_nine_years(tmp_path: Path) -> None:
    """2.8e8 one-second bins, counted from the three requests alone."""
    (tmp_path / "trace.csv").write_text(NINE_YEARS, encoding="utf-8")
    proc = _run_bounded(["trace", "stats", "trace.csv", "--json", "stats.json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    stats = json.loads((tmp_path / "stats.json").read_text(encoding="utf-8"))
    assert (stats["requests"], stats["peak_per_s"], stats["peak_per_minute"]) == (3, 1, 2)
    assert stats["duration_s"] == 284_000_000


def test_max_requests_flag_lowers_and_raises_the_per_run_limit(tmp_path: Path) -> None:
    """30 req/s over 20 s: 600 requests expected. --max-requests 300 refuses it, naming the
    rate and the flag; --max-requests 10,000 lets it run."""
    path = scenario_file(tiny(workload__arrival__rate_per_s=30))(tmp_path)[0]
    refused = _run_bounded(["run", path, "--max-requests", "300", "--quiet"], tmp_path)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "workload.arrival.rate_per_s" in refused.stderr
    assert "--max-requests" in refused.stderr and "at most 300 requests" in refused.stderr
    allowed = _run_bounded(["run", path, "--max-requests", "10000", "--quiet"], tmp_path)
    assert allowed.returncode == 0, allowed.stderr


def test_max_total_requests_flag_bounds_a_sweep(tmp_path: Path) -> None:
    """Four grid points × 3 replications of 600 expected requests (7,200): refused under a
    1,000-request total before any run, leaving no folder."""
    sweep = {"grid": {"deployment.replicas": [1, 2, 3, 4]}, "replications": 3}
    path = scenario_file(tiny(workload__arrival__rate_per_s=30, sweep=sweep))(tmp_path)[0]
    refused = _run_bounded(["sweep", path, "-o", "out", "--workers", "1",
                            "--max-total-requests", "1000", "--quiet"], tmp_path)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "--max-total-requests" in refused.stderr
    assert not (tmp_path / "out").exists()


def test_plot_of_a_trace_spanning_nine_years_uses_coarser_bins(tmp_path: Path) -> None:
    """Counting 2.8e8 s in 10-s bins for the figure would need gigabytes; the figure's bins
    grow instead (at most plots.trace.MAX_BINS a line) and it is drawn within the limits."""
    (tmp_path / "trace.csv").write_text(NINE_YEARS, encoding="utf-8")
    proc = _run_bounded(["trace", "stats", "trace.csv", "--plot", "figures"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "figures" / "arrival_rate.png").stat().st_size > 0
