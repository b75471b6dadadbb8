"""A row's host time per step, given to the simulator as a profile file of kind `adjusted`.

`tokenfactory calibrate fit-e2e` writes such files (`sim.steptime.adjusted`): the `auto` step
model with a time added to every step, split between a step's prefill and decode parts by
their tokens, so pure decode stays F(B) + c·KV and event skipping exact. A row measured on an
engine that did host work between steps (`sim.validation.engine_versions`) runs with one:
written to a temporary folder for the row's simulations and removed after them, its knobs
stated (scale 1, prefill scale 1, the documented overhead) rather than fitted, and the
result's profile source says `adjusted`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from sim.validation.mapping import RowSetup


def profile_mapping(setup: RowSetup) -> dict[str, Any]:
    """The adjusted profile that adds `setup.host_overhead_s` to every step of `auto`."""
    return {
        "kind": "adjusted",
        "name": f"{setup.row_id} host overhead",
        "base": "auto",
        "gpu": setup.gpu,
        "model": setup.model,
        "engine": setup.engine,
        "tensor_parallel": setup.tensor_parallel,
        "dtype": setup.dtype,
        "step_time_scale": 1.0,
        "overhead_s": setup.host_overhead_s,
        "prefill_scale": 1.0,
        "fit_error": {},
        "fitted_on": {"stated": "host time per step of the row's engine version, not fitted "
                                "(sim.validation.engine_versions)"},
    }


@contextmanager
def with_host_overhead(setup: RowSetup) -> Iterator[RowSetup]:
    """`setup` itself when it has no host overhead; else a copy whose `profile` is the path
    of its adjusted profile file, which exists while the context lasts. The file is named by
    its content: profile files are read once per process and path, so a path the system
    reuses later can only ever hold the same profile."""
    if setup.host_overhead_s <= 0:
        yield setup
        return
    text = yaml.safe_dump(profile_mapping(setup), sort_keys=False)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    with tempfile.TemporaryDirectory(prefix="tokenfactory-validate-") as folder:
        path = Path(folder) / f"host-overhead-{digest}.yaml"
        path.write_text(text, "utf-8")
        yield dataclasses.replace(setup, profile=str(path))
