"""What `tokenfactory plan` writes: plan.json (the contract, extended) and plan.csv (one row
per period and option); the printed table is sim.report.plan_text's.

Per period and option: the fewest replicas (and GPUs) meeting the target, the fleet's
$/month (GPUs × $/GPU-hour × 730 h; for an autoscaled option the GPUs it kept provisioned
on average, at the average load when the forecast gives one, else at the peak), P50 and P95
of $/1M tokens over the draws at the peak (and at the average load), utilisation = rate ÷
(replicas × measured capacity per replica), P(SLO met) with its 95% interval and the draws
behind it (`sim.planning.runs`' rule), and the search's first guess, the fleet sizes it tried
(each with its verdict) and its runs. The recommended option is the cheapest feasible one.

A disaggregated option's entry says its split too: `split` ("1P:2D"), `prefill_replicas`,
`decode_replicas`, `prefill_gpus` and `decode_gpus` (`replicas` and `gpus` count both
pools); its fleets tried are splits, and its utilisation is the rate over what the split
delivers flat out (the slower pool's capacity). A split search's `first_guess` is both
pools' guesses together, `first_guess_split` the guess as a split, and the guess's two
parts the prefill pool's. An aggregated option's split keys are null.

A heterogeneous option's entry (`deployment.pools`) says each pool's replicas: `pools`
(`{chat: 2, documents: 1}`; null for any other option), and plan.csv's `pools` cell
`chat:2+documents:1`, as its fleets tried are written; `replicas` and `gpus` count every
pool, its utilisation is the rate over what the fleet delivers flat out (the rate at which
its first pool saturates, on its share of the prompts), `first_guess` is both pools'
guesses together, `first_guess_pools` each pool's, and the guess's two parts the first
pool's.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import median
from typing import Any

from sim.montecarlo.stats import band
from sim.planning.forecast import Demand
from sim.planning.mix import HOURS_PER_MONTH
from sim.planning.options import Fleet, Option, pools_text
from sim.planning.poolcapacity import PoolCapacity
from sim.planning.poolshares import PoolShares
from sim.planning.sizing import OptionSizing, Sized
from sim.planning.split import split_text

CSV_COLUMNS = (
    "period", "option", "recommended", "peak_rate_per_s", "average_rate_per_s", "replicas",
    "gpus", "usd_per_month", "usd_per_million_p50_peak", "usd_per_million_p95_peak",
    "usd_per_million_p50_average", "usd_per_million_p95_average", "utilization_peak",
    "utilization_average", "busy_fraction_peak", "slo_met_probability",
    "slo_met_probability_low", "slo_met_probability_high", "draws", "first_guess",
    "fleets_tried", "simulations", "split", "prefill_replicas", "decode_replicas", "pools",
)


def _cost_band(rows: Sequence[dict[str, Any]] | None) -> dict[str, float | None] | None:
    if not rows:
        return None
    b = band(row["usd_per_million_blended"] for row in rows)
    return {"p50": b["p50"], "p95": b["p95"]}


def _fleet_tried(option: Option, fleet: Fleet) -> int | str:
    pools = option.pools_of(fleet)
    if pools is not None:
        return pools_text(pools)
    split = option.split_of(fleet)
    if split is None:
        assert isinstance(fleet, int)  # an aggregated option's fleets are replicas
        return fleet
    return split_text(split)


def _verdict(option: Option, fleet: Fleet, verdict: Any) -> dict[str, Any]:
    pools = option.pools_of(fleet)
    if pools is not None:
        return {**verdict.to_dict(sum(pools.values())), "pools": pools}
    split = option.split_of(fleet)
    if split is None:
        return verdict.to_dict(fleet)
    return {**verdict.to_dict(sum(split)), "split": split_text(split),
            "prefill_replicas": split[0], "decode_replicas": split[1]}


def _split_keys(option: Option, fleet: Fleet | None) -> dict[str, Any]:
    split = None if fleet is None else option.split_of(fleet)
    if split is None:
        return dict.fromkeys(("split", "prefill_replicas", "decode_replicas", "prefill_gpus",
                              "decode_gpus"))
    gp, gd = option.pool_gpus
    return {"split": split_text(split), "prefill_replicas": split[0],
            "decode_replicas": split[1], "prefill_gpus": split[0] * gp,
            "decode_gpus": split[1] * gd}


def _capacity_per_s(sizing: OptionSizing, fleet: Fleet) -> float:
    """What the fleet delivers flat out (requests/s)."""
    if isinstance(sizing.capacity, PoolCapacity | PoolShares):
        assert isinstance(fleet, tuple)  # a searched split's capacity is its pools'
        return sizing.capacity.fleet_requests_per_s(fleet)
    assert isinstance(fleet, int)  # replicas, or units of a ratio option
    return fleet * sizing.capacity.requests_per_s


def option_entry(sizing: OptionSizing, sized: Sized) -> dict[str, Any]:
    option, n, fleet = sizing.option, sized.replicas, sized.fleet
    demand = sized.demand
    search = {"first_guess": sized.guess.replicas,
              "first_guess_by_utilization": sized.guess.by_utilization,
              "first_guess_by_waiting": sized.guess.by_waiting,
              "fleets_tried": [_fleet_tried(option, f) for f in sized.evaluated],
              "verdicts": [_verdict(option, f, v) for f, v in zip(sized.evaluated,
                                                                 sized.verdicts,
                                                                 strict=True)],
              "simulations": sized.simulations,
              "average_load_simulations": sized.average_simulations}
    if sized.second_guess is not None:  # a split search: `guess` is the first pool's
        guessed = (sized.guess.replicas, sized.second_guess.replicas)
        search["first_guess"] = sum(guessed)
        pools = option.pools_of(guessed)
        if pools is None:
            search["first_guess_split"] = split_text(guessed)
        else:
            search["first_guess_pools"] = pools
    if n is None or fleet is None:
        return {"option": option.name, "replicas": None, "gpus": None, "usd_per_month": None,
                "slo_met_probability": None, "slo_met_probability_ci": None, "draws": None,
                "draws_met": None, "feasible": False, **_split_keys(option, None),
                "pools": None, "search": search}
    peak, share = sized.peak_rows, sized.share
    assert share is not None  # sizing: a feasible fleet always has its verdict's share
    hour_usd = median(row["gpu_hour_usd"] for row in peak)
    gpus = option.gpus_of(fleet)
    split = option.split_of(fleet)
    if option.autoscaled:
        rows = sized.average_rows or peak
        gpus_paid = (median(row["replicas_billed_mean"] for row in rows)
                     * option.scenario.gpus_per_replica)
    else:
        gpus_paid = gpus
    average = demand.average_rate_per_s
    capacity = _capacity_per_s(sizing, fleet)
    return {
        "option": option.name,
        "replicas": n if split is None else sum(split),
        "gpus": gpus,
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
        "utilization": {"peak": demand.peak_rate_per_s / capacity,
                        "average": None if average is None else average / capacity},
        "busy_fraction_peak": median(row["busy_fraction"] for row in peak),
        **_split_keys(option, fleet),
        "pools": option.pools_of(fleet),
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
                "split": e.get("split"),
                "prefill_replicas": e.get("prefill_replicas"),
                "decode_replicas": e.get("decode_replicas"),
                "pools": None if e.get("pools") is None else pools_text(e["pools"]),
            })
    return rows
