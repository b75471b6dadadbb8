"""`tokenfactory validate MEASUREMENTS.yaml`: simulate published benchmark rows, compare.

Prints one line per compared metric (measured, simulated, error, the step-time profile's
source, the assumptions made), the skipped rows grouped by reason, then the median absolute
error and worst row overall and by profile source, engine family and GPU. The CSV (`--csv`)
holds every row of the file, compared or skipped.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from sim.cli.common import check_output_path, progress_bar, write_bytes, write_text
from sim.errors import InputError
from sim.validation import (
    Comparison,
    compare_rows,
    compare_sweeps,
    error_groups,
    read_measurements,
    read_sweeps,
    to_csv,
)
from sim.validation.breakdown import TARGET_PCT

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

FAMILY_TITLES = {"output_tokens_per_s": "output throughput", "ttft": "TTFT", "tpot": "TPOT"}


def add_parser(sub) -> argparse.ArgumentParser:
    cmd = sub.add_parser(
        "validate", help="compare simulated and published measured throughput and latency",
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
    cmd.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return cmd


def execute(args: argparse.Namespace) -> int:
    check_output_path("--csv", args.csv)
    check_output_path("--plot", args.plot)
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
    if args.csv is not None:
        write_text(args.csv, to_csv(everything))
    if args.plot is not None:
        from sim.report.plots import png_bytes
        from sim.report.plots.validation import validation_figure

        write_bytes(args.plot, png_bytes(validation_figure(everything)))
    if not args.quiet:
        print(report(rows, points))
    return 0


# ---- the printed report --------------------------------------------------------------------


def report(rows: list[Comparison], points: list[Comparison]) -> str:
    lines: list[str] = []
    legend: dict[str, int] = {}
    compared = [c for c in rows if c.compared]
    row_count = len({c.id for c in rows})
    lines.append(f"{row_count} rows: {len({c.id for c in compared})} compared "
                 f"({len(compared)} metrics), {row_count - len({c.id for c in compared})} "
                 "skipped")
    if compared:
        lines += ["", *_comparison_table(compared, legend)]
    lines += ["", *_skipped(rows)]
    for family in ("output_tokens_per_s", "ttft", "tpot"):
        lines += _summary(rows, family)
    if points:
        lines += ["", *_sweeps(points, legend)]
    if legend:
        lines += ["", "assumptions:"]
        lines += [f"  [{n}] {text}" for text, n in legend.items()]
    return "\n".join(lines)


def _comparison_table(compared: list[Comparison], legend: dict[str, int]) -> list[str]:
    width = max(len(c.id) for c in compared)
    out = [f"{'id':<{width}}  {'metric':<19} {'measured':>10} {'simulated':>10} {'error':>8}  "
           f"{'profile':<15} {'assumed':<9} observed"]
    for c in compared:
        out.append(f"{c.id:<{width}}  {c.metric:<19} {_num(c.measured):>10} "
                   f"{_num(c.simulated):>10} {c.error_pct:>+7.1f}%  {c.profile_source:<15} "
                   f"{_refs(c, legend):<9} {c.observed.removeprefix('sim: ')}")
    return out


def _refs(c: Comparison, legend: dict[str, int]) -> str:
    return ",".join(str(legend.setdefault(a, len(legend) + 1)) for a in c.assumptions)


def _skipped(rows: list[Comparison]) -> list[str]:
    skipped = [c for c in rows if not c.compared]
    if not skipped:
        return ["skipped: none"]
    reasons = Counter(c.status.removeprefix("skipped: ") for c in skipped)
    out = [f"skipped: {len(skipped)} metrics of {len({c.id for c in skipped})} rows "
           "(every one is in the CSV with its reason)"]
    out += [f"  {count:>4}  {reason}" for reason, count in reasons.most_common()]
    return out


def _summary(rows: list[Comparison], family: str) -> list[str]:
    groups = error_groups(rows, family)
    if not groups:
        return []
    title = FAMILY_TITLES.get(family, family)
    out = ["", f"{title}: median |error| and worst row, over compared rows",
           f"  {'group':<62} {'n':>4} {'median':>8}  worst"]
    for g in groups:
        label = "all" if g.by == "all" else f"{g.by}: {g.group}"
        verdict = ""
        if g.by == "target":
            verdict = (f"  (target ≤ {TARGET_PCT:g}%: "
                       f"{'met' if g.median_abs_pct <= TARGET_PCT else 'NOT met'})")
        out.append(f"  {label:<62} {g.count:>4} {g.median_abs_pct:>7.1f}%  "
                   f"{g.worst_pct:+.1f}% {g.worst_id}{verdict}")
    present = {g.group for g in groups if g.by == "engine"}
    for engine in sorted({c.engine for c in rows} - present):
        n = len({c.id for c in rows if c.engine == engine})
        out.append(f"  {'engine: ' + engine:<62} {0:>4}        —  (none of its {n} rows "
                   "covered)")
    return out


def _sweeps(points: list[Comparison], legend: dict[str, int]) -> list[str]:
    out = ["load sweeps (closed-loop points: TTFT from admission; knee: lowest load where TTFT "
           "passes 3× its lowest-load value)"]
    by_sweep: dict[str, list[Comparison]] = {}
    for c in points:
        by_sweep.setdefault(c.group, []).append(c)
    skipped: Counter[str] = Counter()
    for sweep_id, members in by_sweep.items():
        knee = next(c for c in members if c.kind == "knee")
        load_points = [c for c in members if c.kind != "knee"]
        if not any(c.compared for c in load_points):
            skipped[load_points[0].status if load_points else knee.status] += 1
            continue
        out.append(f"  {sweep_id}")
        for c in load_points:
            head = f"    load {c.load:>6g}  {c.metric:<19}" if c.load is not None else \
                f"    {'offline':<11}  {c.metric:<19}"
            if c.compared:
                out.append(f"{head} {_num(c.measured):>10} {_num(c.simulated):>10} "
                           f"{c.error_pct:>+7.1f}%  {c.profile_source:<15} "
                           f"{_refs(c, legend):<9} {c.observed.removeprefix('sim: ')}")
            else:
                out.append(f"{head} {c.status}")
        if knee.compared:
            out.append(f"    knee ({knee.metric.removeprefix('knee_')}): measured "
                       f"{_num(knee.measured)}, simulated {_num(knee.simulated)}")
        else:
            out.append(f"    knee: {knee.status}")
    for status, count in skipped.most_common():
        out.append(f"  {count} sweep{'s' if count > 1 else ''} {status}")
    return out


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
