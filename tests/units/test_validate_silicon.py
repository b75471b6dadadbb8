"""Measured end-to-end rows (the CSV format of silicon_sample.csv) as closed loops.

A small hand-written table (made-up numbers) covers each way a row is mapped or skipped; a
constant step time makes the closed loop's TTFT and TPOT closed-form (the closed-system law
R = N / X), so the queueing in TTFT is checked against arithmetic, not against our own output;
the run length is checked by doubling it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path

import pytest
from builders import SILICON_DENSE, write_silicon_fixture

from sim.errors import InputError
from sim.validation import silicon
from sim.validation.files import read_table
from sim.validation.silicon import compare_silicon, silicon_csv, simulate_plan
from sim.validation.silicon_mapping import (
    ModelFinder,
    Skip,
    base_name,
    concurrency_band,
    model_family,
    plan_row,
)
from sim.validation.silicon_rows import SiliconTable

ROWS = [
    SILICON_DENSE,
    {**SILICON_DENSE, "id": "disagg", "mode": "disagg", "batch_size": "", "tp_size": "",
     "pp_size": "", "attention_dp_size": "", "moe_tp_size": "", "moe_ep_size": ""},
    {**SILICON_DENSE, "id": "int4", "gemm_quant_mode": "int4_wo", "moe_quant_mode": "int4_wo"},
    {**SILICON_DENSE, "id": "pp2", "tp_size": "2", "pp_size": "2"},
    {**SILICON_DENSE, "id": "missing-model", "model_path": "nobody/Unknown-7B"},
]
EXPECTED = {
    "dense-h100-vllm-c8": "compared",
    "disagg": "skipped: disaggregated: compared with --disaggregated (slow: two pools at "
              "concurrencies of thousands)",
    "int4": "skipped: int4 weight-only not modelled",
    "pp2": "skipped: pipeline parallel not modelled",
    "missing-model": "skipped: model not in catalogue (give --models DIR)",
}


def write_fixture(folder: Path, rows: list[dict[str, str]] = ROWS) -> tuple[Path, Path]:
    return write_silicon_fixture(folder, rows)


def table(tmp_path: Path, rows: list[dict[str, str]] = ROWS) -> tuple[SiliconTable, Path]:
    path, models = write_fixture(tmp_path, rows)
    read = read_table(path)
    assert isinstance(read, SiliconTable)
    return read, models


# ---- statuses and reasons ------------------------------------------------------------------


def test_each_row_gets_its_status_and_reason(tmp_path: Path) -> None:
    rows, models = table(tmp_path)
    out = compare_silicon(rows, models)
    assert [(c.id, c.metric) for c in out] == [(r["id"], m) for r in ROWS
                                                for m in ("ttft_ms", "tpot_ms")]
    assert {c.id: c.status for c in out} == EXPECTED
    dense = [c for c in out if c.compared]
    assert all(c.simulated is not None and c.simulated > 0 for c in dense)
    assert {(c.gpu, c.engine, c.model, c.precision, c.concurrency) for c in dense} == {
        ("h100_sxm", "vllm", "dense-4l", "bf16", 8)}
    assert any("max_batched_tokens 8192" in a for a in dense[0].assumptions)


def test_without_models_the_hub_model_is_skipped(tmp_path: Path) -> None:
    rows, _ = table(tmp_path, [SILICON_DENSE])
    assert {c.status for c in compare_silicon(rows, None)} == {
        "skipped: model not in catalogue (give --models DIR)"}


def test_a_checkpoint_name_falls_back_to_the_catalogue(tmp_path: Path) -> None:
    notes: list[str] = []
    value, spec = ModelFinder(None).find("meta-llama/Llama-3.1-8B-Instruct", notes)
    assert value == "llama-3.1-8b" and spec.name == "llama-3.1-8b"
    assert notes == ["llama-3.1-8b-instruct simulated as the catalogue's llama-3.1-8b"]


@pytest.mark.parametrize(("change", "reason"), [
    ({"gemm_quant_mode": "fp8", "moe_quant_mode": "nvfp4"},
     "mixed precision not modelled (gemm fp8, moe nvfp4)"),
    ({"gemm_quant_mode": "w4a8"}, "quantisation 'w4a8' not modelled"),
    ({"system": "tpu_v5"}, "system 'tpu_v5' not in the GPU catalogue"),
    ({"backend": "tgi"}, "backend 'tgi' not modelled (one of vllm, sglang, trtllm)"),
    ({"tp_size": "0"}, "tp_size 0 is not a parallel degree ≥ 1"),
    ({"batch_size": ""}, "batch_size (the concurrency) not stated"),
])
def test_rows_the_simulator_lacks_are_skipped_with_the_reason(
        tmp_path: Path, change: dict[str, str], reason: str) -> None:
    rows, models = table(tmp_path, [{**SILICON_DENSE, **change}])
    with pytest.raises(Skip) as caught:
        plan_row(rows.rows[0], ModelFinder(models))
    assert str(caught.value) == reason


def test_the_benchmarks_own_concurrency_wins_over_one_ranks_batch(tmp_path: Path) -> None:
    # With attention data parallelism the row's batch_size is one rank's batch; the source
    # record's silicon_concurrency is how many clients the benchmark ran.
    source = "db-dump/2026-04-27; config_id=7; silicon_concurrency=32; measured=2026-04-21"
    rows, models = table(tmp_path, [
        {**SILICON_DENSE, "silicon_data_source": source, "batch_size": "8",
         "attention_dp_size": "4"},
        {**SILICON_DENSE, "id": "no-record", "silicon_data_source": "config_id=7"}])
    ranked, plain = rows.rows
    assert (ranked.concurrency, plain.concurrency) == (32, 8)
    plan = plan_row(ranked, ModelFinder(models))
    assert plan.base["workload"]["arrival"]["concurrency"] == 32


def test_parallelism_keys_and_engine_budgets(tmp_path: Path) -> None:
    rows, models = table(tmp_path, [
        {**SILICON_DENSE, "backend": "trtllm", "isl": "15000", "tp_size": "2", "moe_tp_size": "2"},
        {**SILICON_DENSE, "id": "sglang", "backend": "sglang", "attention_dp_size": ""}])
    trt, sgl = (plan_row(r, ModelFinder(models)) for r in rows.rows)
    assert trt.base["deployment"]["engine"] == "trtllm"
    assert trt.base["deployment"]["tensor_parallel"] == 2
    # Only the concurrency is set: the rest is each engine's preset (whole prompts for trtllm).
    assert trt.base["deployment"]["scheduler"] == {"max_num_seqs": 8}
    assert sgl.base["deployment"]["scheduler"] == {"max_num_seqs": 8}
    assert any("trtllm preset: chunked-prefill, max_batched_tokens 8192, whole-prompt "
               "prefill, admission reserve-output" in a for a in trt.assumptions)
    assert "attention_dp_size empty: no attention data parallelism" in sgl.assumptions


def test_names_bands_and_families() -> None:
    assert base_name("llama-3.1-8b-instruct-fp8") == "llama-3.1-8b"
    assert [model_family(n) for n in ("deepseek-r1", "qwen3-235b-a22b-fp8", "gpt-oss-120b",
                                      "minimax-m2.5", "llama-3.1-70b", "phi-4")] == [
        "deepseek", "qwen", "gpt-oss", "minimax", "llama", "phi"]
    assert [concurrency_band(n) for n in (1, 4, 5, 32, 33, 128, 129)] == [
        "1–4", "1–4", "5–32", "5–32", "33–128", "33–128", ">128"]


# ---- the closed loop -----------------------------------------------------------------------

STEP_S = 0.01
OSL = 100


def constant_plan(tmp_path: Path, concurrency: int, max_num_seqs: int) -> silicon.RowPlan:
    """The dense row as a closed loop of `concurrency` clients on a constant 10 ms step."""
    rows, models = table(tmp_path, [{**SILICON_DENSE, "batch_size": str(concurrency),
                                     "osl": str(OSL)}])
    plan = plan_row(rows.rows[0], ModelFinder(models))
    deployment = {**plan.base["deployment"],
                  "scheduler": {**plan.base["deployment"]["scheduler"],
                                "max_num_seqs": max_num_seqs}}
    return replace(plan, base={**plan.base, "profile": {"kind": "constant", "step_s": STEP_S},
                               "deployment": deployment})


def test_closed_loop_ttft_includes_the_wait_for_a_batch_slot(tmp_path: Path) -> None:
    """8 clients, 2 batch slots, every step 10 ms: a request holds its slot for OSL steps
    (the step that prefills it gives the first token), S = OSL × step, so the loop serves
    X = 2 / S and by the closed-system law each request takes R = N / X = 4 S from its send;
    its last OSL − 1 steps are decode, so TTFT = R − (OSL − 1) × step ≈ 3 S. One prefill
    alone is one step."""
    alone = simulate_plan(constant_plan(tmp_path, 1, 1))
    queued = simulate_plan(constant_plan(tmp_path, 8, 2))
    service_s = OSL * STEP_S
    assert alone.ttft_ms == pytest.approx(STEP_S * 1000, abs=STEP_S * 1000)
    assert queued.ttft_ms is not None and queued.tpot_ms is not None
    expected_ttft_s = 4 * service_s - (OSL - 1) * STEP_S
    assert queued.ttft_ms / 1000 == pytest.approx(expected_ttft_s, rel=0.03)
    assert queued.tpot_ms == pytest.approx(STEP_S * 1000, rel=1e-6)


def test_doubling_the_run_moves_the_means_by_under_two_percent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run length's check: the step-time model of the row (profile auto), at a
    concurrency whose prefills queue behind each other at the start."""
    rows, models = table(tmp_path, [{**SILICON_DENSE, "batch_size": "64"}])
    plan = plan_row(rows.rows[0], ModelFinder(models))
    short = simulate_plan(plan)
    monkeypatch.setattr(silicon, "WARMUP_LIFETIMES", 2 * silicon.WARMUP_LIFETIMES)
    monkeypatch.setattr(silicon, "WINDOW_LIFETIMES", 2 * silicon.WINDOW_LIFETIMES)
    long = simulate_plan(plan)
    assert short.ttft_ms and long.ttft_ms and short.tpot_ms and long.tpot_ms
    assert short.ttft_ms == pytest.approx(long.ttft_ms, rel=0.02)
    assert short.tpot_ms == pytest.approx(long.tpot_ms, rel=0.02)


def test_a_slow_simulation_is_rerun_with_its_own_lifetime(tmp_path: Path) -> None:
    """A measured lifetime 100× shorter than the simulated one sizes a first run far too
    short; the rerun's window still holds the lifetimes asked for."""
    plan = constant_plan(tmp_path, 4, 4)
    rerun = simulate_plan(replace(plan, lifetime_hint_s=plan.lifetime_hint_s / 100))
    sized = simulate_plan(replace(plan, lifetime_hint_s=OSL * STEP_S))  # the true lifetime
    assert "window of 16.0 lifetimes" in rerun.observed
    assert rerun.ttft_ms == pytest.approx(sized.ttft_ms, rel=0.01)
    assert rerun.tpot_ms == pytest.approx(sized.tpot_ms, rel=0.01)


# ---- reading the file ----------------------------------------------------------------------


def test_the_header_decides_the_format(tmp_path: Path) -> None:
    path, _ = write_fixture(tmp_path)
    assert isinstance(read_table(path), SiliconTable)
    yaml_like = tmp_path / "rows.yaml"
    yaml_like.write_text("rows:\n  - {id: a}\n", encoding="utf-8")
    assert not isinstance(read_table(yaml_like), SiliconTable)


@pytest.mark.parametrize(("cells", "where", "shown"), [
    ({"batch_size": "eight"}, "line 2, column batch_size", "'eight'"),
    ({"isl": "1.5"}, "line 2, column isl", "'1.5'"),
    ({"silicon_ttft_ms": "nan"}, "line 2, column silicon_ttft_ms", "'nan'"),
])
def test_a_cell_that_is_no_number_names_its_line_and_column(
        tmp_path: Path, cells: dict[str, str], where: str, shown: str) -> None:
    path, _ = write_fixture(tmp_path, [{**SILICON_DENSE, **cells}])
    with pytest.raises(InputError) as caught:
        read_table(path)
    assert caught.value.where == f"{path}: {where}"
    assert shown in str(caught.value)


def test_a_repeated_id_and_a_missing_column_are_refused(tmp_path: Path) -> None:
    path, _ = write_fixture(tmp_path, [SILICON_DENSE, SILICON_DENSE])
    with pytest.raises(InputError, match="line 2 has it too"):
        read_table(path)
    path.write_text("id,silicon_ttft_ms,silicon_tpot_ms\na,1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match="backend, model_path"):
        read_table(path)


def test_the_csv_holds_the_contract_then_the_labels(tmp_path: Path) -> None:
    rows, models = table(tmp_path)
    written = list(csv.DictReader(io.StringIO(silicon_csv(compare_silicon(rows, models)))))
    assert list(written[0])[:6] == ["id", "metric", "measured", "simulated", "error_pct",
                                    "status"]
    assert list(written[0])[-5:] == ["gpu", "engine", "model", "precision", "concurrency"]
    dense = written[0]
    error = (float(dense["simulated"]) - float(dense["measured"])) / float(dense["measured"])
    assert float(dense["error_pct"]) == pytest.approx(100 * error, abs=1e-3)
    assert written[2]["simulated"] == "" and written[2]["error_pct"] == ""
