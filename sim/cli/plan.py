"""`tokenfactory plan SCENARIO`: size every option of the plan: block for every period of its
forecast; writes plan.json, plan.csv, fleet_plan.png and cost_per_token_by_option.png."""

from __future__ import annotations

import argparse
import csv
import io
import itertools
from pathlib import Path
from typing import Any

from sim.cli.common import (
    non_negative_int,
    positive_int,
    progress_bar,
    write_bytes,
    write_json,
    write_text,
)
from sim.cli.report import write_report
from sim.errors import InputError
from sim.planning.document import CSV_COLUMNS, csv_rows, format_table
from sim.planning.planner import plan
from sim.planning.runs import planning_executor
from sim.provenance import created_utc
from sim.report.plots import png_bytes
from sim.report.plots.plan import cost_figure, fleet_figure
from sim.scenario import read_mapping

FILES = ("plan.json", "plan.csv", "fleet_plan.png", "cost_per_token_by_option.png")


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "plan", help="fewest replicas per forecast period and option that meet the SLO",
        description="For every period of the plan: block's forecast and every option "
        "(a partial scenario merged into this one), find the fewest replicas whose P(SLO met "
        "at the period's peak) over Monte Carlo draws reaches target.confidence, by galloping "
        "and bisection from a queueing-theory first guess. Prints a table and writes "
        "DIR/plan.json, DIR/plan.csv, DIR/fleet_plan.png and DIR/cost_per_token_by_option.png.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  tokenfactory plan scenarios/chat-8b-plan.yaml -o out/plan "
        "--workers 2")
    p.add_argument("scenario", type=Path, help="scenario YAML file with a plan: block")
    p.add_argument("-o", "--output", type=Path, metavar="DIR",
                   help="new or empty directory for the results (default: ./NAME-plan)")
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="local worker processes (default: one per CPU; 1 runs in-process)")
    p.add_argument("--seed", type=non_negative_int, metavar="N",
                   help="override the scenario's seed (every draw's seed derives from it)")
    p.add_argument("--report", action="store_true",
                   help="also write DIR/report.html, the capacity-review report "
                   "(the same as tokenfactory report DIR afterwards)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return p


def execute(args: argparse.Namespace) -> int:
    raw = read_mapping(args.scenario)
    out = args.output or Path(f"{raw['name']}-plan")
    check_new_dir(out)
    with progress_bar("plan", "run", args.quiet) as update:
        runs = itertools.count(1)  # advanced from the options' threads; next() is atomic

        def on_run() -> None:
            update(next(runs), None)

        with planning_executor(args.workers) as executor:
            document = plan(raw, args.scenario.parent, executor, seed=args.seed, on_run=on_run)
    document["provenance"]["created_utc"] = created_utc()
    out.mkdir(exist_ok=True)
    write_json(out / "plan.json", document)
    write_text(out / "plan.csv", to_csv(csv_rows(document)))
    write_bytes(out / "fleet_plan.png", png_bytes(fleet_figure(document)))
    write_bytes(out / "cost_per_token_by_option.png", png_bytes(cost_figure(document)))
    if not args.quiet:
        print(describe(document))
        print(f"wrote {', '.join(str(out / name) for name in FILES)}")
    if args.report:
        written = write_report(out, out / "report.html", "html")[0]
        if not args.quiet:
            print(f"wrote {written}")
    return 0


def check_new_dir(out: Path) -> None:
    """Refuse before any work rather than mix two runs' files or fail at the end."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError("-o", str(out), "a new or empty directory")
    if not out.parent.is_dir():
        raise InputError("-o", str(out), "a directory whose parent exists")


def to_csv(rows: list[dict[str, Any]], columns: tuple[str, ...] = CSV_COLUMNS) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()


def describe(document: dict[str, Any]) -> str:
    t = document["target"]
    search = document["search"]
    lines = [f"plan {document['scenario']} (seed {document['seed']}): P(SLO met at peak) ≥ "
             f"{t['confidence']:.0%} over {t['draws']} draws; SLO TTFT ≤ {t['slo']['ttft_s']} s,"
             f" TPOT ≤ {t['slo']['tpot_s']} s at p{t['slo']['percentile']:g}; runs of "
             f"{document['run']['duration_s']:g} s ({document['run']['warmup_s']:g} s warm-up)"]
    for option in document["options"]:
        cap = option["capacity_per_replica"]
        lines.append(f"  {option['option']}: {option['tensor_parallel']} × {option['gpu']}, "
                     f"{option['dtype']}, {option['scheduler']}; capacity "
                     f"{cap['requests_per_s']:.4g} req/s per replica")
    lines += ["", format_table(document), "",
              f"search: {search['simulations']} runs to size, {search['average_load_simulations']}"
              f" at the average load, {search['capacity_probes']} capacity probes "
              "(* = recommended, the cheapest feasible option)"]
    for m in document["mix"]:
        lines.append(f"mix {m['option']}: reserve {m['reserved_gpus']} GPUs, rest on demand: "
                     f"${m['usd_total']:,.0f} over the forecast (all on demand "
                     f"${m['usd_all_on_demand']:,.0f}, all reserved ${m['usd_all_reserved']:,.0f}"
                     f"); break-even utilisation {m['break_even_utilization']:.0%}")
    lines += [f"note: {note}" for note in document["notes"]]
    return "\n".join(lines)
