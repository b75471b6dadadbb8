"""Trace replay: a replayed trace reproduces its own requests and tokens in the result, the
window, speedup and scale rules hold, and bad input stops with one line and no file (replay
and scale of the real public traces: tests/validation/test_real_traces.py)."""

from __future__ import annotations

import copy
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from builders import FIXTURES, replay_scenario, trace_spec

import sim
from sim.cli import main
from sim.scenario.traces import TraceWarning, read_trace
from sim.workload.replay import replay

# ---- the result reproduces the trace ---------------------------------------------------------


@pytest.mark.parametrize("name", ["azure_small.csv", "mooncake_small.jsonl"])
def test_replay_of_a_fixture_reproduces_it(name: str) -> None:
    trace = read_trace(FIXTURES / name)
    result = sim.run(replay_scenario({"path": str(FIXTURES / name)}, 60.0))
    d = result.to_dict()
    assert d["requests"]["arrived"] == d["requests"]["completed"] == len(trace.arrival_s)
    assert d["tokens"]["input"] == trace.prompt_tokens.sum()
    assert d["tokens"]["output"] == trace.output_tokens.sum()
    assert result.workload.arrival_s.tolist() == trace.arrival_s.tolist()
    assert d["latency_s"]["ttft"]["p50"] > 0


def test_scenarios_with_traces_compare_by_content() -> None:
    data = replay_scenario({"path": str(FIXTURES / "azure_small.csv")}, 60.0)
    assert sim.load_scenario(data) == sim.load_scenario(data)
    other = replay_scenario({"path": str(FIXTURES / "mooncake_small.jsonl")}, 60.0)
    assert sim.load_scenario(data) != sim.load_scenario(other)


def test_trace_path_is_relative_to_the_scenario_file(tmp_path: Path) -> None:
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "t.jsonl").write_bytes((FIXTURES / "mooncake_small.jsonl")
                                                  .read_bytes())
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(replay_scenario({"path": "traces/t.jsonl"}, 30.0)))
    assert len(sim.load_scenario(path).workload.trace.requests.arrival_s) == 5


# ---- window, speedup, scale ------------------------------------------------------------------


def test_window_and_speedup() -> None:
    path = FIXTURES / "azure_small.csv"
    t = read_trace(path).arrival_s  # 0, 1.5012345, 1.7500001, 2.25, 13.75, 22.25
    rng = np.random.default_rng(0)
    whole = replay(trace_spec(path, speedup=2.0), 100.0, rng)
    assert whole.arrival_s.tolist() == (t / 2.0).tolist()
    window = replay(trace_spec(path, start_s=1.6, duration_s=12.15), 100.0, rng)
    # [1.6, 13.75): the request at exactly 13.75 is outside; times shift by start_s.
    assert window.arrival_s.tolist() == pytest.approx([0.1500001, 0.65])
    assert window.prompt_tokens.tolist() == [800, 90]
    both = replay(trace_spec(path, start_s=1.6, speedup=4.0), 100.0, rng)
    assert both.arrival_s.tolist() == pytest.approx((t[2:] - 1.6) / 4.0)


def test_requests_after_the_horizon_are_cut_with_a_warning() -> None:
    path = FIXTURES / "azure_small.csv"
    with pytest.warns(TraceWarning, match=r"2 of 6 replayed requests arrive at or after "
                      r"duration_s \(10 s\)"):
        cut = replay(trace_spec(path), 10.0, np.random.default_rng(0))
    assert cut.output_tokens.tolist() == [40, 100, 60, 15]


def test_scale_is_seeded_from_the_arrivals_stream() -> None:
    data = replay_scenario({"path": str(FIXTURES / "azure_small.csv"), "scale": 3.5}, 60.0)
    a = sim.run(data, seed=1).workload.arrival_s
    b = sim.run(data, seed=1).workload.arrival_s
    c = sim.run(data, seed=2).workload.arrival_s
    assert np.array_equal(a, b) and not np.array_equal(a, c)


# ---- the CLI: warnings as one line, bad input as one line and no file -----------------------


def _write(tmp: Path, data: dict[str, Any]) -> Path:
    path = tmp / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_run_prints_trace_warnings_as_one_line_each(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("timestamp,prompt_tokens,output_tokens\n"
                                    "3,10,5\n1,10,5\n2,0,5\n50,10,5\n")
    path = _write(tmp_path, replay_scenario({"path": "t.csv"}, 20.0))
    proc = subprocess.run([sys.executable, "-m", "sim", "run", str(path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 3, proc.stderr
    assert all(line.startswith("tokenfactory: warning: ") for line in lines)
    assert "not in order" in lines[0] and "0 prompt or 0 output" in lines[1]
    assert "1 of 3 replayed requests arrive at or after duration_s" in lines[2]
    quiet = subprocess.run([sys.executable, "-m", "sim", "run", str(path), "--quiet"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")


BAD = [
    ("trace-and-arrival", {"workload": {"trace": {"path": "t.csv"},
                                        "arrival": {"process": "poisson", "rate_per_s": 1}}},
     "workload.arrival", "no such key when workload.trace is given"),
    ("neither", {"workload": {"prompt_tokens": {"dist": "fixed", "value": 3},
                              "output_tokens": {"dist": "fixed", "value": 3}}},
     "workload.arrival: missing", "required unless workload.trace is given"),
    ("columns-for-azure", {"workload": {"trace": {"path": "t.csv", "format": "azure",
                                                  "columns": {"timestamp": "t"}}}},
     "workload.trace.columns", "only with format: csv"),
    ("zero-speedup", {"workload": {"trace": {"path": "t.csv", "speedup": 0}}},
     "workload.trace.speedup: 0", "> 0"),
    ("unknown-format", {"workload": {"trace": {"path": "t.csv", "format": "parquet"}}},
     "workload.trace.format: 'parquet'", "'mooncake'"),
    ("curve-not-pairs", {"workload": {"arrival": {"process": "poisson", "rate_per_s": 1,
                                                  "rate_curve": [[], [5, 1]]},
                                      "prompt_tokens": {"dist": "fixed", "value": 3},
                                      "output_tokens": {"dist": "fixed", "value": 3}}},
     "workload.arrival.rate_curve: [[], [5, 1]]", "[t_s, rate_per_s] pairs"),
    ("cdf-not-increasing", {"workload": {"arrival": {"process": "poisson", "rate_per_s": 1},
                                         "prompt_tokens": {"dist": "empirical_cdf",
                                                           "cdf": [[5, 0.5], [3, 1]]},
                                         "output_tokens": {"dist": "fixed", "value": 3}}},
     "workload.prompt_tokens.cdf", "tokens ≥ 1 and non-decreasing"),
    ("diurnal-without-peak", {"workload": {"arrival": {"process": "poisson", "rate_per_s": 1,
                                                       "profile": "diurnal",
                                                       "peak_to_trough": 2},
                                           "prompt_tokens": {"dist": "fixed", "value": 3},
                                           "output_tokens": {"dist": "fixed", "value": 3}}},
     "workload.arrival.peak_hour: missing", "profile: diurnal needs it"),
    ("mixture-lengths", {"workload": {"arrival": {"process": "poisson", "rate_per_s": 1},
                                      "prompt_tokens": {"dist": "lognormal_mixture",
                                                        "weights": [1, 1], "means": [5],
                                                        "sigmas": [1, 1]},
                                      "output_tokens": {"dist": "fixed", "value": 3}}},
     "workload.prompt_tokens.means: [5]", "2 entries, one per weight"),
    ("unknown-key", {"workload": {"trace": {"path": "t.csv", "requests": [1]}}},
     "workload.trace.requests", "accepted keys: path, format"),
    ("missing-file", {"workload": {"trace": {"path": "nowhere.csv"}}},
     "workload.trace.path", "an existing trace file"),
    ("bad-row", {"workload": {"trace": {"path": "bad.csv"}}},
     "bad.csv:3:prompt_tokens: 'x'", "token count"),
]


@pytest.mark.parametrize(("case", "change", "where", "expected"), BAD,
                         ids=[b[0] for b in BAD])
def test_bad_trace_scenarios_stop_with_one_line(case: str, change: dict, where: str,
                                                expected: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "t.csv").write_text("timestamp,prompt_tokens,output_tokens\n0,5,5\n")
    (tmp_path / "bad.csv").write_text("timestamp,prompt_tokens,output_tokens\n0,5,5\n1,x,5\n")
    data = copy.deepcopy(replay_scenario({}, 10.0))
    data.update(change)
    path = _write(tmp_path, data)
    before = {p.name for p in tmp_path.iterdir()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no warning on the way to the error
        code = main(["run", str(path), "--json", str(tmp_path / "out.json")])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("tokenfactory: error: "), err
    assert where in err and expected in err, err
    assert {p.name for p in tmp_path.iterdir()} == before
