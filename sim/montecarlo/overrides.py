"""Changing a scenario by key path, and validating the result as a whole.

A sweep's grid values and sampled inputs are written into the scenario's raw mapping at their
dotted key paths (`deployment.scheduler.max_num_seqs`), and the changed mapping goes through
`load_scenario` again, so a bad value gets the same checks and the same one-line error as in
a scenario file, reported under the key the user wrote it (`sweep.grid.deployment.replicas`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sim.errors import InputError
from sim.scenario import Scenario, load_scenario


def with_values(raw: Mapping[str, Any], values: Mapping[str, Any],
                where: Mapping[str, str]) -> dict[str, Any]:
    """A deep copy of `raw` with each dotted key path set to its value. A part that is a
    number indexes a list the scenario has there (`deployment.pools.1.replicas`). `where[key]`
    is the name to report a key under when its path does not lead through mappings or
    existing list items."""
    changed = copy.deepcopy(dict(raw))
    for key, value in values.items():
        *parents, leaf = key.split(".")
        node: Any = changed
        for depth, part in enumerate([*parents, leaf]):
            if isinstance(node, list):
                index = int(part) if part.isdigit() else -1
                if not 0 <= index < len(node):
                    through = ".".join(parents[:depth])
                    raise InputError(where[key], value, f"a key path through mappings, or an "
                                     f"index below {len(node)} into the list {through}")
                if depth == len(parents):
                    node[index] = value
                    break
                node = node[index]
                continue
            if depth == len(parents):
                node[part] = value
                break
            child = node.setdefault(part, {})
            if not isinstance(child, dict | list):
                through = ".".join(parents[: depth + 1])
                raise InputError(where[key], value, f"a key path through mappings, but "
                                 f"{through} is {child!r} in the scenario")
            node = child
    return changed


def validated(raw: Mapping[str, Any], values: Mapping[str, Any], where: Mapping[str, str],
              base_dir: Path) -> Scenario:
    """The scenario with `values` applied; an error names the sweep key that caused it."""
    changed = with_values(raw, values, where)
    try:
        return load_scenario(changed, base_dir=base_dir)
    except InputError as exc:
        for key, value in values.items():
            if exc.where == key:
                raise InputError(where[key], value, exc.expected) from None
            if exc.where.startswith(key + "."):  # inside a mapping the sweep put there
                raise InputError(where[key] + exc.where[len(key):], exc.value,
                                 exc.expected) from None
            if key.startswith(exc.where + "."):  # the path breaks above the key itself
                raise InputError(where[key], value,
                                 f"{exc.expected} (for {exc.where})") from None
        if not values:
            raise
        given = ", ".join(f"{where[k]} = {v!r}" for k, v in values.items())
        raise InputError(exc.where, exc.value, f"{exc.expected} (with {given})") from None
