"""`tokenfactory stress`: more demand needs more GPUs, lost replicas need replacing, the
per-minute series and queue lengths are what the per-request columns say."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from builders import scenario
from test_plan import FLEET

from sim.cli import main
from sim.metrics import latency as metrics


def _stressed(tmp: Path) -> dict:
    data = scenario(seed=2, **{**FLEET, "duration_s": 250.0, "warmup_s": 10.0})
    data["deployment"]["replicas"] = 2
    data["stress"] = {"multipliers": [1.5, 2.0], "replicas_down": 1, "draws": 3,
                      "confidence": 0.6, "spike": {"multiplier": 3.0, "duration_s": 60.0}}
    path = tmp / "stress.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    assert main(["stress", str(path), "-o", str(tmp / "out"), "--workers", "1", "--quiet"]) == 0
    return json.loads((tmp / "out" / "stress.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def stressed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("stress")
    return tmp, _stressed(tmp)


def test_twice_the_demand_needs_more_gpus(stressed) -> None:
    _, document = stressed
    cases = {c["case"]: c for c in document["cases"]}
    assert list(cases) == ["forecast", "demand ×1.5", "demand ×2", "spike ×3 for 60 s",
                           "1 replica down"]
    needed = [cases[name]["replicas_needed"] for name in ("forecast", "demand ×1.5",
                                                          "demand ×2")]
    assert needed == sorted(needed)
    assert needed[2] > needed[0]
    # One replica out all window: the fleet must be one bigger than it needs without loss.
    assert cases["1 replica down"]["replicas_needed"] >= cases["forecast"]["replicas_needed"] + 1
    for case in cases.values():
        extra = max(case["replicas_needed"] - 2, 0)
        assert case["extra_gpus"] == extra
        assert case["headroom_usd_per_year"] == pytest.approx(extra * 2.5 * 8760)
    assert cases["demand ×2"]["slo_met_probability"] <= cases["forecast"]["slo_met_probability"]
    spike = cases["spike ×3 for 60 s"]
    assert spike["replicas_needed"] > cases["forecast"]["replicas_needed"]
    # The spike fills the first minute of the window; its backlog drains over the next
    # minutes, and the last one has recovered.
    series = spike["attainment_by_minute"]
    assert series[-1] > max(series[:2])
    assert min(series) < 1.0
    assert cases["demand ×2"]["max_queue"]["p50"] >= cases["forecast"]["max_queue"]["p50"]


def test_stress_files_and_per_minute_series(stressed) -> None:
    tmp, document = stressed
    for name in ("stress.json", "stress.csv", "stress_attainment.png"):
        assert (tmp / "out" / name).stat().st_size > 0
    for case in document["cases"]:
        series = case["attainment_by_minute"]
        assert len(series) == 4  # (250 − 10) s window in whole minutes
        assert all(0.0 <= a <= 1.0 for a in series)
        assert 0 <= case["violation_minutes"]["p50"] <= case["violation_minutes"]["max"] <= 4


def test_per_minute_attainment_and_slo_by_hand() -> None:
    arrival = np.array([0.5, 10.0, 61.0, 62.0, 130.0])
    ttft = np.array([0.1, 3.0, 0.2, 0.1, 0.3])
    e2e = ttft + 1.0
    lat = metrics.Latencies(ttft, np.full(5, 0.01), e2e, np.zeros(5))
    attainment, met = metrics.per_interval_slo(arrival, lat, 2.0, 0.05, 99.0, 0.0, 180.0)
    assert attainment.tolist() == [0.5, 1.0, 1.0]
    assert met.tolist() == [False, True, True]


def test_max_queue_length_by_hand() -> None:
    # Arrivals at 1, 2, 3, 4; admitted at 5, 2.5, never, 4: the queue is 1, 2, 1 (at 2.5),
    # 2, then at 4 the admission counts before the arrival (2 → 1 → 2), and 1 from 5 on.
    arrival = np.array([1.0, 2.0, 3.0, 4.0])
    admit = np.array([5.0, 2.5, np.nan, 4.0])
    assert metrics.max_queue_length(arrival, admit, 0.0, 10.0) == 2
    assert metrics.max_queue_length(arrival, admit, 5.0, 10.0) == 1  # held over from before
    assert metrics.max_queue_length(arrival, admit, 0.0, 1.5) == 1
