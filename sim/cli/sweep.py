"""`tokenfactory sweep SCENARIO`: a grid × replications × sampled inputs, on local worker
processes or a Dask cluster; writes runs.csv, summary.json and the cost chart into DIR."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sim.cli.commands import COMMANDS
from sim.cli.common import (
    FIGURE_BYTES,
    Outputs,
    add_dir_report,
    add_output_dir,
    add_quiet,
    add_seed,
    add_work_limits,
    add_workers,
    check_free_space,
    check_writable_dir,
    output_dir,
    outputs,
    positive_int,
    progress_bar,
    write_error,
    wrote,
)
from sim.cli.report import write_dir_report
from sim.errors import InputError
from sim.montecarlo import files, stats
from sim.montecarlo.design import SweepDesign, build
from sim.montecarlo.execute import execute as execute_runs
from sim.montecarlo.execute import open_executor
from sim.provenance import created_utc, stamp
from sim.report.plots import png_bytes
from sim.report.plots.sweep import chart_name, cost_figure
from sim.report.sweep_text import format_table
from sim.runner import build as run_inputs
from sim.runner.budget import DEFAULT_MAX_REQUESTS, DEFAULT_MAX_TOTAL_REQUESTS
from sim.scenario import read_mapping

INTERRUPTED = 130  # the shell's status for a command stopped by Ctrl-C
NOT_EMPTY_HINT = " (use --resume DIR to continue a sweep there)"
CELL_BYTES = 24  # about a runs.csv cell: a float's shortest repr and its comma


def add_parser(sub) -> argparse.ArgumentParser:
    sweep = sub.add_parser(
        "sweep", help=COMMANDS["sweep"],
        description="Run the scenario at every point of its sweep: block (utilization: "
        "fractions of the fleet's measured saturation throughput, or grid: values of any key "
        "path), R times each with the uncertain inputs of its uncertainty: block sampled by "
        "Latin hypercube (or plain Monte Carlo). Writes DIR/runs.csv (one row per run, "
        "streamed as runs finish), DIR/summary.json (percentiles per point, P(SLO met), "
        "convergence) and a chart of cost per 1M tokens with P5–P95 bands.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  tokenfactory sweep scenarios/chat-8b-h100-sweep.yaml -o out/sweep\n"
        "  tokenfactory sweep scenarios/chat-8b-h100-sweep.yaml --resume out/sweep\n"
        "  tokenfactory sweep scenarios/chat-8b-h100-sweep.yaml --scheduler tcp://HOST:8786\n"
        "\nRe-run any row alone: tokenfactory run SCENARIO --replay out/sweep/runs.csv:ROW")
    sweep.add_argument("scenario", type=Path, help="scenario YAML file with a sweep: block")
    add_output_dir(sweep, "sweep", ", NAME being the scenario's name")
    where = sweep.add_mutually_exclusive_group()
    add_workers(where, in_process=False)
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on the Dask cluster whose scheduler is at ADDRESS "
                       "(e.g. tcp://HOST:8786; needs pip install 'tokenfactory[cluster]')")
    sweep.add_argument("--replications", type=positive_int, metavar="R",
                       help="runs per point, overriding sweep.replications")
    add_seed(sweep, "every run's seed derives from it")
    add_work_limits(sweep, DEFAULT_MAX_REQUESTS, DEFAULT_MAX_TOTAL_REQUESTS)
    sweep.add_argument("--resume", type=Path, metavar="DIR",
                       help="continue an interrupted sweep in DIR: only runs missing from "
                       "DIR/runs.csv are run")
    add_dir_report(sweep)
    add_quiet(sweep)
    return sweep


def execute(args: argparse.Namespace) -> int:
    raw = read_mapping(args.scenario)
    resume = args.resume is not None
    if resume:
        out, flag = _resume_dir(args), "--resume"
        previous = files.read_manifest(out, "--resume")
    else:
        out, flag = output_dir(args.output, raw, "sweep", NOT_EMPTY_HINT), "-o"
    say = (lambda text: None) if args.quiet else print
    limits = {"max_requests": args.max_requests, "max_total_requests": args.max_total_requests}
    # Connect first: an unreachable scheduler is bad input, reported before any work.
    with open_executor(args.workers, args.scheduler) as executor:
        if resume:
            design = build(raw, args.scenario.parent,
                           replications=args.replications or previous["replications"],
                           seed=previous["seed"] if args.seed is None else args.seed,
                           capacity=previous["capacity"], **limits)
            if design.fingerprint != previous["fingerprint"] \
                    or previous["columns"] != files.columns(design):
                raise InputError("--resume", str(out), "the directory of a sweep of this same "
                                 "scenario, seed and replications (the scenario or the flags "
                                 "changed since it was started)")
        else:
            design = build(raw, args.scenario.parent, replications=args.replications,
                           seed=args.seed, **limits)
        # The design says how many rows there will be: room for them is checked before the
        # first run, not discovered by the last.
        check_free_space(flag, out, out if out.is_dir() else out.parent,
                         _expected_bytes(design, resume))
        for note in design.notes:
            say(note)
        runs_file = _start(out, design, raw, resume, flag)
        todo = [spec for spec in design.runs if spec.index not in runs_file.rows]
        total, done = len(design.runs), len(design.runs) - len(todo)
        if done:
            say(f"resuming: {done} of {total} runs already in {out / files.RUNS_CSV}")
        with progress_bar("sweep", "run", args.quiet) as update:
            update(done, total)
            try:
                for spec, metrics in execute_runs(todo, executor):
                    try:
                        runs_file.append(files.labelled_row(spec, design.labels[spec.point],
                                                            metrics, runs_file.header))
                    except OSError as exc:
                        runs_file.close()
                        raise _stopped(flag, out, args.scenario, done, total, exc) from None
                    done += 1
                    update(done, total)
            except KeyboardInterrupt:
                runs_file.close()
                sys.stderr.write(f"tokenfactory: interrupted: {done} of {total} runs kept in "
                                 f"{out / files.RUNS_CSV}; continue with: tokenfactory sweep "
                                 f"{args.scenario} --resume {out}\n")
                return INTERRUPTED
        try:
            rows = runs_file.finish()
        except OSError as exc:
            raise _stopped(flag, out, args.scenario, done, total, exc) from None

    summary = stats.summarise(design, files.parsed(runs_file.header, rows))
    chart = out / chart_name(summary)
    with outputs(flag) as staged:  # summary.json last: a folder holding it is complete
        staged.bytes(chart, png_bytes(cost_figure(summary)))
        staged.json(out / files.SUMMARY_JSON, summary)
    say(format_table(design, summary))
    for warning in summary["warnings"]:
        say(f"warning: {warning}")
    say(f"wrote {out / files.RUNS_CSV}, {out / files.SUMMARY_JSON} and {chart}")
    if args.report:
        say(wrote([write_dir_report(out, "--report")]))
    return 0


def _expected_bytes(design: SweepDesign, resume: bool) -> int:
    """About what the sweep writes: its rows (twice on resume, where the sorted copy is
    written beside the old file before replacing it), the summary and the chart."""
    rows = len(design.runs) * len(files.columns(design)) * CELL_BYTES
    return rows * (2 if resume else 1) + 2 * FIGURE_BYTES


def _start(out: Path, design: SweepDesign, raw: dict[str, Any], resume: bool,
           flag: str) -> files.RunsFile:
    """runs.csv open for appending, and for a new sweep sweep.json beside it; a new sweep
    that cannot write them leaves no directory behind."""
    path = out / files.RUNS_CSV
    if resume:
        try:
            return files.RunsFile(path, design, resume=True)
        except OSError as exc:
            raise write_error(flag, path, exc) from None
    staged = Outputs(flag)
    try:
        staged.directory(out)
        staged.json(out / files.MANIFEST_JSON, _manifest(design, raw))
        staged.commit()
        return files.RunsFile(path, design, resume=False)
    except BaseException as exc:
        path.unlink(missing_ok=True)
        staged.discard()
        if isinstance(exc, OSError):
            raise write_error(flag, path, exc) from None
        raise


def _stopped(flag: str, out: Path, scenario: Path, done: int, total: int,
             exc: OSError) -> InputError:
    """The error when runs.csv cannot take the next row (the disk filled): the runs recorded
    so far stay in it (a half-written last line is dropped on resume), and there is no
    summary.json, so the folder never looks like a finished sweep."""
    return InputError(flag, str(out / files.RUNS_CSV), f"room to record the runs "
                      f"({exc.strerror or exc}); {done} of {total} runs are kept there: free "
                      f"space, then continue with: tokenfactory sweep {scenario} --resume {out}")


def _manifest(design: SweepDesign, raw: dict[str, Any]) -> dict[str, Any]:
    """sweep.json: the design's manifest plus what a report shows as the sweep's provenance:
    the scenario as written, the step-time profile of its first run, version and date."""
    profile = run_inputs.step_model(design.runs[0].scenario).provenance
    return {**files.manifest(design), **stamp(), "created_utc": created_utc(),
            "scenario_config": raw,
            "profile": {"name": profile.name, "source": profile.source,
                        "fit_error_pct": profile.fit_error_pct}}


def _resume_dir(args: argparse.Namespace) -> Path:
    if args.output is not None and args.output.resolve() != args.resume.resolve():
        raise InputError("-o", str(args.output), f"nothing, or the --resume directory "
                         f"({args.resume})")
    try:
        found = (args.resume / files.RUNS_CSV).is_file()
    except (OSError, ValueError):
        found = False
    if not found:
        raise InputError("--resume", str(args.resume), "a directory written by tokenfactory "
                         f"sweep (with {files.RUNS_CSV})")
    check_writable_dir("--resume", args.resume)
    return args.resume
