"""tokenfactory: discrete-event capacity planning for LLM inference fleets.

    import sim
    scenario = sim.load_scenario("scenarios/chat-8b-h100.yaml")
    result = sim.run(scenario)
    result.to_dict()["cost"]["usd_per_million_tokens"]

The names below load on first use, so `import sim.engine` (or any one layer) does not pull in
the scenario schema, plotting or progress bars.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.errors import InputError
    from sim.runner.result import Result
    from sim.runner.single import run
    from sim.scenario import Scenario, load_scenario

__all__ = ["InputError", "Result", "Scenario", "__version__", "load_scenario", "run"]

_HOME = {"InputError": "sim.errors", "Result": "sim.runner.result",
         "run": "sim.runner.single", "Scenario": "sim.scenario", "load_scenario": "sim.scenario"}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from sim.provenance import software_version

        return software_version()
    if name in _HOME:
        return getattr(import_module(_HOME[name]), name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
