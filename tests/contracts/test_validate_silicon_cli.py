"""`tokenfactory validate FILE.csv --models DIR`: measured end-to-end rows, end to end.

The command recognises the measured-row CSV by its header, writes every row and metric to
the CSV (compared or skipped, in file order whatever --workers is), prints the summary, and
refuses bad input with exit 2 and one line, leaving no file behind. The slow test runs the
first aggregated rows of the real shared file.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from builders import (
    PUBLISHED,
    SILICON_DENSE,
    Builder,
    Case,
    params,
    read_csv,
    run_validate,
    silicon_csv_text,
    write_silicon_fixture,
)

ROWS = [SILICON_DENSE,
        {**SILICON_DENSE, "id": "disagg", "mode": "disagg", "batch_size": ""},
        {**SILICON_DENSE, "id": "c32", "batch_size": "32"}]
AIC = PUBLISHED / "aic"


def test_the_command_writes_every_row_and_prints_the_summary(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, models = write_silicon_fixture(tmp_path, ROWS)
    out = tmp_path / "v.csv"
    code, stdout, err = run_validate(capsys, str(path), "--models", str(models), "--csv",
                                     str(out), "--workers", "1")
    assert code == 0, err
    written = read_csv(out)
    assert [(r["id"], r["metric"]) for r in written] == [
        (row["id"], metric) for row in ROWS for metric in ("ttft_ms", "tpot_ms")]
    assert [r["status"] for r in written].count("compared") == 4
    assert stdout.startswith("3 rows: 2 compared")
    for text in ("TTFT (mean, from send)", "gpu: h100_sxm", "model: dense",
                 "concurrency: 5–32", "worst 4 rows",
                 "1  disaggregated: compared with --disaggregated"):
        assert text in stdout, text


def test_workers_do_not_change_the_output(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path, models = write_silicon_fixture(tmp_path, ROWS)
    texts = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}.csv"
        code, _, err = run_validate(capsys, str(path), "--models", str(models), "--csv",
                                    str(out), "--workers", workers, "--quiet")
        assert code == 0, err
        texts.append(out.read_text(encoding="utf-8"))
    assert texts[0] == texts[1]


def _bad_csv(cells: dict[str, str]) -> Builder:
    def build(tmp: Path) -> list[str]:
        (tmp / "bad.csv").write_text(silicon_csv_text([{**SILICON_DENSE, **cells}]),
                                     encoding="utf-8")
        return [str(tmp / "bad.csv"), "--csv", str(tmp / "out.csv")]
    return build


def _fixture(*flags: str) -> Builder:
    def build(tmp: Path) -> list[str]:
        path, models = write_silicon_fixture(tmp, [SILICON_DENSE])
        return [str(path), "--csv", str(tmp / "out.csv"),
                *[str(models) if f == "MODELS" else f for f in flags]]
    return build


BAD = [
    Case("batch-size-not-a-number", _bad_csv({"batch_size": "lots"}),
         "line 2, column batch_size", "'lots'", also=("an integer ≥ 0",), command="validate",
         output=False, key_first=False),
    Case("measured-not-a-number", _bad_csv({"silicon_tpot_ms": "fast"}),
         "line 2, column silicon_tpot_ms", "'fast'", command="validate", output=False,
         key_first=False),
    Case("workers-zero", _fixture("--models", "MODELS", "--workers", "0"), "--workers", "'0'",
         command="validate", output=False, key_first=False),
    Case("models-not-a-directory", _fixture("--models", "nowhere"), "--models", "'nowhere'",
         also=("a directory",), command="validate", output=False),
    Case("sweeps-with-a-csv", _fixture("--sweeps", "s.yaml"), "--sweeps", "'s.yaml'",
         command="validate", output=False),
    Case("rows-match-nothing", _fixture("--rows", "nothing*"), "--rows", "'nothing*'",
         command="validate", output=False),
]


@pytest.mark.parametrize("case", params(BAD))
def test_bad_input_exits_2_with_one_line_and_no_file(case: Case, check_rejected) -> None:
    check_rejected(case)


@pytest.mark.slow
def test_the_first_aggregated_rows_of_the_shared_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The real rows: the first 50 aggregated ones all get a status, most are compared, and
    every compared value is a finite number > 0."""
    source = AIC / "silicon_sample.csv"
    if not source.is_file():
        pytest.skip(f"the shared measured rows are not here ({source})")
    with source.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        fields = list(reader.fieldnames or [])
        rows = [r for r in reader if r["mode"] == "agg"][:50]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = tmp_path / "first.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    out = tmp_path / "v.csv"
    code, _, err = run_validate(capsys, str(path), "--models", str(AIC / "model_configs"),
                                "--csv", str(out), "--quiet")
    assert code == 0, err
    written = read_csv(out)
    assert len(written) == 2 * len(rows)
    compared = [r for r in written if r["status"] == "compared"]
    assert len(compared) >= len(written) // 2, {r["status"] for r in written}
    assert all(float(r["simulated"]) > 0 for r in compared)
