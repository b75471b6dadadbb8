"""`tokenfactory validate MEASUREMENTS.yaml`: simulate published benchmark rows, compare.

Prints one line per compared metric, the skipped rows grouped by reason, then the median
absolute error and worst row overall and by profile source, engine family and GPU (the text
is sim.report.validate_text's). The CSV (`--csv`) holds every row of the file, compared or
skipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sim.cli.commands import COMMANDS
from sim.cli.common import FIGURE_BYTES, add_quiet, check_output_path, outputs, progress_bar
from sim.errors import InputError
from sim.report.validate_text import report
from sim.validation import (
    Comparison,
    compare_rows,
    compare_sweeps,
    read_measurements,
    read_sweeps,
    to_csv,
)

EPILOG = """\
examples:
  tokenfactory validate ../shared/data/published/perf_measurements.yaml --csv validation.csv
      compare every covered row; the CSV lists every row, skipped ones with the reason
  tokenfactory validate MEASUREMENTS.yaml --rows 'trtllm-perf-overview/Llama-3.1-8B*'
      only the rows whose id matches the glob (or contains the text, without wildcards)
  tokenfactory validate MEASUREMENTS.yaml --sweeps SWEEPS.yaml --plot validation.png
      add load sweeps (throughput and latency per load point, and where TTFT turns up)

A row is skipped (and says why) when its model, GPU, precision or parallelism is not modelled,
or its lengths are not fixed. A sweep may state `isl_mean` and `osl_mean` (tokens; optional
`isl_sigma`, `osl_sigma`, default 1.0) to simulate variable lengths as lognormal.
"""


def add_parser(sub) -> argparse.ArgumentParser:
    cmd = sub.add_parser(
        "validate", help=COMMANDS["validate"],
        description="Simulate each row of a published measurements table (the format of "
        "perf_measurements.yaml) the way its benchmark ran, and compare output tokens/s, TTFT "
        "and TPOT with what was measured.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    cmd.add_argument("measurements", type=Path, help="measurements YAML file (a `rows:` list)")
    cmd.add_argument("--rows", metavar="FILTER",
                     help="only rows whose id matches this glob, or contains it as text")
    cmd.add_argument("--csv", type=Path, metavar="FILE",
                     help="write id, metric, measured, simulated, error_pct, status, "
                     "profile_source, assumptions for every row and metric")
    cmd.add_argument("--plot", type=Path, metavar="FILE",
                     help="write a PNG of simulated vs measured (log-log, ±15%% band)")
    cmd.add_argument("--sweeps", type=Path, metavar="FILE",
                     help="also compare load sweeps (the format of perf_sweeps.yaml)")
    add_quiet(cmd)
    return cmd


def execute(args: argparse.Namespace) -> int:
    check_output_path("--csv", args.csv, FIGURE_BYTES)
    check_output_path("--plot", args.plot, FIGURE_BYTES)
    table = read_measurements(args.measurements)
    sweeps = read_sweeps(args.sweeps) if args.sweeps is not None else None
    with progress_bar("validating", "row", args.quiet) as progress:
        rows = compare_rows(table, args.rows, progress)
    points: list[Comparison] = []
    if sweeps is not None:
        with progress_bar("sweeps", "point", args.quiet) as progress:
            points = compare_sweeps(sweeps, args.rows, progress)
    if not rows and not points:
        raise InputError("--rows", args.rows, "a glob or text matching at least one row id")
    everything = rows + points
    with outputs("--csv") as staged:  # both files, or neither
        if args.csv is not None:
            staged.text(args.csv, to_csv(everything))
        if args.plot is not None:
            from sim.report.plots import png_bytes
            from sim.report.plots.validation import validation_figure

            staged.bytes(args.plot, png_bytes(validation_figure(everything)), "--plot")
    if not args.quiet:
        print(report(rows, points))
    return 0
