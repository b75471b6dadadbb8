"""Validation: simulate published benchmark rows and compare with what was measured.

`files` reads a measurements (or sweeps) file, `mapping` turns a published row into a
simulation set-up or a reason to skip it, `simulate` runs the set-up the way the benchmark ran,
`compare` pairs measured and simulated numbers (and writes the CSV contract), `sweeps` adds the
latency knee of load sweeps and `summary` the median and worst errors by group. Nothing here
prints or draws; `sim.cli.validate` and `sim.report.plots.validation` do.
"""

from sim.validation.breakdown import GroupError, error_groups
from sim.validation.compare import CSV_COLUMNS, Comparison, compare_rows, to_csv
from sim.validation.files import read_measurements, read_sweeps
from sim.validation.sweeps import compare_sweeps

__all__ = ["CSV_COLUMNS", "Comparison", "GroupError", "compare_rows", "compare_sweeps",
           "error_groups", "read_measurements", "read_sweeps", "to_csv"]
