"""The trace readers, statistics, fits and replay on the real public traces in
../shared/data/traces: the readers against an independent parse with the standard library,
the statistics against the numbers published with the traces, the fits against what the
traces README says of them, and replay and scale reproducing the trace (the same code on
hand-written fixtures is tested in tests/contracts/test_trace_readers.py,
tests/units/test_trace_fit.py and tests/units/test_trace_replay.py)."""

from __future__ import annotations

import csv
import json
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import yaml
from builders import TRACES, replay_scenario, trace_spec

import sim
from sim.cli import main
from sim.scenario.traces import read_trace
from sim.workload.fitlengths import fit_lengths
from sim.workload.replay import replay
from sim.workload.stats import trace_stats

AZURE_CONV = "AzureLLMInferenceTrace_conv.csv"
MOONCAKE_CONV = "mooncake_conversation_trace.jsonl"


def need(name: str) -> Path:
    """The trace `name` in the shared data folder, or a skip saying where it was looked for:
    the public traces are too big to ship in the repository."""
    path = TRACES / name
    if not path.is_file():
        pytest.skip(f"public trace {name} not found in {TRACES} (the shared data folder sits "
                    "beside the checkout)")
    return path


# ---- the readers against the standard library ------------------------------------------------


def test_azure_conversation_trace_matches_a_csv_module_parse() -> None:
    path = need(AZURE_CONV)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    # 7 fractional digits are 100 ns ticks; count them as integers, then one division.
    ticks = []
    for row in rows:
        stamp, fraction = row["TIMESTAMP"].split(".")
        whole = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S")
        ticks.append(int((whole - datetime(1970, 1, 1)).total_seconds()) * 10**7
                     + int(fraction.ljust(7, "0")))
    ticks = np.array(ticks, dtype=np.int64)
    trace = read_trace(path)
    assert trace.format == "azure"
    assert len(trace.arrival_s) == len(rows) == 19_366
    assert np.array_equal(trace.arrival_s, (ticks - ticks[0]) / 1e7)
    assert trace.prompt_tokens.tolist() == [int(r["ContextTokens"]) for r in rows]
    assert trace.output_tokens.tolist() == [int(r["GeneratedTokens"]) for r in rows]


def test_mooncake_conversation_trace_matches_a_json_parse() -> None:
    path = need(MOONCAKE_CONV)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    trace = read_trace(path)
    assert trace.format == "mooncake"
    stamps = np.array([r["timestamp"] for r in rows], dtype=np.float64)
    assert np.array_equal(trace.arrival_s, (stamps - stamps[0]) / 1000.0)
    assert trace.prompt_tokens.tolist() == [r["input_length"] for r in rows]
    assert trace.output_tokens.tolist() == [r["output_length"] for r in rows]


def test_real_traces_load_without_warnings() -> None:
    for path in (need(AZURE_CONV), need(MOONCAKE_CONV)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            read_trace(path)


# ---- statistics against the published numbers ------------------------------------------------


@pytest.mark.parametrize("name", ["AzureLLMInferenceTrace_conv.csv",
                                  "mooncake_conversation_trace.jsonl",
                                  "mooncake_synthetic_trace.jsonl"])
def test_stats_match_the_traces_readme(name: str) -> None:
    """trace_stats.json was computed with pandas/scipy by whoever published the traces."""
    published = json.loads(need("trace_stats.json").read_text())[name]
    s = trace_stats(read_trace(need(name)))
    same = pytest.approx
    assert s.requests == published["n"]
    assert s.duration_s == same(published["duration_s"], rel=1e-9)
    assert s.rate_per_s == same(published["rate_rps"], rel=1e-9)
    assert s.interarrival_cv == same(published["ia_cv"], rel=1e-9)
    assert s.zero_gap_fraction == same(published["ia_zero_frac"], abs=1e-12)
    assert s.dispersion_1s == same(published["disp_1s"], rel=1e-9)
    assert s.peak_per_s == published["peak_1s"]
    assert s.min_per_minute == published["min_rate_per_min"]
    assert s.peak_per_minute == published["max_rate_per_min"]
    for mine, theirs in ((s.prompt, published["prompt"]), (s.output, published["output"])):
        for key in ("mean", "p50", "p90", "p99", "max", "min"):
            assert getattr(mine, key) == same(theirs[key], rel=1e-9), key


# ---- fitting lengths -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["AzureLLMInferenceTrace_conv.csv",
                                  "mooncake_conversation_trace.jsonl"])
def test_real_trace_lengths_need_more_than_a_lognormal(name: str) -> None:
    """The traces README: a plain lognormal puts Azure conversation prompts' p99 about 1.8×
    too high; the mixture and the empirical CDF are within 10 %."""
    trace = read_trace(need(name))
    for tokens in (trace.prompt_tokens, trace.output_tokens):
        lognormal, mixture, empirical = fit_lengths(tokens, tolerance=0.1)
        assert lognormal.worst_quantile_error > 0.1
        assert mixture.worst_quantile_error <= 0.1
        assert empirical.worst_quantile_error <= 0.02
    if name.startswith("Azure"):
        assert fit_lengths(trace.prompt_tokens, 0.1)[0].error["p99"] == pytest.approx(0.8,
                                                                                        abs=0.1)


# ---- trace fit -------------------------------------------------------------------------------


def test_trace_fit_writes_a_workload_a_scenario_runs(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = need("AzureLLMInferenceTrace_conv.csv")
    out = tmp_path / "conv.yaml"
    assert main(["trace", "fit", str(path), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "rate_curve *" in printed and "lognormal_mixture *" in printed
    assert f"wrote {out}" in printed
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Workload fitted by `tokenfactory trace fit`")
    assert str(path) in text
    block = yaml.safe_load(text)
    assert list(block) == ["workload"]
    scenario = {"name": "fitted", "seed": 1, "duration_s": 600, "model": "llama-3.1-8b",
                "gpu": "h100-sxm", "workload": block["workload"],
                "slo": {"ttft_s": 2, "tpot_s": 0.05}, "cost": {"gpu_hour_usd": 2.5}}
    result = sim.run(scenario).to_dict()
    # The curve's first ten minutes: as many requests as the trace's, give or take Poisson.
    in_trace = int(np.sum(read_trace(path).arrival_s < 600))
    assert result["requests"]["arrived"] == pytest.approx(in_trace, abs=4 * np.sqrt(in_trace))


# ---- replay and scale ------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "replicas"), [
    ("AzureLLMInferenceTrace_conv.csv", 2),
    ("mooncake_conversation_trace.jsonl", 4),  # long prompts: prefill-heavy
])
def test_replay_of_a_real_trace_reproduces_it(name: str, replicas: int) -> None:
    path = need(name)
    trace = read_trace(path)
    result = sim.run(replay_scenario({"path": str(path)}, trace.arrival_s[-1] + 1.0, replicas))
    d = result.to_dict()
    assert d["requests"]["arrived"] == d["requests"]["completed"] == len(trace.arrival_s)
    assert d["requests"]["rejected"] == 0
    assert d["tokens"]["input"] == int(trace.prompt_tokens.sum())
    assert d["tokens"]["output"] == int(trace.output_tokens.sum())
    assert np.array_equal(result.workload.arrival_s, trace.arrival_s)  # speedup 1: exact
    assert np.array_equal(result.workload.prompt_tokens, trace.prompt_tokens)


def test_scale_below_one_keeps_a_random_subset() -> None:
    path = need("AzureLLMInferenceTrace_conv.csv")
    trace = read_trace(path)
    n = len(trace.arrival_s)
    kept = replay(trace_spec(path, scale=0.3), 1e9, np.random.default_rng(1))
    # Binomial(n, 0.3): within four standard deviations.
    assert abs(len(kept.arrival_s) - 0.3 * n) < 4 * np.sqrt(n * 0.3 * 0.7)
    index = np.searchsorted(trace.arrival_s, kept.arrival_s)  # times unique in this trace
    assert np.array_equal(trace.arrival_s[index], kept.arrival_s)
    assert np.array_equal(trace.prompt_tokens[index], kept.prompt_tokens)


def test_scale_above_one_replicates_and_keeps_the_burst_structure() -> None:
    path = need("AzureLLMInferenceTrace_conv.csv")
    trace = read_trace(path)
    n = len(trace.arrival_s)
    scaled = replay(trace_spec(path, scale=2.5), 1e9, np.random.default_rng(2))
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
