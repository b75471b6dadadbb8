"""What `tokenfactory validate` prints: one line per compared metric (measured, simulated,
error, the step-time profile's source, the assumptions made), the skipped rows grouped by
reason, the median absolute error and worst row overall and by group, and the load sweeps
(text only; the CLI decides where it goes). Measured end-to-end rows (`silicon_report`) are
thousands, so they are summarised rather than listed: errors by group, the worst rows, and
the skips by reason. Ids, groups, statuses and assumptions come from
the measurement files and are shown `printable`; the table renderer does it for cells."""

from __future__ import annotations

from collections import Counter

from sim.report.text import Column, printable, row, short_number, table
from sim.validation import Comparison, error_groups
from sim.validation.breakdown import TARGET_PCT
from sim.validation.silicon import METRICS, SiliconComparison
from sim.validation.silicon_summary import silicon_groups, skip_reasons, worst
from sim.validation.sweeps import KNEE_FACTOR

FAMILY_TITLES = {"output_tokens_per_s": "output throughput", "ttft": "TTFT", "tpot": "TPOT"}

# A compared metric, in the row table and in the load sweeps alike.
COMPARED_COLUMNS = (
    Column("metric", "<", 19, gap=2), Column("measured", ">", 10, gap=1),
    Column("simulated", ">", 10, gap=1), Column("error", ">", 8, gap=1),
    Column("profile", "<", 15, gap=2), Column("assumed", "<", 9, gap=1),
    Column("observed", "<", 0, gap=1),
)
GROUP_COLUMNS = (Column("group", "<", 62), Column("n", ">", 4), Column("median", ">", 8),
                 Column("worst", "<", 0, gap=2))


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
        lines += [f"  [{n}] {printable(text)}" for text, n in legend.items()]
    return "\n".join(lines)


def _compared_cells(c: Comparison, legend: dict[str, int]) -> list[str]:
    return [c.metric, short_number(c.measured), short_number(c.simulated),
            f"{c.error_pct:+.1f}%", c.profile_source, _refs(c, legend),
            c.observed.removeprefix("sim: ")]


def _comparison_table(compared: list[Comparison], legend: dict[str, int]) -> list[str]:
    columns = (Column("id", "<", max(len(c.id) for c in compared)), *COMPARED_COLUMNS)
    return table(columns, [[c.id, *_compared_cells(c, legend)] for c in compared])


def _refs(c: Comparison, legend: dict[str, int]) -> str:
    return ",".join(str(legend.setdefault(a, len(legend) + 1)) for a in c.assumptions)


def _skipped(rows: list[Comparison]) -> list[str]:
    skipped = [c for c in rows if not c.compared]
    if not skipped:
        return ["skipped: none"]
    reasons = Counter(c.status.removeprefix("skipped: ") for c in skipped)
    out = [f"skipped: {len(skipped)} metrics of {len({c.id for c in skipped})} rows "
           "(every one is in the CSV with its reason)"]
    out += [f"  {count:>4}  {printable(reason)}" for reason, count in reasons.most_common()]
    return out


def _summary(rows: list[Comparison], family: str) -> list[str]:
    groups = error_groups(rows, family)
    if not groups:
        return []
    title = FAMILY_TITLES.get(family, family)
    cells = []
    for g in groups:
        label = "all" if g.by == "all" else f"{g.by}: {g.group}"
        verdict = ""
        if g.by == "target":
            verdict = (f"  (target ≤ {TARGET_PCT:g}%: "
                       f"{'met' if g.median_abs_pct <= TARGET_PCT else 'NOT met'})")
        cells.append([label, str(g.count), f"{g.median_abs_pct:.1f}%",
                      f"{g.worst_pct:+.1f}% {g.worst_id}{verdict}"])
    present = {g.group for g in groups if g.by == "engine"}
    for engine in sorted({c.engine for c in rows} - present):
        n = len({c.id for c in rows if c.engine == engine})
        cells.append([f"engine: {engine}", "0", "—", f"(none of its {n} rows covered)"])
    return ["", f"{title}: median |error| and worst row, over compared rows",
            *table(GROUP_COLUMNS, cells, gap=1, indent="  ")]


KNEE_COLUMNS = (Column("sweep", "<"), Column("axis", "<"), Column("measured", ">"),
                Column("simulated", ">"), Column("status", "<", 0))


def _sweeps(points: list[Comparison], legend: dict[str, int]) -> list[str]:
    """Per sweep its points, then the sweeps skipped by reason, the points' median |error|
    per metric family and the knees measured against simulated."""
    by_sweep: dict[str, list[Comparison]] = {}
    for c in points:
        by_sweep.setdefault(c.group, []).append(c)
    compared_sweeps = [s for s, members in by_sweep.items()
                       if any(c.compared and c.kind != "knee" for c in members)]
    load_points = [c for c in points if c.kind != "knee"]
    plural = "" if len(by_sweep) == 1 else "s"
    out = [f"load sweeps: {len(by_sweep)} sweep{plural} ({len({c.id for c in load_points})} "
           "points), "
           f"{len(compared_sweeps)} compared, {len(by_sweep) - len(compared_sweeps)} skipped "
           "(concurrency points as closed loops with TTFT from send, rate points as Poisson "
           f"arrivals; knee: lowest load where TTFT passes {KNEE_FACTOR:g}× its lowest-load "
           "value)"]
    for sweep_id in compared_sweeps:
        out += _sweep_points(sweep_id, by_sweep[sweep_id], legend)
    skipped = Counter(_sweep_skip(members) for s, members in by_sweep.items()
                      if s not in compared_sweeps)
    if skipped:
        out += ["", "  skipped sweeps by reason (every point is in the CSV)"]
        out += [f"  {count:>4}  {printable(reason)}" for reason, count in skipped.most_common()]
    cells = []
    for family in ("output_tokens_per_s", "ttft", "tpot"):
        overall = [g for g in error_groups(points, family, kinds=("sweep",)) if g.by == "all"]
        cells += [[FAMILY_TITLES[family], str(g.count), f"{g.median_abs_pct:.1f}%",
                   f"{g.worst_pct:+.1f}% {g.worst_id}"] for g in overall]
    if cells:
        out += ["", "  sweep points: median |error| and worst point, over compared points",
                *table(POINT_COLUMNS, cells, gap=1, indent="    ")]
    knees = [c for c in points if c.kind == "knee" and c.group in compared_sweeps]
    if knees:
        out += ["", "  knees: measured vs simulated", *table(KNEE_COLUMNS, [
            [c.group, c.metric.removeprefix("knee_"), short_number(c.measured),
             short_number(c.simulated), c.status] for c in knees], indent="    ")]
    return out


POINT_COLUMNS = (Column("metric", "<", 17), Column("n", ">", 4), Column("median", ">", 8),
                 Column("worst", "<", 0, gap=2))


def _sweep_points(sweep_id: str, members: list[Comparison], legend: dict[str, int]) -> list[str]:
    out = [f"  {printable(sweep_id)}"]
    for c in members:
        if c.kind == "knee":
            continue
        head = f"    load {c.load:>6g}" if c.load is not None else f"    {'offline':<11}"
        if c.compared:
            out.append(f"{head}  {row(COMPARED_COLUMNS, _compared_cells(c, legend))}")
        else:
            out.append(f"{head}  {printable(c.metric):<19} {printable(c.status)}")
    return out


def _sweep_skip(members: list[Comparison]) -> str:
    """Why a sweep with no compared point was skipped: its first point's reason."""
    first = next((c for c in members if c.kind != "knee"), members[0])
    return first.status.removeprefix("skipped: ")


# ---- measured end-to-end rows (silicon_sample.csv) ------------------------------------------

SILICON_TITLES = {"ttft_ms": "TTFT (mean, from send)", "tpot_ms": "TPOT (mean)"}
WORST_COLUMNS = (Column("metric", "<", 8), Column("measured", ">", 9),
                 Column("simulated", ">", 9), Column("error", ">", 8), Column("id", "<", 0))
WORST_ROWS = 10


def silicon_report(comparisons: list[SiliconComparison]) -> str:
    """Counts, median |error| per metric by group, the worst rows, the skips by reason."""
    rows = len({c.id for c in comparisons})
    compared = {c.id for c in comparisons if c.compared}
    lines = [f"{rows} rows: {len(compared)} compared (closed loops at the row's concurrency), "
             f"{rows - len(compared)} skipped"]
    for metric in METRICS:
        groups = silicon_groups(comparisons, metric)
        if not groups:
            continue
        cells = [["all" if g.by == "all" else f"{g.by}: {g.group}", str(g.count),
                  f"{g.median_abs_pct:.1f}%", f"{g.worst_pct:+.1f}% {g.worst_id}"]
                 for g in groups]
        lines += ["", f"{SILICON_TITLES[metric]}: median |error| and worst row",
                  *table(GROUP_COLUMNS, cells, gap=1, indent="  ")]
    worst_rows = worst(comparisons, WORST_ROWS)
    if worst_rows:
        lines += ["", f"worst {len(worst_rows)} rows", *table(WORST_COLUMNS, [
            [c.metric, short_number(c.measured), short_number(c.simulated),
             f"{c.error_pct:+.1f}%", c.id] for c in worst_rows], indent="  ")]
    reasons = skip_reasons(comparisons)
    lines += ["", "skipped rows by reason (every one is in the CSV)" if reasons
              else "skipped: none"]
    lines += [f"  {count:>5}  {printable(reason)}" for reason, count in reasons]
    return "\n".join(lines)
