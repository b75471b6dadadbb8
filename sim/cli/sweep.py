"""`tokenfactory sweep SCENARIO`: a grid × replications × sampled inputs, on local worker
processes or a Dask cluster; writes runs.csv, summary.json and the cost chart into DIR."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sim.cli.commands import COMMANDS
from sim.cli.common import (
    add_dir_report,
    add_output_dir,
    add_quiet,
    add_seed,
    add_workers,
    output_dir,
    positive_int,
    progress_bar,
    write_bytes,
    write_json,
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
from sim.scenario import read_mapping

INTERRUPTED = 130  # the shell's status for a command stopped by Ctrl-C
NOT_EMPTY_HINT = " (use --resume DIR to continue a sweep there)"


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
        out = _resume_dir(args)
        previous = files.read_manifest(out, "--resume")
    else:
        out = output_dir(args.output, raw, "sweep", NOT_EMPTY_HINT)
    say = (lambda text: None) if args.quiet else print
    # Connect first: an unreachable scheduler is bad input, reported before any work.
    with open_executor(args.workers, args.scheduler) as executor:
        if resume:
            design = build(raw, args.scenario.parent,
                         replications=args.replications or previous["replications"],
                         seed=previous["seed"] if args.seed is None else args.seed,
                         capacity=previous["capacity"])
            if design.fingerprint != previous["fingerprint"]:
                raise InputError("--resume", str(out), "the directory of a sweep of this same "
                                 "scenario, seed and replications (the scenario or the flags "
                                 "changed since it was started)")
        else:
            design = build(raw, args.scenario.parent, replications=args.replications,
                         seed=args.seed)
        for note in design.notes:
            say(note)
        header = files.columns(design)
        out.mkdir(exist_ok=True)
        if not resume:
            write_json(out / files.MANIFEST_JSON, _manifest(design, raw))
        runs_file = files.RunsFile(out / files.RUNS_CSV, header, resume=resume)
        todo = [spec for spec in design.runs if spec.index not in runs_file.rows]
        total, done = len(design.runs), len(design.runs) - len(todo)
        if done:
            say(f"resuming: {done} of {total} runs already in {out / files.RUNS_CSV}")
        with progress_bar("sweep", "run", args.quiet) as update:
            update(done, total)
            try:
                for spec, metrics in execute_runs(todo, executor):
                    runs_file.append(files.labelled_row(spec, design.labels[spec.point],
                                                        metrics, header))
                    done += 1
                    update(done, total)
            except KeyboardInterrupt:
                runs_file.close()
                sys.stderr.write(f"tokenfactory: interrupted: {done} of {total} runs kept in "
                                 f"{out / files.RUNS_CSV}; continue with: tokenfactory sweep "
                                 f"{args.scenario} --resume {out}\n")
                return INTERRUPTED
        rows = runs_file.finish()

    summary = stats.summarise(design, files.parsed(header, rows))
    write_json(out / files.SUMMARY_JSON, summary)
    chart = out / chart_name(summary)
    write_bytes(chart, png_bytes(cost_figure(summary)))
    say(format_table(design, summary))
    for warning in summary["warnings"]:
        say(f"warning: {warning}")
    say(f"wrote {out / files.RUNS_CSV}, {out / files.SUMMARY_JSON} and {chart}")
    if args.report:
        say(wrote([write_dir_report(out)]))
    return 0


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
    if not (args.resume / files.RUNS_CSV).is_file():
        raise InputError("--resume", str(args.resume), "a directory written by tokenfactory "
                         f"sweep (with {files.RUNS_CSV})")
    return args.resume
