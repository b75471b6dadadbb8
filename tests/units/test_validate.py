"""`tokenfactory validate`: published rows in, one CSV row per row and metric out.

The contract (DESIGN.md): every measured row appears in the CSV, compared or
`skipped: <reason>`, with columns `id, metric, measured, simulated, error_pct, status`. These
tests run the command on small fixture tables under tests/fixtures (made-up numbers), check
the mapping of published names to catalogue keys, the windowed throughput against a closed
form, the knee and bad input (exit 2, one line). The real published rows are checked in
tests/validation/test_published_rows.py.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from builders import FIXTURES, read_csv, run_validate

from sim.cli import main
from sim.validation import read_measurements, read_sweeps
from sim.validation.compare import matches
from sim.validation.mapping import Uncovered, measured_metrics, parallelism, setup_for_row
from sim.validation.silicon_mapping import ModelFinder
from sim.validation.simulate import _window_tokens_per_s
from sim.validation.sweeps import knee_load

MEASUREMENTS = FIXTURES / "validate_measurements.yaml"
SWEEPS = FIXTURES / "validate_sweeps.yaml"
CONTRACT = ["id", "metric", "measured", "simulated", "error_pct", "status"]


@pytest.fixture(scope="module")
def fixture_csv(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    out = tmp_path_factory.mktemp("validate") / "v.csv"
    assert main(["validate", str(MEASUREMENTS), "--sweeps", str(SWEEPS), "--csv", str(out),
                 "--models", str(FIXTURES), "--quiet"]) == 0
    return read_csv(out)


# ---- the CSV contract ----------------------------------------------------------------------


def test_csv_starts_with_the_contract_columns(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "v.csv"
    code, _, err = run_validate(capsys, str(MEASUREMENTS), "--csv", str(out), "--quiet")
    assert code == 0, err
    header = out.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header[:6] == CONTRACT
    assert header[6:] == ["profile_source", "assumptions"]


def test_every_row_and_metric_appears_once(fixture_csv: list[dict[str, str]]) -> None:
    table = read_measurements(MEASUREMENTS)
    expected = [(row["id"], m.metric) for row in table.rows for m in measured_metrics(row)]
    written = [(r["id"], r["metric"]) for r in fixture_csv if not r["id"].startswith(
        "fixture/closed") and not r["id"].startswith(("fixture/poisson", "fixture/moe"))]
    assert written == expected


@pytest.mark.parametrize(("row_id", "reason"), [
    ("fixture/unknown-model/bloom/H100-tp1/128-128", "not in the catalogue"),
    ("fixture/dataset-lengths/llama-3.1-8b/1xH100", "lengths not fixed"),
    ("fixture/ambiguous-unit/llama-2-7b/A100-tp2/128-128", "per GPU or total"),
])
def test_skipped_rows_are_present_with_their_reason(fixture_csv: list[dict[str, str]],
                                                    row_id: str, reason: str) -> None:
    rows = [r for r in fixture_csv if r["id"] == row_id]
    assert rows, f"{row_id} missing from the CSV"
    for r in rows:
        assert r["status"].startswith("skipped: ") and reason in r["status"]
        assert r["simulated"] == "" and r["error_pct"] == ""


@pytest.mark.parametrize("row_id", [
    "fixture/trt-offline/llama-3.1-8b/H100-tp1/1000-1000",
    "fixture/trt-static/llama-2-7b/H100-tp1/b64/128-128",
    "fixture/batch-1-ttft/llama-2-7b/A100-tp1/128",
    "fixture/fp4/llama-3.3-70b/B200-tp1/128-128",  # FP4
    "fixture/ep/mixtral-8x7b/H100-tp2-ep2/128-128",  # expert parallel
    "fixture/mlperf/llama2-70b/H200-tp4/offline",  # an MLPerf benchmark's name
    "fixture/dep/mla-moe/H200-dep2/64-32",  # attention DP + EP, a --models config
])
def test_covered_rows_are_compared(fixture_csv: list[dict[str, str]], row_id: str) -> None:
    rows = [r for r in fixture_csv if r["id"] == row_id]
    assert rows and all(r["status"] == "compared" for r in rows)
    # H100, H200, A100 and B200 have measured operator tables for TensorRT-LLM and SGLang.
    assert all(r["profile_source"] == "measured-operators" for r in rows)


def test_error_pct_is_recomputable_from_the_columns(fixture_csv: list[dict[str, str]]) -> None:
    compared = [r for r in fixture_csv if r["status"] == "compared"]
    assert len(compared) >= 10
    for r in compared:
        measured, simulated = float(r["measured"]), float(r["simulated"])
        assert math.isfinite(simulated) and simulated > 0
        expected = (simulated - measured) / measured * 100
        assert float(r["error_pct"]) == pytest.approx(expected, abs=0.01)


def test_assumptions_are_written_down(fixture_csv: list[dict[str, str]]) -> None:
    by_id = {r["id"]: r for r in fixture_csv}
    static = by_id["fixture/trt-static/llama-2-7b/H100-tp1/b64/128-128"]["assumptions"]
    assert "static batching" in static and "batch size" in static
    offline = by_id["fixture/trt-offline/llama-3.1-8b/H100-tp1/1000-1000"]["assumptions"]
    assert "2048" in offline and "TensorRT-LLM" in offline
    fp16 = by_id["fixture/batch-1-ttft/llama-2-7b/A100-tp1/128"]["assumptions"]
    assert "FP16" in fp16 and "admission" in fp16
    mlperf = by_id["fixture/mlperf/llama2-70b/H200-tp4/offline"]["assumptions"]
    assert "read as 'Llama-2-70B-chat'" in mlperf
    dep = by_id["fixture/dep/mla-moe/H200-dep2/64-32"]["assumptions"]
    assert "data_parallel_attention 2, expert_parallel 2" in dep


def test_sweep_points_and_knees_are_in_the_csv(fixture_csv: list[dict[str, str]]) -> None:
    ids = {r["id"] for r in fixture_csv}
    for point in ("c1", "c16", "c256", "knee"):
        assert f"fixture/closed/llama-3.1-8b/H100-tp1/512-128/{point}" in ids
    assert "fixture/poisson/llama-3.1-8b/H100-tp1/sharegpt/rate-2" in ids  # its own id
    assert "fixture/poisson/llama-3.1-8b/H100-tp1/sharegpt/rate-8" in ids  # derived
    knee = next(r for r in fixture_csv if r["id"].endswith("512-128/knee"))
    assert knee["metric"] == "knee_concurrency" and knee["status"] == "compared"
    deepseek = [r for r in fixture_csv if r["id"].startswith("fixture/moe/deepseek-r1/")
                and r["id"].endswith(("/c4", "/c64"))]  # DeepSeek-R1-0528: MLA and MoE
    assert deepseek and all(r["status"] == "compared" for r in deepseek)
    sharegpt = [r for r in fixture_csv if "sharegpt/rate" in r["id"]]
    assert all(r["status"] == "compared" and "lognormal" in r["assumptions"] for r in sharegpt)


def test_printed_report_names_sources_groups_and_target(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_validate(capsys, str(MEASUREMENTS))
    assert code == 0
    for text in ("measured-operators", "median", "engine: TensorRT-LLM", "gpu: H100", "target",
                 "not in the catalogue", "assumptions:", "gpu: B200"):
        assert text in out


# ---- --rows and --plot ---------------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "row_id", "hit"), [
    ("trt-static", "fixture/trt-static/llama-2-7b/H100-tp1/b64/128-128", True),
    ("fixture/*/llama-2-7b/*", "fixture/trt-static/llama-2-7b/H100-tp1/b64/128-128", True),
    ("fixture/*/llama-2-7b/*", "fixture/trt-offline/llama-3.1-8b/H100-tp1/1000-1000", False),
    ("static", "fixture/trt-offline/llama-3.1-8b/H100-tp1/1000-1000", False),
    (None, "anything", True),
])
def test_rows_filter_is_a_glob_or_a_substring(pattern: str | None, row_id: str,
                                              hit: bool) -> None:
    assert matches(row_id, pattern) is hit


def test_rows_filter_limits_the_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "v.csv"
    code, _, _ = run_validate(capsys, str(MEASUREMENTS), "--rows", "*llama-2-7b*", "--csv",
                              str(out), "--quiet")
    assert code == 0
    ids = {r["id"] for r in read_csv(out)}
    assert ids == {"fixture/trt-static/llama-2-7b/H100-tp1/b64/128-128",
                   "fixture/batch-1-ttft/llama-2-7b/A100-tp1/128",
                   "fixture/ambiguous-unit/llama-2-7b/A100-tp2/128-128"}


def test_plot_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "v.png"
    code, _, _ = run_validate(capsys, str(MEASUREMENTS), "--rows", "trt-static", "--plot",
                              str(out), "--quiet")
    assert code == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["v.png"]  # no temporary left behind


# ---- mapping published words to the catalogue ----------------------------------------------


def _row(**changes: object) -> dict:
    row = {"id": "r", "model": "Llama-3.1-8B-Instruct", "gpu": "H100", "gpu_count": 1,
           "parallelism": "TP1", "precision": "FP8", "engine": "TensorRT-LLM",
           "scenario": "offline max-throughput", "isl": 128, "osl": 128,
           "concurrency": "unbounded", "batch_size": None}
    row.update(changes)
    return row


@pytest.mark.parametrize(("name", "key"), [
    ("Llama-3.1-8B", "llama-3.1-8b"), ("Llama-3.1-8B-Instruct", "llama-3.1-8b"),
    ("Meta-Llama-3.1-8B-FP8", "llama-3.1-8b"), ("Llama-3.3-70B-Instruct", "llama-3.1-70b"),
    ("Meta-Llama-3.1-70B-Instruct-FP8", "llama-3.1-70b"),
    ("Llama-3.1-405B-Instruct", "llama-3.1-405b"), ("Llama-2-7B", "llama-2-7b"),
    ("Llama-2-70B", "llama-2-70b"), ("Mixtral-8x7B-Instruct-v0.1", "mixtral-8x7b"),
    ("Qwen2.5-72B-Instruct", "qwen2.5-72b"),
    ("Hermes-3-Llama-3.1-405B-FP8", "llama-3.1-405b"),
    ("Llama-2-70B-chat (MLPerf llama2-70b, 99% accuracy target)", "llama-2-70b"),
    ("llama2-70b-99.9", "llama-2-70b"), ("llama3.1-405b", "llama-3.1-405b"),
])
def test_model_names_map_to_catalogue_keys(name: str, key: str) -> None:
    assert setup_for_row(_row(model=name, gpu="H200", gpu_count=8, parallelism="TP8")).model == key


def test_models_dir_configs_are_found_by_name() -> None:
    """The same lookup as the measured-row CSV path: a config's name (no organisation), with
    checkpoint suffixes dropped when only the base model's config is there."""
    models = ModelFinder(FIXTURES)
    plan = setup_for_row(_row(model="MLA-MoE", gpu="H200"), models)
    assert plan.model == "mla-moe"
    assert plan.model_ref == {"hf_config": str((FIXTURES / "tiny--MLA-MoE_config.json")
                                               .resolve())}
    assert setup_for_row(_row(model="Window-MoE-FP8"), models).model == "window-moe"
    with pytest.raises(Uncovered, match="nor in --models DIR"):
        setup_for_row(_row(model="Mistral-7B-Instruct-v0.3"), models)


@pytest.mark.parametrize(("changes", "reason"), [
    ({"model": "Mistral-Nemo-Instruct-2407"}, "not in the catalogue .give --models DIR"),
    ({"gpu": "TPU v5e"}, "GPU 'TPU v5e' not in the catalogue"),
    ({"precision": "INT4-AWQ"}, "precision 'INT4-AWQ' not modelled"),
    ({"parallelism": "TP1 PP2", "gpu_count": 2}, "pipeline parallel not modelled"),
    ({"parallelism": "TP2 SP2", "gpu_count": 4}, "not understood"),
    ({"parallelism": "TP2 TP4", "gpu_count": 8}, "TP twice"),
    ({"gpu_count": 3, "parallelism": "TP2"}, "multiple"),
    ({"gpu_count": 4, "parallelism": "DEP8"}, "multiple of the replica's 8 GPUs"),
    ({"isl": "dataset"}, "lengths not fixed"),
    ({"concurrency": "sometimes", "scenario": "serving"}, "concurrency"),
])
def test_uncovered_rows_say_why(changes: dict, reason: str) -> None:
    with pytest.raises(Uncovered, match=reason):
        setup_for_row(_row(**changes))


@pytest.mark.parametrize(("text", "moe", "degrees"), [
    ("TP8", False, (8, 1, 1)),
    ("TP4 EP4", True, (4, 1, 4)),
    ("TP8 EP2", True, (8, 1, 2)),
    ("DEP8", True, (1, 8, 8)),
    ("TP2 DP4 EP8", True, (2, 4, 8)),  # DP next to EP: attention data parallelism
    ("TP2, DP4", False, (2, 1, 1)),  # DP alone: independent replicas
    ("ADP4 EP4", True, (1, 4, 4)),
    ("TP1 PP1", False, (1, 1, 1)),
])
def test_parallelism_forms(text: str, moe: bool, degrees: tuple[int, int, int]) -> None:
    p = parallelism(text, moe, [])
    assert (p.tensor_parallel, p.data_parallel_attention, p.expert_parallel) == degrees


def test_a_moe_row_without_expert_parallel_says_so() -> None:
    notes: list[str] = []
    assert parallelism("TP8", True, notes).expert_parallel == 1
    assert any("expert parallelism not stated" in n for n in notes)


@pytest.mark.parametrize(("published", "key"), [
    ("H100", "h100-sxm"), ("H200", "h200"), ("B200", "b200"), ("GB200", "gb200"),
    ("B300", "b300"), ("GB300", "gb300"), ("RTX PRO 6000", "rtx-pro-6000"),
    ("RTX-Pro-6000-Server", "rtx-pro-6000"), ("MI300X", "mi300x"), ("MI325X", "mi325x"),
    ("MI355X", "mi355x"), ("H20", "h20"), ("A100-80GB", "a100-80gb"), ("L40S", "l40s"),
])
def test_gpu_names_map_to_catalogue_keys(published: str, key: str) -> None:
    assert setup_for_row(_row(gpu=published)).gpu == key


@pytest.mark.parametrize(("engine", "key"), [
    ("TensorRT-LLM (trtllm-bench, PyTorch backend)", "trtllm"), ("vLLM v0.5.4", "vllm"),
    ("SGLang 0.4.6", "sglang"), ("some-server 1.0", "vllm"),
])
def test_engine_text_picks_the_deployment_engine(engine: str, key: str) -> None:
    assert setup_for_row(_row(engine=engine)).engine == key


@pytest.mark.parametrize(("precision", "dtype"), [
    ("FP4", "fp4"), ("NVFP4", "fp4"), ("MXFP4", "fp4"), ("FP8", "fp8"), ("BF16", "bf16"),
    ("FP16", "bf16"), ("BF16/FP16", "bf16"),
])
def test_precisions_map_to_dtypes(precision: str, dtype: str) -> None:
    assert setup_for_row(_row(precision=precision, gpu="B200")).dtype == dtype


def test_expert_parallel_on_a_dense_model_is_skipped_with_the_scenarios_reason(
        tmp_path: Path) -> None:
    table = tmp_path / "m.yaml"
    table.write_text(yaml.safe_dump({"rows": [_row(parallelism="TP2 EP2", gpu_count=2,
                                                   output_tokens_per_s_total=100)]}))
    out = tmp_path / "v.csv"
    assert main(["validate", str(table), "--csv", str(out), "--quiet"]) == 0
    (row,) = read_csv(out)
    assert row["status"].startswith("skipped: scenario rejected")
    assert "expert_parallel" in row["status"] and "dense" in row["status"]


def test_models_flag_must_be_a_directory(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_validate(capsys, str(MEASUREMENTS), "--models",
                                  str(tmp_path / "nope"))
    _check_one_line(code, out, err, "--models", "directory")


def test_precision_and_gpu_assumptions() -> None:
    plan = setup_for_row(_row(precision="BF16 (not stated)", gpu="H100"))
    assert plan.dtype == "bf16"
    assert any("not stated" in a for a in plan.assumptions)
    assert any("SXM" in a for a in plan.assumptions)
    assert setup_for_row(_row(precision="FP16")).dtype == "bf16"


def test_parallelism_gives_replicas_and_tensor_parallel() -> None:
    plan = setup_for_row(_row(gpu_count=8, parallelism="TP2", concurrency=64,
                         scenario="serving", engine="vLLM v0.5.4"))
    assert (plan.tensor_parallel, plan.replicas) == (2, 4)
    assert plan.load == "closed" and plan.max_num_seqs == 16  # 64 in flight over 4 replicas


def test_engine_defaults_and_static_batching() -> None:
    trt = setup_for_row(_row())
    assert (trt.load, trt.max_num_seqs, trt.policy) == ("offline", 2048, "chunked-prefill")
    vllm = setup_for_row(_row(engine="vLLM"))
    assert (vllm.max_num_seqs, vllm.max_batched_tokens) == (256, 8192)
    # a V0 vLLM's own: max(max_model_len, 2048) without chunked prefill (test_validate_burst)
    v0 = setup_for_row(_row(engine="vLLM v0.5.4"))
    assert (v0.max_num_seqs, v0.max_batched_tokens, v0.policy) == (256, 2048, "prefill-first")
    static = setup_for_row(_row(engine="TensorRT-LLM 0.6.1 (static batching)", concurrency=64,
                           batch_size=64))
    assert (static.policy, static.max_num_seqs, static.max_batched_tokens) == (
        "static", 64, 64 * 128)


def test_a_model_that_does_not_fit_is_skipped(tmp_path: Path) -> None:
    table = tmp_path / "m.yaml"
    table.write_text(yaml.safe_dump({"rows": [_row(model="Llama-3.1-405B-Instruct",
                                                   output_tokens_per_s_total=100)]}))
    out = tmp_path / "v.csv"
    assert main(["validate", str(table), "--csv", str(out), "--quiet"]) == 0
    (row,) = read_csv(out)
    assert row["status"].startswith("skipped: model does not fit")


# ---- what is measured in a simulation ------------------------------------------------------


def test_windowed_throughput_matches_the_closed_form() -> None:
    """Static batches of 8, a constant 10 ms step, prompt 10 (one prefill step, which also
    yields the first token) and 20 output tokens: each batch takes 20 steps = 0.2 s for 160
    tokens, so 800 tokens/s, wherever the window's edges fall between batches."""
    import sim

    scenario = {
        "seed": 3, "duration_s": 31.37, "warmup_s": 5.05, "drain_s": 2.0,
        "model": "llama-3.1-8b", "gpu": "h100-sxm",
        "profile": {"kind": "constant", "step_s": 0.01},
        "deployment": {"replicas": 1, "scheduler": {"policy": "static", "max_num_seqs": 8,
                                                    "max_batched_tokens": 80}},
        "workload": {"arrival": {"process": "poisson", "rate_per_s": 120.0},
                     "prompt_tokens": {"dist": "fixed", "value": 10},
                     "output_tokens": {"dist": "fixed", "value": 20}},
        "slo": {"ttft_s": 1.0, "tpot_s": 1.0}, "cost": {"gpu_hour_usd": 1.0},
    }
    result = sim.run(scenario, warn_window=False)  # overloaded on purpose: E2E times grow
    assert _window_tokens_per_s(result) == pytest.approx(800.0, rel=0.01)


@pytest.mark.parametrize(("ttft", "knee"), [
    ([10, 12, 20, 31, 90], 8.0),  # first value above 3 × 10
    ([10, 12, 20, 29, 30], None),  # never above
    ([None, 50, 60, 70, 80], None),  # no low-load value to compare with
])
def test_knee_is_the_first_load_past_three_times_the_lowest(ttft: list, knee: float) -> None:
    assert knee_load([1.0, 2.0, 4.0, 8.0, 16.0], ttft) == knee


# ---- bad input: exit 2, one line naming the file and key, nothing written ------------------


def _write(tmp: Path, name: str, content: str | bytes) -> Path:
    path = tmp / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


BAD_FILES = [
    ("missing-file", None, "nope.yaml", "no such file"),
    ("not-yaml", "rows: [\n  - id: a\n  bad: {", "bad.yaml:", "YAML"),
    ("not-utf8", b"rows: \xff\xfe\n", "bad.yaml", "UTF-8"),
    ("top-level-list", "- id: a\n", "bad.yaml", "rows:"),
    ("no-rows-key", "schema: {}\n", "bad.yaml: rows", "missing"),
    ("rows-not-a-list", "rows: {id: a}\n", "bad.yaml: rows", "list"),
    ("row-not-a-mapping", "rows:\n- 3\n", "bad.yaml: rows[0]", "mapping"),
    ("row-without-id", "rows:\n- {id: a, model: x}\n- {model: y}\n", "bad.yaml: rows[1].id",
     "missing"),
    ("duplicate-id", "rows:\n- {id: a}\n- {id: a}\n", "bad.yaml: rows[1].id", "rows[0]"),
]


@pytest.mark.parametrize(("content", "where", "what"),
                         [pytest.param(c, w, x, id=i) for i, c, w, x in BAD_FILES])
def test_bad_measurements_file(content: str | bytes | None, where: str, what: str,
                               tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nope.yaml" if content is None else _write(tmp_path, "bad.yaml", content)
    before = set(tmp_path.iterdir())
    code, out, err = run_validate(capsys, str(path), "--csv", str(tmp_path / "v.csv"))
    _check_one_line(code, out, err, where, what)
    assert set(tmp_path.iterdir()) == before


@pytest.mark.parametrize(("content", "where"), [
    ("rows:\n- {concurrency: 4}\n", "sweeps.yaml: rows[0].sweep_id"),
    ("sweeps: 3\nrows:\n- {sweep_id: s, concurrency: 4}\n", "sweeps.yaml: sweeps"),
    ("other: 1\n", "sweeps.yaml: rows"),
])
def test_bad_sweeps_file(content: str, where: str, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    sweeps = _write(tmp_path, "sweeps.yaml", content)
    code, out, err = run_validate(capsys, str(MEASUREMENTS), "--sweeps", str(sweeps), "--csv",
                                  str(tmp_path / "v.csv"))
    _check_one_line(code, out, err, where, "")
    assert not (tmp_path / "v.csv").exists()


@pytest.mark.parametrize(("extra", "where"), [
    (["--csv", "no-such-dir/v.csv"], "--csv"),
    (["--plot", "no-such-dir/v.png"], "--plot"),
    (["--rows", "no-row-has-this"], "--rows"),
])
def test_bad_flags(extra: list[str], where: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_validate(capsys, str(MEASUREMENTS), *extra)
    _check_one_line(code, out, err, where, "")


def test_measurements_argument_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_validate(capsys)
    _check_one_line(code, out, err, "measurements", "required")


def _check_one_line(code: int, out: str, err: str, where: str, what: str) -> None:
    assert "Traceback" not in err
    assert code == 2, err
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert where in err and what in err, err


def test_sweeps_reader_fills_points_from_the_sweep_entry() -> None:
    rows = {row["id"]: row for row in read_sweeps(SWEEPS).rows}
    point = rows["fixture/poisson/llama-3.1-8b/H100-tp1/sharegpt/rate-8"]
    assert (point["isl_mean"], point["osl_mean"], point["model"]) == (
        300, 200, "Llama-3.1-8B-Instruct")

