"""Where a step-time model's numbers come from, carried into every result."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version

import numpy as np

# The layout of the result files (run JSON, sweep summary.json and sweep.json). Reports
# refuse files with another number: raise it when a key they read is renamed or removed.
FORMAT_VERSION = 1


def resolve_seed(given: int | None, scenario_seed: int | None) -> int:
    """The seed a run, sweep or plan uses: the one given (a `--seed` flag), else the
    scenario's, else one drawn from the OS and recorded, so the run can always be repeated."""
    if given is not None:
        return given
    if scenario_seed is not None:
        return scenario_seed
    entropy = np.random.SeedSequence().entropy
    # Made without entropy, a SeedSequence draws an int from the OS; numpy's stubs type the
    # attribute for every way of making one (int | Sequence[int] | None).
    assert isinstance(entropy, int)
    return int(entropy % 2**63)


def software_version() -> str:
    try:
        return version("tokenfactory")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def stamp() -> dict[str, object]:
    """What every result file carries so a reader can tell which code wrote it."""
    return {"format_version": FORMAT_VERSION, "tokenfactory": software_version()}


def created_utc() -> str:
    """When a file was written; added by the commands, so results themselves stay
    identical for identical inputs."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Provenance:
    name: str
    source: str  # measured-operators | measured | fitted-roofline | roofline | inline
    fit_error_pct: float | None = None
    details: dict = field(default_factory=dict)
