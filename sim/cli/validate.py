"""`tokenfactory validate FILE`: simulate published benchmark rows, compare.

FILE is a measurements YAML table or a CSV of measured end-to-end rows (the format of
silicon_sample.csv, recognised by its header; each row a closed loop). For a YAML table it
prints one line per compared metric, the skipped rows grouped by reason, then the median
absolute error and worst row overall and by profile source, engine family and GPU; for a CSV
the median errors by GPU, engine, model family, precision and concurrency, the worst rows and
the skips (the text is sim.report.validate_text's). The CSV (`--csv`) holds every row of the
file, compared or skipped. FILE may also be a team's own benchmark result JSON (vllm bench
serve --save-result, GuideLLM, AIPerf / GenAI-Perf, recognised by its keys): its deployment
comes from --gpu, --engine, --tensor-parallel and --dtype (and --model when the file does not
name it), each point simulated as it ran (sim.validation.results_compare).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from sim.cli.commands import COMMANDS
from sim.cli.common import (
    FIGURE_BYTES,
    add_quiet,
    add_workers,
    check_output_path,
    outputs,
    progress_bar,
)
from sim.errors import InputError
from sim.report.text import printable, table
from sim.report.validate_text import GROUP_COLUMNS, SILICON_TITLES, report, silicon_report
from sim.validation import (
    Comparison,
    SiliconTable,
    Table,
    compare_rows,
    compare_silicon,
    compare_sweeps,
    read_sweeps,
    read_table,
    silicon_csv,
    to_csv,
)
from sim.validation.files import ResultsTable
from sim.validation.results_compare import Deployment, compare_points
from sim.validation.silicon_mapping import ModelFinder
from sim.validation.silicon_summary import (
    DISAGGREGATED,
    ModeSummary,
    figures_line,
    mode_summary,
)

EPILOG = """\
examples:
  tokenfactory validate ../shared/data/published/perf_measurements.yaml --csv validation.csv
      compare every covered row; the CSV lists every row, skipped ones with the reason
  tokenfactory validate MEASUREMENTS.yaml --models ../shared/data/published/aic/model_configs
      models beyond the catalogue (MoE, …) from the folder's org--name_config.json files
  tokenfactory validate MEASUREMENTS.yaml --rows 'trtllm-perf-overview/Llama-3.1-8B*'
      only the rows whose id matches the glob (or contains the text, without wildcards)
  tokenfactory validate MEASUREMENTS.yaml --sweeps SWEEPS.yaml --plot validation.png
      add load sweeps (throughput and latency per load point, and where TTFT turns up)
  tokenfactory validate ../shared/data/published/aic/silicon_sample.csv \
      --models ../shared/data/published/aic/model_configs --csv silicon.csv
      measured end-to-end rows: each row a closed loop at its concurrency (a disaggregated
      row on its prefill and decode pools), TTFT and TPOT compared (means), the
      disaggregated rows summarised in their own block; models from the folder's
      org--name_config.json files
  tokenfactory validate results/vllm-c16.json --gpu h100-sxm --engine vllm --csv mine.csv
      your own benchmark result (vllm bench serve --save-result, GuideLLM, AIPerf /
      GenAI-Perf JSON): the deployment from the flags, each load point simulated as it ran

A row is skipped (and says why) when its model, GPU, precision or parallelism is not modelled,
or its lengths are not fixed (measured-row CSVs: pipeline-parallel or int4 rows, models in
neither --models nor the catalogue). A sweep may state `isl_mean` and
`osl_mean` (tokens; optional `isl_sigma`, `osl_sigma`, default 1.0) to simulate variable
lengths as lognormal.
"""


def add_parser(sub) -> argparse.ArgumentParser:
    cmd = sub.add_parser(
        "validate", help=COMMANDS["validate"],
        description="Simulate each row of a published measurements table (the format of "
        "perf_measurements.yaml, or a CSV of measured end-to-end rows in the format of "
        "silicon_sample.csv) the way its benchmark ran, and compare output tokens/s, TTFT "
        "and TPOT with what was measured.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    cmd.add_argument("measurements", type=Path,
                     help="measurements YAML file (a `rows:` list), or a measured-row CSV "
                     "(header with silicon_ttft_ms and silicon_tpot_ms)")
    cmd.add_argument("--rows", metavar="FILTER",
                     help="only rows whose id matches this glob, or contains it as text")
    cmd.add_argument("--csv", type=Path, metavar="FILE",
                     help="write id, metric, measured, simulated, error_pct, status, "
                     "profile_source, assumptions for every row and metric")
    cmd.add_argument("--plot", type=Path, metavar="FILE",
                     help="write a PNG of simulated vs measured (log-log, ±15%% band)")
    cmd.add_argument("--sweeps", type=Path, metavar="FILE",
                     help="also compare load sweeps (the format of perf_sweeps.yaml)")
    cmd.add_argument("--models", type=Path, metavar="DIR",
                     help="Hugging Face configs of the rows' models (a CSV's model_path "
                     "org/name → DIR/org--name_config.json; a YAML table's model names "
                     "looked up there by name, then in the catalogue)")
    cmd.add_argument("--disaggregated", action="store_true",
                     help="a measured-row CSV: also simulate its disaggregated rows (mode "
                     "disagg) on prefill and decode pools; slow: about 25 minutes on 2 "
                     "cores for silicon_sample.csv's 992, and several GiB a worker for its "
                     "largest concurrencies; without it they are skipped saying so")
    add_deployment_flags(cmd)
    add_workers(cmd)
    add_quiet(cmd)
    return cmd


def add_deployment_flags(cmd: argparse.ArgumentParser) -> None:
    """What served a benchmark result JSON (its files do not say; `calibrate fit-e2e` too)."""
    group = cmd.add_argument_group("deployment of a benchmark result JSON")
    group.add_argument("--gpu", help="catalogue GPU the results were measured on (required)")
    group.add_argument("--engine", help="engine that served them: vllm | sglang | trtllm "
                       "(required)")
    group.add_argument("--tensor-parallel", type=int, default=1, metavar="N",
                       help="GPUs per replica (default 1)")
    group.add_argument("--dtype", default="bf16", help="weight dtype: bf16 | fp16 | fp8 | fp4 "
                       "(default bf16)")
    group.add_argument("--model", help="the served model (catalogue name, or org/name with "
                       "--models DIR) when the file does not name it, or to override it")


def deployment(args: argparse.Namespace) -> Deployment:
    return Deployment(args.gpu, args.engine, args.tensor_parallel, args.dtype, args.model)


def execute(args: argparse.Namespace) -> int:
    check_output_path("--csv", args.csv, FIGURE_BYTES)
    check_output_path("--plot", args.plot, FIGURE_BYTES)
    table = read_table(args.measurements)
    if args.models is not None and not args.models.is_dir():
        raise InputError("--models", str(args.models), "a directory of Hugging Face "
                         "*_config.json files")
    if isinstance(table, ResultsTable):
        return _results(args, table)
    for flag in ("gpu", "engine", "model"):
        if getattr(args, flag) is not None:
            raise InputError(f"--{flag}", getattr(args, flag), "no deployment flags with a "
                             "measurements table or CSV (their rows state the deployment)")
    if isinstance(table, SiliconTable):
        return _silicon(args, table)
    return _published(args, table)


def _results(args: argparse.Namespace, table: ResultsTable) -> int:
    if args.sweeps is not None:
        raise InputError("--sweeps", str(args.sweeps), "no --sweeps with a benchmark result")
    rows = compare_points(table.points, deployment(args), args.models, args.rows)
    if not rows:
        raise InputError("--rows", args.rows, "a glob or text matching at least one point id")
    _write(args, silicon_csv(rows), list(rows))
    if not args.quiet:
        print(f"{table.path}: {table.format}, {len(table.points)} load point(s)")
        print(report(list(rows), []))
    return 0


def _published(args: argparse.Namespace, table: Table) -> int:
    sweeps = read_sweeps(args.sweeps) if args.sweeps is not None else None
    models = ModelFinder(args.models)
    with progress_bar("validating", "row", args.quiet) as progress:
        rows = compare_rows(table, args.rows, progress, models)
    points: list[Comparison] = []
    if sweeps is not None:
        with progress_bar("sweeps", "point", args.quiet) as progress:
            points = compare_sweeps(sweeps, args.rows, progress, models)
    if not rows and not points:
        raise InputError("--rows", args.rows, "a glob or text matching at least one row id")
    everything = rows + points
    _write(args, to_csv(everything), everything)
    if not args.quiet:
        print(report(rows, points))
    return 0


def _silicon(args: argparse.Namespace, table: SiliconTable) -> int:
    if args.sweeps is not None:
        raise InputError("--sweeps", str(args.sweeps), "no --sweeps with a measured-row CSV "
                         "(its rows are load points already)")
    workers = args.workers or os.cpu_count() or 1
    with progress_bar("validating", "row", args.quiet) as progress:
        rows = compare_silicon(table, args.models, workers, args.rows, progress,
                               args.disaggregated)
    if not rows:
        raise InputError("--rows", args.rows, "a glob or text matching at least one row id")
    _write(args, silicon_csv(rows), list(rows))
    if not args.quiet:
        print(silicon_report(rows))
        disaggregated = mode_summary(rows, DISAGGREGATED)
        if disaggregated.rows:
            print("\n".join(["", *_disaggregated_text(disaggregated)]))
    return 0


def _disaggregated_text(summary: ModeSummary) -> list[str]:
    """The disaggregated rows' own block after the aggregated report (the same tables)."""
    lines = [f"disaggregated rows (a prefill and a decode pool each): {summary.rows} rows, "
             f"{summary.compared} compared, {summary.rows - summary.compared} skipped",
             f"  {printable(figures_line(summary))}"]
    for metric, groups in summary.groups.items():
        cells = [["all" if g.by == "all" else f"{g.by}: {g.group}", str(g.count),
                  f"{g.median_abs_pct:.1f}%", f"{g.worst_pct:+.1f}% {g.worst_id}"]
                 for g in groups]
        if cells:
            lines += ["", f"{SILICON_TITLES[metric]}, disaggregated rows",
                      *table(GROUP_COLUMNS, cells, gap=1, indent="  ")]
    lines += ["", "skipped disaggregated rows by reason" if summary.skips
              else "skipped disaggregated rows: none"]
    return lines + [f"  {count:>5}  {printable(reason)}" for reason, count in summary.skips]


def _write(args: argparse.Namespace, csv_text: str, comparisons: list[Comparison]) -> None:
    with outputs("--csv") as staged:  # both files, or neither
        if args.csv is not None:
            staged.text(args.csv, csv_text)
        if args.plot is not None:
            from sim.report.plots import png_bytes
            from sim.report.plots.validation import validation_figure

            staged.bytes(args.plot, png_bytes(validation_figure(comparisons)), "--plot")
