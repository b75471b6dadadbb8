"""`tokenfactory validate` on the published measurements table: a handful of real rows, all
compared, with finite errors (the command itself is tested on fixtures in
tests/units/test_validate.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from builders import PUBLISHED, read_csv, run_validate

from sim.validation import read_measurements
from sim.validation.compare import matches


@pytest.mark.skipif(not (PUBLISHED / "perf_measurements.yaml").is_file(),
                    reason=f"published measurements not found at {PUBLISHED} (they live in the "
                    "shared data folder beside the repository, not in it)")
def test_published_llama_8b_h100_rows(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    pattern = "trtllm-perf-overview/Llama-3.1-8B-Instruct/H100-tp1/*"
    out = tmp_path / "v.csv"
    code, _, err = run_validate(capsys, str(PUBLISHED / "perf_measurements.yaml"), "--rows",
                                pattern, "--csv", str(out), "--quiet")
    assert code == 0, err
    rows = read_csv(out)
    wanted = {r["id"] for r in read_measurements(PUBLISHED / "perf_measurements.yaml").rows
              if matches(r["id"], pattern)}
    assert wanted and {r["id"] for r in rows} == wanted
    for r in rows:
        assert r["status"] == "compared", r
        assert math.isfinite(float(r["error_pct"]))
