"""The commands, in the order `tokenfactory --help` lists them, with their one-line help.

The table lives apart from the command modules so that `tokenfactory` can list every command
while importing only the one it runs (`sim.cli.main`): a plain `run` then never loads what
`plan`, `sweep` or `report` need (matplotlib, the planner, the executors).
"""

COMMANDS: dict[str, str] = {
    "run": "simulate one scenario and print a summary",
    "sweep": "run a grid × replications × sampled inputs; percentile bands of cost",
    "catalog": "list the GPUs and models a scenario can name",
    "trace": "statistics of a request trace, or a synthetic workload fitted to it",
    "calibrate": "measure operator timings on a GPU and fit step-time profiles",
    "validate": "compare simulated and published measured throughput and latency",
    "plan": "fewest replicas per forecast period and option that meet the SLO",
    "stress": "the scenario's fleet under more demand, a spike and lost replicas",
    "report": "write a capacity-review report (HTML or Markdown) from result files",
}
