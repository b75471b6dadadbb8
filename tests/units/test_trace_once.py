"""A sweep reads its trace once per process and builds its step model once: the runs share
one read-only copy of the requests, and a run pickled to a worker carries the trace's path
and options, not its arrays, which the worker reads back (once) from its own cache."""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import FIXTURES, replay_scenario, scenario

import sim
import sim.scenario.traces as traces
import sim.steptime.select as select
from sim.errors import InputError
from sim.montecarlo.design import SweepDesign, build
from sim.montecarlo.execute import run_one
from sim.scenario.traces import TraceWarning


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files the trace parser is asked to parse, from an empty cache on."""
    monkeypatch.setattr(traces, "_PARSED", traces.files.FileCache(traces.TRACE_CACHE_ENTRIES))
    calls: list[Path] = []
    parse = traces._parse

    def counting(path: Path, *args: Any) -> Any:
        calls.append(path)
        return parse(path, *args)

    monkeypatch.setattr(traces, "_parse", counting)
    return calls


def trace_sweep(trace: Path, replications: int = 2) -> dict[str, Any]:
    """A grid sweep of 3 fleet sizes replaying `trace`, 2 scaled-up replications each."""
    data = replay_scenario({"path": str(trace), "scale": 1.5}, duration_s=30.0)
    data["sweep"] = {"grid": {"deployment.replicas": [1, 2, 3]}, "replications": replications}
    return data


def write_trace(path: Path, rows: int) -> Path:
    """A generic CSV trace of `rows` requests, one every 0.1 s."""
    rng = np.random.default_rng(rows)
    lines = [f"{0.1 * i:.1f},{rng.integers(1, 2000)},{rng.integers(1, 500)}"
             for i in range(rows)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("timestamp,prompt_tokens,output_tokens\n" + "\n".join(lines) + "\n")
    return path


def plan_of(raw: dict[str, Any], base_dir: Path) -> SweepDesign:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceWarning)  # requests scaled past duration_s
        return build(raw, base_dir)


def metrics(design: SweepDesign) -> list[dict[str, Any]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceWarning)
        return [run_one(spec) for spec in design.runs]


# ---- parsed once, shared -----------------------------------------------------------------


def test_a_trace_sweep_parses_its_file_once(tmp_path: Path, parses: list[Path]) -> None:
    trace = shutil.copy(FIXTURES / "azure_small.csv", tmp_path / "azure_small.csv")
    design = plan_of(trace_sweep(Path(trace)), tmp_path)
    assert len(design.runs) == 6
    metrics(design)
    assert parses == [Path(trace)]  # base scenario, grid values, runs: one parse in all
    first = design.runs[0].scenario.workload.trace.requests
    for spec in design.runs[1:]:  # every run holds the same arrays, not a copy
        assert spec.scenario.workload.trace.requests.arrival_s is first.arrival_s


def test_the_shared_arrays_are_read_only() -> None:
    requests = sim.load_scenario(trace_sweep(FIXTURES / "azure_small.csv")).workload.trace.requests
    for array in (requests.arrival_s, requests.prompt_tokens, requests.output_tokens):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 1


def test_an_edited_trace_is_read_again(tmp_path: Path, parses: list[Path]) -> None:
    trace = write_trace(tmp_path / "t.csv", 10)
    before = sim.load_scenario(trace_sweep(trace)).workload.trace.requests
    write_trace(trace, 12)  # another size: another stamp
    after = sim.load_scenario(trace_sweep(trace)).workload.trace.requests
    assert (len(before.arrival_s), len(after.arrival_s)) == (10, 12)
    assert len(parses) == 2


def test_a_cached_trace_still_warns_on_every_load(parses: list[Path], tmp_path: Path) -> None:
    trace = tmp_path / "unsorted.csv"
    trace.write_text("timestamp,prompt_tokens,output_tokens\n10,1,2\n5,3,4\n20,7,8\n")
    for _ in range(2):
        with pytest.warns(TraceWarning, match=r"unsorted.csv: timestamps are not in order"):
            sim.load_scenario(replay_scenario({"path": str(trace)}, duration_s=30.0))
    assert len(parses) == 1


# ---- pickled without the arrays ------------------------------------------------------------


def test_a_pickled_run_does_not_grow_with_its_trace(tmp_path: Path) -> None:
    sizes = {}
    for rows, folder in ((10, "small"), (1_000, "large")):  # same-length paths
        trace = write_trace(tmp_path / folder / "trace.csv", rows)
        design = plan_of(trace_sweep(trace), tmp_path)
        sizes[rows] = len(pickle.dumps(design.runs[0]))
    arrays_bytes = 1_000 * 3 * 8  # what the large trace's arrays alone would add
    assert abs(sizes[1_000] - sizes[10]) < 64 < arrays_bytes


def test_a_run_unpickled_after_clearing_the_cache_reads_the_file_again_and_is_the_same(
        parses: list[Path]) -> None:
    design = plan_of(trace_sweep(FIXTURES / "azure_small.csv", replications=1), Path.cwd())
    spec = design.runs[1]
    traces.clear_cache()
    copy = pickle.loads(pickle.dumps(spec))
    assert len(parses) == 2  # the sweep's one, and the unpickled run's
    assert copy.scenario == spec.scenario
    assert copy.scenario.workload.trace.requests.source == str(FIXTURES / "azure_small.csv")
    assert metrics(design)[1] == run_one(copy)


def test_a_run_unpickled_in_a_fresh_process_simulates_the_same(tmp_path: Path) -> None:
    design = plan_of(trace_sweep(FIXTURES / "azure_small.csv", replications=1), Path.cwd())
    (tmp_path / "runs.pickle").write_bytes(pickle.dumps(design.runs))
    child = """
import pickle, sys, warnings
from pathlib import Path
import sim.scenario.traces as traces
parse, calls = traces._parse, []
traces._parse = lambda *args: calls.append(args) or parse(*args)
runs = pickle.loads(Path(sys.argv[1]).read_bytes())
from sim.montecarlo.execute import run_one
warnings.simplefilter("ignore")
rows = [run_one(spec) for spec in runs]
Path(sys.argv[2]).write_bytes(pickle.dumps((len(calls), rows)))
"""
    subprocess.run([sys.executable, "-c", child, str(tmp_path / "runs.pickle"),
                    str(tmp_path / "rows.pickle")], check=True, timeout=120)
    parsed, rows = pickle.loads((tmp_path / "rows.pickle").read_bytes())
    assert parsed == 1  # three runs, one parse in the worker
    assert rows == metrics(design)


def test_a_trace_changed_after_loading_stops_the_unpickled_run(tmp_path: Path) -> None:
    trace = write_trace(tmp_path / "t.csv", 10)
    spec = plan_of(trace_sweep(trace, replications=1), tmp_path).runs[0]
    data = pickle.dumps(spec)
    write_trace(trace, 11)  # the worker would otherwise replay other requests
    copy = pickle.loads(data)
    with pytest.raises(InputError, match="changed since"):
        _ = copy.scenario.workload.trace.requests


# ---- the step model ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["grid over a trace", "utilization"])
def test_a_sweep_builds_its_step_model_once(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(select, "_BUILT", {})
    build_model = select._build
    calls: list[tuple[Any, ...]] = []

    def counting(*args: Any) -> Any:
        calls.append(args)
        return build_model(*args)

    monkeypatch.setattr(select, "_build", counting)
    if kind == "utilization":
        raw = scenario(duration_s=20.0, warmup_s=2.0,
                       sweep={"utilization": [0.3, 0.8], "replications": 2})
    else:
        raw = trace_sweep(FIXTURES / "azure_small.csv")
    design = plan_of(raw, Path.cwd())  # probes, the capacity measurement, every run's scenario
    metrics(design)
    assert len(calls) == 1
