"""`tokenfactory run SCENARIO`: simulate one scenario, print a summary, optionally write JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

import sim
from sim.cli.commands import COMMANDS
from sim.cli.common import (
    add_quiet,
    add_seed,
    add_work_limits,
    check_output_path,
    finite,
    outputs,
    progress_bar,
)
from sim.cli.registry_help import policies_and_routers
from sim.cli.report import REPORT_BYTES, check_report_output, report_format, write_report
from sim.errors import InputError
from sim.montecarlo import rerun
from sim.montecarlo.execute import metrics_row
from sim.provenance import created_utc
from sim.report.run_text import format_summary
from sim.runner.budget import DEFAULT_MAX_REQUESTS


def add_parser(sub) -> argparse.ArgumentParser:
    from sim.cli import EXAMPLES

    run = sub.add_parser(
        "run", help=COMMANDS["run"],
        description="Simulate one scenario: requests arrive over duration_s, are routed to "
        "replicas, batched step by step, and drained (or cut at drain_s). Metrics count requests "
        "arriving after warmup_s; throughput and cost count what finished inside the window.",
        epilog=policies_and_routers() + "\n" + EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("scenario", type=Path, help="scenario YAML file")
    run.add_argument("--json", type=Path, metavar="FILE",
                     help="also write the full result (the documented JSON contract) to FILE")
    add_seed(run, "same seed → identical result")
    add_work_limits(run, DEFAULT_MAX_REQUESTS)
    run.add_argument("--exact", action="store_true",
                     help="simulate decode steps one at a time instead of skipping over runs of "
                     "them; same results, slower")
    run.add_argument("--replay", metavar="DIR/runs.csv:ROW",
                     help="re-run one run of a sweep alone (its row's grid values, sampled inputs "
                     "and seed) and check its metrics match the row")
    run.add_argument("--report", type=Path, metavar="FILE",
                     help="also write the capacity-review report of this run to FILE "
                     "(.html, or .md for Markdown with its figures beside it)")
    add_quiet(run)
    return run


def execute(args: argparse.Namespace) -> int:
    # Both outputs judged before the scenario is even read: a run that cannot write its
    # result must not simulate first.
    check_output_path("--json", args.json)
    if args.report is not None:
        check_report_output("--report", args.report, report_format(args.report), REPORT_BYTES)
    seed, row = args.seed, None
    if args.replay is None:
        scenario = sim.load_scenario(args.scenario)
    elif args.seed is not None:
        raise InputError("--seed", args.seed, "no --seed with --replay (the row has its seed)")
    else:
        scenario, seed, row = rerun.load(args.scenario, args.replay)
    with progress_bar("simulating", "req", args.quiet) as progress:
        result = sim.run(scenario, seed=seed, exact=args.exact, progress=progress,
                         max_requests=args.max_requests)
    data = result.to_dict()
    data["provenance"]["created_utc"] = created_utc()
    with outputs("--json") as staged:  # both files, or neither
        if args.json is not None:
            staged.json(args.json, data)
        if args.report is not None:  # from the same numbers --json holds, made JSON-safe
            write_report(finite(data), args.report, report_format(args.report), staged,
                         "--report")
    if not args.quiet:
        print(format_summary(data))
    if row is None:
        return 0
    differ = rerun.mismatches(row, metrics_row(result.record))
    if not args.quiet:
        print(f"\nreplay of {args.replay}: " + (
            f"differs from the row in {', '.join(differ)}" if differ
            else "every metric identical to the row"))
    return 1 if differ else 0
