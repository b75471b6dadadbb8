"""A team's own benchmark results: each tool's JSON read right (fields, units), the format
told from the keys, bad files and missing flags refused in one line, and `validate` comparing
every point.

The fixtures are written by hand from each tool's documented schema (see
tests/fixtures/README.md): vLLM's `vllm/benchmarks/serve.py` result JSON, GuideLLM's
`guidellm/benchmark/schemas` report, AIPerf's `docs/reference/json-export-schema.md`.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from builders import FIXTURES, Builder, Case, params

from sim.cli import main
from sim.errors import InputError
from sim.validation import results_json
from sim.validation.files import ResultsTable, json_format, read_table

VLLM_FILE = FIXTURES / "results_vllm_c8.json"
GUIDELLM_FILE = FIXTURES / "results_guidellm.json"
AIPERF_FILE = FIXTURES / "results_aiperf.json"
FLAGS = ("--gpu", "h100-sxm", "--engine", "vllm")


def _table(path: Path) -> ResultsTable:
    table = read_table(path)
    assert isinstance(table, ResultsTable)
    return table


def test_vllm_fields_and_units() -> None:
    (point,) = _table(VLLM_FILE).points
    assert point.tool == results_json.VLLM
    assert point.model == "meta-llama/Llama-3.1-8B-Instruct"
    # request_rate "inf" with max_concurrency 8: a closed loop of 8 clients
    assert (point.concurrency, point.rate_per_s, point.skip) == (8, None, None)
    # lengths are totals over completed requests: 409600 / 400, 51200 / 400
    assert (point.prompt_tokens_mean, point.output_tokens_mean) == (1024.0, 128.0)
    assert point.measured == {"ttft_ms": 95.3, "tpot_ms": 8.42, "ttft_ms_median": 88.1,
                              "ttft_ms_p99": 160.4, "tpot_ms_median": 8.37,
                              "tpot_ms_p99": 9.6, "output_tokens_per_s": 832.5}


@pytest.mark.parametrize(("changes", "load", "skip"), [
    ({"request_rate": 4.0, "max_concurrency": None}, (None, 4.0), None),
    ({"request_rate": "inf", "max_concurrency": None}, (None, None), "every request sent"),
    ({"request_rate": 4.0, "max_concurrency": 8}, (None, 4.0), "capped open loop"),
])
def test_vllm_loads(tmp_path: Path, changes: dict[str, Any],
                    load: tuple[int | None, float | None], skip: str | None) -> None:
    raw = {**json.loads(VLLM_FILE.read_text()), **changes}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(raw))
    (point,) = _table(path).points
    assert (point.concurrency, point.rate_per_s) == load
    assert (point.skip is None) if skip is None else (skip in (point.skip or ""))


def test_vllm_burstiness_is_a_gamma_shape(tmp_path: Path) -> None:
    raw = {**json.loads(VLLM_FILE.read_text()), "request_rate": 2.0, "max_concurrency": None,
           "burstiness": 4.0}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(raw))
    (point,) = _table(path).points
    assert point.arrival_cv == pytest.approx(0.5)  # gamma of shape k: cv = 1/sqrt(k)


def test_guidellm_one_point_per_benchmark() -> None:
    table = _table(GUIDELLM_FILE)
    assert table.format == results_json.GUIDELLM
    sync, concurrent, poisson, constant = table.points
    assert (sync.concurrency, concurrent.concurrency, poisson.rate_per_s) == (1, 4, 2.5)
    assert concurrent.rate_per_s is None and poisson.concurrency is None
    assert "constant" in (constant.skip or "")
    assert sync.measured == {"ttft_ms": 31.5, "tpot_ms": 6.9, "ttft_ms_median": 31.0,
                             "ttft_ms_p99": 39.8, "tpot_ms_median": 6.9, "tpot_ms_p99": 7.2,
                             "output_tokens_per_s": 142.0}
    assert (sync.prompt_tokens_mean, sync.output_tokens_mean) == (1000.0, 200.0)
    assert sync.model == "meta-llama/Llama-3.1-8B-Instruct"
    assert len({p.id for p in table.points}) == 4


def test_aiperf_fields_and_units(tmp_path: Path) -> None:
    (point,) = _table(AIPERF_FILE).points
    assert (point.concurrency, point.rate_per_s, point.skip) == (4, None, None)
    assert point.model == "meta-llama/Llama-3.1-8B-Instruct"
    assert point.measured["ttft_ms"] == 62.5 and point.measured["tpot_ms_p99"] == 8.4
    assert point.measured["output_tokens_per_s"] == 496.0
    # The unit is authoritative: the same latencies written in seconds read the same.
    raw = json.loads(AIPERF_FILE.read_text())
    raw["time_to_first_token"] = {"unit": "s", "avg": 0.0625, "p99": 0.131}
    path = tmp_path / "seconds.json"
    path.write_text(json.dumps(raw))
    (again,) = _table(path).points
    assert again.measured["ttft_ms"] == pytest.approx(62.5)
    assert again.measured["ttft_ms_p99"] == pytest.approx(131.0)


def test_genai_perf_layout() -> None:
    """GenAI-Perf: the same stats blocks, a flat input_config with a model list and a rate."""
    raw = json.loads(AIPERF_FILE.read_text())
    raw["input_config"] = {"model": ["llama-3.1-8b"], "request_rate": 3.0, "concurrency": None}
    (point,) = results_json.read_aiperf(raw, Path("genai.json"))
    assert (point.model, point.concurrency, point.rate_per_s) == ("llama-3.1-8b", None, 3.0)


@pytest.mark.parametrize(("raw", "expected"), [
    ({"mean_ttft_ms": 1}, results_json.VLLM),
    ({"benchmarks": [{"metrics": {}}]}, results_json.GUIDELLM),
    ({"time_to_first_token": {"unit": "ms", "avg": 1}}, results_json.AIPERF),
    ({"records": {"inter_token_latency": {"unit": "ms", "avg": 1}}}, results_json.AIPERF),
    ({"hello": 1}, None),
    ({"time_to_first_token": 5}, None),
])
def test_format_from_keys(raw: dict[str, Any], expected: str | None) -> None:
    assert json_format(raw) == expected


def test_unknown_json_lists_every_format(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"hello": 1}')
    with pytest.raises(InputError) as caught:
        read_table(path)
    for name in results_json.FORMATS:
        assert name in caught.value.expected


def test_validate_compares_every_point(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.csv"
    assert main(["validate", str(GUIDELLM_FILE), *FLAGS, "--csv", str(out), "--quiet"]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    by_id: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_id.setdefault(row["id"], []).append(row)
    assert len(by_id) == 4  # every point, the skipped one too
    skipped = by_id["results_guidellm/3-constant"]
    assert {r["status"] for r in skipped} == {
        "skipped: constant-rate (evenly spaced) arrivals not modelled"}
    compared = [r for r in rows if r["status"] == "compared"]
    assert {r["metric"] for r in compared} >= {"ttft_ms", "tpot_ms", "ttft_ms_p99"}
    for row in compared:
        assert float(row["simulated"]) > 0 and row["gpu"] == "h100-sxm"
    # a synchronous client's TPOT is one decode step of batch 1: milliseconds, not seconds
    sync_tpot = next(r for r in compared if r["id"].endswith("synchronous-1")
                     and r["metric"] == "tpot_ms")
    assert 1.0 < float(sync_tpot["simulated"]) < 50.0


def _file(raw: Any, *flags: str) -> Builder:
    def build(tmp: Path) -> list[str]:
        (tmp / "r.json").write_text(json.dumps(raw), encoding="utf-8")
        return [str(tmp / "r.json"), *flags]
    return build


VLLM_RAW = json.loads(VLLM_FILE.read_text())
NO_TTFT = {k: v for k, v in VLLM_RAW.items() if k != "mean_ttft_ms"}
NO_MODEL = {k: v for k, v in VLLM_RAW.items() if k != "model_id"}
AIPERF_RAW = json.loads(AIPERF_FILE.read_text())

REJECTED = [
    Case("no-gpu", _file(VLLM_RAW, "--engine", "vllm"), "--gpu", "missing",
         ("h100-sxm",), command="validate", output=False),
    Case("unknown-engine", _file(VLLM_RAW, "--gpu", "h100-sxm", "--engine", "tgi"),
         "--engine", "tgi", ("vllm",), command="validate", output=False),
    Case("no-ttft", _file(NO_TTFT, *FLAGS), "mean_ttft_ms", "missing",
         command="validate", output=False, key_first=False),
    Case("no-model", _file(NO_MODEL, *FLAGS), "--model", "missing", command="validate",
         output=False),
    Case("aiperf-odd-unit", _file({**AIPERF_RAW, "time_to_first_token":
                                   {"unit": "fortnights", "avg": 1.0}}, *FLAGS),
         "time_to_first_token.unit", "fortnights", ("ms",), command="validate",
         output=False, key_first=False),
    Case("guidellm-empty", _file({"benchmarks": []}, *FLAGS), "benchmarks", "[]",
         command="validate", output=False, key_first=False),
    Case("unknown-json", _file({"hello": 1}, *FLAGS), "r.json", "no known format",
         (results_json.GUIDELLM,), command="validate", output=False, key_first=False),
    Case("gpu-with-a-table", lambda tmp: [str(FIXTURES / "validate_measurements.yaml"),
                                          "--gpu", "h100-sxm"],
         "--gpu", "h100-sxm", command="validate", output=False),
]


@pytest.mark.parametrize("case", params(REJECTED))
def test_rejected(case: Case, check_rejected: Any) -> None:
    check_rejected(case)
