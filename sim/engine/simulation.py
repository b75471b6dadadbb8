"""The engine: one SimPy environment, an arrival source, a router and the replicas.

Everything is driven by timeouts with callbacks rather than generator processes: an arrival
schedules the next arrival, a replica schedules the end of its current step or decode run.
That keeps the cost per event to one heap push and pop, and lets a replica supersede its own
pending timeout (a cut decode run) by ignoring the stale one when it fires.

A fleet that changes while it runs (failures, spot preemption, outages, autoscaling) adds a
`Fleet` controller with its own chains of timeouts (`sim.engine.fleet`); arrivals then go
through it. Without one, arrivals route straight to a replica.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import simpy
from simpy.events import URGENT

from sim.engine.fleet import Fleet, static_timeline
from sim.engine.records import EngineConfig, EngineResult, WindowCounters
from sim.engine.replica import Replica, RequestTable
from sim.engine.router import make_router
from sim.engine.seams import Requests, StepModel

Progress = Callable[[int, int], None]  # (requests arrived so far, total)

PROGRESS_SLICES = 50


class Arrival(simpy.events.Timeout):
    """The timeout of the next arrival, which SimPy processes before the ordinary events of
    the same instant (a step boundary, a fleet event): a request that arrives exactly as a
    step ends is waiting when the replica plans the next step, whichever timeout was
    scheduled first and whether decode steps are simulated one by one or skipped."""

    def __init__(self, env: simpy.Environment, delay_s: float) -> None:
        # Timeout.__init__, inlined as SimPy does, at URGENT rather than NORMAL priority.
        self.env = env
        self.callbacks = []
        self._value = None
        self._delay = delay_s
        self._ok = True
        env.schedule(self, URGENT, delay_s)


def simulate(cfg: EngineConfig, workload: Requests, step_model: StepModel,
             router_rng: np.random.Generator, progress: Progress | None = None) -> EngineResult:
    """Run the workload through the fleet; deterministic for a given router generator."""
    env = simpy.Environment()
    n = len(workload)
    table = RequestTable(workload.prompt_tokens.tolist(), workload.output_tokens.tolist())
    arrivals = workload.arrival_s.tolist()
    slots = cfg.replicas if cfg.fleet is None else cfg.fleet.slots
    route = make_router(cfg.router, slots, router_rng, n)
    # Larger than a whole replica's KV cache: could never run, so never admitted.
    rejected = (workload.prompt_tokens + workload.output_tokens + cfg.kv_block_tokens
                > cfg.kv_capacity_tokens)
    rejected_list = rejected.tolist()

    loads = [0] * slots  # outstanding requests per replica
    replicas = [
        Replica(i, env, cfg, step_model, table,
                WindowCounters(cfg.window_start_s, cfg.window_end_s), loads)
        for i in range(slots)
    ]
    routed = [-1] * n
    requeues = [0] * n
    state = [0]  # the next request to arrive; also the arrival events so far
    fleet = None if cfg.fleet is None else Fleet(
        env, cfg.fleet, replicas, loads, route, routed, requeues, lambda: state[0] < n,
        cfg.window_end_s)

    def arrive(_event: simpy.events.Event | None = None) -> None:
        i = state[0]
        state[0] = i + 1
        if not rejected_list[i]:
            r = route(i, loads)
            routed[i] = r
            loads[r] += 1
            replicas[r].arrive(i)
        if i + 1 < n:
            Arrival(env, arrivals[i + 1] - env.now).callbacks.append(arrive)

    first = arrive  # a static fleet keeps the plain path: no fleet checks per arrival
    if fleet is not None:  # defined here, it sees `fleet` as a Fleet (never reassigned)
        def arrive_dynamic(_event: simpy.events.Event | None = None) -> None:
            i = state[0]
            state[0] = i + 1
            if not rejected_list[i]:
                fleet.dispatch(i)
            if i + 1 < n:
                Arrival(env, arrivals[i + 1] - env.now).callbacks.append(arrive_dynamic)

        first = arrive_dynamic
    if n:
        Arrival(env, arrivals[0]).callbacks.append(first)

    _run(env, cfg, arrivals, state, progress, n)

    return EngineResult(
        replica=np.asarray(routed, dtype=np.int64),
        admit_s=np.asarray(table.admit_s),
        first_token_s=np.asarray(table.first_token_s),
        finish_s=np.asarray(table.finish_s),
        preemptions=np.asarray(table.preemptions, dtype=np.int64),
        rejected=rejected,
        replicas=tuple(r.counters() for r in replicas),
        end_s=float(env.now),
        events=state[0] + sum(r.events for r in replicas),
        requeues=np.asarray(requeues, dtype=np.int64),
        timeline=static_timeline(slots) if fleet is None else fleet.timeline(),
    )


def _run(env: simpy.Environment, cfg: EngineConfig, arrivals: list[float], state: list[int],
         progress: Progress | None, n: int) -> None:
    """Advance in slices of simulated time so a caller can show progress."""
    last_arrival_s = arrivals[-1] if arrivals else 0.0
    stop_s = cfg.stop_s
    if progress is not None and n:
        for k in range(1, PROGRESS_SLICES + 1):
            until = last_arrival_s * k / PROGRESS_SLICES
            if stop_s is not None:
                until = min(until, stop_s)
            if until > env.now:
                env.run(until=until)
            progress(state[0], n)
    if stop_s is None:
        env.run()
    elif stop_s > env.now:
        env.run(until=stop_s)
