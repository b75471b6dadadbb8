"""A load sweep's concurrency point simulated as the closed loop it was measured as.

A sweep such as InferenceX's runs `benchmark_serving --max-concurrency N`: N clients, each
sending its next request when its last one finished. Approximating that by an overloaded
open queue (what `simulate` does for a table's rows) keeps the batch at N but loses what a
sweep is about: at low concurrency the batch is *not* full, and at high concurrency a client
waits in the server's queue, which the client's TTFT includes. So each point runs as a closed
loop of N clients with no think time, through the measured-row path's runner
(`silicon.run_closed_loop`: its warm-up and window in request lifetimes, its rerun when the
simulation turns out slower than the measured lifetime).

Measured the way the benchmark client measures, over the requests *sent* inside the window:
TTFT from the send (queueing included), TPOT = (last − first token) / (output tokens − 1)
per request, and output tokens/s by the renewal argument: each client's long-run rate is its
mean output tokens over its mean request lifetime, so the fleet's is N × Σ output tokens ÷
Σ lifetimes of the window's requests.
"""

from __future__ import annotations

import math

import numpy as np

import sim
from sim.validation.mapping import RowSetup, Uncovered
from sim.validation.silicon import run_closed_loop, window
from sim.validation.silicon_mapping import ASSUMED_TPOT_MS, ASSUMED_TTFT_MS, RowPlan, Skip
from sim.validation.simulate import Simulated, latency_stats_ms, scenario_mapping

TTFT_KEYS = ("ttft_ms", "ttft_ms_median")  # sizing only: the mean, else the median
TPOT_KEYS = ("tpot_ms", "tpot_ms_median")


def simulate_closed(setup: RowSetup, measured: dict[str, float]) -> Simulated:
    """The point's closed loop (a `compare.Simulator`); `Uncovered` when it cannot run."""
    concurrency = setup.concurrency
    if setup.load != "closed" or concurrency is None:
        raise Uncovered(f"load {setup.load!r} is not a closed loop")
    base = scenario_mapping(setup, 1.0, 0.0, 1.0, None)
    base["workload"]["arrival"] = {"process": "closed", "concurrency": concurrency,
                                   "think_time_s": 0}
    plan = RowPlan(setup.row_id, base, concurrency, math.ceil(setup.mean_prompt_tokens),
                   math.ceil(setup.mean_output_tokens), _lifetime_hint_s(setup, measured),
                   setup.assumptions)
    try:
        result = run_closed_loop(plan)
    except Skip as exc:
        raise Uncovered(str(exc)) from None
    return _measure(result, concurrency)


def _lifetime_hint_s(setup: RowSetup, measured: dict[str, float]) -> float:
    """One request's measured lifetime (assumed latencies where none was measured)."""
    ttft_ms = next((measured[k] for k in TTFT_KEYS if k in measured), ASSUMED_TTFT_MS)
    tpot_ms = next((measured[k] for k in TPOT_KEYS if k in measured), ASSUMED_TPOT_MS)
    return (ttft_ms + max(setup.mean_output_tokens - 1.0, 0.0) * tpot_ms) / 1000.0


def _measure(result: sim.Result, concurrency: int) -> Simulated:
    e, w = result.engine, result.workload
    chosen = window(result)
    if not chosen.any():
        raise Uncovered("the simulation finished no request in its metrics window")
    sent_s = w.arrival_s[chosen]
    first_s, finish_s = e.first_token_s[chosen], e.finish_s[chosen]
    out = w.output_tokens[chosen]
    tpot_s = np.where(out > 1, (finish_s - first_s) / np.maximum(out - 1, 1), np.nan)
    start_s, end_s = result.scenario.warmup_s, result.scenario.duration_s
    sent_in_window = (w.arrival_s >= start_s) & (w.arrival_s < end_s)
    record = result.record
    admitted = int(np.isfinite(e.admit_s).sum())
    return Simulated(
        output_tokens_per_s=concurrency * float(out.sum()) / float((finish_s - sent_s).sum()),
        latency_ms={"ttft": latency_stats_ms(first_s - sent_s), "tpot": latency_stats_ms(tpot_s)},
        profile_source=record.profile_source,
        batch_mean=record.batch_size_mean,
        preempted_share=record.requests_preempted / max(admitted, 1),
        unfinished=int((sent_in_window & ~np.isfinite(e.finish_s)).sum()),
        saturated=True,  # a closed loop has no queue to run dry: "NOT saturated" never applies
        wall_s=result.timing.wall_s,
        roofline_operators=tuple(sorted(record.profile_details.get("fallbacks", {}))),
    )

