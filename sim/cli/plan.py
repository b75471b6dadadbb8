"""`tokenfactory plan SCENARIO`: size every option of the plan: block for every period of its
forecast; writes plan.json, plan.csv, fleet_plan.png and cost_per_token_by_option.png."""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from sim.cli.commands import COMMANDS
from sim.cli.common import (
    add_dir_report,
    add_output_dir,
    add_quiet,
    add_seed,
    add_work_limits,
    add_workers,
    output_dir,
    outputs,
    progress_bar,
    to_csv,
    wrote,
)
from sim.cli.report import write_dir_report
from sim.planning.document import CSV_COLUMNS, csv_rows
from sim.planning.planner import plan
from sim.planning.runs import planning_executor
from sim.provenance import created_utc
from sim.report.plan_text import describe
from sim.report.plots import png_bytes
from sim.report.plots.plan import cost_figure, fleet_figure
from sim.runner.budget import DEFAULT_MAX_REQUESTS, DEFAULT_MAX_TOTAL_REQUESTS
from sim.scenario import read_mapping

FILES = ("plan.json", "plan.csv", "fleet_plan.png", "cost_per_token_by_option.png")


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "plan", help=COMMANDS["plan"],
        description="For every period of the plan: block's forecast and every option "
        "(a partial scenario merged into this one), find the fewest replicas whose P(SLO met "
        "at the period's peak) over Monte Carlo draws reaches target.confidence, by galloping "
        "and bisection from a queueing-theory first guess. A disaggregated option is sized "
        "in both pools (the cheapest prefill:decode split, or whole units of its own with "
        "split: ratio), and an option of two deployment.pools split by size pool by pool. "
        "Prints a table and writes DIR/plan.json, DIR/plan.csv, DIR/fleet_plan.png and "
        "DIR/cost_per_token_by_option.png.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  tokenfactory plan scenarios/chat-8b-plan.yaml -o out/plan "
        "--workers 2\n  tokenfactory plan scenarios/moe-gptoss-b200-disagg-plan.yaml -o "
        "out/disagg-plan --workers 2\n  tokenfactory plan scenarios/mixed-8b-plan.yaml -o "
        "out/mixed-plan --workers 2")
    p.add_argument("scenario", type=Path, help="scenario YAML file with a plan: block")
    add_output_dir(p, "plan")
    add_workers(p)
    add_seed(p, "every draw's seed derives from it")
    add_work_limits(p, DEFAULT_MAX_REQUESTS, DEFAULT_MAX_TOTAL_REQUESTS)
    add_dir_report(p)
    add_quiet(p)
    return p


def execute(args: argparse.Namespace) -> int:
    raw = read_mapping(args.scenario)
    out = output_dir(args.output, raw, "plan")
    with progress_bar("plan", "run", args.quiet) as update:
        runs = itertools.count(1)  # advanced from the options' threads; next() is atomic

        def on_run() -> None:
            update(next(runs), None)

        with planning_executor(args.workers) as executor:
            document = plan(raw, args.scenario.parent, executor, seed=args.seed, on_run=on_run,
                            max_requests=args.max_requests,
                            max_total_requests=args.max_total_requests)
    document["provenance"]["created_utc"] = created_utc()
    with outputs("-o") as staged:  # the four files, or none of them
        staged.directory(out)
        staged.json(out / "plan.json", document)
        staged.text(out / "plan.csv", to_csv(csv_rows(document), CSV_COLUMNS))
        staged.bytes(out / "fleet_plan.png", png_bytes(fleet_figure(document)))
        staged.bytes(out / "cost_per_token_by_option.png", png_bytes(cost_figure(document)))
    if not args.quiet:
        print(describe(document))
        print(wrote(out / name for name in FILES))
    if args.report:
        written = write_dir_report(out, "--report")
        if not args.quiet:
            print(wrote([written]))
    return 0
