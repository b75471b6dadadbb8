"""Reading published measurement tables: `rows:` of measured points, one mapping each, or
measured end-to-end rows as a CSV (`read_table` tells the two apart by the first line).

The YAML files are heterogeneous by nature (different sources state different things, some as
prose such as "dataset" for a length), so only the *structure* is checked here: the file, the
`rows:` list and each row's id. What a row's values mean is decided row by row in
`sim.validation.mapping`, which skips what it cannot simulate and says why, rather than
rejecting the whole file.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import MISSING, InputError
from sim.scenario import yamlfile
from sim.validation.silicon_rows import SiliconTable, is_silicon_header, read_silicon

FORMAT = "a YAML mapping with a `rows:` list (the format of perf_measurements.yaml)"
EITHER_FORMAT = (f"{FORMAT}, or a CSV of measured rows whose header names silicon_ttft_ms "
                 "and silicon_tpot_ms (the format of silicon_sample.csv)")


@dataclass(frozen=True)
class Table:
    """The rows of one file, each a plain mapping with a unique string `id`."""

    path: Path
    rows: tuple[dict[str, Any], ...]


def read_table(path: Path) -> Table | SiliconTable:
    """A measurements file of either format: a CSV whose header is the measured-row format's
    (`sim.validation.silicon_rows`), else the YAML table of `read_measurements`."""
    text = _read_text(path, EITHER_FORMAT).removeprefix("\ufeff")  # a spreadsheet's BOM
    if is_silicon_header(next(csv.reader(text.splitlines()[:1]), [])):
        return read_silicon(path, text)
    return _measurements(_loads(text, path), path)


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
