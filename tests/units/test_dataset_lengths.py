"""Published rows measured on a public dataset (ShareGPT): the shipped length table and its
use by `tokenfactory validate`.

The table (`calibration/datasets/sharegpt.yaml`) is vLLM's ShareGPT filter applied to public
token counts; these tests check its construction on a fixture with a closed-form answer, the
shipped file's shape, its rebuild from ../shared, and that rows naming ShareGPT run with it
while rows naming another dataset are skipped with that name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from builders import SHARED_DATA, read_csv, run_validate

from calibration.sources import datasets as source
from sim.scenario.workload import EmpiricalCdfLengths
from sim.validation.datasets import dataset_of, lengths_for
from sim.validation.mapping import Uncovered, setup_for_row

SHIPPED = Path(source.__file__).resolve().parents[1] / "datasets" / source.TABLE_FILE
TRACES = SHARED_DATA / "traces"


def _row(**changes: object) -> dict:
    row = {"id": "r", "model": "Llama-3.1-8B-Instruct", "gpu": "H100", "gpu_count": 1,
           "parallelism": "TP1", "precision": "FP8", "engine": "vLLM v0.6.0",
           "scenario": "benchmark_serving.py, request rate inf", "isl": "ShareGPT (variable)",
           "osl": "ShareGPT (variable)", "concurrency": 64, "batch_size": None}
    row.update(changes)
    return row


# ---- the table ------------------------------------------------------------------------------


def _write_trace(folder: Path, pairs: list[tuple[int, int]]) -> None:
    lines = ["num_prefill_tokens,num_decode_tokens,num_total_tokens,pd_ratio"]
    lines += [f"{p},{o},{p + o},{p / o}" for p, o in pairs]
    (folder / source.TRACE_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_the_filter_and_quantiles_match_a_recomputation(tmp_path: Path) -> None:
    # Prompts 4..103 with outputs 106..7 survive; each dropped pair breaks one vLLM rule.
    kept = [(p, 110 - p) for p in range(4, 104)]
    dropped = [(3, 10), (50, 3), (1025, 10), (1000, 1049)]
    _write_trace(tmp_path, kept + dropped)
    table = source.build(tmp_path)
    assert (table["source"]["rows"], table["n"]) == (104, 100)
    points = np.asarray(table["prompt_tokens"]["cdf"], dtype=np.float64)
    # The linear-interpolation quantile of the whole numbers 4..103 at p is 4 + 99 p.
    np.testing.assert_allclose(points[:, 0], np.round(4 + 99 * points[:, 1], 1))
    assert table["prompt_tokens"]["p50"] == 53.5 and table["prompt_tokens"]["max"] == 103
    outputs = np.asarray(table["output_tokens"]["cdf"], dtype=np.float64)
    np.testing.assert_allclose(outputs[:, 0], np.round(7 + 99 * outputs[:, 1], 1))
    assert table["prompt_tokens"]["mean"] == pytest.approx(53.5)
    assert table["correlation"] == {"pearson": -1.0, "spearman": -1.0}  # output = 110 − prompt


def test_shipped_table_is_a_cdf_within_the_sampling_rule() -> None:
    table = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    for key in ("prompt_tokens", "output_tokens"):
        tokens, probs = np.asarray(table[key]["cdf"], dtype=np.float64).T
        assert np.all(np.diff(tokens) >= 0) and np.all(np.diff(probs) > 0)
        assert probs[0] == 0 and probs[-1] == 1 and len(tokens) >= 100
        assert tokens[0] >= source.MIN_TOKENS
        EmpiricalCdfLengths.model_validate({"dist": "empirical_cdf", "cdf": table[key]["cdf"]})
    assert table["prompt_tokens"]["max"] <= source.MAX_PROMPT_TOKENS
    assert table["prompt_tokens"]["max"] + source.MIN_TOKENS <= source.MAX_TOTAL_TOKENS
    assert abs(table["correlation"]["pearson"]) < 0.2  # why drawing them apart is fair


@pytest.mark.skipif(not (TRACES / source.TRACE_FILE).exists(),
                    reason="../shared/data/traces (the public ShareGPT token counts) is absent")
def test_shipped_table_is_what_the_rebuild_writes(tmp_path: Path) -> None:
    assert source.main([str(TRACES), "--out", str(tmp_path)]) == 0
    assert (tmp_path / source.TABLE_FILE).read_text(encoding="utf-8") == SHIPPED.read_text(
        encoding="utf-8")


# ---- rows that name a dataset ---------------------------------------------------------------


def test_a_sharegpt_row_takes_the_tables_lengths() -> None:
    setup = setup_for_row(_row())
    table = lengths_for("sharegpt")
    assert table is not None
    assert setup.prompt_tokens == table.prompt_tokens
    assert setup.output_tokens == table.output_tokens
    assert setup.mean_prompt_tokens == pytest.approx(
        EmpiricalCdfLengths.model_validate(table.prompt_tokens).mean_tokens)
    assert any("sharegpt table" in note for note in setup.assumptions)


@pytest.mark.parametrize(("changes", "how"), [
    ({"dataset": "ShareGPT_V3"}, "dataset names sharegpt"),
    ({"isl": "dataset", "osl": "dataset", "notes": "prompts sampled from share-gpt"},
     "notes names sharegpt"),
    ({"isl": "benchmark dataset (script default; not fixed)", "osl": "dataset",
      "source": {"repo_path": "LambdaLabsML/vllm-benchmark:benchmark_v0.md@0e8fc5d"}},
     "defaults to --dataset-name sharegpt"),
])
def test_sharegpt_is_recognised_by_key_text_or_source(changes: dict, how: str) -> None:
    found = dataset_of(_row(**changes))
    assert found is not None and found[0] == "sharegpt" and how in found[1]


def test_stated_means_win_over_the_dataset_table() -> None:
    setup = setup_for_row(_row(isl_mean=300, osl_mean=200))
    assert setup.prompt_tokens["dist"] == "lognormal"
    assert (setup.mean_prompt_tokens, setup.mean_output_tokens) == (300, 200)


@pytest.mark.parametrize(("changes", "reason"), [
    ({"isl": "Sonnet (variable)"}, "lengths from the sonnet dataset"),
    ({"dataset": "in-house-chat-logs"}, "lengths from the in-house-chat-logs dataset"),
    ({"isl": "dataset", "osl": "dataset"}, "no dataset named"),
])
def test_a_dataset_without_a_table_is_skipped_naming_it(changes: dict, reason: str) -> None:
    with pytest.raises(Uncovered, match=reason):
        setup_for_row(_row(**changes))


def test_a_sharegpt_row_is_compared(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [_row(id="sharegpt-row", output_tokens_per_s_total=3000.0, concurrency=32)]
    measurements = tmp_path / "m.yaml"
    measurements.write_text(yaml.safe_dump({"rows": rows}), encoding="utf-8")
    out = tmp_path / "v.csv"
    code, _, err = run_validate(capsys, str(measurements), "--csv", str(out), "--quiet")
    assert code == 0, err
    (written,) = read_csv(out)
    assert written["status"] == "compared", written["status"]
    assert float(written["simulated"]) > 0
    assert "sharegpt table" in written["assumptions"]
