"""Reading published measurement tables: `rows:` of measured points, one mapping each,
measured end-to-end rows as a CSV, or a team's own benchmark results as JSON (`read_table`
tells them apart: a CSV by its first line, a results JSON by its keys, `json_format`).

The YAML files are heterogeneous by nature (different sources state different things, some as
prose such as "dataset" for a length), so only the *structure* is checked here: the file, the
`rows:` list and each row's id. What a row's values mean is decided row by row in
`sim.validation.mapping`, which skips what it cannot simulate and says why, rather than
rejecting the whole file.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import MISSING, InputError
from sim.scenario import yamlfile
from sim.validation import results_json
from sim.validation.results_json import BenchmarkPoint
from sim.validation.silicon_rows import SiliconTable, is_silicon_header, read_silicon

FORMAT = "a YAML mapping with a `rows:` list (the format of perf_measurements.yaml)"
EITHER_FORMAT = (f"{FORMAT}, a CSV of measured rows whose header names silicon_ttft_ms "
                 "and silicon_tpot_ms (the format of silicon_sample.csv), or a benchmark "
                 "result: " + ", ".join(results_json.FORMATS))
READERS = {results_json.VLLM: results_json.read_vllm,
           results_json.GUIDELLM: results_json.read_guidellm,
           results_json.AIPERF: results_json.read_aiperf}


@dataclass(frozen=True)
class Table:
    """The rows of one file, each a plain mapping with a unique string `id`."""

    path: Path
    rows: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class ResultsTable:
    """The load points of one benchmark result file (`sim.validation.results_json`)."""

    path: Path
    format: str  # one of results_json.FORMATS
    points: tuple[BenchmarkPoint, ...]


def read_table(path: Path) -> Table | SiliconTable | ResultsTable:
    """A measurements file of any format: a CSV whose header is the measured-row format's
    (`sim.validation.silicon_rows`), a JSON object that is a benchmark tool's result
    (`json_format`), else the YAML table of `read_measurements`. A JSON object that is none
    of them (and has no `rows:`) is refused naming every accepted format."""
    text = _read_text(path, EITHER_FORMAT).removeprefix("\ufeff")  # a spreadsheet's BOM
    if is_silicon_header(next(csv.reader(text.splitlines()[:1]), [])):
        return read_silicon(path, text)
    raw = _json_object(text)
    if raw is not None and "rows" not in raw:
        found = json_format(raw)
        if found is None:
            raise InputError(str(path), "a JSON object of no known format",
                             "one of: " + EITHER_FORMAT)
        return ResultsTable(path, found, READERS[found](raw, path))
    return _measurements(_loads(text, path), path)


def json_format(raw: dict[str, Any]) -> str | None:
    """Which tool wrote a result JSON, from its keys (None: none of them).

    vLLM writes its summary flat (`mean_ttft_ms`, `max_concurrency`); GuideLLM a list of
    `benchmarks`, each with `metrics`; AIPerf and GenAI-Perf one block per metric with a
    `unit` (`time_to_first_token`, …), at the top level or under `records`."""
    if "mean_ttft_ms" in raw or {"model_id", "max_concurrency"} <= raw.keys():
        return results_json.VLLM
    benchmarks = raw.get("benchmarks")
    if isinstance(benchmarks, list) and all(isinstance(b, dict) and "metrics" in b
                                            for b in benchmarks):
        return results_json.GUIDELLM
    blocks = results_json.aiperf_blocks(raw)
    if any(isinstance(blocks.get(name), dict) and "unit" in blocks[name]
           for name in ("time_to_first_token", "inter_token_latency", "request_latency")):
        return results_json.AIPERF
    return None


def _json_object(text: str) -> dict[str, Any] | None:
    """The text as a JSON object, or None when it is not one (YAML, a JSON list, …)."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        raw = json.loads(text)
    except ValueError:
        return None
    return raw if isinstance(raw, dict) else None


def read_measurements(path: Path) -> Table:
    """A measurements file: every row needs an `id`."""
    return _measurements(_read_yaml(path), path)


def _measurements(raw: Any, path: Path) -> Table:
    rows = _rows(raw, path)
    for index, row in enumerate(rows):
        _need_string(row, "id", path, index)
    return Table(path, tuple(_unique(rows, path)))


def read_sweeps(path: Path) -> Table:
    """A sweeps file (the format of perf_sweeps.yaml): rows grouped by `sweep_id`.

    A row without its own `id` is named `sweep_id/c<N>` or `sweep_id/rate-<R>` after its load.
    Keys of the sweep's entry in `sweeps:` (such as `isl_mean`, `osl_mean`) fill in what the
    row leaves out, so a sweep can state its length means once."""
    raw = _read_yaml(path)
    rows = _rows(raw, path)
    configs = _sweep_configs(raw, path)
    merged = []
    for index, row in enumerate(rows):
        sweep_id = _need_string(row, "sweep_id", path, index)
        full = {**configs.get(sweep_id, {}), **row}
        full.pop("points", None)
        if "id" not in row:
            full["id"] = f"{sweep_id}/{_load_label(row)}"
        else:
            _need_string(row, "id", path, index)
        merged.append(full)
    return Table(path, tuple(_unique(merged, path)))


def _read_yaml(path: Path) -> Any:
    return _loads(_read_text(path, FORMAT), path)


def _read_text(path: Path, formats: str) -> str:
    expected = f"a readable measurements file: {formats}"
    try:
        text = yamlfile.read_text(path, "a measurements file")
    except FileNotFoundError:
        raise InputError(str(path), "no such file", expected) from None
    except IsADirectoryError:
        raise InputError(str(path), "a directory", expected) from None
    except OSError as exc:
        raise InputError(str(path), exc.strerror, expected) from None
    except UnicodeDecodeError:
        raise InputError(str(path), "not UTF-8 text", f"UTF-8 text: {formats}") from None
    return text


def _loads(text: str, path: Path) -> Any:
    return yamlfile.loads(text, str(path), f"valid YAML: {FORMAT}")


def _rows(raw: Any, path: Path) -> list[dict[str, Any]]:
    if not isinstance(raw, dict):
        raise InputError(str(path), raw, FORMAT)
    rows = raw.get("rows", MISSING)
    if rows is MISSING:
        raise InputError(f"{path}: rows", MISSING, "a list of measured rows at the top level")
    if not isinstance(rows, list) or not rows:
        raise InputError(f"{path}: rows", rows, "a non-empty list of measured rows")
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputError(f"{path}: rows[{index}]", row, "a mapping of measured values")
    return rows


def _need_string(row: dict[str, Any], key: str, path: Path, index: int) -> str:
    value = row.get(key, MISSING)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{path}: rows[{index}].{key}", value, "a non-empty string")
    return value


def _unique(rows: list[dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        first = seen.setdefault(row["id"], index)
        if first != index:
            raise InputError(f"{path}: rows[{index}].id", row["id"],
                             f"an id used by no other row (rows[{first}] has it too)")
    return rows


def _sweep_configs(raw: dict[str, Any], path: Path) -> dict[str, dict[str, Any]]:
    sweeps = raw.get("sweeps", [])
    if not isinstance(sweeps, list):
        raise InputError(f"{path}: sweeps", sweeps, "a list of sweep mappings (or no key)")
    configs = {}
    for index, sweep in enumerate(sweeps):
        if not isinstance(sweep, dict):
            raise InputError(f"{path}: sweeps[{index}]", sweep, "a mapping with a sweep_id")
        sweep_id = sweep.get("sweep_id", MISSING)
        if not isinstance(sweep_id, str):
            raise InputError(f"{path}: sweeps[{index}].sweep_id", sweep_id, "a string")
        configs[sweep_id] = sweep
    return configs


def _load_label(row: dict[str, Any]) -> str:
    if row.get("concurrency") is not None:
        return f"c{row['concurrency']}"
    if row.get("request_rate_per_s") is not None:
        return f"rate-{row['request_rate_per_s']}"
    return "point"
