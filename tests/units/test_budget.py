"""The up-front work estimate (`sim.runner.budget`): its closed forms, its limits, and the
sweep, plan and stress totals built on it; with the pieces it leans on (the trace window,
sparse bin counts, the datetime range, the search's most fleet sizes, the arrival loop's
runaway stop)."""

from __future__ import annotations

import importlib.util
import math
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from builders import REPO, replay_scenario, short, tiny, trace_spec

import sim
from sim.errors import InputError
from sim.montecarlo import design
from sim.planning import planner, search, sizing, stress
from sim.planning.runs import InlineExecutor
from sim.runner import budget
from sim.scenario import textcolumns
from sim.scenario.workload import GammaArrivals, PoissonArrivals
from sim.workload import arrivals, bins, rate
from sim.workload.replay import window

DAY_S = 86_400.0


def _poisson(**keys: Any) -> PoissonArrivals:
    return PoissonArrivals.model_validate({"process": "poisson", "rate_per_s": 10.0, **keys})


def _numeric_integral(spec: PoissonArrivals, horizon_s: float, points: int = 2_000_001
                      ) -> float:
    t = np.linspace(0.0, horizon_s, points)
    return float(np.trapezoid(rate.rate_per_s(spec, t), t))


# ---- closed forms ----------------------------------------------------------------------------


def test_poisson_requests_are_rate_times_duration() -> None:
    work = budget.run_work(sim.load_scenario(tiny(workload__arrival__rate_per_s=3.5,
                                                  duration_s=40)))
    assert work.requests.count == 3.5 * 40
    assert (work.requests.key, work.requests.formula) == ("workload.arrival.rate_per_s",
                                                          "rate × duration_s")


def test_gamma_adds_lordens_cv_squared() -> None:
    spec = GammaArrivals(process="gamma", rate_per_s=2.0, cv=30.0)
    assert arrivals.expected_count(spec, 20.0) == 2.0 * 20.0 + 900.0
    work = budget.run_work(sim.load_scenario(tiny(workload__arrival=spec.model_dump())))
    assert work.requests.key == "workload.arrival.cv"  # cv² = 900 outweighs rate × T = 40


def test_gamma_mean_count_stays_under_the_bound() -> None:
    spec = GammaArrivals(process="gamma", rate_per_s=2.0, cv=30.0)
    counts = [len(arrivals.arrival_times(spec, 20.0, np.random.default_rng(seed)))
              for seed in range(200)]
    assert np.mean(counts) < arrivals.expected_count(spec, 20.0)


def test_a_spike_adds_rate_times_extra_multiplier_times_its_length() -> None:
    spec = _poisson(spikes=[{"at_s": 100.0, "duration_s": 50.0, "multiplier": 4.0}])
    assert rate.expected_count(spec, 600.0) == pytest.approx(10.0 * (600.0 + 3.0 * 50.0))
    assert rate.spike_excess(spec, 0, 600.0) == pytest.approx(10.0 * 3.0 * 50.0)
    # Cut by the horizon: only the 20 s of it inside [0, 120) count.
    assert rate.expected_count(spec, 120.0) == pytest.approx(10.0 * (120.0 + 3.0 * 20.0))


def test_overlapping_spikes_multiply() -> None:
    spec = _poisson(spikes=[{"at_s": 0.0, "duration_s": 20.0, "multiplier": 2.0},
                            {"at_s": 10.0, "duration_s": 20.0, "multiplier": 3.0}])
    # [0, 10): ×2, [10, 20): ×6, [20, 30): ×3, then ×1 to 100.
    assert rate.expected_count(spec, 100.0) == pytest.approx(10.0 * (20 + 60 + 30 + 70))


def test_a_spike_of_zero_switches_the_rate_off() -> None:
    spec = _poisson(spikes=[{"at_s": 0.0, "duration_s": 50.0, "multiplier": 0.0}])
    assert rate.expected_count(spec, 100.0) == pytest.approx(500.0)


def test_diurnal_averages_the_rate_over_a_day_and_integrates_exactly_within_one() -> None:
    spec = _poisson(profile="diurnal", peak_to_trough=3.0, peak_hour=14.0, start_hour=9.0)
    assert rate.expected_count(spec, DAY_S) == pytest.approx(10.0 * DAY_S)
    for horizon_s in (600.0, 5 * 3600.0, 1.7 * DAY_S):
        assert rate.expected_count(spec, horizon_s) == pytest.approx(
            _numeric_integral(spec, horizon_s), rel=1e-6)


def test_a_rate_curve_keeps_its_mean_and_stays_flat_beyond_its_ends() -> None:
    curve = [[0.0, 5.0], [600.0, 15.0], [600.0, 1.0], [1200.0, 5.0]]
    spec = _poisson(rate_curve=curve,
                    spikes=[{"at_s": 300.0, "duration_s": 400.0, "multiplier": 2.5}])
    plain = _poisson(rate_curve=curve)
    assert rate.expected_count(plain, 1200.0) == pytest.approx(10.0 * 1200.0)
    for horizon_s in (250.0, 900.0, 2000.0):  # inside, across the step, past the last point
        assert rate.expected_count(spec, horizon_s) == pytest.approx(
            _numeric_integral(spec, horizon_s), rel=1e-5)


def test_thinned_arrivals_average_the_expected_count() -> None:
    spec = _poisson(rate_per_s=50.0, profile="diurnal", peak_to_trough=4.0, peak_hour=1.0,
                    spikes=[{"at_s": 200.0, "duration_s": 100.0, "multiplier": 3.0}])
    counts = [len(rate.nhpp_arrival_times(spec, 1000.0, np.random.default_rng(seed)))
              for seed in range(40)]
    expected = rate.expected_count(spec, 1000.0)
    assert abs(np.mean(counts) - expected) < 4 * math.sqrt(expected / len(counts))


def test_candidates_are_the_peak_rate_times_duration() -> None:
    scenario = sim.load_scenario(tiny(duration_s=600, workload__arrival={
        "process": "poisson", "rate_per_s": 10.0,
        "spikes": [{"at_s": 5.0, "duration_s": 1.0, "multiplier": 100.0}]}))
    work = budget.run_work(scenario)
    candidates = next(item for item in work.tables if item.noun == "arrival candidates")
    assert candidates.count == pytest.approx(10.0 * 100.0 * 600.0)
    assert work.requests.count == pytest.approx(10.0 * (600.0 + 99.0))
    assert candidates.key == "workload.arrival.spikes.0.multiplier"


def test_a_replay_counts_its_window_before_duration_times_scale(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("timestamp,prompt_tokens,output_tokens\n"
                     + "".join(f"{i},10,5\n" for i in range(100)), encoding="utf-8")
    scenario = sim.load_scenario(replay_scenario(
        {"path": str(trace), "start_s": 10.0, "duration_s": 50.0, "scale": 2.5}, 30.0))
    work = budget.run_work(scenario)
    # Requests at 10 … 39 arrive before duration_s (30 s); the window holds 10 … 59.
    assert work.requests.count == pytest.approx(30 * 2.5)
    copies = next(item for item in work.tables if item.noun == "replayed copies")
    assert copies.count == pytest.approx(50 * 2.5)


def test_the_estimate_is_close_to_what_a_run_simulates() -> None:
    result = sim.run(tiny(duration_s=200, workload__arrival={
        "process": "poisson", "rate_per_s": 5.0, "profile": "diurnal", "peak_to_trough": 2.0,
        "peak_hour": 0.0}), seed=3)
    expected = budget.run_work(sim.load_scenario(tiny(duration_s=200, workload__arrival={
        "process": "poisson", "rate_per_s": 5.0, "profile": "diurnal", "peak_to_trough": 2.0,
        "peak_hour": 0.0}))).requests.count
    assert abs(len(result.workload) - expected) < 5 * math.sqrt(expected)


# ---- limits ----------------------------------------------------------------------------------


def test_a_run_beyond_the_limit_is_refused_naming_the_key_and_the_flag() -> None:
    scenario = sim.load_scenario(tiny(workload__arrival__rate_per_s=1000.0))
    with pytest.raises(InputError) as caught:
        budget.check_run(scenario, max_requests=10_000)
    assert caught.value.where == "workload.arrival.rate_per_s"
    assert "at most 10,000 requests per run" in str(caught.value)
    assert "(this one: 20,000 = rate × duration_s)" in str(caught.value)
    assert "--max-requests" in str(caught.value)
    with pytest.raises(InputError):
        sim.run(scenario, max_requests=10_000)
    assert budget.check_run(scenario, max_requests=20_000).requests.count == 20_000


def test_an_overflowing_product_is_refused_not_let_through() -> None:
    item = budget.Work("requests", math.nan, "k", 1, "f", "a")
    with pytest.raises(InputError, match="more than 1e308"):
        budget.check_item(budget.Work("requests", math.inf, "k", 1, "f", "a"))
    with pytest.raises(InputError):
        budget.check_item(item)


def _engine_speed(monkeypatch: pytest.MonkeyPatch) -> Any:
    path = REPO / "benchmarks" / "engine_speed.py"
    module_spec = importlib.util.spec_from_file_location("engine_speed", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    monkeypatch.setitem(sys.modules, "engine_speed", module)  # its dataclasses look it up
    module_spec.loader.exec_module(module)
    return module


def test_the_engine_benchmark_fits_the_default_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """benchmarks/engine_speed.py: a million requests on 16 replicas, and its probe of one
    replica overloaded, both well inside the defaults."""
    bench = _engine_speed(monkeypatch)
    rate_per_s = 2_000.0  # above the 16 replicas' 80 % load, so the check is conservative
    big = bench.scenario_mapping(bench.REPLICAS, rate_per_s, 1_000_000 / rate_per_s, 1)
    probe = bench.scenario_mapping(1, bench.PROBE_RATE_PER_S, bench.PROBE_DURATION_S, 1,
                                   warmup_s=bench.PROBE_WARMUP_S, drain_s=0.0)
    for mapping in (big, probe):
        work = budget.check_run(sim.load_scenario(mapping))
        assert work.requests.count <= budget.DEFAULT_MAX_REQUESTS / 10


def test_renamed_names_the_key_the_user_wrote() -> None:
    exc = InputError("workload.arrival.rate_per_s", 5e5, "x")
    assert budget.renamed(exc, {"workload.arrival.rate_per_s": "sweep.grid.r"}).where == (
        "sweep.grid.r")
    moved = budget.renamed(exc, {"workload.arrival.rate_per_s": ("plan.growth.months", 600)})
    assert (moved.where, moved.value) == ("plan.growth.months", 600)
    spike = InputError("workload.arrival.spikes.0.multiplier", 9.0, "x")
    assert budget.renamed(spike, {"workload.arrival.spikes": "stress.spike"}).where == (
        "stress.spike.0.multiplier")
    assert budget.renamed(exc, {"duration_s": "plan.run.duration_s"}) is exc


# ---- sweeps, plans, stress tests -------------------------------------------------------------


def test_a_sweep_is_refused_before_its_runs_are_built(tmp_path: Path) -> None:
    raw = short(sweep={"grid": {"deployment.replicas": [1, 2, 3]}, "replications": 5})
    with pytest.raises(InputError, match="at most 14 runs"):
        design.build(raw, tmp_path, max_runs=14)
    assert len(design.build(raw, tmp_path, max_runs=15).runs) == 15
    with pytest.raises(InputError, match="requests in all") as caught:
        design.build(raw, tmp_path, max_total_requests=1_000)
    assert caught.value.where == "sweep.replications"  # 5 replications > 3 points


def test_a_sweep_point_beyond_one_run_is_named_under_the_grid(tmp_path: Path) -> None:
    raw = short(sweep={"grid": {"workload.arrival.rate_per_s": [1.0, 500.0]},
                       "replications": 2})
    with pytest.raises(InputError) as caught:
        design.build(raw, tmp_path, max_requests=1_000)
    assert caught.value.where == "sweep.grid.workload.arrival.rate_per_s"
    assert caught.value.value == 500.0


def _estimate(message: str) -> int:
    found = re.search(r"this one: (?:up to )?([\d,]+)", message)
    assert found is not None, message
    return int(found.group(1).replace(",", ""))


@pytest.mark.parametrize("command", [planner.plan, stress.stress])
def test_the_bundled_plan_and_stress_test_fit_the_default_total(command: Any) -> None:
    """Their worst-case totals (every search at its most fleet sizes) are under the default;
    refused with a limit of 1, the message says by how much, before any run."""
    raw = yaml.safe_load((REPO / "scenarios" / "chat-8b-plan.yaml").read_text("utf-8"))
    with pytest.raises(InputError, match="requests in all") as caught:
        command(raw, REPO / "scenarios", InlineExecutor(), max_total_requests=1)
    assert _estimate(str(caught.value)) < budget.DEFAULT_MAX_TOTAL_REQUESTS


def test_a_plan_of_too_many_cells_is_refused_before_its_draws_are_spawned() -> None:
    raw = {**short(), "plan": {"periods": [{"name": "a", "peak_rate_per_s": 1.0}],
                               "options": [{"name": "x"}], "target": {"draws": 100}}}
    with pytest.raises(InputError) as caught:
        planner.plan(raw, REPO, InlineExecutor(), max_runs=99)
    assert caught.value.where == "plan.target.draws" and "1 option × 1 period × 100 draws" in (
        str(caught.value))


def test_max_fleet_sizes_bounds_the_search() -> None:
    for limit in range(1, 41):
        worst = 0
        for below in range(limit):
            for boundary in range(below + 1, limit + 2):
                for guess in range(1, limit + 1):
                    found = search.smallest_feasible(lambda n, b=boundary: n >= b, guess,
                                                     below, limit)
                    worst = max(worst, len(found.evaluated))
        assert worst <= sizing.max_fleet_sizes(limit), limit


# ---- the pieces under it ---------------------------------------------------------------------


def test_a_window_past_the_trace_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("timestamp,prompt_tokens,output_tokens\n0,1,1\n5,1,1\n30,1,1\n", "utf-8")
    assert window(trace_spec(path, start_s=5.0)) == (1, 3)
    with pytest.raises(InputError, match="inside the trace") as past:
        window(trace_spec(path, start_s=31.0))
    assert past.value.where == "workload.trace.start_s"
    with pytest.raises(InputError, match="the next at 30 s") as lull:
        window(trace_spec(path, start_s=6.0, duration_s=10.0))
    assert lull.value.where == "workload.trace.duration_s"


def test_sparse_bin_counts_match_dense_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    t = np.sort(np.concatenate([[0.0], rng.uniform(0, 5000, 3000), [7000.0]]))
    dense = bins.BinCounts(t, 7.0, minlength=1000)
    monkeypatch.setattr(bins, "MAX_DENSE_BINS", 10)
    sparse = bins.BinCounts(t, 7.0, minlength=1000)
    assert dense.dense is not None and sparse.dense is None
    assert dense.max() == sparse.max() and dense.bins == sparse.bins
    for upto in (2, 500, 714, 900):
        assert dense.min(upto) == sparse.min(upto)
        assert dense.mean(upto) == pytest.approx(sparse.mean(upto))
        assert dense.dispersion(upto, ddof=1) == pytest.approx(sparse.dispersion(upto, ddof=1))
    assert dense.dispersion() == pytest.approx(sparse.dispersion())


def test_dates_outside_nanoseconds_are_reported_not_wrapped() -> None:
    fields = [b"2023-11-16 18:15:00", b"2262-04-11 23:47:16", b"9999-01-01 00:00:00"]
    buf = np.frombuffer(b"".join(fields) + bytes(textcolumns.PAD_BYTES), dtype=np.uint8)
    starts = np.array([0, 19, 38])
    values, bad = textcolumns.parse_datetimes_ns(buf, starts, starts + 19)
    assert bad == 2
    values, bad = textcolumns.parse_datetimes_ns(buf, starts[:2], starts[:2] + 19)
    assert bad is None and values[1] > values[0]


def test_the_arrival_loop_stops_rather_than_run_away(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = GammaArrivals(process="gamma", rate_per_s=1.0, cv=1.0)
    monkeypatch.setitem(arrivals.GAP_SAMPLERS, "gamma", lambda spec: lambda rng, n: np.zeros(n))
    with pytest.raises(InputError, match="underflow") as caught:
        arrivals.arrival_times(spec, 10.0, np.random.default_rng(0))
    assert caught.value.where == "workload.arrival.cv"


def test_figures_of_long_traces_get_coarser_bins() -> None:
    assert bins.coarser_width_s(3600.0, 10.0, 10_000) == 10.0
    assert bins.coarser_width_s(2.84e8, 10.0, 10_000) == 50_000.0  # 5,680 bins
    assert bins.coarser_width_s(100_001.0, 10.0, 10_000) == 20.0
