"""`tokenfactory sweep SCENARIO`: a grid × replications × sampled inputs, on local worker
processes or a Dask cluster; writes runs.csv, summary.json and the cost chart into DIR."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sim.cli.common import non_negative_int, progress_bar, write_bytes, write_json
from sim.cli.report import write_report
from sim.errors import InputError
from sim.montecarlo import files, stats
from sim.montecarlo.design import Plan, build
from sim.montecarlo.execute import execute as execute_runs
from sim.montecarlo.execute import open_executor
from sim.provenance import created_utc, stamp
from sim.report.plots import png_bytes
from sim.report.plots.sweep import chart_name, cost_figure
from sim.runner import build as run_inputs
from sim.scenario import read_mapping

INTERRUPTED = 130  # the shell's status for a command stopped by Ctrl-C
SHORT_TITLES = {"workload.arrival.rate_per_s": "req/s"}


def positive_int(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer ≥ 1")
    return int(text)


def add_parser(sub) -> argparse.ArgumentParser:
    sweep = sub.add_parser(
        "sweep", help="run a grid × replications × sampled inputs; percentile bands of cost",
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
    sweep.add_argument("-o", "--output", type=Path, metavar="DIR",
                       help="new or empty directory for the results (default: "
                       "./NAME-sweep, NAME being the scenario's name)")
    where = sweep.add_mutually_exclusive_group()
    where.add_argument("--workers", type=positive_int, metavar="N",
                       help="local worker processes (default: one per CPU)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on the Dask cluster whose scheduler is at ADDRESS "
                       "(e.g. tcp://HOST:8786; needs pip install 'tokenfactory[cluster]')")
    sweep.add_argument("--replications", type=positive_int, metavar="R",
                       help="runs per point, overriding sweep.replications")
    sweep.add_argument("--seed", type=non_negative_int, metavar="N",
                       help="override the scenario's seed (every run's seed derives from it)")
    sweep.add_argument("--resume", type=Path, metavar="DIR",
                       help="continue an interrupted sweep in DIR: only runs missing from "
                       "DIR/runs.csv are run")
    sweep.add_argument("--report", action="store_true",
                       help="also write DIR/report.html, the capacity-review report "
                       "(the same as tokenfactory report DIR afterwards)")
    sweep.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return sweep


def execute(args: argparse.Namespace) -> int:
    raw = read_mapping(args.scenario)
    resume = args.resume is not None
    if resume:
        out = _resume_dir(args)
        previous = files.read_manifest(out, "--resume")
    else:
        out = args.output or Path(f"{raw['name']}-sweep")
        _check_new_dir(out)
    say = (lambda text: None) if args.quiet else print
    # Connect first: an unreachable scheduler is bad input, reported before any work.
    with open_executor(args.workers, args.scheduler) as executor:
        if resume:
            plan = build(raw, args.scenario.parent,
                         replications=args.replications or previous["replications"],
                         seed=previous["seed"] if args.seed is None else args.seed,
                         capacity=previous["capacity"])
            if plan.fingerprint != previous["fingerprint"]:
                raise InputError("--resume", str(out), "the directory of a sweep of this same "
                                 "scenario, seed and replications (the scenario or the flags "
                                 "changed since it was started)")
        else:
            plan = build(raw, args.scenario.parent, replications=args.replications,
                         seed=args.seed)
        for note in plan.notes:
            say(note)
        header = files.columns(plan)
        out.mkdir(exist_ok=True)
        if not resume:
            write_json(out / files.MANIFEST_JSON, _manifest(plan, raw))
        runs_file = files.RunsFile(out / files.RUNS_CSV, header, resume=resume)
        todo = [spec for spec in plan.runs if spec.index not in runs_file.rows]
        total, done = len(plan.runs), len(plan.runs) - len(todo)
        if done:
            say(f"resuming: {done} of {total} runs already in {out / files.RUNS_CSV}")
        with progress_bar("sweep", "run", args.quiet) as update:
            update(done, total)
            try:
                for spec, metrics in execute_runs(todo, executor):
                    runs_file.append(files.labelled_row(spec, plan.labels[spec.point],
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

    summary = stats.summarise(plan, files.parsed(header, rows))
    write_json(out / files.SUMMARY_JSON, summary)
    chart = out / chart_name(summary)
    write_bytes(chart, png_bytes(cost_figure(summary)))
    say(format_table(plan, summary))
    for warning in summary["warnings"]:
        say(f"warning: {warning}")
    say(f"wrote {out / files.RUNS_CSV}, {out / files.SUMMARY_JSON} and {chart}")
    if args.report:
        say(f"wrote {write_report(out, out / 'report.html', 'html')[0]}")
    return 0


def _manifest(plan: Plan, raw: dict[str, Any]) -> dict[str, Any]:
    """sweep.json: the plan's manifest plus what a report shows as the sweep's provenance:
    the scenario as written, the step-time profile of its first run, version and date."""
    profile = run_inputs.step_model(plan.runs[0].scenario).provenance
    return {**files.manifest(plan), **stamp(), "created_utc": created_utc(),
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


def _check_new_dir(out: Path) -> None:
    """Refuse before any work rather than mix two sweeps' files or fail at the end."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError("-o", str(out), "a new or empty directory (use --resume DIR to "
                         "continue a sweep there)")
    if not out.parent.is_dir():
        raise InputError("-o", str(out), "a directory whose parent exists")


def _usd(value: float | None) -> str:
    return "—" if value is None else f"${value:,.4f}"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value * 1e3:,.0f}"


def format_table(plan: Plan, summary: dict[str, Any]) -> str:
    """One line per point: medians over the replications, with the P5–P95 band of cost."""
    keys = [*plan.label_keys, *(k for k in plan.overrides[0] if k not in plan.labels[0])]
    cells = []
    for p in summary["points"]:
        cost = p["usd_per_million_tokens"]
        conv = p["convergence"]["half_width_pct"]
        probability = p["slo_met_probability"]
        cells.append([
            *(f"{p[k]:.4g}" if isinstance(p[k], float) else str(p[k]) for k in keys),
            _usd(cost["blended"]["p50"]),
            f"{_usd(cost['blended']['p5'])}–{_usd(cost['blended']['p95'])}",
            _usd(cost["goodput"]["p50"]),
            _ms(p["ttft_p99_s"]["p50"]),
            _ms(p["tpot_p99_s"]["p50"]),
            "—" if probability is None else f"{probability:.0%}",
            "—" if conv is None else f"±{conv:.1f}%",
        ])
    titles = [*(SHORT_TITLES.get(k, k) for k in keys), "$/1M blended", "P5–P95",
              "$/1M goodput", "TTFT p99 ms", "TPOT p99 ms", "P(SLO met)", "median CI95"]
    widths = [max(len(t), *(len(row[i]) for row in cells)) for i, t in enumerate(titles)]
    lines = [f"sweep {summary['scenario']}: {len(summary['points'])} points × "
             f"{summary['replications']} replications = {summary['runs']} runs "
             f"(seed {summary['seed']}, {summary['sampling']} sampling); medians over "
             "replications", ""]
    for row in [titles, *cells]:
        lines.append("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(lines)
