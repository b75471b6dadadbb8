"""Trace statistics and fitting: statistics of a hand-written trace, fits that recover the
parameters of samples with known truth, and the `trace` commands (the statistics and fits of
the real public traces are in tests/validation/test_real_traces.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from builders import FIXTURES

import sim
from sim.cli import main
from sim.scenario.traces import read_trace
from sim.scenario.workload import Trace, WorkloadSpec
from sim.workload import generate
from sim.workload.fit import fit_workload
from sim.workload.fitarrivals import fit_arrivals
from sim.workload.fitlengths import fit_lengths, sample_model
from sim.workload.stats import ranks, trace_stats

# ---- statistics ------------------------------------------------------------------------------


def test_stats_of_a_tiny_trace() -> None:
    s = trace_stats(read_trace(FIXTURES / "mooncake_small.jsonl"))
    assert (s.requests, s.duration_s, s.peak_per_s, s.peak_per_minute) == (5, 6.002, 2, 5)
    assert s.min_per_minute is None and s.peak_per_hour is None  # no complete minute or hour
    assert s.zero_gap_fraction == 0.25
    assert s.prompt.p50 == 1000 and s.output.max == 500


def test_spearman_ranks_average_ties() -> None:
    assert ranks(np.array([10, 20, 20, 5])).tolist() == [2.0, 3.5, 3.5, 1.0]


# ---- fitting lengths: known truth ------------------------------------------------------------


def test_lognormal_sample_is_fitted_by_a_lognormal() -> None:
    truth = {"dist": "lognormal", "mean": 800, "sigma": 0.7}
    tokens = sample_model(truth, 50_000, seed=1)
    fits = fit_lengths(tokens, tolerance=0.1)
    lognormal = fits[0]
    assert lognormal.spec["sigma"] == pytest.approx(0.7, rel=0.02)
    assert lognormal.spec["mean"] == pytest.approx(800, rel=0.02)
    assert lognormal.worst_quantile_error < 0.05


def test_em_recovers_a_two_component_mixture() -> None:
    truth = {"dist": "lognormal_mixture", "weights": [0.3, 0.7], "means": [150, 4000],
             "sigmas": [0.4, 0.6]}
    tokens = sample_model(truth, 100_000, seed=2)
    mixture = fit_lengths(tokens, tolerance=0.1)[1]
    spec = mixture.spec
    assert len(spec["weights"]) == 2  # two components are enough, so no more are used
    assert spec["weights"] == pytest.approx([0.3, 0.7], abs=0.01)
    assert spec["means"] == pytest.approx([150, 4000], rel=0.03)
    assert spec["sigmas"] == pytest.approx([0.4, 0.6], rel=0.03)


def test_empirical_cdf_reproduces_the_quantiles() -> None:
    tokens = np.random.default_rng(3).integers(1, 5000, 20_000) ** 2 // 1000 + 1
    empirical = fit_lengths(tokens, tolerance=0.1)[2]
    assert empirical.worst_quantile_error < 0.01


# ---- fitting arrivals: known truth -----------------------------------------------------------


def _arrivals(arrival: dict, horizon_s: float, seed: int) -> np.ndarray:
    fixed = {"dist": "fixed", "value": 1}
    spec = WorkloadSpec.model_validate(
        {"arrival": arrival, "prompt_tokens": fixed, "output_tokens": fixed})
    seeds = dict(zip(("arrivals", "prompt_tokens", "output_tokens"),
                     np.random.SeedSequence(seed).spawn(3), strict=True))
    return generate(spec, horizon_s, seeds).arrival_s


def test_poisson_arrivals_are_fitted_as_poisson() -> None:
    t = _arrivals({"process": "poisson", "rate_per_s": 4.0}, 3600.0, seed=1)
    diagnosis, _, chosen = fit_arrivals(t, 60.0, "sample")
    assert diagnosis.stationary and chosen.model == "poisson"
    assert chosen.spec["rate_per_s"] == pytest.approx(4.0, rel=0.03)


def test_gamma_arrivals_are_fitted_as_gamma_with_their_cv() -> None:
    t = _arrivals({"process": "gamma", "rate_per_s": 4.0, "cv": 2.0}, 7200.0, seed=2)
    diagnosis, _, chosen = fit_arrivals(t, 60.0, "sample")
    assert diagnosis.stationary and chosen.model == "gamma"
    assert chosen.spec["cv"] == pytest.approx(2.0, rel=0.05)


def test_a_rate_step_is_fitted_as_a_rate_curve() -> None:
    curve = [[0, 2], [1800, 2], [1800, 8], [3600, 8]]
    t = _arrivals({"process": "poisson", "rate_per_s": 5.0, "rate_curve": curve}, 3600.0, 3)
    diagnosis, _, chosen = fit_arrivals(t, 60.0, "sample")
    assert not diagnosis.stationary and chosen.model == "rate_curve"
    steps = np.array(chosen.spec["rate_curve"])[::2, 1]  # one rate per window
    assert steps[:30].mean() == pytest.approx(2.0, rel=0.05)
    assert steps[30:].mean() == pytest.approx(8.0, rel=0.05)
    assert chosen.spec["rate_per_s"] == pytest.approx(len(t) / t[-1], rel=1e-3)


def test_quantised_timestamps_measure_burstiness_per_tick() -> None:
    t = _arrivals({"process": "poisson", "rate_per_s": 3.0}, 3600.0, seed=4)
    ticked = np.floor(t / 3.0) * 3.0  # logged in 3 s ticks, as Mooncake's are
    diagnosis, _, chosen = fit_arrivals(ticked, 60.0, "sample")
    assert diagnosis.tick_s == 3.0
    assert diagnosis.trace.burstiness_cv == pytest.approx(1.0, abs=0.1)
    assert chosen.model == "poisson"


@pytest.mark.parametrize("requests", [2, 3, 6])
def test_tiny_traces_fit_into_valid_workloads(requests: int) -> None:
    """Too few requests to judge much: still a valid block at the trace's mean rate."""
    t = np.array([0.0, 1.0, 1.5, 4.0, 4.0, 9.0])[:requests]
    tokens = np.arange(1, requests + 1, dtype=np.int64) * 10
    fit = fit_workload(Trace(t, tokens, tokens[::-1].copy(), "tiny.csv", "csv"))
    assert fit.diagnosis.dispersion_limit is None  # not one complete minute
    assert fit.arrival.model in ("poisson", "gamma")
    assert fit.arrival.spec["rate_per_s"] == pytest.approx((requests - 1) / t[-1], rel=1e-4)
    WorkloadSpec.model_validate(fit.workload())


def test_a_trace_at_one_instant_cannot_be_fitted() -> None:
    trace = Trace(np.zeros(3), np.ones(3, dtype=np.int64), np.ones(3, dtype=np.int64), "x.csv",
                  "csv")
    with pytest.raises(sim.InputError, match="x.csv: '3 requests at one instant'"):
        fit_workload(trace)


# ---- the commands ----------------------------------------------------------------------------


def test_trace_stats_prints_and_plots(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    figures = tmp_path / "figures"
    stats_json = tmp_path / "stats.json"
    assert main(["trace", "stats", str(FIXTURES / "azure_small.csv"), "--plot", str(figures),
                 "--json", str(stats_json)]) == 0
    out = capsys.readouterr().out
    assert "requests     6 over 22.2 s" in out
    assert "prompt–output correlation" in out
    for name in ("arrival_rate.png", "lengths.png"):
        assert (figures / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(stats_json.read_text())["requests"] == 6


def test_trace_stats_generic_csv_flags(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["trace", "stats", str(FIXTURES / "generic_small.csv"), "--columns",
            "timestamp=t_ms,prompt_tokens=in,output_tokens=out", "--timestamp-unit", "ms"]
    assert main(argv) == 0
    assert "requests     3 over 1.2 s" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["trace", "stats", "nowhere.csv"], "TRACE: 'nowhere.csv' — expected an existing trace"),
    (["trace", "stats", "{fixtures}/azure_small.csv", "--format", "azure", "--columns",
      "timestamp=t"], "--columns: {'timestamp': 't'} — expected no --columns with --format azure"),
    (["trace", "stats", "{fixtures}/azure_small.csv", "--columns", "when=t"],
     "argument --columns: 'when=t': expected ROLE=NAME"),
    (["trace", "fit", "{fixtures}/azure_small.csv", "-o", "{tmp}/no/such/dir.yaml"],
     "--output: "),
    (["trace", "fit", "{fixtures}/azure_small.csv", "-o", "{tmp}/w.yaml", "--window-s", "0"],
     "argument --window-s: '0' is not a number of seconds > 0"),
    (["trace", "stats", "{fixtures}/azure_small.csv", "--plot", "{fixtures}/azure_small.csv"],
     "--plot: "),
])
def test_trace_command_bad_input(argv: list[str], message: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.format(fixtures=FIXTURES, tmp=tmp_path) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err, err
    assert list(tmp_path.iterdir()) == []


def test_trace_help_explains_the_replay_rule(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["trace", "--help"], ["trace", "fit", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        out = capsys.readouterr().out
        assert "mooncake" in out and "(t - start_s) / speedup" in out
        assert "before the scenario's duration_s" in out
