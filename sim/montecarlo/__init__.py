"""Monte Carlo: a scenario × a grid × R replications × sampled uncertain inputs.

`design.build` turns a scenario with `sweep:` (and optionally `uncertainty:`) blocks into
validated runs, each with its own spawned seed; `execute.execute` runs them on any
`concurrent.futures` executor and yields rows as they finish; `stats` turns rows into
percentile bands and a convergence verdict per grid point; `files` reads and writes the
sweep directory. Nothing here prints: the CLI (`tokenfactory sweep`) does.
"""
