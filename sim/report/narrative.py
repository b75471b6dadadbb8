"""The executive summary: a few sentences filled in from the numbers (templates, no model),
saying what to buy, what a token costs, how likely the SLO is to hold and what could break."""

from __future__ import annotations

import copy
from typing import Any

from sim.report.analysis import Swing, recommended_option
from sim.report.plan_text import pools_words
from sim.report.text import layout_words, plain_tp


def usd(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"${value:,.{digits}g}"


def ms(value_s: float | None) -> str:
    return "—" if value_s is None else f"{value_s * 1e3:,.0f} ms"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _interval_words(option: dict[str, Any]) -> str:
    """How sure that probability is: its 95% interval and the draws behind it (plans written
    before intervals were reported have neither)."""
    ci, draws = option.get("slo_met_probability_ci"), option.get("draws")
    if not ci:
        return ""
    behind = "" if draws is None else f" from {draws} draws"
    return f" (95% interval {ci[0]:.1%}–{ci[1]:.1%}{behind})"


def slo_words(slo: dict[str, Any]) -> str:
    q = f"{slo.get('percentile', 99):g}"
    return f"TTFT p{q} ≤ {ms(slo.get('ttft_s'))} and TPOT p{q} ≤ {ms(slo.get('tpot_s'))}"


def fleet_words(config: dict[str, Any]) -> str:
    d = config.get("deployment", {})
    gpu, model = _name(config.get("gpu")), _name(config.get("model"))
    replicas = d.get("replicas", "?")
    plural = "" if replicas == 1 else "s"
    return f"{replicas} replica{plural} of {model} on {gpu} ({_parallel_words(d)})"


def _parallel_words(d: dict[str, Any]) -> str:
    """`tensor parallel 4`, or the whole layout when it is more than tensor parallelism."""
    return f"tensor parallel {d.get('tensor_parallel', 1)}" if plain_tp(d) \
        else layout_words(d)


def _name(entry: Any) -> str:
    return entry.get("name", "?") if isinstance(entry, dict) else str(entry)


def point_words(summary: dict[str, Any], point: dict[str, Any]) -> str:
    if summary["sweep"]["axis"] == "utilization":
        rate = point.get("workload.arrival.rate_per_s")
        extra = "" if rate is None else f" ({rate:.3g} req/s)"
        return f"{point['utilization']:.0%} utilisation{extra}"
    return ", ".join(f"{k} = {point[k]}" for k in summary["sweep"]["keys"])


def with_point(config: dict[str, Any], point: dict[str, Any],
               keys: list[str]) -> dict[str, Any]:
    """The scenario mapping with a grid point's key paths set, so the fleet it describes is
    the one that point ran (a grid may sweep deployment.replicas or gpu)."""
    result = copy.deepcopy(config)
    for key in keys:
        *parents, leaf = key.split(".")
        node = result
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = point[key]
    return result


def sweep_summary(summary: dict[str, Any], config: dict[str, Any], point: dict[str, Any],
                  feasible: bool, swings: list[Swing]) -> list[str]:
    if summary["sweep"]["axis"] == "grid":
        config = with_point(config, point, summary["sweep"]["keys"])
    blended = point["usd_per_million_tokens"]["blended"]
    confidence = summary["slo_confidence"]
    n = len(summary["points"])
    if feasible:
        lead = (f"Recommendation: run {fleet_words(config)} at {point_words(summary, point)}, "
                f"the cheapest of the {n} swept points at which the SLO ({slo_words(config['slo'])}"
                f") holds in at least {confidence:.0%} of replications.")
    else:
        lead = (f"No swept point meets the SLO ({slo_words(config['slo'])}) in {confidence:.0%} "
                f"of replications; the most reliable is {point_words(summary, point)}, where it "
                f"holds in {pct(point['slo_met_probability'])}. Add capacity or relax the SLO.")
    text = [lead,
            f"There a delivered 1M tokens (blended input and output) costs {usd(blended['p50'])} "
            f"at the median and {usd(blended['p95'])} at P95 (P5 {usd(blended['p5'])}), over "
            f"{point['runs']} replications with the uncertain inputs sampled; the SLO held in "
            f"{pct(point['slo_met_probability'])} of them."]
    text.append(_sweep_risk(summary, point, swings))
    return text


def _sweep_risk(summary: dict[str, Any], point: dict[str, Any], swings: list[Swing]) -> str:
    parts = []
    later = [p for p in summary["points"] if p["point"] > point["point"]]
    if summary["sweep"]["axis"] == "utilization" and later:
        nxt = later[0]
        parts.append(f"Main risk: demand above plan. At the next point, "
                     f"{point_words(summary, nxt)}, the SLO holds in only "
                     f"{pct(nxt['slo_met_probability'])} of replications (median p99: TTFT "
                     f"{ms(nxt['ttft_p99_s']['p50'])}, TPOT {ms(nxt['tpot_p99_s']['p50'])}).")
    if swings:
        top = swings[0]
        parts.append(f"Of the uncertain inputs, {top.key} moves the P50 cost most: from "
                     f"{usd(top.usd_at_low)} at its P5 ({top.low_value:.4g}) to "
                     f"{usd(top.usd_at_high)} at its P95 ({top.high_value:.4g}).")
    conv = point["convergence"]
    if conv["half_width_pct"] is None:
        parts.append(f"With {point['runs']} replications the median cost has no 95% "
                     "interval yet (at least 6 are needed): treat it as indicative.")
    elif not conv["converged"]:
        parts.append(f"The median cost is known to ±{conv['half_width_pct']:.1f}% (95%); "
                     f"about {conv['replications_for_2pct']} replications would give ±2%.")
    return " ".join(parts) if parts else "No point of the sweep is close to breaking the SLO."


def run_summary(run: dict[str, Any]) -> list[str]:
    slo, lat, cost = run["slo"], run["latency_s"], run["cost"]
    q = f"{slo.get('percentile', 99):g}"  # 99.0 → "99": the latency keys are p50, p90, p99
    f = run["fleet"]
    fleet = (f"{f['replicas']} replicas of {f['model']} on {f['gpus']} × {f['gpu']} "
             f"({_parallel_words(f)})")
    verdict = {True: "meets", False: "does not meet", None: "cannot be judged against"}
    ttft, tpot = lat["ttft"].get(f"p{q}"), lat["tpot"].get(f"p{q}")
    blended = cost["usd_per_million_tokens"]["blended"]
    text = [f"The fleet as configured, {fleet}, {verdict[slo['met']]} the SLO "
            f"({slo_words(slo)}): TTFT p{q} is {ms(ttft)} and TPOT p{q} {ms(tpot)}; "
            f"{pct(slo['attainment'])} of requests met both targets.",
            f"A delivered 1M tokens (blended) costs {usd(blended)} in this run "
            f"(input {usd(cost['usd_per_million_tokens']['input'])}"
            f"{_cached_words(cost['usd_per_million_tokens'])}, output "
            f"{usd(cost['usd_per_million_tokens']['output'])}); the fleet costs "
            f"{usd(cost['fleet_usd_per_hour'])} an hour. One run has one cost: its P50 is this "
            "number and it has no P95 — run a sweep for the spread.",
            *_prefix_cache_words(run),
            *_capacity_words(run)]
    margins = [(value / target, name) for value, target, name in
               ((ttft, slo.get("ttft_s"), f"TTFT p{q}"), (tpot, slo.get("tpot_s"), f"TPOT p{q}"))
               if value is not None and target]
    if margins:
        ratio, name = max(margins)
        text.append(f"Main risk: {name} is at {ratio:.0%} of its target, the tightest of the "
                    f"latency targets; {_load_words(run['utilization'])}, and the "
                    "simulated latencies are only as good as the step-time profile "
                    f"({run['profile']['source']}).")
    return text


def _load_words(util: dict[str, Any]) -> str:
    """How loaded the fleet was: offered load against its estimated capacity where the
    result has it (busy time alone says little under continuous batching)."""
    load = util.get("load_fraction")
    if load is None:
        return f"GPUs were busy {pct(util['busy_fraction'])} of the time"
    return (f"the offered load is {pct(load)} of the fleet's estimated capacity "
            f"({util['capacity_requests_per_s']:.4g} req/s at this mix), with MFU "
            f"{pct(util.get('mfu'))} and MBU {pct(util.get('mbu'))}")


def _cached_words(prices: dict[str, Any]) -> str:
    """The cached-input price after the input one, where the run had a prefix cache."""
    return f", cached input {usd(prices['cached_input'])}" if "cached_input" in prices else ""


def _prefix_cache_words(run: dict[str, Any]) -> list[str]:
    """What the prefix cache reused and evicted (nothing for a run without one)."""
    cache = run.get("prefix_cache")
    if cache is None or not cache.get("enabled", True):
        return []
    return [f"The prefix cache served {pct(cache['hit_ratio'])} of the prompt tokens of the "
            f"requests prefilled in the window ({cache['hit_tokens']:,} tokens not "
            f"prefilled again) and evicted {cache['evicted_blocks']:,} blocks over the run; "
            "a cached token is charged the prefill time its reuse still took (attention "
            "over the cached prefix), a fresh one the rest of the prefill time."]


def _capacity_words(run: dict[str, Any]) -> list[str]:
    """The full-load prices, the ones to hold against an API price list."""
    at = run["cost"].get("usd_per_million_tokens_at_capacity")
    used = run["utilization"].get("capacity_used_fraction")
    if at is None or used is None:
        return []
    return [f"Kept full, the same fleet would deliver 1M tokens for {usd(at['blended'])} "
            f"(input {usd(at['input'])}{_cached_words(at)}, output {usd(at['output'])}): "
            f"these are the prices to compare with an API's; this run used {pct(used)} of "
            "its capacity and pays for the rest as idle time."]


def _fleet_words(option: dict[str, Any]) -> str:
    """`3 replicas`, a disaggregated option's split: `1P:2D (prefill:decode replicas)`, or
    a heterogeneous one's pools: `3 replicas (2 chat + 1 documents)`."""
    split, pools = option.get("split"), pools_words(option.get("pools"))
    if split is not None:
        return f"{split} (prefill:decode replicas)"
    return f"{option['replicas']} replicas" + ("" if pools is None else f" ({pools})")


def plan_summary(plan: dict[str, Any], confidence: float | None) -> list[str]:
    picks = [(p, recommended_option(p)) for p in plan["periods"]]
    missing = [str(p["period"]) for p, o in picks if o is None]
    short = "" if not missing else (f"No option meets the SLO with the required confidence "
                                    f"(within the plan's replica limit) in: {', '.join(missing)}.")
    periods = [p for p, o in picks if o is not None]
    chosen = [o for _, o in picks if o is not None]
    if not chosen:
        return [short]
    lines = ["Recommendation, period by period: " + "; ".join(
        f"{p['period']}: {o['gpus']} GPUs as {_fleet_words(o)} of {o['option']}, "
        f"{usd(o['usd_per_month'], 6)}/month, P(SLO met) {pct(o['slo_met_probability'])}"
        f"{_interval_words(o)}"
        for p, o in zip(periods, chosen, strict=True)) + "."]
    first, last = chosen[0], chosen[-1]
    lines.append(f"Over {len(periods)} periods the fleet goes from {first['gpus']} to "
                 f"{last['gpus']} GPUs and from {usd(first['usd_per_month'], 6)} to "
                 f"{usd(last['usd_per_month'], 6)} a month.")
    costs = [o.get("usd_per_million_tokens") for o in chosen]
    cost_maps = [c for c in costs if isinstance(c, dict)]
    if len(cost_maps) == len(costs):
        lines.append("Cost per 1M tokens (P50 / P95): " + "; ".join(
            f"{p['period']} {usd(c.get('p50'))} / {usd(c.get('p95'))}"
            for p, c in zip(periods, cost_maps, strict=True)) + ".")
    else:
        lines.append("plan.json gives no cost per 1M tokens for its options, so none is "
                     "quoted here.")
    weakest_period, weakest = min(zip(periods, chosen, strict=True),
                                  key=lambda pair: pair[1]["slo_met_probability"])
    target = "" if confidence is None else f" against the {confidence:.0%} required"
    lines.append(f"Main risk: {weakest_period['period']}, where the recommended fleet meets the "
                 f"SLO with probability {pct(weakest['slo_met_probability'])}"
                 f"{_interval_words(weakest)}{target}; demand "
                 "above that period's forecast peak is not covered.")
    return [*lines, short] if missing else lines
