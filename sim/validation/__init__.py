"""Validation: simulate published benchmark rows and compare with what was measured.

`files` reads a measurements (or sweeps) file, `mapping` turns a published row into a
simulation set-up or a reason to skip it, `simulate` runs the set-up the way the benchmark ran,
`compare` pairs measured and simulated numbers (and writes the CSV contract), `sweeps` adds the
latency knee of load sweeps (`sweep_loop` runs their concurrency points as closed loops) and
`breakdown` the median and worst errors by group. Measured
end-to-end rows (a CSV in the format of silicon_sample.csv, `read_table` tells it apart) go
through `silicon_rows` (reading), `silicon_mapping` (row → closed loop), `silicon` (running,
comparing, the CSV) and `silicon_summary` (errors by group). Nothing here
prints or draws; `sim.cli.validate` and `sim.report.plots.validation` do.
"""

from sim.validation.breakdown import GroupError, error_groups
from sim.validation.compare import CSV_COLUMNS, Comparison, compare_rows, to_csv
from sim.validation.files import Table, read_measurements, read_sweeps, read_table
from sim.validation.silicon import SiliconComparison, compare_silicon, silicon_csv
from sim.validation.silicon_rows import SiliconTable
from sim.validation.sweeps import compare_sweeps

__all__ = ["CSV_COLUMNS", "Comparison", "GroupError", "SiliconComparison", "SiliconTable",
           "Table", "compare_rows", "compare_silicon", "compare_sweeps", "error_groups",
           "read_measurements", "read_sweeps", "read_table", "silicon_csv", "to_csv"]
