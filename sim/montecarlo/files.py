"""A sweep directory: runs.csv (one row per run) and sweep.json (what the rows came from).

runs.csv is written as runs finish, one flushed line each, so an interrupted sweep keeps
every run it completed; `--resume` reads the complete lines back (a half-written last line
is dropped), runs only the missing ones, and the final file is rewritten sorted by run index,
so it is the same file whether the sweep ran in one go or in pieces, on one worker or many.

Cells: empty for "no value", `true`/`false`, numbers as Python's shortest round-trip repr
(so a value read back is the very float that was written), names as they are, and
structured grid values (a mapping, a list) as JSON.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sim.errors import InputError
from sim.montecarlo.capacity import Capacity
from sim.montecarlo.design import RunSpec, SweepDesign
from sim.montecarlo.execute import ITEM_COLUMNS, METRICS

RUNS_CSV = "runs.csv"
MANIFEST_JSON = "sweep.json"
SUMMARY_JSON = "summary.json"


def columns(design: SweepDesign) -> list[str]:
    labels = design.labels[0]
    point_keys = [*design.label_keys, *(k for k in design.overrides[0] if k not in labels)]
    return ["run", "point", "replication", "seed", *point_keys, *design.sampled_keys, *METRICS,
            *ITEM_COLUMNS]


def manifest(design: SweepDesign) -> dict[str, Any]:
    """What sweep.json records: enough to check a resume and to replay any row."""
    return {
        "scenario": design.name,
        "fingerprint": design.fingerprint,
        "seed": design.seed,
        "replications": design.replications,
        "capacity": None if design.capacity is None else design.capacity.to_dict(),
        "columns": columns(design),
        "override_columns": list(design.override_keys),
    }


def read_manifest(directory: Path, flag: str) -> dict[str, Any]:
    path = directory / MANIFEST_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        capacity = data["capacity"]
        data["capacity"] = None if capacity is None else Capacity(
            **{k: v for k, v in capacity.items() if k != "method"})
        return data
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(flag, str(directory), "a directory written by tokenfactory sweep "
                         f"(with a readable {MANIFEST_JSON})") from None


def cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)  # numbers as repr, booleans as true/false, mappings as JSON


def parse_cell(text: str) -> Any:
    """runs.csv cells: empty is None, numbers and booleans as JSON, anything else text."""
    if text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def labelled_row(spec: RunSpec, labels: Mapping[str, Any], metrics: Mapping[str, Any],
                 header: Sequence[str]) -> list[str]:
    """A run's row: its place, seed, point labels (e.g. utilization), values and metrics."""
    known = {"run": spec.index, "point": spec.point, "replication": spec.replication,
             "seed": spec.seed, **labels, **spec.values, **metrics}
    return [cell(known.get(name)) for name in header]


def _line(cells: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


class RunsFile:
    """runs.csv, appended to as runs finish."""

    def __init__(self, path: Path, header: Sequence[str], resume: bool) -> None:
        self.path = path
        self.header = list(header)
        self.rows: dict[int, list[str]] = self._complete_rows() if resume else {}
        self._rewrite(sorted(self.rows.items()))  # drops a half-written last line
        self.handle = path.open("a", encoding="utf-8", newline="")

    def _complete_rows(self) -> dict[int, list[str]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = ""
        complete = text[: text.rfind("\n") + 1]  # a line without its newline is unfinished
        lines = list(csv.reader(io.StringIO(complete)))
        if lines and lines[0] != self.header:
            raise InputError("--resume", str(self.path), "a runs.csv with the columns this "
                             "sweep writes (it was made by a different sweep)")
        return {int(r[0]): r for r in lines[1:] if len(r) == len(self.header) and r[0].isdigit()}

    def append(self, cells: list[str]) -> None:
        self.rows[int(cells[0])] = cells
        self.handle.write(_line(cells))
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()

    def finish(self) -> list[list[str]]:
        """Close, and rewrite the file sorted by run index; the rows, in that order."""
        self.close()
        ordered = sorted(self.rows.items())
        self._rewrite(ordered)
        return [cells for _, cells in ordered]

    def _rewrite(self, ordered: list[tuple[int, list[str]]]) -> None:
        text = "".join(_line(cells) for cells in [self.header, *(c for _, c in ordered)])
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def parsed(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """Rows as {column: value} with numbers, booleans and nulls restored."""
    return [{name: parse_cell(text) for name, text in zip(header, row, strict=True)}
            for row in rows]


def read_run(csv_path: Path, run_index: int, flag: str) -> dict[str, str]:
    """One row of runs.csv, by its run index, as {column: cell text}."""
    try:
        with csv_path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                if row.get("run") == str(run_index):
                    return row
    except (OSError, UnicodeDecodeError, csv.Error):
        raise InputError(flag, str(csv_path), "a readable runs.csv written by "
                         "tokenfactory sweep") from None
    raise InputError(flag, f"{csv_path}:{run_index}", "a run index present in that runs.csv")
