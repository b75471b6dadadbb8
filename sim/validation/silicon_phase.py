"""A disaggregated row simulated as its benchmark ran: one profiling phase of a fixed number
of requests from a cold start, with TTFT ending where the client sees the first token.

**The profiling phase.** aiperf runs its warm-up requests, waits for every one of them to
return, and only then starts the profiling phase (aiperf `docs/tutorials/warmup.md`), so
the measured phase begins on an idle server with all N clients sending at once and ends
after its request count, `BENCHMARK_ROUNDS` × N (AIConfigurator's own TTFT correction for
these benchmarks is worked out for "N=10 batches": `sdk/picking.py`,
`_AUTOSCALE_TTFT_CORRECTION_FACTOR`). The statistic is the mean over those requests, the
first wave's included: its N prompts arrive together and queue for the prefill pool, whose
batch limit (`prefill_batch_size` per attention-DP rank, one in every row that states it)
lets few run at once, so the first waves' TTFT grows with N. The steady-state window the
aggregated rows are compared on (`sim.validation.silicon`) drops exactly that queue.

**Where the first token is.** In SGLang's disaggregated serving, and in Dynamo's for every
engine, the client's stream comes from the decode worker: the request reaches the client
only after its KV has crossed and the decode scheduler has merged it into its running batch
(SGLang `disaggregation/decode.py`: prealloc queue → transfer queue → prebuilt batch →
running batch; Dynamo "Disaggregated Serving": "transfers the KV cache to the decode
worker, then streams the response from decode"). So the simulated TTFT runs from the send
to the decode replica's admission (`EngineResult.decode_admit_s`), and TPOT, as aiperf
computes it, is (E2E − TTFT) / (OSL − 1): the decode side's own steps.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

import sim
from sim.errors import InputError
from sim.runner.build import kv_capacity, shortest_token_s
from sim.scenario.disaggregation import pool_kv_capacity
from sim.scenario.workload import ClosedArrivals
from sim.validation.silicon_mapping import RowPlan, Skip
from sim.workload import closed

BENCHMARK_ROUNDS = 10  # the profiling phase's requests ÷ its concurrency
ATTEMPTS = 3  # reruns, longer, when the clients sent fewer than the phase's requests
# A rerun whose closed-loop pool would hold more requests is not made (the pool is sized by
# the shortest step there is, far below a loaded step, so a simulated fleet much slower than
# the measured one asks for pools of tens of millions): the phase is cut to what was sent.
RERUN_POOL_REQUESTS = 4_000_000


@dataclass(frozen=True)
class Phase:
    """A simulated profiling phase: the run, and which of its rows the phase holds."""

    result: sim.Result
    measured: np.ndarray  # int: the rows of the first `requests` requests sent
    requests: int  # the phase's request count (BENCHMARK_ROUNDS × the concurrency)

    @property
    def client_ttft_s(self) -> np.ndarray:
        """Send → the decode side's admission, per measured request (NaN: never)."""
        e = self.result.engine
        assert e.decode_admit_s is not None  # a disaggregated run's
        return (e.decode_admit_s - e.arrival_s)[self.measured]

    def client_tpot_s(self, osl: int) -> np.ndarray:
        e = self.result.engine
        assert e.decode_admit_s is not None
        return ((e.finish_s - e.decode_admit_s) / (osl - 1))[self.measured]


def is_disaggregated(plan: RowPlan) -> bool:
    return "disaggregation" in plan.base["deployment"]


def run_profiling_phase(plan: RowPlan) -> Phase:
    """The phase's closed loop from a cold start, sending for `BENCHMARK_ROUNDS` + 1 request
    lifetimes (the first wave's are longer: it queues), first sized with the row's measured
    lifetime, then rerun longer while the clients sent fewer than the phase's requests and
    the rerun's pool stays within `RERUN_POOL_REQUESTS` (else the phase is the requests
    sent). The clients send on after the phase's last request, so the tail keeps its load (the
    benchmark's own tail has fewer clients: its last requests run a little faster). `Skip`
    when a request cannot fit the KV cache or the scenario layer rejects the plan."""
    requests = BENCHMARK_ROUNDS * plan.concurrency
    lifetime_s = plan.lifetime_hint_s
    result: sim.Result | None = None
    for _attempt in range(ATTEMPTS):
        result = None  # a run too short is dropped before the next one draws its pool
        mapping = {**plan.base, "warmup_s": 0.0,
                   "duration_s": (BENCHMARK_ROUNDS + 1) * lifetime_s}
        try:
            scenario = sim.load_scenario(mapping)
            kv_tokens = replica_kv_tokens(scenario)
            if plan.isl + plan.osl > kv_tokens:
                raise Skip(f"one request (ISL + OSL = {plan.isl + plan.osl} tokens) needs more "
                           f"KV cache than the replica's {kv_tokens}")
            result = sim.run(scenario, warn_window=False)
        except InputError as exc:
            raise Skip(f"scenario rejected: {exc}") from None
        sent = len(result.engine.arrival_s)
        if sent >= requests:
            break
        lifetime_s *= 1.1 * requests / max(sent, 1)
        rerun_s = (BENCHMARK_ROUNDS + 1) * lifetime_s
        if _pool_requests(scenario, rerun_s, plan.osl) > RERUN_POOL_REQUESTS:
            break
    assert result is not None  # ATTEMPTS ≥ 1
    order = np.argsort(result.engine.arrival_s, kind="stable")
    return Phase(result, order[:requests], requests)


def _pool_requests(scenario: sim.Scenario, duration_s: float, osl: int) -> int:
    """The first pool a closed loop of `duration_s` draws (`sim.workload.closed`)."""
    arrival = scenario.workload.arrival
    assert isinstance(arrival, ClosedArrivals)  # the plans are closed loops
    return closed.first_pool(arrival, duration_s, osl, shortest_token_s(scenario), sys.maxsize)


def replica_kv_tokens(scenario: sim.Scenario) -> int:
    """KV-cache tokens one replica holds; disaggregated, the smaller of a prefill and a
    decode replica's (a request's KV sits on both sides)."""
    pools = scenario.pools
    if pools is None:
        return kv_capacity(scenario)
    return min(pool_kv_capacity(scenario.model, pool) for pool in pools)


def observed(phase: Phase, concurrency: int) -> str:
    """What the phase did, for the comparison's notes."""
    e = phase.result.engine
    finished = int(np.isfinite(e.finish_s[phase.measured]).sum())
    text = (f"sim: profiling phase of {len(phase.measured)} requests "
            f"({BENCHMARK_ROUNDS} × {concurrency} clients from a cold start), {finished} "
            f"finished, mean batch {phase.result.record.batch_size_mean:.0f}")
    if len(phase.measured) < phase.requests:
        text += f", only {len(phase.measured)} of {phase.requests} sent"
    moved = e.kv_transfer_s[phase.measured] if e.kv_transfer_s is not None else None
    if moved is not None and np.isfinite(moved).any():
        text += f", KV transfer mean {float(np.nanmean(moved)) * 1000:.1f} ms"
    return text


def mean_ms(values_s: np.ndarray) -> float | None:
    finite = values_s[np.isfinite(values_s)]
    return float(finite.mean()) * 1000.0 if finite.size else None

