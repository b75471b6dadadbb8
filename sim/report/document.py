"""A report as a list of sections of plain blocks, built once and rendered twice (HTML and
Markdown), so the two always hold the same sections, figures and tables."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

import yaml

from sim.provenance import software_version
from sim.report import analysis, figures, narrative
from sim.report.load import Results
from sim.report.plan_text import pools_words
from sim.report.plots import png_bytes
from sim.report.plots.sweep import cost_figure

SECTIONS = ("Executive summary", "Charts", "Assumptions and provenance", "Data")
# What each step-time source makes of the simulated numbers.
PROFILE_LABEL = {"measured": "measured", "measured-operators": "measured-operator",
                 "fitted-roofline": "calibrated",
                 "roofline": "modelled", "inline": "input"}


@dataclass(frozen=True)
class Chart:
    name: str  # file name of the PNG in the Markdown twin
    caption: str
    png: bytes


@dataclass(frozen=True)
class Table:
    name: str  # file name of the CSV in the Markdown twin and the data section
    title: str
    columns: list[str]
    rows: list[list[Any]]

    def csv_text(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows([self.columns, *self.rows])
        return buffer.getvalue()


@dataclass(frozen=True)
class Code:
    title: str
    language: str
    text: str


@dataclass(frozen=True)
class DataFile:
    name: str
    mime: str
    content: bytes


@dataclass
class Section:
    title: str
    blocks: list[Any] = field(default_factory=list)  # str paragraphs, Chart, Table, Code, DataFile


@dataclass(frozen=True)
class Report:
    title: str
    subtitle: str
    sections: list[Section]


def compose(results: Results) -> Report:
    build = {"run": _run, "sweep": _sweep, "plan": _plan}[results.kind]
    head, charts, assumptions = build(results)
    tables = [b for s in (head, charts, assumptions) for b in s.blocks if isinstance(b, Table)]
    data = Section(SECTIONS[3], [
        "Every table above as CSV, and the result files this report was read from."]
        + [DataFile(t.name, "text/csv", t.csv_text().encode("utf-8")) for t in tables]
        + [DataFile(name, "text/csv" if name.endswith(".csv") else "application/json", content)
           for name, content in results.sources.items()])
    return Report(f"Capacity review: {results.name}",
                  f"{results.kind} results · report by tokenfactory {software_version()}",
                  [head, charts, assumptions, data])


def _chart(name: str, caption: str, fig: Any) -> Chart:
    return Chart(name, caption, png_bytes(fig))


def _yaml(mapping: dict[str, Any]) -> str:
    return yaml.safe_dump(mapping, sort_keys=False, allow_unicode=True, width=96)


def _flatten(mapping: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items = []
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        items += _flatten(value, f"{path}.") if isinstance(value, dict) else [(path, value)]
    return items


def _price_table(cost: dict[str, Any], uncertainty: dict[str, Any]) -> Table:
    rows = []
    for key, value in _flatten(cost, "cost."):
        spread = uncertainty.get(key)
        label = "input, sampled: " + ", ".join(f"{k} {v}" for k, v in spread.items()) \
            if spread else "input (assumed)"
        rows.append([key, value, label])
    return Table("prices.csv", "Prices", ["key", "value", "label"], rows)


def _provenance_table(items: list[tuple[str, Any, str]]) -> Table:
    return Table("provenance.csv", "Provenance and what each number is",
                 ["item", "value", "label"], [list(i) for i in items])


def _profile_items(profile: dict[str, Any]) -> list[tuple[str, Any, str]]:
    source = profile.get("source", "?")
    error = profile.get("fit_error_pct")
    return [("step-time profile", profile.get("name"), PROFILE_LABEL.get(source, source)),
            ("profile source", source,
             "measured-operators | measured | fitted-roofline | roofline"),
            ("profile calibration error (%)", "not measured" if error is None else
             f"{error:.3g}", "measured against timings" if error is not None else "unknown"),
            ("latencies, throughput, costs", "simulated",
             f"modelled with the {PROFILE_LABEL.get(source, source)} step times")]


def _sweep(results: Results) -> tuple[Section, Section, Section]:
    s, manifest, rows = results.summary, results.manifest, results.rows
    # A sweep's Results carry both (`load._sweep` refuses a folder without either).
    assert s is not None and manifest is not None
    config = manifest.get("scenario_config", {})
    slo = {"percentile": 99, **config.get("slo", {})}
    point, feasible = analysis.recommended_point(s)
    base = point["usd_per_million_tokens"]["blended"]["p50"]
    sampled = [k for k in s["uncertainty"] if rows and k in rows[0]]
    swings = analysis.tornado(rows, sampled, base) if base is not None else []
    where = narrative.point_words(s, point)

    head = Section(SECTIONS[0], narrative.sweep_summary(s, config, point, feasible, swings))
    head.blocks.append(Table("sweep_points.csv", "Every swept point (medians over replications)",
                             ["point", *s["sweep"]["keys"], "P50 $/1M", "P5 $/1M", "P95 $/1M",
                              "TTFT p99 (ms)", "TPOT p99 (ms)", "P(SLO met)", "feasible"],
                             [[p["point"], *(p[k] for k in s["sweep"]["keys"]),
                               *(p["usd_per_million_tokens"]["blended"][q]
                                 for q in ("p50", "p5", "p95")),
                               _ms(p["ttft_p99_s"]["p50"]), _ms(p["tpot_p99_s"]["p50"]),
                               p["slo_met_probability"], p["slo_feasible"]]
                              for p in s["points"]]))

    charts = Section(SECTIONS[1], [
        _chart("cost_vs_load.png", "Blended cost per 1M tokens at each swept point: median "
               "with P25–P75 and P5–P95 bands over replications; shaded points meet the SLO "
               f"with P ≥ {s['slo_confidence']:.0%}.", cost_figure(s)),
        _chart("latency_vs_load.png", "TTFT and TPOT p99 at each point (median and P5–P95 "
               "over replications) against the SLO (dashed).", figures.latency_vs_load(s, slo)),
        _chart("latency_cdf.png", "Distribution over replications of each run's p99 latency, "
               "per point: the share of runs left of the SLO line is P(SLO met) for that "
               "metric. runs.csv holds per-run percentiles, not per-request latencies.",
               figures.latency_cdf_sweep(s, rows, slo))])
    if swings:
        charts.blocks.append(_chart(
            "tornado.png", f"How much each uncertain input moves the P50 blended cost at {where}:"
            " slope of a regression of log cost on that input alone, with a fixed effect per "
            f"swept point, pooled over all {len(rows)} runs; bars span the cost with the input "
            "at its P5 and its P95 sampled value (the others as sampled).",
            figures.tornado_chart(swings, base, where)))
        charts.blocks.append(Table("tornado.csv", "Tornado: P50 cost at each input's P5 and P95",
                                   ["input", "P5 value", "P95 value", "$/1M at P5",
                                    "$/1M at P95"],
                                   [[w.key, w.low_value, w.high_value, w.usd_at_low,
                                     w.usd_at_high] for w in swings]))
    run = analysis.median_run(rows, point["point"])
    if run is not None:
        by_item = {k.removeprefix("gpu_hour_usd_"): run[k] for k in run
                   if k.startswith("gpu_hour_usd_")}
        used = analysis.used_fraction(run)
        steps = analysis.waterfall(by_item, used, run["usd_per_million_blended"])
        if steps:
            charts.blocks.append(_chart(
                "cost_waterfall.png", f"Where the cost of the median run at {where} (run "
                f"{run['run']}) goes: each item of the GPU-hour charged to the delivered tokens; "
                f"ownership split into the capacity the tokens used ({used:.0%}) and the idle "
                "capacity (headroom).",
                figures.waterfall_chart(steps, "From GPU-hours to cost per 1M tokens")))
            charts.blocks.append(_waterfall_table(steps))

    profile = manifest.get("profile", {})
    assumptions = Section(SECTIONS[2], [
        _provenance_table([
            ("tokenfactory version", manifest.get("tokenfactory"), "software"),
            ("result format", manifest.get("format_version"), "software"),
            ("sweep written (UTC)", manifest.get("created_utc"), "date"),
            ("seed", s["seed"], "input"),
            ("replications per point", s["replications"], "input"),
            ("sampling of uncertain inputs", s["sampling"], "input"),
            ("required P(SLO met)", s["slo_confidence"], "input"),
            ("saturation throughput (req/s)", (s.get("capacity") or {}).get("requests_per_s"),
             "modelled (measured in simulation)"),
            *_profile_items(profile)]),
        _price_table(config.get("cost", {}), s["uncertainty"]),
        Table("uncertainty.csv", "Uncertain inputs (sampled once per replication)",
              ["key", "distribution"],
              [[k, ", ".join(f"{a} {b}" for a, b in v.items())]
               for k, v in s["uncertainty"].items()]),
        *[f"Note: {n}" for n in (*s.get("notes", []), *s.get("warnings", []))],
        Code("Scenario as run (from sweep.json; each run also sets its runs.csv columns)",
             "yaml", _yaml(config))])
    return head, charts, assumptions


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1e3, 1)


def _waterfall_table(steps: list[tuple[str, float]]) -> Table:
    return Table("cost_waterfall.csv", "Cost waterfall (USD per 1M tokens)", ["step", "usd"],
                 [[label, value] for label, value in steps]
                 + [["blended total", sum(v for _, v in steps)]])


# A run's prices per token kind, by each way of splitting the cost (rows), if it has them.
PRICE_SPLITS = (("usd_per_million_tokens", "phase-time split"),
                ("usd_per_million_tokens_at_capacity", "at full load"),
                ("usd_per_million_tokens_capacity_split", "full-load split, idle pro rata"))
TOKEN_KINDS = ("input", "cached_input", "output", "blended")


def _token_kind_table(cost: dict[str, Any]) -> Table:
    """$/1M per token kind for a run with a prefix cache, where cached input is a kind of
    its own (blended counts cached tokens as delivered tokens; the full-load split has no
    blended: it is the run's blended price)."""
    return Table("cost_by_token_kind.csv", "Cost per 1M tokens by token kind (USD)",
                 ["split", "input (fresh)", "cached input", "output", "blended"],
                 [[label, *(cost[key].get(kind) for kind in TOKEN_KINDS)]
                  for key, label in PRICE_SPLITS if isinstance(cost.get(key), dict)])


POOL_COLUMNS = (("name", "pool"), ("gpu", "GPU"), ("replicas", "replicas"), ("gpus", "GPUs"),
                ("usd_per_hour", "USD/hour"), ("requests_measured", "requests"),
                ("busy_fraction", "busy"), ("ttft_p99_s", "TTFT p99 (s)"),
                ("tpot_p99_s", "TPOT p99 (s)"))


def _pools_table(pools: list[dict[str, Any]]) -> Table:
    """A heterogeneous fleet's pools: what each costs and serves, and its own latencies
    (a fleet-wide percentile can hide a pool that serves few requests)."""
    return Table("pools.csv", "Pools of the fleet", [title for _, title in POOL_COLUMNS],
                 [[pool.get(key) for key, _ in POOL_COLUMNS] for pool in pools])


def _run(results: Results) -> tuple[Section, Section, Section]:
    run = results.run
    assert run is not None  # a run's Results carry it (`load.from_run_data`)
    cost = run["cost"]
    head = Section(SECTIONS[0], narrative.run_summary(run))
    lat = run["latency_s"]
    head.blocks.append(Table("latency.csv", "Latency (seconds)",
                             ["metric", "mean", "p50", "p90", "p99"],
                             [[k, *(lat[k].get(q) for q in ("mean", "p50", "p90", "p99"))]
                              for k in ("ttft", "tpot", "itl", "e2e", "queue") if k in lat]))
    if "cached_input" in cost.get("usd_per_million_tokens", {}):  # a run with a prefix cache
        head.blocks.append(_token_kind_table(cost))
    if "pools" in run:  # a heterogeneous fleet
        head.blocks.append(_pools_table(run["pools"]))
    charts = Section(SECTIONS[1], [_chart(
        "latency_cdf.png", "Latency distributions drawn from the p50, p90 and p99 in the run's "
        "JSON (it stores no per-request latencies), with the SLO targets dashed; the dotted "
        "line is the SLO percentile.", figures.latency_cdf_run(run))])
    blended = cost["usd_per_million_tokens"]["blended"]
    used = analysis.used_fraction(run["utilization"])
    steps = analysis.waterfall(cost.get("gpu_hour_usd_by_item", {}), used, blended) \
        if blended is not None else []
    if steps:
        charts.blocks.append(_chart(
            "cost_waterfall.png", "Where the cost goes: each item of the GPU-hour charged to "
            f"the delivered tokens; ownership split into the capacity the tokens used "
            f"({used:.0%}) and the idle capacity (headroom).",
            figures.waterfall_chart(steps, "From GPU-hours to cost per 1M tokens")))
        charts.blocks.append(_waterfall_table(steps))
    prov = run.get("provenance", {})
    config = prov.get("scenario", {})
    assumptions = Section(SECTIONS[2], [
        _provenance_table([
            ("tokenfactory version", prov.get("tokenfactory"), "software"),
            ("result format", prov.get("format_version"), "software"),
            ("run written (UTC)", prov.get("created_utc", "not recorded"), "date"),
            ("seed", run.get("seed"), "input"),
            ("simulation mode", run["sim"].get("mode"), "software"),
            ("step_time_scale", run["profile"].get("step_time_scale"), "input"),
            *_profile_items(run["profile"])]),
        _price_table(config.get("cost", {}), {}),
        Code("Scenario as run (validated, defaults filled in)", "yaml", _yaml(config))])
    return head, charts, assumptions


def _plan(results: Results) -> tuple[Section, Section, Section]:
    plan = results.plan
    assert plan is not None  # a plan's Results carry it (`load._plan`)
    confidence = (plan.get("target") or {}).get("confidence")
    head = Section(SECTIONS[0], narrative.plan_summary(plan, confidence))
    head.blocks.append(Table(
        "plan_options.csv", "Every option in every period",
        ["period", "option", "recommended", "replicas", "split", "gpus", "usd_per_month",
         "slo_met_probability", "ci_low", "ci_high", "draws"],
        [[p["period"], o["option"], o is analysis.recommended_option(p),
          o["replicas"], o.get("split") or pools_words(o.get("pools")), o["gpus"],
          o["usd_per_month"],
          o["slo_met_probability"],
          *(o.get("slo_met_probability_ci") or (None, None)), o.get("draws")]
         for p in plan["periods"] for o in p["options"]]))
    charts = Section(SECTIONS[1], [
        _chart("fleet_plan.png", "GPUs and monthly cost of the recommended option per period"
               + (", with the forecast peak arrival rate" if any(
                   "peak_rate_per_s" in p for p in plan["periods"]) else "") + ".",
               figures.fleet_plan_chart(plan)),
        _chart("option_comparison.png", "Monthly cost of every option per period; the label "
               "over each bar is its P(SLO met).", figures.option_chart(plan, confidence))])
    for name, png in results.figures.items():
        charts.blocks.append(Chart(f"plan_{name}", f"{name}, as written by tokenfactory plan.",
                                   png))
    items = [("tokenfactory version (plan)", plan.get("tokenfactory", "not recorded"),
              "software"),
             ("result format", plan.get("format_version", "not recorded"), "software"),
             ("required P(SLO met)", confidence, "input")]
    assumptions = Section(SECTIONS[2], [_provenance_table(items)])
    if isinstance(plan.get("profile"), dict):
        assumptions.blocks[0].rows.extend(list(i) for i in _profile_items(plan["profile"]))
    if isinstance(plan.get("scenario_config"), dict):
        config = plan["scenario_config"]
        assumptions.blocks += [_price_table(config.get("cost", {}), {}),
                               Code("Scenario as run", "yaml", _yaml(config))]
    else:
        assumptions.blocks.append("plan.json carries no scenario or prices; see the scenario "
                                  "file the plan was made from.")
    return head, charts, assumptions


def cell_text(value: Any) -> str:
    """Table cells: floats to four significant digits, booleans as yes/no, None as —."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
