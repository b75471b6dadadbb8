"""`tokenfactory sweep`: determinism across executors, resume, replay, the files' contracts,
and closed-form checks on a fleet whose capacity is known exactly."""

from __future__ import annotations

import csv
import json
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import REPO, scenario

import sim
from sim.cli import build_parser, main
from sim.montecarlo.stats import median_ci_ranks

UNCERTAINTY = {
    "cost.gpu_hour_usd": {"dist": "uniform", "low": 2.0, "high": 3.0},
    "workload.output_tokens.mean": {"dist": "normal", "mean": 150, "std": 15},
}


def _small(**changes: Any) -> dict[str, Any]:
    """A two-point utilisation sweep of a small fleet; each run takes a few milliseconds."""
    return scenario(duration_s=20.0, warmup_s=2.0,
                    sweep={"utilization": [0.3, 0.8], "replications": 3},
                    uncertainty=UNCERTAINTY, **changes)


def _write(directory: Path, data: dict[str, Any], name: str = "sweep.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _sweep(path: Path, out: Path, *flags: str) -> None:
    assert main(["sweep", str(path), "-o", str(out), "--quiet", *flags]) == 0


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "runs.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One finished sweep (scenario path, output directory) shared by the read-only tests."""
    tmp = tmp_path_factory.mktemp("swept")
    path = _write(tmp, _small())
    _sweep(path, tmp / "out", "--workers", "2")
    return path, tmp / "out"


def test_runs_csv_has_one_row_per_run_with_the_documented_columns(swept) -> None:
    _, out = swept
    rows = _rows(out)
    assert [int(r["run"]) for r in rows] == list(range(6))
    for column in ("utilization", "replication", "seed", "cost.gpu_hour_usd",
                   "workload.output_tokens.mean", "usd_per_million_blended",
                   "usd_per_million_input", "usd_per_million_output",
                   "usd_per_million_goodput", "ttft_p50_s", "ttft_p99_s", "tpot_p50_s",
                   "tpot_p99_s", "busy_fraction", "slo_attainment", "slo_met"):
        assert column in rows[0], column
    # Common random numbers: replication r has the same seed and draws at every point, and
    # the replications of a point are each their own.
    assert len({r["seed"] for r in rows}) == 3
    for rep in range(3):
        same = [r for r in rows if r["replication"] == str(rep)]
        assert len({(r["seed"], r["cost.gpu_hour_usd"], r["workload.output_tokens.mean"])
                    for r in same}) == 1
    # The arrival rate is the utilisation times the capacity measured once.
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    capacity = summary["capacity"]["requests_per_s"]
    for r in rows:
        assert float(r["workload.arrival.rate_per_s"]) == float(r["utilization"]) * capacity


def test_summary_json_contract(swept) -> None:
    _, out = swept
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["capacity"]["method"] == "saturation run"
    assert any("measured once" in note for note in summary["notes"])
    assert [p["utilization"] for p in summary["points"]] == [0.3, 0.8]
    for point in summary["points"]:
        for kind in ("input", "output", "blended", "goodput"):
            band = point["usd_per_million_tokens"][kind]
            assert set(band) == {"p5", "p25", "p50", "p75", "p95", "mean"}
            ordered = [band[p] for p in ("p5", "p25", "p50", "p75", "p95")]
            assert ordered == sorted(ordered)
        for key in ("ttft_p99_s", "tpot_p99_s", "busy_fraction", "slo_attainment"):
            assert set(point[key]) >= {"p5", "p50", "p95"}
        low, high = point["slo_met_probability_ci"]
        assert 0.0 <= low <= point["slo_met_probability"] <= high <= 1.0
        if point["slo_met_probability"] == 1.0:  # Wilson's n of n: [n / (n + z²), 1]
            assert low == pytest.approx(3 / (3 + 1.959964**2)) and high == 1.0
        assert point["runs"] == 3
        # Three replications are too few for a 95% interval of the median.
        assert point["convergence"]["ci95"] is None and not point["convergence"]["converged"]
    assert any("too few replications" in w for w in summary["warnings"])
    png = out / "cost_vs_utilization.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_identical_runs_csv_with_one_and_two_workers(swept, tmp_path: Path) -> None:
    path, out = swept
    _sweep(path, tmp_path / "one", "--workers", "1")
    assert (tmp_path / "one" / "runs.csv").read_bytes() == (out / "runs.csv").read_bytes()
    assert (tmp_path / "one" / "summary.json").read_bytes() == \
        (out / "summary.json").read_bytes()


def test_identical_runs_csv_on_a_dask_cluster(swept, tmp_path: Path) -> None:
    distributed = pytest.importorskip(
        "distributed", reason="dask[distributed] is not installed (pip install -e '.[test]')")
    path, out = swept
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                                  dashboard_address=None) as cluster:
        _sweep(path, tmp_path / "dask", "--scheduler", cluster.scheduler_address)
    assert (tmp_path / "dask" / "runs.csv").read_bytes() == (out / "runs.csv").read_bytes()


def test_resume_runs_only_the_missing_rows(swept, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path, out = swept
    partial = tmp_path / "partial"
    shutil.copytree(out, partial)
    (partial / "summary.json").unlink()
    lines = (out / "runs.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [lines[3], lines[1]]  # runs 2 and 0, in the order they happened to finish
    sentinel = kept[1].split(",")
    sentinel[-1] = "999\n"  # run 0's last cell: proof the row is kept, not re-run
    interrupted = lines[5][: len(lines[5]) // 2]  # a half-written line, no newline
    (partial / "runs.csv").write_text(lines[0] + kept[0] + ",".join(sentinel) + interrupted,
                                      encoding="utf-8")
    capsys.readouterr()
    assert main(["sweep", str(path), "--resume", str(partial)]) == 0
    assert "resuming: 2 of 6 runs already in" in capsys.readouterr().out
    resumed = (partial / "runs.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    assert resumed[1] == ",".join(sentinel)
    assert resumed[:1] + resumed[2:] == lines[:1] + lines[2:]


def test_resume_refuses_a_changed_scenario(swept, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    _, out = swept
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    changed = _write(tmp_path, _small(seed=99))
    assert main(["sweep", str(changed), "--resume", str(copy)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_replay_reproduces_a_row_exactly(swept, capsys: pytest.CaptureFixture[str]) -> None:
    path, out = swept
    capsys.readouterr()
    assert main(["run", str(path), "--replay", f"{out}/runs.csv:4"]) == 0
    assert "every metric identical to the row" in capsys.readouterr().out


def test_replay_reports_a_row_that_does_not_match(swept, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path, out = swept
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    rows = _rows(copy)
    rows[1]["usd_per_million_blended"] = "1.0"
    with (copy / "runs.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    capsys.readouterr()
    assert main(["run", str(path), "--replay", f"{copy}/runs.csv:1", "--quiet"]) == 1
    assert main(["run", str(path), "--replay", f"{copy}/runs.csv:1"]) == 1
    assert "differs from the row in usd_per_million_blended" in capsys.readouterr().out


def test_replay_of_a_runs_csv_without_a_named_column_is_refused(
        swept, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A runs.csv whose header lost a column sweep.json names: exit 2 naming it (it was a
    KeyError traceback)."""
    path, out = swept
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    rows = [{k: v for k, v in row.items() if k != "usd_per_million_output"}
            for row in _rows(copy)]
    with (copy / "runs.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    capsys.readouterr()
    assert main(["run", str(path), "--replay", f"{copy}/runs.csv:1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--replay" in err and "usd_per_million_output" in err


# A fleet with a closed-form capacity: constant step s, static batches of N fixed-length
# requests, each cycle O steps long, so N / (O × s) = 8 / 0.1 = 80 requests per second.
STATIC_FLEET = {
    "profile": {"kind": "constant", "step_s": 0.01},
    "deployment": {"replicas": 1, "scheduler": {"policy": "static", "max_num_seqs": 8,
                                                "max_batched_tokens": 4096}},
    "workload": {"arrival": {"process": "poisson", "rate_per_s": 20.0},
                 "prompt_tokens": {"dist": "fixed", "value": 20},
                 "output_tokens": {"dist": "fixed", "value": 10}},
}


def test_capacity_is_the_closed_form_and_half_the_load_costs_twice_per_token(
        tmp_path: Path) -> None:
    data = scenario(duration_s=110.0, warmup_s=10.0, **STATIC_FLEET,
                    sweep={"utilization": [0.4, 0.8], "replications": 6})
    _sweep(_write(tmp_path, data), tmp_path / "out", "--workers", "2")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["capacity"]["requests_per_s"] == pytest.approx(80.0, rel=1e-9)
    low, high = (p["usd_per_million_tokens"]["blended"]["p50"] for p in summary["points"])
    # Rental cost is fixed, tokens ∝ load: ratio 2, up to Poisson noise in the counts
    # (about 1.5% for 3,200 vs 6,400 requests per run; the tolerance is four times that).
    assert low / high == pytest.approx(2.0, rel=0.06)


def test_grid_sweep_over_fleet_size_and_named_prices(tmp_path: Path) -> None:
    data = scenario(duration_s=10.0, warmup_s=1.0,
                    cost={"prices": {"on_demand": 4.0, "reserved": 2.0}, "price": "on_demand"},
                    sweep={"grid": {"deployment.replicas": [1, 2],
                                    "cost.price": ["on_demand", "reserved"]},
                           "replications": 2, "sampling": "mc"})
    _sweep(_write(tmp_path, data), tmp_path / "out", "--workers", "2")
    rows = _rows(tmp_path / "out")
    assert len(rows) == 8
    price = {"on_demand": 4.0, "reserved": 2.0}
    for r in rows:  # one GPU per replica: fleet $/hour is replicas × the chosen price
        assert float(r["fleet_usd_per_hour"]) == int(r["deployment.replicas"]) * price[
            r["cost.price"]]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["sweep"] == {"axis": "grid", "keys": ["deployment.replicas", "cost.price"]}
    assert [(p["deployment.replicas"], p["cost.price"]) for p in summary["points"]] == [
        (1, "on_demand"), (1, "reserved"), (2, "on_demand"), (2, "reserved")]
    assert (tmp_path / "out" / "cost_by_grid_point.png").is_file()


def test_cli_prints_the_capacity_a_table_and_the_convergence_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, _small())
    assert main(["sweep", str(path), "-o", str(tmp_path / "out"), "--workers", "2",
                 "--replications", "2"]) == 0
    out = capsys.readouterr().out
    assert "measured once by an overloaded run" in out
    assert "$/1M blended" in out and "P(SLO met)" in out
    assert "warning: convergence" in out


@pytest.mark.parametrize(("n", "ranks"), [(5, None), (6, (1, 6)), (10, (2, 9)), (20, (6, 15)),
                                         (100, (40, 61))])
def test_median_interval_ranks_match_the_binomial_tables(n: int, ranks) -> None:
    assert median_ci_ranks(n) == ranks


def test_readme_sweep_commands_parse_and_name_bundled_scenarios() -> None:
    """The README's sweep commands are too slow to run here (```text blocks); check that each
    parses with today's flags and names a scenario that exists and validates."""
    repo = REPO
    text = (repo / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```text[ \t]*\n(.*?)^```", text, flags=re.M | re.S)
    commands = [line[2:].split("#")[0].strip() for block in blocks
                for line in block.splitlines() if line.startswith("$ tokenfactory ")]
    assert sum(c.startswith("tokenfactory sweep ") for c in commands) >= 3
    assert any("--replay" in c for c in commands)
    parser = build_parser()
    for command in commands:
        args = parser.parse_args(shlex.split(command)[1:])
        assert sim.load_scenario(repo / args.scenario).sweep is not None


def test_step_time_error_falls_back_to_the_fit_error_where_validation_did_not_run() -> None:
    """Validation measured the operator-composed model only (tests/units/test_model_error.py):
    a named whole-model profile keeps its own (in-sample) fit error, and says so; the plain
    roofline knows neither."""
    from sim.montecarlo import design

    sweep = {"grid": {"deployment.replicas": [1]}, "replications": 4}
    plain = scenario(duration_s=10.0, warmup_s=1.0, profile="roofline", sweep=sweep)
    unknown = design.build(plain, Path.cwd())  # plain roofline: no fit error, nothing sampled
    assert "step_time_scale" not in unknown.uncertainty and unknown.model_error is None
    assert any("not validated end to end" in note and "no measured fit error" in note
               for note in unknown.notes)

    data = scenario(duration_s=10.0, warmup_s=1.0, model="llama-3.1-70b",
                    profile="h100-sxm_llama-3.1-70b_tp4_bf16",
                    deployment={"tensor_parallel": 4}, sweep=sweep)
    error_pct = sim.run(data).to_dict()["profile"]["fit_error_pct"]  # a measured profile's
    known = design.build(data, Path.cwd())
    assert known.uncertainty["step_time_scale"] == {"dist": "lognormal", "mean": 1.0,
                                                    "sigma": error_pct / 100}
    assert any("in-sample" in note for note in known.notes) and known.model_error is None
    scales = [run.scenario.step_time_scale for run in known.runs]
    assert len(set(scales)) == 4 and all(0.5 < s < 1.5 for s in scales)
    # Given explicitly, the user's distribution wins.
    data["uncertainty"] = {"step_time_scale": {"dist": "choice", "values": [1.0]}}
    explicit = design.build(data, Path.cwd())
    assert {run.scenario.step_time_scale for run in explicit.runs} == {1.0}


def test_points_share_each_replications_traffic(tmp_path: Path) -> None:
    # A grid over the price alone: with one seed per replication, replication r simulates
    # the same requests at both points, so everything but the cost is identical and the
    # cost per token scales with the price exactly; only replications differ by luck.
    data = scenario(duration_s=20.0, warmup_s=2.0,
                    sweep={"grid": {"cost.gpu_hour_usd": [2.0, 4.0]}, "replications": 3})
    out = tmp_path / "out"
    _sweep(_write(tmp_path, data), out, "--workers", "1")
    rows = _rows(out)
    cheap, dear = ([r for r in rows if r["point"] == str(p)] for p in (0, 1))
    for a, b in zip(cheap, dear, strict=True):
        assert a["seed"] == b["seed"]
        for column in ("ttft_p99_s", "tpot_p99_s", "output_tokens_per_s", "slo_attainment"):
            assert a[column] == b[column], column
        assert float(b["usd_per_million_blended"]) == pytest.approx(
            2 * float(a["usd_per_million_blended"]))
    assert len({r["ttft_p99_s"] for r in cheap}) == 3
