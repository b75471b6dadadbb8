"""Scenarios: the schema of a scenario file and the one place that loads it.

`schema` holds the top-level blocks (`workload`, `dynamics`, `planning` and `uncertain` the
larger ones, `base` the shared building blocks), `load` reads a YAML file or mapping and the
files it names (`traces` and `textcolumns` parse traces), and `translate` phrases pydantic's
errors as one `InputError` naming the key, the value and what is accepted.
"""

from sim.scenario.load import load_scenario, read_mapping
from sim.scenario.schema import Scenario

__all__ = ["Scenario", "load_scenario", "read_mapping"]
