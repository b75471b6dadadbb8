"""The Monte Carlo's default model error: validation's end-to-end distribution per family
(`sim.montecarlo.model_error`, `calibration/validation_errors.yaml`)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from builders import REPO, scenario

from calibration.sources import validation_errors
from sim.hardware import catalog
from sim.montecarlo import design, model_error
from sim.montecarlo.model_error import MIN_ROWS, fallbacks, lookup, model_class

SWEEP = {"grid": {"deployment.replicas": [1]}, "replications": 8}


def _entry(n: int, median_log: float = 0.1, sigma_log: float = 0.2) -> dict[str, Any]:
    return {"tpot": {"n": n, "median_log": median_log, "sigma_log": sigma_log}}


def test_model_classes() -> None:
    models = catalog.models()
    assert [model_class(models[m]) for m in ("llama-3.1-8b", "mixtral-8x7b", "deepseek-r1")] \
        == ["dense", "moe", "mla"]


def test_lookup_takes_the_finest_family_with_enough_rows() -> None:
    assert fallbacks("h100-sxm", "vllm", "dense") == (
        "h100-sxm/vllm/dense", "h100-sxm/vllm/all", "h100-sxm/all/all", "all/all/all")
    families = {"h100-sxm/vllm/dense": _entry(MIN_ROWS, 0.3), "h100-sxm/vllm/all": _entry(90),
                "h100-sxm/all/all": _entry(200, -0.2), "all/all/all": _entry(900, 0.05)}
    found, passed = lookup(families, "h100-sxm", "vllm", "dense")
    assert found is not None and found.family == "h100-sxm/vllm/dense" and passed == []
    assert found.spread.median_log == 0.3

    families["h100-sxm/vllm/dense"] = _entry(MIN_ROWS - 1)
    found, passed = lookup(families, "h100-sxm", "vllm", "dense")
    assert found is not None and found.family == "h100-sxm/vllm/all"
    assert passed == [f"h100-sxm/vllm/dense: n {MIN_ROWS - 1} < {MIN_ROWS}"]

    found, passed = lookup(families, "h100-sxm", "sglang", "moe")  # engine never validated
    assert found is not None and found.family == "h100-sxm/all/all"
    assert passed == ["h100-sxm/sglang/moe: not in the table",
                      "h100-sxm/sglang/all: not in the table"]
    found, _ = lookup(families, "l40s", "vllm", "mla")
    assert found is not None and found.family == "all/all/all" and found.passed_over[0] \
        == "l40s/vllm/mla: not in the table"

    found, passed = lookup({"all/all/all": _entry(3)}, "l40s", "vllm", "mla")
    assert found is None and len(passed) == 4


def test_the_lognormal_has_the_tables_median_and_sigma() -> None:
    spread = model_error.Spread(50, math.log(1.1), 0.15)
    u = np.array([0.1, 0.5, 0.9])
    p10, median, p90 = np.log(spread.lognormal().ppf(u))
    assert median == pytest.approx(math.log(1.1), abs=1e-9)
    assert (p90 - p10) / 2 / 1.2815515655446004 == pytest.approx(0.15, rel=1e-6)


def test_a_sweep_samples_the_validated_familys_spread() -> None:
    """h100-sxm + vllm + a dense model: the scales drawn are lognormal with the median and σ
    the shipped table measured for that family (measured/simulated TPOT)."""
    entry = model_error.table()["families"]["h100-sxm/vllm/dense"]["tpot"]
    assert entry["n"] >= MIN_ROWS  # else the lookup would (rightly) fall back
    data = scenario(duration_s=10.0, warmup_s=1.0,
                    sweep={**SWEEP, "replications": 400})
    built = design.build(data, Path.cwd())
    logs = np.log([run.scenario.step_time_scale for run in built.runs])
    # A Latin hypercube puts one draw in each of 400 strata: its quantiles are the ppf's
    # to within a stratum's width (0.006 σ at the median), plus the table's rounding.
    width = 0.01 * entry["sigma_log"] + 1e-4
    assert float(np.median(logs)) == pytest.approx(entry["median_log"], abs=width)
    p10, p90 = np.percentile(logs, (10, 90))
    assert (p90 - p10) / (2 * 1.2815515655446004) == pytest.approx(entry["sigma_log"], rel=0.03)
    assert built.model_error is not None
    assert (built.model_error["family"], built.model_error["n"]) == ("h100-sxm/vllm/dense",
                                                                     entry["n"])
    assert any("h100-sxm/vllm/dense" in note and f"n {entry['n']}" in note
               for note in built.notes)


def test_the_draws_repeat_with_the_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_error, "table",
                        lambda: {"families": {"all/all/all": _entry(40, 0.1, 0.3)}})
    data = scenario(duration_s=10.0, warmup_s=1.0, sweep=SWEEP)
    scales = [[r.scenario.step_time_scale for r in design.build(data, Path.cwd()).runs]
              for _ in range(2)]
    assert scales[0] == scales[1] and len(set(scales[0])) == 8
    other = design.build(data, Path.cwd(), seed=12)
    assert [r.scenario.step_time_scale for r in other.runs] != scales[0]


def test_a_family_not_in_the_table_falls_back_and_says_why(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_error, "table", lambda: {"families": {
        "h100-sxm/vllm/dense": _entry(MIN_ROWS - 5), "all/all/all": _entry(40, 0.1, 0.3)}})
    data = scenario(duration_s=10.0, warmup_s=1.0, sweep=SWEEP)
    built = design.build(data, Path.cwd())
    assert built.model_error is not None and built.model_error["family"] == "all/all/all"
    assert built.model_error["passed_over"] == [
        f"h100-sxm/vllm/dense: n {MIN_ROWS - 5} < {MIN_ROWS}",
        "h100-sxm/vllm/all: not in the table", "h100-sxm/all/all: not in the table"]
    assert any("fell back past h100-sxm/vllm/dense" in note for note in built.notes)
    # Nothing with enough rows: the profile's fit error, named as in-sample.
    monkeypatch.setattr(model_error, "table", lambda: {"families": {}})
    built = design.build(data, Path.cwd())
    assert built.model_error is None and "step_time_scale" in built.uncertainty
    assert any("in-sample" in note and "not in the table" in note for note in built.notes)


def test_the_users_step_time_scale_wins() -> None:
    data = scenario(duration_s=10.0, warmup_s=1.0, sweep=SWEEP,
                    uncertainty={"step_time_scale": {"dist": "uniform", "low": 1.0,
                                                     "high": 1.0}})
    built = design.build(data, Path.cwd())
    assert built.model_error is None and {r.scenario.step_time_scale for r in built.runs} == {1.0}


# ---- the table's rebuild --------------------------------------------------------------------

COLUMNS = ("id", "metric", "measured", "simulated", "error_pct", "status", "profile_source",
           "assumptions", "gpu", "engine", "model", "precision", "concurrency")


def _row(row_id: str, metric: str, measured: float, simulated: float, gpu: str = "h100_sxm",
         engine: str = "vllm", model: str = "llama-3.1-8b", status: str = "compared",
         source: str = "measured-operators") -> dict[str, Any]:
    return {"id": row_id, "metric": metric, "measured": measured, "simulated": simulated,
            "error_pct": "", "status": status, "profile_source": source, "assumptions": "",
            "gpu": gpu, "engine": engine, "model": model, "precision": "bf16",
            "concurrency": 8}


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_the_table_rebuilds_from_a_validation_csv(tmp_path: Path) -> None:
    # Dense rows on H100 vLLM that ran 1×, 2× and 4× fast in TPOT (TTFT 2× each time),
    # one MoE row on SGLang; a skipped row, and a roofline-simulated one, left out.
    rows = []
    for i, ratio in enumerate((1.0, 2.0, 4.0)):
        rows += [_row(f"d{i}", "tpot_ms", 10.0 * ratio, 10.0),
                 _row(f"d{i}", "ttft_ms", 200.0 * ratio * 2, 200.0)]
    rows += [_row("m0", "tpot_ms", 5.0, 10.0, engine="sglang", model="mixtral-8x7b"),
             _row("s0", "tpot_ms", 5.0, 10.0, status="skipped: disaggregated"),
             _row("r0", "tpot_ms", 5.0, 10.0, source="fitted-roofline")]
    source = _write(tmp_path / "silicon.csv", rows)
    out = [tmp_path / name for name in ("a", "b")]
    for folder in out:
        folder.mkdir()
        validation_errors.main([str(source), "--out", str(folder), "--date", "2026-01-02"])
    texts = [(folder / "validation_errors.yaml").read_text("utf-8") for folder in out]
    assert texts[0] == texts[1]  # deterministic
    doc = yaml.safe_load(texts[0])
    families = doc["families"]
    assert sorted(families) == ["all/all/all", "h100-sxm/all/all", "h100-sxm/sglang/all",
                                "h100-sxm/sglang/moe", "h100-sxm/vllm/all",
                                "h100-sxm/vllm/dense"]
    dense = families["h100-sxm/vllm/dense"]
    assert dense["tpot"]["n"] == 3 and dense["tpot"]["median_log"] == round(math.log(2), 4)
    # percentiles of (0, ln 2, ln 4), linear between ranks: 0.2 ln 2 and 1.8 ln 2
    assert dense["tpot"]["p10_log"] == round(0.2 * math.log(2), 4)
    assert dense["tpot"]["sigma_log"] == round(1.6 * math.log(2) / (2 * 1.2815515655446004), 4)
    assert dense["ttft"]["median_log"] == round(math.log(4), 4)
    after = dense["ttft_after_step_scale"]  # TTFT ratio ÷ TPOT ratio: 2 on every row
    assert after["median_log"] == round(math.log(2), 4) and after["sigma_log"] == 0
    assert families["all/all/all"]["tpot"]["n"] == 4
    assert families["h100-sxm/sglang/moe"]["tpot"]["median_log"] == round(math.log(0.5), 4)
    assert doc["provenance"]["left_out"] == {"profile fitted-roofline": 1}
    assert doc["provenance"]["date"] == "2026-01-02"


def test_the_shipped_table_is_usable() -> None:
    doc = yaml.safe_load((REPO / model_error.TABLE_PATH).read_text("utf-8"))
    assert {"command", "date", "tokenfactory", "csv_sha256"} <= set(doc["provenance"])
    assert doc["families"]["all/all/all"]["tpot"]["n"] >= MIN_ROWS
    for key, entry in doc["families"].items():
        assert len(key.split("/")) == 3
        tpot = entry["tpot"]
        assert tpot["p10_log"] <= tpot["median_log"] <= tpot["p90_log"] and tpot["sigma_log"] >= 0
