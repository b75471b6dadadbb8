"""`tokenfactory plan`: the search finds the true minimum (brute force over every fleet size
with the same draws), more load never gets a smaller fleet, results do not depend on the
executor, and the files keep their contract."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from builders import PLAN_FLEET, scenario

from sim.cli import main
from sim.montecarlo.confidence import SequentialTest, wilson
from sim.planning import forecast
from sim.planning import options as option_specs
from sim.planning.document import CSV_COLUMNS
from sim.planning.planner import plan
from sim.planning.runs import Draws, Evaluator, InlineExecutor
from sim.scenario import load_scenario

FLEET = PLAN_FLEET  # builders: constant 20 ms steps, 4 sequences a replica


def _plan_data(periods: list[dict[str, Any]], **target: Any) -> dict[str, Any]:
    data = scenario(seed=5, **FLEET)
    data["cost"] = {"gpu_hour_usd": None, "prices": {"on_demand": 3.0, "reserved": 2.0},
                    "price": "on_demand"}
    del data["cost"]["gpu_hour_usd"]
    data["plan"] = {
        "periods": periods,
        "options": [{"name": "small"},
                    {"name": "roomy", "deployment": {"scheduler": {"max_num_seqs": 8}},
                     "cost": {"prices": {"on_demand": 4.5, "reserved": 3.0}}}],
        "target": {"confidence": 0.75, "draws": 4, "max_draws": 8, **target},
    }
    return data


PERIODS = [{"name": "a", "peak_rate_per_s": 18.0,
            "uncertainty": {"dist": "lognormal", "mean": 1.0, "sigma": 0.15}},
           {"name": "b", "peak_rate_per_s": 9.0, "average_rate_per_s": 5.0},
           {"name": "c", "peak_rate_per_s": 30.0}]


def _brute_force(data: dict[str, Any], tmp: Path, largest: int) -> dict[tuple[str, str], int]:
    """The fewest replicas meeting the target, by judging every fleet size 1..largest by
    the planner's rule with its own draws."""
    base = load_scenario(data, base_dir=tmp)
    spec = base.plan
    options = option_specs.load(data, spec, tmp)
    draws = Draws.spawn(np.random.SeedSequence(base.seed).spawn(2)[0], spec.target.most_draws)
    evaluator = Evaluator(InlineExecutor(), draws, spec.target.confidence,
                          first=spec.target.draws)
    truth = {}
    for demand in forecast.demands(spec, draws.demand_u):
        for option in options:
            sampled, _ = draws.sampled(option)
            feasible = [n for n in range(1, largest + 1)
                        if evaluator.feasible(option, n, demand.peak_draws, sampled)]
            assert feasible, "widen the brute force"
            truth[(demand.name, option.name)] = feasible[0]
            # The search's premise, checked on this data: feasible from there on up.
            assert feasible == list(range(feasible[0], largest + 1))
    return truth


def _replicas(document: dict[str, Any]) -> dict[tuple[str, str], int | None]:
    return {(p["period"], e["option"]): e["replicas"]
            for p in document["periods"] for e in p["options"]}


# First guess far above the answer / at or just below it.
@pytest.mark.parametrize(("utilization", "most_tried"), [(0.2, 8), (1.0, 2)])
def test_search_finds_the_brute_force_minimum(tmp_path: Path, utilization: float,
                                              most_tried: int) -> None:
    data = _plan_data(PERIODS, utilization=utilization)
    document = plan(data, tmp_path, InlineExecutor())
    assert _replicas(document) == _brute_force(data, tmp_path, largest=9)
    tried = [e["search"]["fleets_tried"] for p in document["periods"] for e in p["options"]]
    assert max(len(t) for t in tried) == most_tried  # far off: the search had to move


def test_more_load_never_gets_a_smaller_fleet(tmp_path: Path) -> None:
    # Within one plan (periods out of order) and between plans with all demand × 1.4.
    periods = [{"name": "mid", "peak_rate_per_s": 16.0}, {"name": "low", "peak_rate_per_s": 8.0},
               {"name": "high", "peak_rate_per_s": 24.0},
               {"name": "mid-again", "peak_rate_per_s": 16.0}]
    base = plan(_plan_data(periods), tmp_path, InlineExecutor())
    heavier = plan(_plan_data([{**p, "peak_rate_per_s": p["peak_rate_per_s"] * 1.4}
                               for p in periods]), tmp_path, InlineExecutor())
    order = ["low", "mid", "high"]
    for document in (base, heavier):
        n = _replicas(document)
        for option in ("small", "roomy"):
            sizes = [n[(name, option)] for name in order]
            assert sizes == sorted(sizes), sizes
            assert n[("mid", option)] == n[("mid-again", option)]
        cost = {p["period"]: min(e["usd_per_month"] for e in p["options"])
                for p in document["periods"]}
        assert cost["low"] <= cost["mid"] <= cost["high"]
    light, heavy = _replicas(base), _replicas(heavier)
    assert all(heavy[key] >= light[key] for key in light)
    assert any(heavy[key] > light[key] for key in light)


def test_repeated_rates_reuse_runs_and_the_answer(tmp_path: Path) -> None:
    periods = [{"name": "x", "peak_rate_per_s": 16.0}, {"name": "y", "peak_rate_per_s": 16.0}]
    document = plan(_plan_data(periods), tmp_path, InlineExecutor())
    first, second = document["periods"]
    for a, b in zip(first["options"], second["options"], strict=True):
        assert a["replicas"] == b["replicas"]
        assert b["search"]["simulations"] == 0  # every candidate came from the cache


def _write(tmp: Path, data: dict[str, Any]) -> Path:
    path = tmp / "plan.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_plan_files_and_the_same_answer_on_one_or_two_workers(tmp_path: Path,
                                                              capsys) -> None:
    path = _write(tmp_path, _plan_data(PERIODS[:2]))
    assert main(["plan", str(path), "-o", str(tmp_path / "one"), "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "recommended" in printed and "runs to size" in printed
    assert main(["plan", str(path), "-o", str(tmp_path / "two"), "--workers", "2",
                 "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    one, two = (json.loads((tmp_path / d / "plan.json").read_text(encoding="utf-8"))
                for d in ("one", "two"))
    for document in (one, two):
        assert document["provenance"].pop("created_utc")  # when: the one thing that differs
    assert one == two
    for name in ("plan.csv", "fleet_plan.png", "cost_per_token_by_option.png"):
        assert (tmp_path / "one" / name).stat().st_size > 0
    document = one
    # The contract: periods → period, recommended, options → the five keys.
    for period in document["periods"]:
        assert {"period", "recommended", "options"} <= set(period)
        feasible = [e for e in period["options"] if e["feasible"]]
        cheapest = min(feasible, key=lambda e: e["usd_per_month"])
        assert period["recommended"] == cheapest["option"]
        for entry in period["options"]:
            assert {"option", "replicas", "gpus", "usd_per_month",
                    "slo_met_probability"} <= set(entry)
            # The Wilson interval of the draws that met the SLO, the estimate inside it.
            low, high = entry["slo_met_probability_ci"]
            assert entry["draws"] in (4, 8) and 0 <= entry["draws_met"] <= entry["draws"]
            assert (low, high) == pytest.approx(
                wilson(entry["draws_met"], entry["draws"]).interval())
            assert low <= entry["slo_met_probability"] <= high
            verdicts = entry["search"]["verdicts"]
            assert [v["replicas"] for v in verdicts] == entry["search"]["fleets_tried"]
            test = SequentialTest(0.75)
            for v in verdicts:  # every verdict is the sequential test's on its own draws
                met = round(v["slo_met_probability"] * v["draws"])
                assert v["feasible"] == (test.verdict(met, v["draws"], last=True) is True)
                assert v["feasible"] == (v["replicas"] >= entry["replicas"])
            assert entry["gpus"] == entry["replicas"]  # tensor_parallel 1
            # $/month is GPUs × the option's $/GPU-hour × 730 h.
            price = 3.0 if entry["option"] == "small" else 4.5
            assert entry["usd_per_month"] == pytest.approx(entry["gpus"] * price * 730)
    average = document["periods"][1]["options"][0]
    assert average["usd_per_million_tokens_average"]["p50"] is not None
    assert average["usd_per_million_tokens"]["p50"] < average["usd_per_million_tokens_average"][
        "p50"]  # the same fleet costs more per token when it is less busy
    assert average["utilization"]["average"] == pytest.approx(
        average["utilization"]["peak"] * 5.0 / 9.0)
    with (tmp_path / "one" / "plan.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert len(rows) == 2 * 2
    assert sum(r["recommended"] == "True" for r in rows) == 2


def test_growth_forecast_with_a_day_shape_and_the_reserved_mix(tmp_path: Path) -> None:
    data = _plan_data([])
    del data["plan"]["periods"]
    data["plan"]["growth"] = {"start": {"name": "2027-11", "peak_rate_per_s": 10.0},
                              "months": 3, "growth_per_month": 0.5}
    data["plan"]["shape"] = {"profile": "diurnal", "peak_to_trough": 3.0, "peak_hour": 14}
    document = plan(data, tmp_path, InlineExecutor())
    assert [p["period"] for p in document["periods"]] == ["2027-11", "2027-12", "2028-01"]
    assert [p["peak_rate_per_s"] for p in document["periods"]] == [10.0, 15.0, 22.5]
    assert document["periods"][0]["average_rate_per_s"] == pytest.approx(10.0 * 4 / 6)
    assert {m["option"] for m in document["mix"]} == {"small", "roomy"}
    for m in document["mix"]:
        assert m["break_even_utilization"] == pytest.approx(2 / 3)
        assert m["usd_total"] <= min(m["usd_all_on_demand"], m["usd_all_reserved"])


def test_a_spike_never_gets_a_smaller_fleet(tmp_path: Path) -> None:
    periods = [{"name": "a", "peak_rate_per_s": 12.0}, {"name": "b", "peak_rate_per_s": 20.0}]
    calm = _replicas(plan(_plan_data(periods), tmp_path, InlineExecutor()))
    data = _plan_data(periods)
    data["plan"]["spikes"] = [{"multiplier": 2.5, "duration_s": 20.0, "at_s": 20.0}]
    document = plan(data, tmp_path, InlineExecutor())
    spiky = _replicas(document)
    assert all(spiky[key] >= calm[key] for key in calm)
    assert any(spiky[key] > calm[key] for key in calm)
    assert "spikes" in document["notes"][0]


def test_a_period_nothing_can_serve_is_reported_not_crashed(tmp_path: Path, capsys) -> None:
    # Two replicas at most: the second period's load is out of reach for both options.
    data = _plan_data([{"name": "ok", "peak_rate_per_s": 8.0},
                       {"name": "too-much", "peak_rate_per_s": 200.0}])
    data["plan"]["max_replicas"] = 2
    path = _write(tmp_path, data)
    assert main(["plan", str(path), "-o", str(tmp_path / "out"), "--workers", "1",
                 "--report"]) == 0
    printed = capsys.readouterr().out
    assert "report.html" in printed
    document = json.loads((tmp_path / "out" / "plan.json").read_text(encoding="utf-8"))
    ok, too_much = document["periods"]
    assert ok["recommended"] is not None and too_much["recommended"] is None
    for entry in too_much["options"]:
        assert entry["replicas"] is None and entry["feasible"] is False
        assert entry["search"]["fleets_tried"][-1] == 2  # it went up to the limit
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "No option meets the SLO" in html and "too-much" in html


def test_autoscaled_and_failing_options_are_sized_and_priced(tmp_path: Path) -> None:
    # An autoscaled option is sized by its ceiling and pays for the replicas it held; a
    # failing one pays for its whole fleet while some of it is down.
    data = _plan_data([{"name": "a", "peak_rate_per_s": 16.0, "average_rate_per_s": 6.0}])
    data["plan"]["options"] = [
        {"name": "static"},
        {"name": "scaled", "deployment": {"autoscaling": {
            "policy": "queue", "target": 1, "min_replicas": 1, "max_replicas": 1,
            "provisioning_delay_s": 5.0, "interval_s": 5.0, "scale_in_stabilization_s": 10.0}}},
        {"name": "failing", "deployment": {"failures": {"mtbf_h": 0.01, "mttr_h": 0.002}}}]
    document = plan(data, tmp_path, InlineExecutor())
    static, scaled, failing = document["periods"][0]["options"]
    assert scaled["replicas"] >= static["replicas"]
    assert scaled["gpus_paid_mean"] < scaled["gpus"]  # scaled in at the average load
    assert scaled["usd_per_month"] == pytest.approx(scaled["gpus_paid_mean"] * 3.0 * 730)
    assert failing["replicas"] >= static["replicas"]
    assert failing["usd_per_month"] == pytest.approx(failing["gpus"] * 3.0 * 730)
    assert "autoscaled options" in " ".join(document["notes"])
