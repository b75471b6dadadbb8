"""A burst benchmark simulated as it ran: N prompts sent at once, timed until the last ends.

`benchmark_serving.py --num-prompts N --request-rate inf` (vLLM's `benchmarks/`) creates one
task per prompt without waiting between them, gathers them all, and reports output tokens
over `benchmark_duration`, the time from before the first send to after the last response.
So the throughput includes the ramp (every prompt queued at once, prefilled as the batch
admits them) and the tail: once fewer than `max_num_seqs` requests remain, the batch drains
down to the longest request alone, which with dataset lengths (ShareGPT replies run to
hundreds of tokens) can be much of the run. A steady overloaded queue (`simulate`) has
neither and overstates such a row.

The burst is a closed loop of N clients with no think time whose run ends (`duration_s`)
before any client could send a second request, drained until every request has finished.
TTFT is from the send (queue included), as the client measures it; TPOT per request.
"""

from __future__ import annotations

import numpy as np

import sim
from sim.errors import InputError
from sim.validation.mapping import RowSetup, Uncovered
from sim.validation.simulate import (
    Simulated,
    fitting_kv_tokens,
    latency_stats_ms,
    scenario_mapping,
)

SEND_WINDOW_S = 1e-6  # duration_s: every client sends its one request at t = 0


def burst_mapping(setup: RowSetup) -> dict:
    """The scenario of the burst: the row's deployment, `setup.concurrency` clients."""
    if setup.load != "burst" or setup.concurrency is None:
        raise Uncovered(f"load {setup.load!r} is not a burst")
    mapping = scenario_mapping(setup, 1.0, 0.0, SEND_WINDOW_S, None)
    mapping["workload"]["arrival"] = {"process": "closed", "concurrency": setup.concurrency,
                                      "think_time_s": 0}
    return mapping


def simulate_burst(setup: RowSetup) -> Simulated:
    """Run the burst (a `compare.Simulator` with the measured values unused: nothing to size);
    `Uncovered` when the model or a request does not fit."""
    fitting_kv_tokens(setup)
    try:
        result = sim.run(burst_mapping(setup), warn_window=False)
    except InputError as exc:
        raise Uncovered(f"scenario rejected: {exc}") from None
    return measure_burst(result)


def measure_burst(result: sim.Result) -> Simulated:
    """Output tokens over the time from the sends (t = 0) to the last finish; latencies of
    every request."""
    e, w = result.engine, result.workload
    done = np.isfinite(e.finish_s)
    if not done.any():
        raise Uncovered("the simulated burst finished no request")
    sent_s = w.arrival_s
    out = w.output_tokens
    with np.errstate(invalid="ignore"):
        tpot_s = np.where(done & (out > 1), (e.finish_s - e.first_token_s)
                          / np.maximum(out - 1, 1), np.nan)
    duration_s = float(e.finish_s[done].max() - sent_s.min())
    record = result.record
    admitted = int(np.isfinite(e.admit_s).sum())
    in_service_s = (e.finish_s - e.admit_s)[done]  # Little's law: mean requests admitted
    return Simulated(
        output_tokens_per_s=float(out[done].sum()) / duration_s,
        latency_ms={"ttft": latency_stats_ms(e.first_token_s - sent_s),
                    "tpot": latency_stats_ms(tpot_s)},
        profile_source=record.profile_source,
        batch_mean=float(in_service_s.sum()) / duration_s,
        preempted_share=record.requests_preempted / max(admitted, 1),
        unfinished=int((~done).sum()),
        saturated=True,  # a burst has no arrival process to run dry
        wall_s=result.timing.wall_s,
        roofline_operators=tuple(sorted(record.profile_details.get("fallbacks", {}))),
    )
