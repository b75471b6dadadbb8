"""What `tokenfactory plan` writes: plan.json (the contract, extended) and plan.csv (one row
per period and option); the printed table is sim.report.plan_text's.

Per period and option: the fewest replicas (and GPUs) meeting the target, the fleet's
$/month (GPUs × $/GPU-hour × 730 h; for an autoscaled option the GPUs it kept provisioned
on average, at the average load when the forecast gives one, else at the peak), P50 and P95
of $/1M tokens over the draws at the peak (and at the average load), utilisation = rate ÷
(replicas × measured capacity per replica), P(SLO met) with its 95% interval and the draws
behind it (`sim.planning.runs`' rule), and the search's first guess, the fleet sizes it tried
(each with its verdict) and its runs. The recommended option is the cheapest feasible one.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import median
from typing import Any

from sim.montecarlo.stats import band
from sim.planning.forecast import Demand
from sim.planning.mix import HOURS_PER_MONTH
from sim.planning.sizing import OptionSizing, Sized

CSV_COLUMNS = (
    "period", "option", "recommended", "peak_rate_per_s", "average_rate_per_s", "replicas",
    "gpus", "usd_per_month", "usd_per_million_p50_peak", "usd_per_million_p95_peak",
    "usd_per_million_p50_average", "usd_per_million_p95_average", "utilization_peak",
    "utilization_average", "busy_fraction_peak", "slo_met_probability",
    "slo_met_probability_low", "slo_met_probability_high", "draws", "first_guess",
    "fleets_tried", "simulations",
)


def _cost_band(rows: Sequence[dict[str, Any]] | None) -> dict[str, float | None] | None:
    if not rows:
        return None
    b = band(row["usd_per_million_blended"] for row in rows)
    return {"p50": b["p50"], "p95": b["p95"]}


def option_entry(sizing: OptionSizing, sized: Sized) -> dict[str, Any]:
    option, n = sizing.option, sized.replicas
    per_replica = option.scenario.gpus_per_replica
    capacity = sizing.capacity.requests_per_s
    demand = sized.demand
    search = {"first_guess": sized.guess.replicas,
              "first_guess_by_utilization": sized.guess.by_utilization,
              "first_guess_by_waiting": sized.guess.by_waiting,
              "fleets_tried": list(sized.evaluated),
              "verdicts": [v.to_dict(n) for n, v in zip(sized.evaluated, sized.verdicts,
                                                        strict=True)],
              "simulations": sized.simulations,
              "average_load_simulations": sized.average_simulations}
    if n is None:
        return {"option": option.name, "replicas": None, "gpus": None, "usd_per_month": None,
                "slo_met_probability": None, "slo_met_probability_ci": None, "draws": None,
                "draws_met": None, "feasible": False, "search": search}
    peak, share = sized.peak_rows, sized.share
    assert share is not None  # sizing: a feasible fleet always has its verdict's share
    hour_usd = median(row["gpu_hour_usd"] for row in peak)
    if option.autoscaled:
        rows = sized.average_rows or peak
        gpus_paid = median(row["replicas_billed_mean"] for row in rows) * per_replica
    else:
        gpus_paid = n * per_replica
    average = demand.average_rate_per_s
    return {
        "option": option.name,
        "replicas": n,
        "gpus": n * per_replica,
        "usd_per_month": gpus_paid * hour_usd * HOURS_PER_MONTH,
        "slo_met_probability": share.probability,
        "slo_met_probability_ci": share.interval(),
        "draws": share.draws,
        "draws_met": share.met,
        "feasible": True,
        "gpu_hour_usd": hour_usd,
        "gpus_paid_mean": gpus_paid,
        "usd_per_million_tokens": _cost_band(peak),  # at the peak
        "usd_per_million_tokens_average": _cost_band(sized.average_rows),
        "utilization": {"peak": demand.peak_rate_per_s / (n * capacity),
                        "average": None if average is None else average / (n * capacity)},
        "busy_fraction_peak": median(row["busy_fraction"] for row in peak),
        "search": search,
    }


def periods_document(demands: Sequence[Demand],
                     sizings: Sequence[OptionSizing]) -> list[dict[str, Any]]:
    out = []
    for p, demand in enumerate(demands):
        entries = [option_entry(s, s.periods[p]) for s in sizings]
        feasible = [e for e in entries if e["feasible"]]
        best = min(feasible, key=lambda e: e["usd_per_month"], default=None)
        out.append({
            "period": demand.name,
            "peak_rate_per_s": demand.peak_rate_per_s,
            "average_rate_per_s": demand.average_rate_per_s,
            "peak_rate_band": dict(zip(("p5", "p50", "p95"), demand.peak_band, strict=True)),
            "recommended": None if best is None else best["option"],
            "options": entries,
        })
    return out


def csv_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for period in document["periods"]:
        for e in period["options"]:
            peak = e.get("usd_per_million_tokens") or {}
            average = e.get("usd_per_million_tokens_average") or {}
            util = e.get("utilization") or {}
            rows.append({
                "period": period["period"], "option": e["option"],
                "recommended": e["option"] == period["recommended"],
                "peak_rate_per_s": period["peak_rate_per_s"],
                "average_rate_per_s": period["average_rate_per_s"],
                "replicas": e["replicas"], "gpus": e["gpus"],
                "usd_per_month": e["usd_per_month"],
                "usd_per_million_p50_peak": peak.get("p50"),
                "usd_per_million_p95_peak": peak.get("p95"),
                "usd_per_million_p50_average": average.get("p50"),
                "usd_per_million_p95_average": average.get("p95"),
                "utilization_peak": util.get("peak"),
                "utilization_average": util.get("average"),
                "busy_fraction_peak": e.get("busy_fraction_peak"),
                "slo_met_probability": e["slo_met_probability"],
                "slo_met_probability_low": (e["slo_met_probability_ci"] or [None])[0],
                "slo_met_probability_high": (e["slo_met_probability_ci"] or [None, None])[1],
                "draws": e["draws"],
                "first_guess": e["search"]["first_guess"],
                "fleets_tried": " ".join(str(n) for n in e["search"]["fleets_tried"]),
                "simulations": e["search"]["simulations"],
            })
    return rows
