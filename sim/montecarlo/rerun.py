"""Re-running one row of a sweep alone: `tokenfactory run SCENARIO --replay DIR/runs.csv:ROW`.

The row holds everything the run depended on besides the scenario file: the values the sweep
set (grid values, the arrival rate of a utilisation point, sampled inputs; sweep.json names
those columns) and the run's seed. Applying them to the scenario and running with that seed
repeats the run exactly, which `mismatches` checks cell by cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sim.errors import InputError
from sim.montecarlo import files
from sim.montecarlo.design import scenario_for
from sim.montecarlo.execute import ITEM_COLUMNS, METRICS
from sim.scenario import Scenario, read_mapping

FLAG = "--replay"


def parse_target(text: str) -> tuple[Path, int]:
    """'DIR/runs.csv:ROW' → (path, run index)."""
    path, sep, row = text.rpartition(":")
    if not sep or not path or not (row.isascii() and row.isdigit()):
        raise InputError(FLAG, text, "DIR/runs.csv:ROW, ROW being a run index in that file")
    return Path(path), int(row)


def load(scenario_path: Path, target: str) -> tuple[Scenario, int, dict[str, str]]:
    """The recorded run's scenario, its seed and its row (cells as text)."""
    csv_path, index = parse_target(target)
    manifest = files.read_manifest(csv_path.parent, FLAG)
    row = files.read_run(csv_path, index, FLAG)
    needed = [*manifest["override_columns"], "seed", *METRICS, *ITEM_COLUMNS]
    absent = [key for key in needed if key not in row]
    if absent:
        raise InputError(FLAG, target, f"a runs.csv with the columns sweep.json names "
                         f"(missing: {', '.join(absent[:5])})")
    values = {key: files.parse_cell(row[key]) for key in manifest["override_columns"]}
    scenario = scenario_for(read_mapping(scenario_path), scenario_path.parent, values)
    return scenario, int(row["seed"]), row


def mismatches(row: Mapping[str, str], metrics: Mapping[str, Any]) -> list[str]:
    """The metric columns whose recorded cell differs from this run's value."""
    return [name for name in (*METRICS, *ITEM_COLUMNS) if row[name] != files.cell(metrics[name])]
