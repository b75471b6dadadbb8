"""Reading a result folder into plain data, refusing anything a report could misread.

Three kinds of folder are recognised, by the files the commands write:

    plan    plan.json (+ optional plan.csv, fleet_plan.png, cost_per_token_by_option.png)
    sweep   summary.json + runs.csv + sweep.json
    run     the JSON of `tokenfactory run --json FILE` (a folder holding one, or the file)

Run and sweep files carry `format_version`; a file without it, or with another number, was
written by a different version and is refused rather than half-read. plan.json is accepted
without one (its writer is newer than this check) but refused with a different one.

Result folders get shared and edited, so everything read is checked here, in one place,
before the report draws anything: each file is read without following a symbolic link
(a link in a shared folder must not pull /etc/passwd into a report that is passed around),
only if it is a regular file of at most `MAX_FILE_BYTES`; every JSON number is finite;
and the keys the report reads are walked against the schemas of `result_schema` (`RUN`,
`SUMMARY`, `MANIFEST`, `PLAN`), so a wrong type, a missing key or a string where a number belongs is
refused with the file and the key path instead of failing deep in a chart. The tables
embedded in the report (runs.csv, plan.csv) are parsed with their expected columns and
re-rendered from the parsed rows, never copied verbatim; the JSON files are re-rendered
from what was parsed too. For files the commands wrote, the re-rendering is byte-identical.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import MISSING, InputError
from sim.montecarlo.files import METRIC_COLUMNS, json_object, read_regular
from sim.planning.document import CSV_COLUMNS as PLAN_CSV_COLUMNS
from sim.provenance import FORMAT_VERSION
from sim.report import result_schema

PLAN_JSON, PLAN_CSV = "plan.json", "plan.csv"
PLAN_FIGURES = ("fleet_plan.png", "cost_per_token_by_option.png")
SUMMARY_JSON, RUNS_CSV, SWEEP_JSON = "summary.json", "runs.csv", "sweep.json"
WHAT = ("a folder written by tokenfactory sweep (summary.json, runs.csv, sweep.json) or "
        "plan (plan.json), or a run's --json file (or a folder holding one)")
MAX_FILE_BYTES = 64 * 1024**2  # per file read: far above what the commands write
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Results:
    """One folder's results as plain data; `sources` are the files read (re-rendered from
    what was parsed), to embed as data."""

    kind: str  # run | sweep | plan
    name: str
    run: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    manifest: dict[str, Any] | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    plan: dict[str, Any] | None = None
    figures: dict[str, bytes] = field(default_factory=dict)  # PNGs the command wrote
    sources: dict[str, bytes] = field(default_factory=dict)


# ---- files ---------------------------------------------------------------------------------


def _read(path: Path, what: str = "a result file") -> bytes:
    return read_regular(path, MAX_FILE_BYTES, what)


def _read_json(path: Path) -> dict[str, Any]:
    data = json_object(_read(path), path)
    result_schema.finite_everywhere(data, str(path))
    return data


def _json_bytes(data: Mapping[str, Any]) -> bytes:
    """JSON as the commands write it: what was parsed, never the bytes as found."""
    return (json.dumps(data, indent=2, allow_nan=False) + "\n").encode("utf-8")


def _csv_bytes(rows: Iterable[Sequence[Any]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _parse_csv(path: Path, data: bytes) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """A CSV file's header and rows (with their line numbers), each row as long as the
    header; refusals name the file and the line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}", "not UTF-8 text", "a UTF-8 CSV file") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        rows = [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise InputError(f"{path}:{reader.line_num}", str(exc), "a readable CSV file") from None
    if header is None:
        raise InputError(str(path), "an empty file", "a CSV file with a header line")
    for number, row in rows:
        if len(row) != len(header):
            raise InputError(f"{path}:{number}", f"{len(row)} cells",
                             f"{len(header)} cells, one per column of the header")
    return header, rows


def _entry_kind(path: Path) -> str | None:
    """What `path` itself is, links not followed: None, 'file', 'dir', 'link' or 'other'."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise InputError("report", str(path), f"{WHAT} ({reason})") from None
    if stat.S_ISLNK(mode):
        return "link"
    return "file" if stat.S_ISREG(mode) else "dir" if stat.S_ISDIR(mode) else "other"


def load(path: Path) -> Results:
    """The results at `path` (a folder, or a run's JSON file)."""
    try:
        mode: int | None = os.stat(path).st_mode  # the folder named may be a link to one
    except FileNotFoundError:
        mode = None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise InputError("report", str(path), f"{WHAT} ({reason})") from None
    if mode is not None and not stat.S_ISDIR(mode):
        return _run(path)  # refused there unless a regular file reached without a link
    if mode is None:
        raise InputError("report", str(path), WHAT)
    if _entry_kind(path / PLAN_JSON) is not None:
        return _plan(path)
    if _entry_kind(path / SUMMARY_JSON) is not None:
        return _sweep(path)
    try:
        candidates = sorted(path.glob("*.json"))
    except OSError as exc:
        raise InputError("report", str(path), f"{WHAT} ({exc.strerror})") from None
    runs = [p for p in candidates if _entry_kind(p) == "file" and _looks_like_run(p)]
    if len(runs) == 1:
        return _run(runs[0])
    if len(runs) > 1:
        raise InputError("report", str(path), f"one run's JSON, not {len(runs)} "
                         f"({', '.join(p.name for p in runs)}): name the file instead")
    links = [p.name for p in candidates if _entry_kind(p) == "link"]
    note = f" (symbolic links are not followed: {', '.join(links)})" if links else ""
    raise InputError("report", str(path), f"{WHAT}; it holds no results{note}")


def from_run_data(data: dict[str, Any], source_name: str = "result.json") -> Results:
    """A run's result already in memory (`run --report`): the same checks as a file."""
    return _run_results(data, source_name, source_name,
                        json.dumps(data, indent=2, allow_nan=False).encode("utf-8"))


def _run_results(data: dict[str, Any], where: str, source_name: str, text: bytes) -> Results:
    _check_version(data, where, required=True)
    result_schema.finite_everywhere(data, where)
    result_schema.walk(result_schema.RUN, data, "", where)
    return Results("run", str(data.get("scenario", "run")), run=data, sources={source_name: text})


def _looks_like_run(path: Path) -> bool:
    try:
        data = json_object(_read(path), path)
    except InputError:
        return False
    return "latency_s" in data and "cost" in data


def _check_version(data: dict[str, Any], where: str, required: bool) -> None:
    block = data["provenance"] if isinstance(data.get("provenance"), dict) else data
    found = block.get("format_version")
    if found is None and not required:
        return
    if found != FORMAT_VERSION or isinstance(found, bool):
        writer = block.get("tokenfactory")
        writer = writer if isinstance(writer, str) else "an older version"
        raise InputError(f"{where}: format_version", found, f"{FORMAT_VERSION}, the result "
                         f"format this version reads (written by tokenfactory {writer}; "
                         "re-run it with this version)")


def _run(path: Path) -> Results:
    data = _read_json(path)
    return _run_results(data, str(path), path.name, _json_bytes(data))


def _sweep(folder: Path) -> Results:
    summary_path, manifest_path = folder / SUMMARY_JSON, folder / SWEEP_JSON
    summary = _read_json(summary_path)
    _check_version(summary, str(summary_path), required=True)
    if _entry_kind(manifest_path) is None:
        raise InputError("report", str(folder), f"a sweep folder with its {SWEEP_JSON}")
    manifest = _read_json(manifest_path)
    _check_version(manifest, str(manifest_path), required=True)
    result_schema.walk(result_schema.SUMMARY, summary, "", str(summary_path))
    result_schema.walk(result_schema.MANIFEST, manifest, "", str(manifest_path))
    _check_sweep(summary, manifest, summary_path, manifest_path)
    header, cells, rows = _runs(folder / RUNS_CSV, manifest["columns"], summary)
    return Results("sweep", str(summary["scenario"]), summary=summary, manifest=manifest,
                   rows=rows, sources={SUMMARY_JSON: _json_bytes(summary),
                                       SWEEP_JSON: _json_bytes(manifest),
                                       RUNS_CSV: _csv_bytes([header, *cells])})


def _check_sweep(summary: dict[str, Any], manifest: dict[str, Any], summary_path: Path,
                 manifest_path: Path) -> None:
    """What the schema cannot say: the axis a known one, with what that axis needs (the
    capacity and each point's utilisation, or each point's grid values), and a scenario
    whose swept key paths run through mappings (a report sets them to describe a point)."""
    axis, keys = summary["sweep"]["axis"], summary["sweep"]["keys"]
    where = str(summary_path)
    if axis not in ("utilization", "grid"):
        raise InputError(f"{where}: sweep.axis", axis, "'utilization' or 'grid'")
    if axis == "utilization" and summary.get("capacity") is None:
        raise InputError(f"{where}: capacity", summary.get("capacity", MISSING),
                         "the saturation measurement a utilization sweep is scaled by")
    for i, point in enumerate(summary["points"]):
        for key in ("utilization",) if axis == "utilization" else keys:
            if key not in point:
                raise InputError(f"{where}: points[{i}].{key}", MISSING,
                                 f"present (the {axis} value of each point)")
    config = manifest["scenario_config"]
    for key in keys if axis == "grid" else ():
        node: Any = config
        for depth, part in enumerate(key.split(".")[:-1]):
            node = node.get(part, {}) if isinstance(node, dict) else node
            if not isinstance(node, dict):
                parent = ".".join(key.split(".")[: depth + 1])
                raise InputError(f"{manifest_path}: scenario_config.{parent}", node,
                                 f"a mapping (the grid sets {key} through it)")


def _runs(path: Path, columns: list[str], summary: dict[str, Any]
          ) -> tuple[list[str], list[list[str]], list[dict[str, Any]]]:
    """runs.csv parsed: the header sweep.json names, each row as long, `run` and `point`
    whole numbers ≥ 0 with each run once and each point one of summary.json's, every metric
    a finite number ≥ 0 (or empty; true or false for the SLO verdict). Other cells (grid
    values, sampled inputs) are read as the sweep wrote them: JSON, else text. The header,
    the rows' cells as parsed (to re-render) and the rows as {column: value}."""
    if _entry_kind(path) is None:
        raise InputError(str(path), "no such file", "a sweep folder's runs.csv")
    header, lines = _parse_csv(path, _read(path))
    if header != columns:
        raise InputError(f"{path}:1", _difference(header, columns), f"the columns "
                         f"{SWEEP_JSON} lists ({len(columns)}, from run to "
                         f"{columns[-1]})")
    for required in ("run", "point", "usd_per_million_blended", "busy_fraction",
                     "ttft_p99_s", "tpot_p99_s"):
        if required not in header:
            raise InputError(f"{path}:1", required, "a runs.csv header with this column "
                             "(the report reads it)")
    if not lines:
        raise InputError(str(path), "no rows", "at least one run's row")
    points = {p["point"] for p in summary["points"]}
    # Sampled inputs the report regresses on: numbers, unless drawn from a list of choices.
    numeric = {key for key, spec in summary["uncertainty"].items()
               if spec.get("dist") != "choice" and key in header}
    seen: set[int] = set()
    rows = []
    for number, cells in lines:
        row = {name: _cell(path, number, name, text, name in numeric)
               for name, text in zip(header, cells, strict=True)}
        run, point = row["run"], row["point"]
        if run in seen:
            raise InputError(f"{path}:{number}: run", run, "each run once (an earlier line "
                             "holds this run too)")
        seen.add(run)
        if point not in points:
            raise InputError(f"{path}:{number}: point", point, f"one of the points in "
                             f"{SUMMARY_JSON} ({', '.join(map(str, sorted(points)))})")
        rows.append(row)
    return header, [cells for _, cells in lines], rows


def _cell(path: Path, number: int, name: str, text: str, sampled_number: bool) -> Any:
    """One runs.csv cell as the report uses it."""
    where = f"{path}:{number}: {name}"
    if name in ("run", "point", "replication"):
        if not (text.isascii() and text.isdigit()):
            raise InputError(where, text, "a whole number ≥ 0")
        return int(text)
    if text == "" and name in REQUIRED_METRICS:
        raise InputError(where, text, "a finite number ≥ 0 (every run has one)")
    if text == "":
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = text
    if name in METRIC_COLUMNS:
        if name == "slo_met":
            if not isinstance(value, bool):
                raise InputError(where, text, "true, false or empty")
        elif isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value) or value < 0:
            raise InputError(where, text, "a finite number ≥ 0, or empty")
    elif sampled_number and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise InputError(where, text, "a number (the input's sampled value)")
    elif isinstance(value, float) and not math.isfinite(value):
        raise InputError(where, text, "a finite number, a name or JSON")
    return value


REQUIRED_METRICS = ("busy_fraction",)  # written for every run; the cost waterfall needs it


def _difference(found: Sequence[str], wanted: Sequence[str]) -> str:
    for have, want in zip(found, wanted, strict=False):
        if have != want:
            return have
    return f"{len(found)} columns"


def _plan(folder: Path) -> Results:
    path = folder / PLAN_JSON
    plan = _read_json(path)
    _check_version(plan, str(path), required=False)
    result_schema.walk(result_schema.PLAN, plan, "", str(path))
    _check_plan(plan, path)
    sources = {PLAN_JSON: _json_bytes(plan)}
    if _entry_kind(folder / PLAN_CSV) is not None:
        sources[PLAN_CSV] = _csv_bytes(_plan_rows(folder / PLAN_CSV, plan))
    figures = {}
    for name in PLAN_FIGURES:
        if _entry_kind(folder / name) is not None:
            png = _read(folder / name, "a PNG figure")
            if not png.startswith(PNG_SIGNATURE):
                raise InputError(str(folder / name), "not a PNG image", "the PNG figure "
                                 "tokenfactory plan drew")
            figures[name] = png
    return Results("plan", str(plan.get("scenario", folder.name)), plan=plan, figures=figures,
                   sources=sources)


def _check_plan(plan: dict[str, Any], path: Path) -> None:
    """Each option priced in full (replicas, GPUs, $/month and P(SLO met) all numbers) or
    not at all ($/month null: no fleet met the target), and a period's `recommended` the
    name of one of its priced options: what the report's charts and sentences rely on."""
    for i, period in enumerate(plan["periods"]):
        priced = set()
        for j, option in enumerate(period["options"]):
            if option["usd_per_month"] is None:
                continue
            for key in ("replicas", "gpus", "slo_met_probability"):
                if option[key] is None:
                    raise InputError(f"{path}: periods[{i}].options[{j}].{key}", None,
                                     "a number (the option has a monthly price)")
            priced.add(option["option"])
        chosen = period.get("recommended")
        if chosen is not None and chosen not in priced:
            raise InputError(f"{path}: periods[{i}].recommended", chosen,
                             "null or the name of one of the period's priced options "
                             f"({', '.join(sorted(priced)) or 'none'})")


INT_PLAN_COLUMNS = ("replicas", "gpus", "first_guess", "simulations", "prefill_replicas",
                    "decode_replicas")
TEXT_PLAN_COLUMNS = ("period", "option")
FLEET_TRIED = re.compile(r"\d+|\d+P:\d+D")  # replicas, or a disaggregated split (1P:2D)
POOLS = re.compile(r"[A-Za-z0-9_.-]+:\d+(\+[A-Za-z0-9_.-]+:\d+)*")  # chat:2+documents:1


def _plan_rows(path: Path, plan: dict[str, Any]) -> list[list[str]]:
    """plan.csv parsed with the columns tokenfactory plan writes, each cell typed, each row
    a (period, option) of plan.json, and rendered back from the parsed values."""
    header, lines = _parse_csv(path, _read(path))
    if header != list(PLAN_CSV_COLUMNS):
        raise InputError(f"{path}:1", _difference(header, PLAN_CSV_COLUMNS),
                         f"the columns tokenfactory plan writes ({', '.join(PLAN_CSV_COLUMNS)})")
    known = {(str(p["period"]), o["option"]) for p in plan["periods"] for o in p["options"]}
    rendered = [list(PLAN_CSV_COLUMNS)]
    for number, cells in lines:
        values = [_plan_cell(path, number, name, text)
                  for name, text in zip(header, cells, strict=True)]
        if (values[0], values[1]) not in known:
            raise InputError(f"{path}:{number}", f"{values[0]}, {values[1]}",
                             f"a period and option of {PLAN_JSON}")
        rendered.append(["" if v is None else str(v) for v in values])
    return rendered


NUMBER = re.compile(r"-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


def _plan_cell(path: Path, number: int, name: str, text: str) -> Any:
    """A plan.csv cell as a value: text for the names, True/False for `recommended`,
    space-separated fleet sizes (or splits, or pools' replicas), a split (`1P:2D`), pools'
    replicas (`chat:2+documents:1`), whole numbers and finite numbers (empty: none)."""
    where = f"{path}:{number}: {name}"
    if name in TEXT_PLAN_COLUMNS:
        return text
    if name == "recommended":
        if text not in ("True", "False"):
            raise InputError(where, text, "True or False")
        return text == "True"
    if name == "fleets_tried":
        parts = text.split(" ") if text else []
        if not all(part.isascii() and (FLEET_TRIED.fullmatch(part) or POOLS.fullmatch(part))
                   for part in parts):
            raise InputError(where, text, "fleet sizes (or splits such as 1P:2D, or pools' "
                             "replicas such as chat:2+documents:1) separated by spaces")
        return " ".join(part if not part.isdigit() else str(int(part)) for part in parts)
    if name == "pools":
        if text and not (text.isascii() and POOLS.fullmatch(text)):
            raise InputError(where, text, "pools' replicas such as chat:2+documents:1, or "
                             "empty")
        return text or None
    if name == "split":
        if text and not (text.isascii() and FLEET_TRIED.fullmatch(text) and "P" in text):
            raise InputError(where, text, "a split such as 1P:2D, or empty")
        return text or None
    if text == "":
        return None
    if not NUMBER.fullmatch(text):
        raise InputError(where, text, "a number, or empty")
    if name in INT_PLAN_COLUMNS or re.fullmatch(r"-?\d+", text):
        if not re.fullmatch(r"-?\d+", text):
            raise InputError(where, text, "a whole number, or empty")
        return int(text)
    value = float(text)
    if not math.isfinite(value):
        raise InputError(where, text, "a finite number, or empty")
    return value
