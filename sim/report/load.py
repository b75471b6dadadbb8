"""Reading a result folder into plain data, refusing anything a report could misread.

Three kinds of folder are recognised, by the files the commands write:

    plan    plan.json (+ optional plan.csv, fleet_plan.png, cost_per_token_by_option.png)
    sweep   summary.json + runs.csv + sweep.json
    run     the JSON of `tokenfactory run --json FILE` (a folder holding one, or the file)

Run and sweep files carry `format_version`; a file without it, or with another number, was
written by a different version and is refused rather than half-read. plan.json is accepted
without one (its writer is newer than this check) but refused with a different one.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import InputError
from sim.montecarlo.files import parse_cell
from sim.provenance import FORMAT_VERSION

PLAN_JSON, PLAN_CSV = "plan.json", "plan.csv"
PLAN_FIGURES = ("fleet_plan.png", "cost_per_token_by_option.png")
SUMMARY_JSON, RUNS_CSV, SWEEP_JSON = "summary.json", "runs.csv", "sweep.json"
WHAT = ("a folder written by tokenfactory sweep (summary.json, runs.csv, sweep.json) or "
        "plan (plan.json), or a run's --json file (or a folder holding one)")


@dataclass(frozen=True)
class Results:
    """One folder's results as plain data; `sources` are the files read, to embed as data."""

    kind: str  # run | sweep | plan
    name: str
    run: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    manifest: dict[str, Any] | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    plan: dict[str, Any] | None = None
    figures: dict[str, bytes] = field(default_factory=dict)  # PNGs the command wrote
    sources: dict[str, bytes] = field(default_factory=dict)


def load(path: Path) -> Results:
    """The results at `path` (a folder, or a run's JSON file)."""
    if path.is_file():
        return _run(path)
    if not path.is_dir():
        raise InputError("report", str(path), WHAT)
    if (path / PLAN_JSON).is_file():
        return _plan(path)
    if (path / SUMMARY_JSON).is_file():
        return _sweep(path)
    runs = [p for p in sorted(path.glob("*.json")) if _looks_like_run(p)]
    if len(runs) == 1:
        return _run(runs[0])
    if len(runs) > 1:
        raise InputError("report", str(path), f"one run's JSON, not {len(runs)} "
                         f"({', '.join(p.name for p in runs)}): name the file instead")
    raise InputError("report", str(path), f"{WHAT}; it holds no results")


def from_run_data(data: dict[str, Any], source_name: str = "result.json") -> Results:
    """A run's result already in memory (`run --report`): the same checks as a file."""
    _check_version(data, source_name, required=True)
    _require(data, ("latency_s", "cost", "slo", "fleet", "profile"), source_name)
    text = json.dumps(data, indent=2, allow_nan=False).encode("utf-8")
    return Results("run", str(data.get("scenario", "run")), run=data,
                   sources={source_name: text})


def _looks_like_run(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and "latency_s" in data and "cost" in data


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError("report", str(path), f"a readable JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise InputError("report", str(path), "a JSON object at the top level")
    return data


def _check_version(data: dict[str, Any], where: str, required: bool) -> None:
    block = data["provenance"] if isinstance(data.get("provenance"), dict) else data
    found = block.get("format_version")
    if found is None and not required:
        return
    if found != FORMAT_VERSION:
        writer = block.get("tokenfactory") or "an older version"
        raise InputError(f"{where}: format_version", found, f"{FORMAT_VERSION}, the result "
                         f"format this version reads (written by tokenfactory {writer}; "
                         "re-run it with this version)")


def _require(data: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise InputError(where, ", ".join(missing), "present (the documented result keys)")


def _run(path: Path) -> Results:
    data = _read_json(path)
    results = from_run_data(data, path.name)
    return Results("run", results.name, run=data, sources={path.name: path.read_bytes()})


def _sweep(folder: Path) -> Results:
    summary = _read_json(folder / SUMMARY_JSON)
    _check_version(summary, str(folder / SUMMARY_JSON), required=True)
    manifest = _read_json(folder / SWEEP_JSON) if (folder / SWEEP_JSON).is_file() else None
    if manifest is None:
        raise InputError("report", str(folder), f"a sweep folder with its {SWEEP_JSON}")
    _check_version(manifest, str(folder / SWEEP_JSON), required=True)
    _require(summary, ("points", "sweep", "slo_confidence", "uncertainty"), SUMMARY_JSON)
    try:
        text = (folder / RUNS_CSV).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise InputError("report", str(folder / RUNS_CSV), "a readable runs.csv") from None
    rows = [{k: parse_cell(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]
    if not rows:
        raise InputError("report", str(folder / RUNS_CSV), "at least one run's row")
    sources = {name: (folder / name).read_bytes() for name in (SUMMARY_JSON, SWEEP_JSON)}
    sources[RUNS_CSV] = text.encode("utf-8")
    return Results("sweep", str(summary.get("scenario", folder.name)), summary=summary,
                   manifest=manifest, rows=rows, sources=sources)


def _plan(folder: Path) -> Results:
    plan = _read_json(folder / PLAN_JSON)
    _check_version(plan, str(folder / PLAN_JSON), required=False)
    periods = plan.get("periods")
    if not isinstance(periods, list) or not periods:
        raise InputError(f"{folder / PLAN_JSON}: periods", periods, "a non-empty list")
    for i, period in enumerate(periods):
        options = period.get("options") if isinstance(period, dict) else None
        if not isinstance(options, list) or not options:
            raise InputError(f"{PLAN_JSON}: periods[{i}].options", options, "a non-empty list")
        for j, option in enumerate(options):
            _require(option, ("option", "replicas", "gpus", "usd_per_month",
                              "slo_met_probability"), f"{PLAN_JSON}: periods[{i}].options[{j}]")
    sources = {PLAN_JSON: (folder / PLAN_JSON).read_bytes()}
    if (folder / PLAN_CSV).is_file():
        sources[PLAN_CSV] = (folder / PLAN_CSV).read_bytes()
    figures = {n: (folder / n).read_bytes() for n in PLAN_FIGURES if (folder / n).is_file()}
    return Results("plan", str(plan.get("scenario", folder.name)), plan=plan, figures=figures,
                   sources=sources)
