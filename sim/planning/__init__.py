"""Capacity planning: how many replicas of which deployment each period of a demand forecast
needs to hold the SLO with a required confidence, what that costs, and how the answer holds
up under stress.

`spec` is the `plan:` / `stress:` blocks; `forecast` turns them into per-period, per-draw
rates; `options` merges each candidate deployment into the scenario; `search` finds the
fewest replicas (pure: a monotone predicate in, the boundary out); `split` the cheapest
prefill:decode split of a disaggregated option (pure, likewise) from `poolcapacity`'s
first guess, and the cheapest pair of pool counts of a heterogeneous one from
`poolshares`'; `runs` executes and caches Monte Carlo draws; `sizing` puts them together
per option; `mix` chooses reserved
against on-demand capacity; `planner` runs a whole plan; `stress` runs the stress cases;
`report` writes the files' contents. Nothing here prints: the CLI (`tokenfactory plan`,
`tokenfactory stress`) does.
"""
