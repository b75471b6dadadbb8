"""The human-readable summary of one run (text only; the CLI decides where it goes).

Names from the scenario (its own, inline models' and GPUs', a profile file's) are shown
`printable`: a terminal must not obey what a scenario file holds."""

from __future__ import annotations

from typing import Any

from sim.report.text import (
    Column,
    layout_words,
    ms,
    or_dash,
    plain_tp,
    printable,
    printable_strings,
    table,
    usd,
)

LATENCY_COLUMNS = (Column("latency (ms)", "<", 14), *(Column(t, ">", 10)
                                                      for t in ("mean", "p50", "p90", "p99")))


def format_summary(d: dict[str, Any]) -> str:
    req, lat, thr = d["requests"], d["latency_s"], d["throughput"]
    util, slo, cost, fleet = d["utilization"], d["slo"], d["cost"], d["fleet"]
    prof, fleet = printable_strings(d["profile"]), printable_strings(fleet)
    per_m = cost["usd_per_million_tokens"]
    per_replica = fleet.get("gpus_per_replica", fleet["tensor_parallel"])
    layout = "" if plain_tp(fleet) else f" ({layout_words(fleet)})"
    shape = (f"{fleet['replicas']} × {fleet['model']} on {per_replica} × {fleet['gpu']}"
             f"{layout}" if "pools" not in d else
             f"{fleet['replicas']} × {fleet['model']} in {len(d['pools'])} pools (below)")
    lines = [
        f"scenario {printable(str(d['scenario']))}  (seed {d['seed']}, {d['sim']['mode']})",
        f"fleet    {shape}  = {fleet['gpus']} GPUs, {fleet['scheduler']}, router "
        f"{fleet['router']}",
        f"profile  {prof['name']} ({prof['source']}"
        + ("" if prof["fit_error_pct"] is None else f", fit error {prof['fit_error_pct']:.1f}%")
        + f")   KV cache "
        f"{fleet['kv_capacity_tokens_per_replica']:,} tokens per replica",
        "",
        f"requests arrived {req['arrived']:,}  completed {req['completed']:,}  "
        f"unfinished {req['unfinished']:,}  rejected {req['rejected']:,}  "
        f"preemptions {req['preempted']:,}",
        f"         measured after warm-up: {req['measured']:,}",
    ]
    capped = {k: v for k, v in req["capped"].items() if v}
    if capped:
        lines.append("         capped at max_tokens: "
                     + ", ".join(f"{k} {v:,}" for k, v in capped.items()))
    # ITL (every gap between two tokens) is absent from results older than it.
    latency = [[label, *(ms(lat[key][stat]) for stat in ("mean", "p50", "p90", "p99"))]
               for key, label in (("ttft", "TTFT"), ("tpot", "TPOT"), ("itl", "ITL"),
                                  ("e2e", "E2E"), ("queue", "queue")) if key in lat]
    lines += ["", *table(LATENCY_COLUMNS, latency, gap=0)]
    attainment = slo["attainment"]
    verdict = {True: "MET", False: "MISSED", None: "not judged (no request measured)"}
    lines += [
        "",
        f"throughput   {thr['requests_per_s']:,.2f} req/s   {thr['input_tokens_per_s']:,.0f} input "
        f"tok/s   {thr['output_tokens_per_s']:,.0f} output tok/s",
        f"utilisation  GPU busy {util['busy_fraction']:.1%}   mean batch "
        f"{util['batch_size_mean']:.1f}   KV cache {util['kv_cache_fraction_mean']:.1%}",
        *_headroom(util),
        *_prefix_cache(d),
        *_speculative(d),
        *_disaggregation(d),
        *_pools(d),
        _slo_line(slo, verdict)
        + ("" if attainment is None else f"   ({attainment:.2%} of requests within "
           + ("all)" if slo.get("itl_s") is not None else "both)")),
        "",
        f"cost         fleet {usd(cost['fleet_usd_per_hour'])}/hour",
        f"             per 1M tokens: input {usd(per_m['input'])}{_cached(per_m)}   output "
        f"{usd(per_m['output'])}   blended {usd(per_m['blended'])}",
        f"             per 1M tokens within the SLO (goodput): {usd(per_m['goodput'])}"
        + ("" if cost["energy_j_per_token"] is None
           else f"   energy {cost['energy_j_per_token']:.3f} J/token"),
        *_capacity_prices(cost),
        "",
        f"simulated in {d['sim']['wall_s']:.2f} s wall ({d['sim']['events']:,} events)",
    ]
    fleet_line = _fleet_changes(d)
    if fleet_line:
        lines[-2:-2] = ["", *fleet_line]
    return "\n".join(lines)


def _slo_line(slo: dict[str, Any], verdict: dict[bool | None, str]) -> str:
    """The targets and the joint verdict; an ITL target is on each request's longest gap."""
    if slo.get("itl_s") is None:
        targets = f"TTFT ≤ {slo['ttft_s']} s and TPOT ≤ {slo['tpot_s']} s"
    else:
        targets = (f"TTFT ≤ {slo['ttft_s']} s, TPOT ≤ {slo['tpot_s']} s and longest gap "
                   f"≤ {slo['itl_s']} s")
    return f"SLO          {targets} at p{slo['percentile']:g}: {verdict[slo['met']]}"


def _headroom(util: dict[str, Any]) -> list[str]:
    """Load against capacity and how hard the GPUs worked (results written before these
    keys existed show nothing)."""
    if "load_fraction" not in util:
        return []
    capacity = util["capacity_requests_per_s"]
    return [f"headroom     load {or_dash(util['load_fraction'], '.1%')} of capacity "
            f"({util['offered_requests_per_s']:,.2f} offered of "
            f"{or_dash(capacity, ',.2f')} req/s at full load)   "
            f"MFU {or_dash(util['mfu'], '.1%')}   MBU {or_dash(util['mbu'], '.1%')}"]


def _capacity_prices(cost: dict[str, Any]) -> list[str]:
    """The full-load prices (compare these with API prices) and the window's cost split by
    full-load GPU time."""
    at, split = (cost.get("usd_per_million_tokens_at_capacity"),
                 cost.get("usd_per_million_tokens_capacity_split"))
    if at is None or split is None:
        return []
    return [f"             per 1M tokens at full load: input {usd(at['input'])}{_cached(at)}"
            f"   output {usd(at['output'])}   all tokens {usd(at['blended'])}",
            f"             split by full-load GPU time, idle pro rata: input "
            f"{usd(split['input'])}{_cached(split)}   output {usd(split['output'])}"]


def _cached(prices: dict[str, Any]) -> str:
    """The cached-input price beside the input one, where the run had a prefix cache."""
    return f"   cached input {usd(prices['cached_input'])}" if "cached_input" in prices else ""


def _prefix_cache(d: dict[str, Any]) -> list[str]:
    """What the prefix cache reused (requests whose prefill completed in the window) and
    evicted (whole run); nothing for a run without one."""
    cache = d.get("prefix_cache")
    if cache is None or not cache.get("enabled", True):
        return []
    return [f"prefix cache hit ratio {or_dash(cache['hit_ratio'], '.1%')} of prompt tokens "
            f"({cache['hit_tokens']:,} reused in the window)   evicted "
            f"{cache['evicted_blocks']:,} blocks (whole run)"]


def _speculative(d: dict[str, Any]) -> list[str]:
    """Speculative decoding's settings and tokens per step; nothing for a run without it."""
    spec = d.get("speculative")
    if spec is None:
        return []
    draft = f" ({printable(str(spec['draft_model']))})" if "draft_model" in spec else ""
    rates = printable(str(spec["acceptance_rate"]))
    return [f"speculative  {printable(str(spec['method']))}{draft}, {spec['num_tokens']} draft "
            f"tokens a step at acceptance {rates}: {spec['tokens_per_step']:.3f} tokens per "
            "decode step"]


def _disaggregation(d: dict[str, Any]) -> list[str]:
    """A line per pool of a disaggregated fleet and one for the KV moved between them
    (the fleet line above describes the decode pool); nothing for an aggregated fleet."""
    block = d.get("disaggregation")
    if block is None:
        return []
    lines = [f"{role + ' pool':<13}{p['replicas']:,} replicas, "
             f"{p['gpus']:,} GPUs: busy {p['busy_fraction']:.1%}   mean batch "
             f"{p['batch_size_mean']:.1f}   KV cache {p['kv_cache_fraction_mean']:.1%}"
             for role, p in ((role, block[role]) for role in ("prefill", "decode"))]
    moved = block["kv_transfer"]
    return [*lines, f"KV transfer  mean {ms(moved['mean_s'], 2)} ms   p99 "
            f"{ms(moved['p99_s'], 2)} ms   {moved['bytes'] / 1e9:,.1f} GB moved (whole run)"]


def _pools(d: dict[str, Any]) -> list[str]:
    """A line per pool of a heterogeneous fleet: its GPUs, price, the requests it served and
    their latencies (the fleet line above describes the first pool); nothing otherwise."""
    lines = []
    for p in d.get("pools", ()):
        price = "" if p["usd_per_hour"] is None else f" (${p['usd_per_hour']:,.2f}/h)"
        label = "pool " + printable(str(p["name"]))
        lines.append(
            f"{label:<12} {p['replicas']:,} × "
            f"{printable(str(p['gpu']))}, {p['gpus']:,} GPUs{price}: "
            f"{p['requests_measured']:,} requests   busy {p['busy_fraction']:.1%}   TTFT p99 "
            f"{ms(p['ttft_p99_s'], 1)} ms   TPOT p99 {ms(p['tpot_p99_s'], 2)} ms")
    return lines


def _fleet_changes(d: dict[str, Any]) -> list[str]:
    """Availability and what moved, for a fleet that changed during the run (else nothing)."""
    a = d["availability"]
    events = {"failures": a["failures"], "spot preemptions": a["spot_preemptions"],
              "outages": a["outages"], "scale-ups": a["scale_ups"],
              "scale-downs": a["scale_downs"]}
    if not any(events.values()):
        return []
    happened = ", ".join(f"{n} {name}" for name, n in events.items() if n)
    fraction = or_dash(a["fraction"], ".2%")
    requeued = d["requests"]["requeued"]
    within = d["slo"]["attainment_requeued"]
    return [f"fleet        availability {fraction}   replicas serving "
            f"{a['replicas_working_mean']:.2f}, paid for {a['replicas_billed_mean']:.2f} on "
            f"average ({happened})",
            f"             {requeued:,} re-queued from replicas that went away"
            + ("" if within is None else f"   ({within:.2%} of those within the SLO)")]
