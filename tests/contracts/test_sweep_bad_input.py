"""Bad sweep, uncertainty and cost specs: exit status 2, one line naming the key, the value
and what is accepted, and nothing written (no output directory, no partial file).

Each row breaks one thing in a short valid sweep (`builders.short` with a sweep block); the
harness in tests/conftest.py runs it and checks the promise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import builders
import pytest
import yaml
from builders import params, short

from sim.cli import main
from sim.montecarlo import capacity

SWEEP = {"utilization": [0.5], "replications": 2}
GRID = {"grid": {"deployment.replicas": [1, 2]}, "replications": 2}
UNIFORM_PRICE = {"dist": "uniform", "low": 2.0, "high": 3.0}
TCO = {"capex_per_gpu_usd": 30000, "amortization_years": 4, "power_busy_w": 700,
       "power_idle_w": 100, "pue": 1.2, "usd_per_kwh": 0.1}


@dataclass(frozen=True)
class Case(builders.Case):
    """A row of this table: the command is `tokenfactory sweep` unless the row says otherwise."""

    command: str = "sweep"


def _sweep(sweep: Any = SWEEP, uncertainty: Any = None, **changes: Any) -> dict[str, Any]:
    data = short(sweep=sweep, **changes)
    if uncertainty is not None:
        data["uncertainty"] = uncertainty
    return data


CASES = [
    Case("no-sweep-block", short(), "sweep", "missing", ("utilization", "grid")),
    Case("neither-axis", _sweep({"replications": 2}), "sweep.utilization", "missing",
         ("exactly one of",)),
    Case("both-axes", _sweep({**SWEEP, **GRID}), "sweep.utilization", "[0.5]",
         ("exactly one of",)),
    Case("empty-utilization", _sweep({"utilization": []}), "sweep.utilization", "[]",
         ("at least 1",)),
    Case("utilization-above-one", _sweep({"utilization": [0.5, 1.5]}), "sweep.utilization.1",
         "1.5", ("≤ 1",)),
    Case("empty-grid", _sweep({"grid": {}}), "sweep.grid", "{}", ("at least 1",)),
    Case("empty-grid-values", _sweep({"grid": {"deployment.replicas": []}}),
         "sweep.grid.deployment.replicas", "[]", ("at least 1",)),
    Case("grid-values-not-a-list", _sweep({"grid": {"gpu": "h100-sxm"}}), "sweep.grid.gpu",
         "'h100-sxm'", ("a list",)),
    Case("unknown-grid-key", _sweep({"grid": {"deployment.replica": [1, 2]}}),
         "sweep.grid.deployment.replica", "1", ("replicas",)),
    Case("unknown-grid-top-level-key", _sweep({"grid": {"fleet.replicas": [1, 2]}}),
         "sweep.grid.fleet.replicas", "1", ("deployment",)),
    Case("bad-grid-value", _sweep({"grid": {"deployment.replicas": [2, 0]}}),
         "sweep.grid.deployment.replicas", "0", ("> 0",)),
    Case("unknown-gpu-in-grid", _sweep({"grid": {"gpu": ["h100-sxm", "h1000"]}}),
         "sweep.grid.gpu", "'h1000'", ("h100-sxm",)),
    Case("zero-replications", _sweep({**SWEEP, "replications": 0}), "sweep.replications", "0",
         ("> 0",)),
    Case("unknown-sampling", _sweep({**SWEEP, "sampling": "sobol"}), "sweep.sampling",
         "'sobol'", ("lhs", "mc")),
    Case("unknown-uncertainty-key",
         _sweep(uncertainty={"cost.gpu_hour": UNIFORM_PRICE}), "uncertainty.cost.gpu_hour",
         "2.0", ("gpu_hour_usd",)),
    Case("negative-std",
         _sweep(uncertainty={"cost.gpu_hour_usd": {"dist": "normal", "mean": 2.5, "std": -1}}),
         "uncertainty.cost.gpu_hour_usd.std", "-1", ("≥ 0",)),
    Case("low-above-high",
         _sweep(uncertainty={"cost.gpu_hour_usd": {"dist": "uniform", "low": 3, "high": 2}}),
         "uncertainty.cost.gpu_hour_usd.high", "2", ("low",)),
    Case("mode-outside-range",
         _sweep(uncertainty={"step_time_scale": {"dist": "triangular", "low": 0.9,
                                                 "mode": 1.3, "high": 1.2}}),
         "uncertainty.step_time_scale.high", "1.2", ("mode",)),
    Case("unknown-distribution",
         _sweep(uncertainty={"step_time_scale": {"dist": "beta", "a": 2}}),
         "uncertainty.step_time_scale.dist", "'beta'",
         ("normal", "lognormal", "uniform", "triangular", "choice")),
    Case("choice-weights-mismatch",
         _sweep(uncertainty={"gpu": {"dist": "choice", "values": ["h100-sxm"],
                                     "weights": [1, 2]}}),
         "uncertainty.gpu.weights", "[1, 2]", ("1 non-negative",)),
    Case("range-leaves-the-valid-values",
         _sweep(uncertainty={"cost.gpu_hour_usd": {"dist": "uniform", "low": -1, "high": 2}}),
         "uncertainty.cost.gpu_hour_usd", "-1", ("≥ 0",)),
    Case("continuous-draws-for-an-integer-key",
         _sweep(GRID | {"grid": {"gpu": ["h100-sxm"]}},
                uncertainty={"deployment.replicas": {"dist": "normal", "mean": 2, "std": 1}}),
         "uncertainty.deployment.replicas", "2", ("integer",)),
    Case("path-through-a-name",
         _sweep(uncertainty={"gpu.memory_gib": {"dist": "uniform", "low": 70, "high": 90}}),
         "uncertainty.gpu.memory_gib", "70", ("through mappings", "h100-sxm")),
    Case("grid-index-past-a-list",
         _sweep({"grid": {"deployment.pools.2.replicas": [1, 2]}, "replications": 2},
                deployment__pools=[{"name": "a"}, {"name": "b"}]),
         "sweep.grid.deployment.pools.2.replicas", "1", ("index below 2", "deployment.pools")),
    Case("grid-name-into-a-list",
         _sweep({"grid": {"deployment.pools.a.replicas": [1, 2]}, "replications": 2},
                deployment__pools=[{"name": "a"}, {"name": "b"}]),
         "sweep.grid.deployment.pools.a.replicas", "1", ("index below 2",)),
    Case("same-key-in-grid-and-uncertainty",
         _sweep(GRID, uncertainty={"deployment.replicas": {"dist": "choice", "values": [1]}}),
         "uncertainty.deployment.replicas", "'choice'", ("sweep.grid.deployment.replicas",)),
    Case("uncertain-rate-in-utilization-sweep",
         _sweep(uncertainty={"workload.arrival.rate_per_s": UNIFORM_PRICE}),
         "uncertainty.workload.arrival.rate_per_s", "'uniform'", ("utilization",)),
    Case("cost-price-not-among-prices",
         _sweep(cost={"prices": {"on_demand": 3.9, "spot": 1.5}, "price": "reserved"}),
         "cost.price", "'reserved'", ("on_demand", "spot")),
    Case("cost-two-models", _sweep(cost={"gpu_hour_usd": 2.5, "tco": TCO}),
         "cost.tco", "'capex_per_gpu_usd'", ("exactly one of",)),
    Case("cost-no-model", _sweep(cost={}), "cost.gpu_hour_usd", "missing", ("exactly one of",)),
    Case("tco-idle-above-busy", _sweep(cost={"tco": TCO | {"power_idle_w": 800}}),
         "cost.tco.power_idle_w", "800", ("≤ power_busy_w",)),
    Case("tco-pue-below-one", _sweep(cost={"tco": TCO | {"pue": 0.9}}), "cost.tco.pue", "0.9",
         ("≥ 1",)),
    Case("replications-flag-zero", _sweep(), "--replications", "'0'", ("≥ 1",),
         flags=("--replications", "0"), key_first=False),
    Case("workers-flag-zero", _sweep(), "--workers", "'0'", ("≥ 1",), flags=("--workers", "0"),
         key_first=False),
    Case("output-not-empty", _sweep(), "-o", "out", ("empty",), setup={"out/keep.txt": "x"}),
    Case("resume-not-a-sweep", _sweep(), "--resume", "elsewhere", ("sweep",),
         flags=("--resume", "elsewhere"), setup={"elsewhere/keep.txt": "x"}),
    Case("scheduler-not-an-address", _sweep(), "--scheduler", "'not-an-address'",
         ("tcp://",), flags=("--scheduler", "not-an-address")),
    Case("replay-without-row", _sweep(), "--replay", "'runs.csv'", ("ROW",), command="run",
         flags=("--replay", "runs.csv")),
    Case("replay-not-a-sweep-dir", _sweep(), "--replay", "elsewhere", ("sweep",),
         command="run", flags=("--replay", "elsewhere/runs.csv:0"),
         setup={"elsewhere/runs.csv": "run\n0\n"}),
]


@pytest.mark.parametrize("case", params(CASES))
def test_bad_sweep_input(case: Case, check_rejected: Callable[[Case], None]) -> None:
    check_rejected(case)


def test_bad_sweep_input_through_a_real_process(
        check_rejected_by_subprocess: Callable[[Case], None]) -> None:
    case = next(c for c in CASES if c.id == "unknown-grid-key")
    check_rejected_by_subprocess(case)


def test_case_ids_are_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)


def test_a_fleet_that_never_saturates_is_reported_not_probed_forever(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Steps that take no time: no arrival rate saturates the fleet. A lower probe limit than
    # the real one keeps the test quick; the logic is the same.
    monkeypatch.setattr(capacity, "MAX_PROBE_REQUESTS", 50_000)
    data = _sweep(profile={"kind": "linear", "base_s": 0.0})
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["sweep", str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "sweep.utilization" in err and "finite saturation throughput" in err
    assert not (tmp_path / "out").exists()
