"""Simulating one plan the way its benchmark ran, and reading off comparable numbers.

Offline and closed-loop benchmarks keep the engine's batch full. The simulator is open-loop,
so both are approximated by *overload*: Poisson arrivals at a few times the rate the fleet can
serve, with `max_num_seqs` set to the row's batch (or concurrency) so the batch stays at that
size. The metrics window starts after the first batches have cycled (warm-up) and the run
continues after it (drain) so requests in flight at its end finish and can be counted.

Three measurements differ from the run summary's, for reasons specific to fixed-length
benchmarks:

* **Output tokens/s** counts tokens *emitted inside the window*, each request's tokens spread
  evenly between its first and last token. With fixed lengths, requests admitted together
  finish together, so counting finished requests (the summary's measure) would move in whole
  waves of a batch and misstate a window of a few batch lifetimes by up to one wave.
* **TTFT** under overload is measured from admission, not arrival: a closed-loop client sends
  its next request only when one finishes, so it never waits in a queue the open-loop run builds.
* **TPOT** is (last token − first token) / (output tokens − 1) per request, as everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import sim
from sim.errors import InputError
from sim.runner.build import kv_capacity
from sim.validation.mapping import RowSetup, Uncovered

OVERLOAD = 3.0  # arrival rate / estimated service rate for offline and closed-loop rows
COMPLETIONS = 3000  # requests the window should see finish (sampling error ~2%)
WINDOW_CYCLES = 6  # ... and at least this many lifetimes of a full batch
WARMUP_CYCLES = 2.0
DRAIN_CYCLES = 2.0
ATTEMPTS = 4  # reruns with a corrected load estimate when a run was not saturated
POISSON_MIN_WINDOW_S = 120.0
ASSUMED_TPOT_S = 0.02  # only to size the first attempt when no throughput was measured
SEED = 1


@dataclass(frozen=True)
class Simulated:
    """Numbers comparable with a measured row, and how they were obtained."""

    output_tokens_per_s: float
    latency_ms: dict[str, dict[str, float | None]]  # ttft|tpot → mean|p50|p99
    profile_source: str
    batch_mean: float  # time-weighted over busy time, prefill steps included
    preempted_share: float  # of admitted requests, evicted and recomputed at least once
    unfinished: int  # measured requests that never finished (left out of latencies)
    saturated: bool  # overloaded runs: work was still queued at the window's end
    wall_s: float
    roofline_operators: tuple[str, ...] = ()  # measured-operators model: those not measured

    def observed(self, max_num_seqs: int) -> str:
        """What the run did that explains its numbers: batch reached, preemptions."""
        text = f"sim: mean batch {self.batch_mean:.0f} of {max_num_seqs}"
        if self.preempted_share > 0:
            text += f", {self.preempted_share:.0%} preempted"
        if self.unfinished:
            text += f", {self.unfinished} measured requests unfinished"
        if not self.saturated:
            text += ", NOT saturated (arrivals ran out: throughput is a lower bound)"
        if self.roofline_operators:
            text += f", roofline for {', '.join(self.roofline_operators)} (no table)"
        return text


def simulate(setup: RowSetup, capacity_req_s: float | None) -> Simulated:
    """Run the set-up; `capacity_req_s` (the fleet's estimated request rate when saturated,
    e.g. measured output tokens/s ÷ output length) sizes the overload and the windows.

    Raises `Uncovered` when the model does not fit the GPUs or a request cannot fit the KV
    cache."""
    kv_tokens = fitting_kv_tokens(setup)
    if setup.load == "poisson":
        return _run_poisson(setup)
    capacity = capacity_req_s if capacity_req_s and capacity_req_s > 0 else 1.0
    wall_s = 0.0
    for _attempt in range(ATTEMPTS):
        batch = min(setup.max_num_seqs, max(kv_tokens // int(setup.mean_prompt_tokens + 17), 1))
        cycle_s = setup.replicas * batch / capacity
        warmup_s = WARMUP_CYCLES * cycle_s
        window_s = max(COMPLETIONS / capacity, WINDOW_CYCLES * cycle_s)
        mapping = scenario_mapping(setup, OVERLOAD * capacity, warmup_s, warmup_s + window_s,
                           DRAIN_CYCLES * cycle_s)
        result = _run(mapping, overloaded=True)
        wall_s += result.timing.wall_s
        tokens_per_s = _window_tokens_per_s(result)
        simulated_capacity = tokens_per_s / setup.mean_output_tokens
        saturated = _saturated(result)
        if not saturated:
            capacity *= 5.0  # the fleet kept up: the estimate was far too low
        elif simulated_capacity < 0.5 * capacity:
            capacity = simulated_capacity  # far slower than estimated: longer windows
        else:
            break
    return _summarise(result, tokens_per_s, from_admission=True, wall_s=wall_s,
                      saturated=saturated)


def fitting_kv_tokens(setup: RowSetup) -> int:
    """A replica's KV capacity in tokens; `Uncovered` when the scenario is rejected, the
    model does not fit the GPUs or the longest request cannot fit the KV cache."""
    base = scenario_mapping(setup, rate_per_s=1.0, warmup_s=0.0, duration_s=1.0, drain_s=None)
    try:
        scenario = sim.load_scenario(base)
    except InputError as exc:
        raise Uncovered(f"scenario rejected: {exc}") from None
    try:
        kv_tokens = kv_capacity(scenario)
    except InputError as exc:
        raise Uncovered(f"model does not fit: {exc.expected}") from None
    longest = [_longest_tokens(spec) for spec in (setup.prompt_tokens, setup.output_tokens)]
    if None not in longest and sum(t for t in longest if t) + 17 > kv_tokens:
        raise Uncovered(f"one request needs more KV cache than a replica's {kv_tokens} tokens")
    return kv_tokens


def _longest_tokens(spec: dict) -> float | None:
    """The longest length a fixed or empirical-CDF spec can draw (None: unbounded)."""
    if spec.get("dist") == "fixed":
        return float(spec["value"])
    if spec.get("dist") == "empirical_cdf":
        return float(spec["cdf"][-1][0])
    return None


def _run_poisson(setup: RowSetup) -> Simulated:
    rate_per_s = setup.rate_per_s
    assert rate_per_s is not None  # the mapping gives Poisson rows their rate
    window_s = max(COMPLETIONS / rate_per_s, POISSON_MIN_WINDOW_S)
    warmup_s = 0.1 * window_s
    result = _run(scenario_mapping(setup, rate_per_s, warmup_s, warmup_s + window_s, None))
    return _summarise(result, _window_tokens_per_s(result), from_admission=False,
                      wall_s=result.timing.wall_s, saturated=True)


def _run(mapping: dict, overloaded: bool = False) -> sim.Result:
    """A plan the scenario layer rejects is a row this simulator cannot take, not bad input
    to the command: report it as skipped, with the scenario's own message. An `overloaded`
    run's queue grows on purpose, and so do its E2E times: no warning about its window."""
    try:
        return sim.run(mapping, warn_window=not overloaded)
    except InputError as exc:
        raise Uncovered(f"scenario rejected: {exc}") from None


def scenario_mapping(setup: RowSetup, rate_per_s: float, warmup_s: float, duration_s: float,
                     drain_s: float | None) -> dict:
    """The scenario of a set-up with Poisson arrivals (a sweep's closed loop replaces them)."""
    return {
        "name": setup.row_id,
        "seed": SEED,
        "duration_s": duration_s,
        "warmup_s": warmup_s,
        "drain_s": drain_s,
        "model": setup.model_ref,
        "gpu": setup.gpu,
        "profile": setup.profile,
        "deployment": {
            "replicas": setup.replicas,
            "tensor_parallel": setup.tensor_parallel,
            "data_parallel_attention": setup.data_parallel_attention,
            "expert_parallel": setup.expert_parallel,
            "engine": setup.engine,
            "dtype": setup.dtype,
            "kv_cache_dtype": setup.kv_cache_dtype,
            "scheduler": {"policy": setup.policy, "max_num_seqs": setup.max_num_seqs,
                          "max_batched_tokens": setup.max_batched_tokens},
            "router": "least-loaded",
            **({} if setup.gpu_memory_utilization is None
               else {"gpu_memory_utilization": setup.gpu_memory_utilization}),
        },
        "workload": {
            "arrival": {"process": "poisson", "rate_per_s": rate_per_s},
            "prompt_tokens": setup.prompt_tokens,
            "output_tokens": setup.output_tokens,
        },
        "slo": {"ttft_s": 60.0, "tpot_s": 1.0},
        "cost": {"gpu_hour_usd": 0.0},
    }


def _saturated(result: sim.Result) -> bool:
    """Requests were still waiting at the window's end: the batch was never short of work."""
    end_s = result.scenario.duration_s
    arrived = result.workload.arrival_s < end_s
    with np.errstate(invalid="ignore"):
        admitted = result.engine.admit_s < end_s
    return bool((arrived & ~admitted).any())


def _window_tokens_per_s(result: sim.Result) -> float:
    """Output tokens emitted in [warmup_s, duration_s), per second (see the module doc)."""
    start_s, end_s = result.scenario.warmup_s, result.scenario.duration_s
    e = result.engine
    done = np.isfinite(e.finish_s) & np.isfinite(e.first_token_s)
    first, last = e.first_token_s[done], e.finish_s[done]
    rest = result.workload.output_tokens[done] - 1
    first_in = ((first >= start_s) & (first < end_s)).sum()
    span = np.maximum(last - first, 1e-12)
    overlap = np.clip(np.minimum(last, end_s) - np.maximum(first, start_s), 0.0, None) / span
    overlap = np.where(last > first, overlap, 0.0)
    return float(first_in + (rest * overlap).sum()) / (end_s - start_s)


def _summarise(result: sim.Result, tokens_per_s: float, *, from_admission: bool,
               wall_s: float, saturated: bool) -> Simulated:
    start_s, end_s = result.scenario.warmup_s, result.scenario.duration_s
    e, w = result.engine, result.workload
    began = e.admit_s if from_admission else w.arrival_s
    with np.errstate(invalid="ignore"):
        chosen = (began >= start_s) & (began < end_s)
        ttft = (e.first_token_s - began)[chosen]
        out = w.output_tokens[chosen]
        tpot = np.where(out > 1, (e.finish_s[chosen] - e.first_token_s[chosen])
                        / np.maximum(out - 1, 1), np.nan)
    record = result.record
    admitted = int(np.isfinite(e.admit_s).sum())
    return Simulated(
        output_tokens_per_s=tokens_per_s,
        latency_ms={"ttft": latency_stats_ms(ttft), "tpot": latency_stats_ms(tpot)},
        profile_source=record.profile_source,
        batch_mean=record.batch_size_mean,
        preempted_share=record.requests_preempted / max(admitted, 1),
        unfinished=int((~np.isfinite(e.finish_s[chosen])).sum()),
        saturated=saturated,
        wall_s=wall_s,
        roofline_operators=tuple(sorted(record.profile_details.get("fallbacks", {}))),
    )


def latency_stats_ms(values_s: np.ndarray) -> dict[str, float | None]:
    finite = values_s[np.isfinite(values_s)] * 1000.0
    if finite.size == 0:
        return {"mean": None, "p50": None, "p99": None}
    p50, p99 = np.percentile(finite, (50, 99))
    return {"mean": float(finite.mean()), "p50": float(p50), "p99": float(p99)}


def capacity_estimate(setup: RowSetup, measured: dict[str, float]) -> float | None:
    """Requests per second the fleet serves when saturated, from what the row measured:
    its throughput, else its latencies at a known concurrency. Only sizes the first run."""
    if "output_tokens_per_s" in measured:
        return measured["output_tokens_per_s"] / setup.mean_output_tokens
    ttft = next((measured[k] for k in ("ttft_ms", "ttft_ms_median") if k in measured), None)
    if setup.concurrency and ttft:
        tpot_ms = next((measured[k] for k in ("tpot_ms", "tpot_ms_median") if k in measured),
                       ASSUMED_TPOT_S * 1000.0)
        per_request_s = (ttft + (setup.mean_output_tokens - 1) * tpot_ms) / 1000.0
        return setup.concurrency / per_request_s if per_request_s > 0 else None
    return None
