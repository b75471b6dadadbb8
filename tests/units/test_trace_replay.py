"""Trace replay: a replayed trace reproduces its own requests and tokens in the result, the
window, speedup and scale rules hold, and bad input stops with one line and no file."""

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
from builders import FIXTURES, SHARED_DATA

import sim
from sim.cli import main
from sim.scenario.traces import TraceWarning, read_trace
from sim.scenario.workload import TraceSpec
from sim.workload.replay import replay

TRACES = SHARED_DATA / "traces"


def need(name: str) -> Path:
    path = TRACES / name
    if not path.is_file():
        pytest.skip(f"public trace {name} not found in {TRACES} (the shared data folder sits "
                    "beside the checkout)")
    return path


def scenario(trace: dict[str, Any], duration_s: float, replicas: int = 2) -> dict[str, Any]:
    return {
        "name": "replay", "seed": 3, "duration_s": duration_s, "warmup_s": 0.0,
        "model": "llama-3.1-8b", "gpu": "h100-sxm",
        "deployment": {"replicas": replicas,
                       "scheduler": {"max_num_seqs": 256, "max_batched_tokens": 8192}},
        "workload": {"trace": trace},
        "slo": {"ttft_s": 2.0, "tpot_s": 0.05}, "cost": {"gpu_hour_usd": 2.5},
    }


def spec(path: Path, **options: Any) -> TraceSpec:
    return TraceSpec.model_validate({"path": str(path), **options}).with_requests(
        read_trace(path))


# ---- the result reproduces the trace ---------------------------------------------------------


@pytest.mark.parametrize(("name", "replicas"), [
    ("AzureLLMInferenceTrace_conv.csv", 2),
    ("mooncake_conversation_trace.jsonl", 4),  # long prompts: prefill-heavy
])
def test_replay_of_a_real_trace_reproduces_it(name: str, replicas: int) -> None:
    path = need(name)
    trace = read_trace(path)
    result = sim.run(scenario({"path": str(path)}, trace.arrival_s[-1] + 1.0, replicas))
    d = result.to_dict()
    assert d["requests"]["arrived"] == d["requests"]["completed"] == len(trace.arrival_s)
    assert d["requests"]["rejected"] == 0
    assert d["tokens"]["input"] == int(trace.prompt_tokens.sum())
    assert d["tokens"]["output"] == int(trace.output_tokens.sum())
    assert np.array_equal(result.workload.arrival_s, trace.arrival_s)  # speedup 1: exact
    assert np.array_equal(result.workload.prompt_tokens, trace.prompt_tokens)


@pytest.mark.parametrize("name", ["azure_small.csv", "mooncake_small.jsonl"])
def test_replay_of_a_fixture_reproduces_it(name: str) -> None:
    trace = read_trace(FIXTURES / name)
    result = sim.run(scenario({"path": str(FIXTURES / name)}, 60.0))
    d = result.to_dict()
    assert d["requests"]["arrived"] == d["requests"]["completed"] == len(trace.arrival_s)
    assert d["tokens"]["input"] == trace.prompt_tokens.sum()
    assert d["tokens"]["output"] == trace.output_tokens.sum()
    assert result.workload.arrival_s.tolist() == trace.arrival_s.tolist()
    assert d["latency_s"]["ttft"]["p50"] > 0


def test_scenarios_with_traces_compare_by_content() -> None:
    data = scenario({"path": str(FIXTURES / "azure_small.csv")}, 60.0)
    assert sim.load_scenario(data) == sim.load_scenario(data)
    other = scenario({"path": str(FIXTURES / "mooncake_small.jsonl")}, 60.0)
    assert sim.load_scenario(data) != sim.load_scenario(other)


def test_trace_path_is_relative_to_the_scenario_file(tmp_path: Path) -> None:
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "t.jsonl").write_bytes((FIXTURES / "mooncake_small.jsonl")
                                                  .read_bytes())
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario({"path": "traces/t.jsonl"}, 30.0)))
    assert len(sim.load_scenario(path).workload.trace.requests.arrival_s) == 5


# ---- window, speedup, scale ------------------------------------------------------------------


def test_window_and_speedup() -> None:
    path = FIXTURES / "azure_small.csv"
    t = read_trace(path).arrival_s  # 0, 1.5012345, 1.7500001, 2.25, 13.75, 22.25
    rng = np.random.default_rng(0)
    whole = replay(spec(path, speedup=2.0), 100.0, rng)
    assert whole.arrival_s.tolist() == (t / 2.0).tolist()
    window = replay(spec(path, start_s=1.6, duration_s=12.15), 100.0, rng)
    # [1.6, 13.75): the request at exactly 13.75 is outside; times shift by start_s.
    assert window.arrival_s.tolist() == pytest.approx([0.1500001, 0.65])
    assert window.prompt_tokens.tolist() == [800, 90]
    both = replay(spec(path, start_s=1.6, speedup=4.0), 100.0, rng)
    assert both.arrival_s.tolist() == pytest.approx((t[2:] - 1.6) / 4.0)


def test_requests_after_the_horizon_are_cut_with_a_warning() -> None:
    path = FIXTURES / "azure_small.csv"
    with pytest.warns(TraceWarning, match=r"2 of 6 replayed requests arrive at or after "
                      r"duration_s \(10 s\)"):
        cut = replay(spec(path), 10.0, np.random.default_rng(0))
    assert cut.output_tokens.tolist() == [40, 100, 60, 15]


def test_scale_below_one_keeps_a_random_subset() -> None:
    path = need("AzureLLMInferenceTrace_conv.csv")
    trace = read_trace(path)
    n = len(trace.arrival_s)
    kept = replay(spec(path, scale=0.3), 1e9, np.random.default_rng(1))
    # Binomial(n, 0.3): within four standard deviations.
    assert abs(len(kept.arrival_s) - 0.3 * n) < 4 * np.sqrt(n * 0.3 * 0.7)
    index = np.searchsorted(trace.arrival_s, kept.arrival_s)  # times unique in this trace
    assert np.array_equal(trace.arrival_s[index], kept.arrival_s)
    assert np.array_equal(trace.prompt_tokens[index], kept.prompt_tokens)


def test_scale_above_one_replicates_and_keeps_the_burst_structure() -> None:
    path = need("AzureLLMInferenceTrace_conv.csv")
    trace = read_trace(path)
    n = len(trace.arrival_s)
    scaled = replay(spec(path, scale=2.5), 1e9, np.random.default_rng(2))
    extra = len(scaled.arrival_s) - 2 * n  # each request twice, a third time with p = 0.5
    assert abs(extra - 0.5 * n) < 4 * np.sqrt(n * 0.25)
    assert np.all(np.diff(scaled.arrival_s) >= 0)
    assert np.isin(trace.arrival_s, scaled.arrival_s).all()  # originals keep their times
    # Total tokens: every request at least twice.
    assert scaled.prompt_tokens.sum() > 2 * trace.prompt_tokens.sum()
    # Copies land within one mean gap of their original, so per-minute counts scale by 2.5
    # minute by minute (Binomial spread of the third copies, plus edge effects).
    per_minute = np.bincount((trace.arrival_s // 60).astype(int))[:-1]
    scaled_per_minute = np.bincount((scaled.arrival_s // 60).astype(int))[: len(per_minute)]
    spread = np.sqrt(per_minute * 0.25) * 4 + 10
    assert np.all(np.abs(scaled_per_minute - 2.5 * per_minute) < spread)


def test_scale_is_seeded_from_the_arrivals_stream() -> None:
    data = scenario({"path": str(FIXTURES / "azure_small.csv"), "scale": 3.5}, 60.0)
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
    path = _write(tmp_path, scenario({"path": "t.csv"}, 20.0))
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
    data = copy.deepcopy(scenario({}, 10.0))
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
