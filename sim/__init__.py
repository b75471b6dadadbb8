"""tokenfactory: discrete-event capacity planning for LLM inference fleets.

    import sim
    scenario = sim.load_scenario("scenarios/chat-8b-h100.yaml")
    result = sim.run(scenario)
    result.to_dict()["cost"]["usd_per_million_tokens"]
"""

from sim.errors import InputError
from sim.provenance import software_version
from sim.result import Result
from sim.runner import run
from sim.scenario import Scenario, load_scenario

__version__ = software_version()

__all__ = ["InputError", "Result", "Scenario", "__version__", "load_scenario", "run"]
