"""What `tokenfactory plan` prints: the target, each option's capacity, one line per period
and option (the recommended one marked *), the search's cost and the reserved/on-demand mix
(text only; the CLI decides where it goes). Option, period and scenario names and the
notes are shown `printable` (the table does it for its cells). A disaggregated option's
fleet shows as its split, prefill and decode replicas: `1P:2D`; a heterogeneous one's as
each pool's replicas: `2 chat + 1 documents`."""

from __future__ import annotations

from typing import Any

from sim.report.text import DASH, Column, or_dash, printable, printable_strings, table, usd

PLAN_COLUMNS = (
    Column("period", "<"), Column("peak/s"), Column("option", "<"), Column("replicas"),
    Column("GPUs"), Column("$/month"), Column("$/1M p50"), Column("$/1M p95"), Column("util"),
    Column("P(SLO)"), Column("95% CI"), Column("draws"), Column("tried", "<"), Column("runs"),
)


def interval_text(interval: list[float] | None) -> str:
    """A 95% interval of a probability as low–high percent, to one decimal: a lower end of
    94.6% must not print as 95%."""
    if interval is None:
        return DASH
    return f"{interval[0]:.1%}–{interval[1]:.1%}"


def format_table(document: dict[str, Any]) -> str:
    """One line per period and option; the recommended option marked with *."""
    cells = []
    for period in document["periods"]:
        for e in period["options"]:
            cost = e.get("usd_per_million_tokens") or {}
            mark = "*" if e["option"] == period["recommended"] else " "
            cells.append([
                period["period"], f"{period['peak_rate_per_s']:.4g}", mark + e["option"],
                e.get("split") or pools_words(e.get("pools")) or or_dash(e["replicas"]),
                or_dash(e["gpus"]),
                usd(e["usd_per_month"], 0),
                usd(cost.get("p50")), usd(cost.get("p95")),
                or_dash((e.get("utilization") or {}).get("peak"), ".0%"),
                or_dash(e["slo_met_probability"], ".1%"),
                interval_text(e.get("slo_met_probability_ci")), or_dash(e.get("draws")),
                _tried_text(e["search"]["fleets_tried"]),
                str(e["search"]["simulations"] + e["search"]["average_load_simulations"]),
            ])
    return "\n".join(table(PLAN_COLUMNS, cells))


def describe(document: dict[str, Any]) -> str:
    """The whole printed plan: target and options, the table, the search, the mix, notes."""
    t = document["target"]
    search = document["search"]
    run = document["run"]
    lines = [f"plan {printable(str(document['scenario']))} (seed {document['seed']}): "
             f"P(SLO met at peak) ≥ {t['confidence']:.0%} by a sequential test on up to "
             f"{t['draws']} draws, or {t.get('max_draws', t['draws'])} when close; SLO TTFT ≤ "
             f"{t['slo']['ttft_s']} s, TPOT ≤ {t['slo']['tpot_s']} s at "
             f"p{t['slo']['percentile']:g}; runs of {run['duration_s']:g} s "
             f"({_warmup_text(run)})"]
    for option in map(printable_strings, document["options"]):
        lines.append(f"  {option['option']}: {_deployment_text(option)}")
    lines += ["", format_table(document), "",
              f"search: {search['simulations']} runs to size, {search['average_load_simulations']}"
              f" at the average load, {search['capacity_probes']} capacity probes "
              "(* = recommended, the cheapest feasible option)"]
    for m in map(printable_strings, document["mix"]):
        lines.append(f"mix {m['option']}: reserve {m['reserved_gpus']} GPUs, rest on demand: "
                     f"{usd(m['usd_total'], 0)} over the forecast (all on demand "
                     f"{usd(m['usd_all_on_demand'], 0)}, all reserved "
                     f"{usd(m['usd_all_reserved'], 0)}); break-even utilisation "
                     f"{m['break_even_utilization']:.0%}")
    lines += [f"note: {printable(str(note))}" for note in document["notes"]]
    return "\n".join(lines)


SPLITS_SHOWN = 4  # a split search tries more fleets than a table cell shows
TRIED_WIDTH = 40  # characters of named fleets (`chat:2+documents:1`) a cell shows


def pools_words(pools: dict[str, int] | None) -> str | None:
    """`2 chat + 1 documents`: a heterogeneous fleet's replicas per pool (None: no pools)."""
    if not pools:
        return None
    return " + ".join(f"{n} {name}" for name, n in pools.items())


def _tried_text(tried: list[Any]) -> str:
    """The fleet sizes tried; a long split search (`1P:2D`, `chat:2+documents:1`, ...) by
    its count and last."""
    text = ",".join(str(n) for n in tried)
    if any(isinstance(f, str) for f in tried) and (len(tried) > SPLITS_SHOWN
                                                   or len(text) > TRIED_WIDTH):
        noun = "splits" if "P:" in str(tried[-1]) else "fleets"
        return f"{len(tried)} {noun}, last {tried[-1]}"
    return text


def _deployment_text(option: dict[str, Any]) -> str:
    """One option's replica (each pool's, when disaggregated) and its capacity."""
    cap = option["capacity_per_replica"]
    pools = option.get("pools")
    if pools is not None and option.get("pool_split") is not None:
        each = "; ".join(
            f"{name} {pool['gpus_per_replica']} × {pool['gpu']}, {pool['dtype']}"
            + ("" if pool.get("max_prompt_tokens") is None
               else f", prompts ≤ {pool['max_prompt_tokens']:,}")
            + f", {cap['pools'][name]['share']:.1%} of requests, capacity (closed form) "
            f"{cap['pools'][name]['requests_per_s']:.4g} req/s per replica"
            for name, pool in pools.items())
        return f"pools split by {option['pool_split']}: {each}"
    if pools is None:
        return (f"{option.get('gpus_per_replica', option['tensor_parallel'])} × "
                f"{option['gpu']}, {option['dtype']}, {option['scheduler']}; capacity "
                f"{cap['requests_per_s']:.4g} req/s per replica")
    each = "; ".join(f"{role} {pool['gpus_per_replica']} × {pool['gpu']}, {pool['dtype']}"
                     for role, pool in pools.items())
    if option.get("split") == "ratio":
        return (f"disaggregated, {each}; in units of {option.get('unit')}, capacity "
                f"{cap['requests_per_s']:.4g} req/s per unit")
    return (f"disaggregated, {each}; split searched, capacity per replica (closed form) "
            f"prefill {cap['prefill']['requests_per_s']:.4g} req/s, decode "
            f"{cap['decode']['requests_per_s']:.4g} req/s")


def _warmup_text(run: dict[str, Any]) -> str:
    """`auto` (each run detects its own) or the seconds; older plans have only warmup_s."""
    warmup = run.get("warmup", run["warmup_s"])
    return "warm-up detected per run" if warmup == "auto" else f"{warmup:g} s warm-up"
