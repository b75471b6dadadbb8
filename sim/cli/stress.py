"""`tokenfactory stress SCENARIO`: the scenario's fleet under demand × k, a spike and lost
replicas; writes stress.json, stress.csv and stress_attainment.png."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sim.cli.commands import COMMANDS
from sim.cli.common import (
    add_output_dir,
    add_quiet,
    add_seed,
    add_work_limits,
    add_workers,
    output_dir,
    outputs,
    to_csv,
    wrote,
)
from sim.planning.runs import planning_executor
from sim.planning.stress import stress
from sim.provenance import created_utc
from sim.report.plots import png_bytes
from sim.report.plots.stress import attainment_figure
from sim.report.stress_text import describe
from sim.runner.budget import DEFAULT_MAX_REQUESTS, DEFAULT_MAX_TOTAL_REQUESTS
from sim.scenario import read_mapping

FILES = ("stress.json", "stress.csv", "stress_attainment.png")
CSV_COLUMNS = ("case", "kind", "demand_multiplier", "slo_met_probability",
               "slo_attainment_p50", "violation_minutes_p50", "violation_minutes_max",
               "max_queue_p50", "max_queue_max", "replicas_needed", "extra_gpus",
               "headroom_usd_per_year", "search_simulations")


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "stress", help=COMMANDS["stress"],
        description="Run the scenario's fleet in each stress case of its stress: block "
        "(defaults: demand × 1.25, 1.5, 2 and one replica down; a spike when given): SLO "
        "attainment per minute, worst queue, minutes in SLO violation, and the extra GPUs "
        "(found by the planner's search) needed to hold the SLO, with their cost for a year.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  tokenfactory stress scenarios/chat-8b-plan.yaml -o out/stress")
    p.add_argument("scenario", type=Path, help="scenario YAML file (a stress: block optional)")
    add_output_dir(p, "stress")
    add_workers(p)
    add_seed(p)
    add_work_limits(p, DEFAULT_MAX_REQUESTS, DEFAULT_MAX_TOTAL_REQUESTS)
    add_quiet(p)
    return p


def execute(args: argparse.Namespace) -> int:
    raw = read_mapping(args.scenario)
    out = output_dir(args.output, raw, "stress")
    with planning_executor(args.workers) as executor:
        document = stress(raw, args.scenario.parent, executor, seed=args.seed,
                          max_requests=args.max_requests,
                          max_total_requests=args.max_total_requests)
    document["provenance"]["created_utc"] = created_utc()
    with outputs("-o") as staged:  # the three files, or none of them
        staged.directory(out)
        staged.json(out / "stress.json", document)
        staged.text(out / "stress.csv", to_csv(csv_rows(document), CSV_COLUMNS))
        staged.bytes(out / "stress_attainment.png", png_bytes(attainment_figure(document)))
    if not args.quiet:
        print(describe(document))
        print(wrote(out / name for name in FILES))
    return 0


def csv_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for c in document["cases"]:
        rows.append({key: c.get(key) for key in CSV_COLUMNS} | {
            "violation_minutes_p50": c["violation_minutes"]["p50"],
            "violation_minutes_max": c["violation_minutes"]["max"],
            "max_queue_p50": c["max_queue"]["p50"], "max_queue_max": c["max_queue"]["max"]})
    return rows
