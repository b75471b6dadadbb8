"""tokenfactory: discrete-event capacity planning for LLM inference fleets.

    import sim
    scenario = sim.load_scenario("scenarios/chat-8b-h100.yaml")
    result = sim.run(scenario)
    result.to_dict()["cost"]["usd_per_million_tokens"]
"""

from importlib.metadata import PackageNotFoundError, version

from sim.errors import InputError
from sim.result import Result
from sim.runner import run
from sim.scenario import Scenario, load_scenario

try:
    __version__ = version("tokenfactory")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["InputError", "Result", "Scenario", "__version__", "load_scenario", "run"]
