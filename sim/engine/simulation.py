"""The engine: one SimPy environment, an arrival source, a router and the replicas.

Everything is driven by timeouts with callbacks rather than generator processes: an arrival
schedules the next arrival, a replica schedules the end of its current step or decode run.
That keeps the cost per event to one heap push and pop, and lets a replica supersede its own
pending timeout (a cut decode run) by ignoring the stale one when it fires.

A fleet that changes while it runs (failures, spot preemption, outages, autoscaling) adds a
`Fleet` controller with its own chains of timeouts (`sim.engine.fleet`); arrivals then go
through it. Without one, arrivals route straight to a replica.

**Closed-loop clients** (`Clients`) replace the chain of arrivals: every client sends its
first request at t = 0, and when a request finishes (a replica's `on_done`) or is rejected,
its client sends the next one think_s later, unless that is at or after send_until_s. The
request sent is always the next of the pool, whichever client sends it, so arrival times
come out sorted and the result covers a prefix of the pool. A think time of 0 still goes
through an arrival event: the request arrives at the instant its predecessor finished, just
after the replica planned its next step, and joins at the end of that step (event skipping
cuts a decode run there, as for any arrival), the same in exact mode. A changing fleet
dispatches clients' requests like any others; it keeps acting while clients may still send.

**Sessions** (`Sessions`) generalise the closed loop: a request's end sends the next request
of *its* session (`next_request`), and a session's last turn lets its client start the next
session (closed) — or sessions start at their own times (open). Requests are then sent out of
index order, so the result's columns are in the order sent and `EngineResult.sent` names the
pool index of each row. A closed loop is run as one-turn sessions: it sends in index order.

**Pools** (`sim.engine.pools`) make the fleet heterogeneous: each pool's replicas have their
own step model, scheduler and KV cache, and a split picks a request's pool before that
pool's router picks its replica. Arrivals, clients, sessions and the prefix cache work the
same over them.
"""

from __future__ import annotations

import math

import numpy as np
import simpy

from sim.engine.disaggregated import simulate_disaggregated
from sim.engine.driving import Arrival, Progress, SentRows, run_clock, start_clients
from sim.engine.fleet import Fleet, static_timeline
from sim.engine.gaps import GapHistogram, GapRecorder, LongestGaps
from sim.engine.pools import FleetPools, PooledFleet, fits
from sim.engine.prefix import PrefixIndex
from sim.engine.records import DecodePool, EngineConfig, EngineResult, WindowCounters
from sim.engine.replica import Replica
from sim.engine.requests import RequestTable
from sim.engine.router import make_router, weighs_prompts
from sim.engine.seams import Clients, PrefixTree, Requests, StepModel

__all__ = ["Progress", "simulate"]


def simulate(cfg: EngineConfig, workload: Requests, step_model: StepModel,
             router_rng: np.random.Generator, progress: Progress | None = None,
             clients: Clients | None = None,
             prefix: PrefixTree | None = None,
             decode: DecodePool | None = None,
             pools: FleetPools | None = None) -> EngineResult:
    """Run the workload through the fleet; deterministic for a given router generator. With
    `clients` (or `Sessions`), the workload is a pool and its arrival_s are ignored: the
    clients or sessions decide when each request arrives (the result's arrival_s). With a
    prefix cache (`cfg.prefix_block_tokens`), `prefix` says which prompts share what (None:
    nothing is shared, and every lookup misses). With `decode`, serving is disaggregated
    (`sim.engine.disaggregated`): `cfg` and `step_model` are the prefill pool's. With
    `pools`, the fleet is those pools (`sim.engine.pools`): `cfg` gives the run's window,
    stop and request columns, each pool's own config its replicas' settings, and
    `step_model` is unused."""
    if decode is not None:
        assert prefix is None, "no prefix cache with disaggregation (yet)"
        return simulate_disaggregated(cfg, decode, workload, step_model, router_rng,
                                      progress, clients)
    env = simpy.Environment()
    n = len(workload)
    caching = cfg.prefix_block_tokens > 0
    index = None
    if caching:
        index = PrefixIndex.unshared(n) if prefix is None else PrefixIndex.of(prefix)
    table = RequestTable(workload.prompt_tokens.tolist(), workload.output_tokens.tolist(),
                         prefix=caching, tokens_per_step=cfg.tokens_per_step)
    arrivals = workload.arrival_s.tolist()
    slots = cfg.replicas if cfg.fleet is None else cfg.fleet.slots

    loads = [0] * slots  # outstanding requests per replica
    # Σ prompt tokens outstanding per replica, kept only for a router that reads them.
    prompt_loads = [0] * slots if weighs_prompts(cfg.router) else None
    prompts = table.prompt
    gaps = GapHistogram(cfg.window_start_s, cfg.window_end_s, cfg.window_marks_s)
    recorder = LongestGaps if cfg.track_longest_gaps else GapRecorder
    pooled = None if pools is None else PooledFleet(env, pools, workload, table, gaps,
                                                    router_rng, index)
    if pooled is None:
        replicas = [
            Replica(i, env, cfg, step_model, table,
                    WindowCounters(cfg.window_start_s, cfg.window_end_s), loads,
                    recorder(gaps), prompt_loads, prefix=index)
            for i in range(slots)
        ]
        route = make_router(cfg.router, slots, router_rng, n,
                            prefill_tokens=table.prefill_len, prompt_loads=prompt_loads,
                            caches=replicas)
        rejected = ~fits(cfg, workload.prompt_tokens, workload.output_tokens)
    else:  # each pool routes with its own router (`pooled.dispatch`)
        assert cfg.fleet is None, "a static fleet only"
        replicas, rejected, slots = pooled.replicas, pooled.rejected, len(pooled.replicas)
    rejected_list = rejected.tolist()
    routed = [-1] * n
    requeues = [0] * n
    state = [0]  # the next request to arrive; also the arrival events so far
    order: list[int] = []  # the requests clients or sessions sent, in the order sent
    if clients is None:
        def arrivals_left() -> bool:
            return state[0] < n
    else:
        arrivals = [math.nan] * n  # filled in as the clients send
        send_until_s = clients.send_until_s

        def arrivals_left() -> bool:
            return env.now < send_until_s
    fleet = None if cfg.fleet is None else Fleet(
        env, cfg.fleet, replicas, loads, route, routed, requeues, arrivals_left,
        cfg.window_end_s, prompt_loads)

    def arrive(_event: simpy.events.Event | None = None) -> None:
        i = state[0]
        state[0] = i + 1
        if not rejected_list[i]:
            r = route(i, loads)
            routed[i] = r
            loads[r] += 1
            if prompt_loads is not None:
                prompt_loads[r] += prompts[i]
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
    if pooled is not None:
        def arrive_pooled(_event: simpy.events.Event | None = None) -> None:
            i = state[0]
            state[0] = i + 1
            if not rejected_list[i]:
                routed[i] = pooled.dispatch(i)
            if i + 1 < n:
                Arrival(env, arrivals[i + 1] - env.now).callbacks.append(arrive_pooled)

        first = arrive_pooled

    if clients is not None:
        def dispatch(i: int) -> None:
            if fleet is not None:
                fleet.dispatch(i)
                return
            if pooled is not None:
                routed[i] = pooled.dispatch(i)
                return
            r = route(i, loads)
            routed[i] = r
            loads[r] += 1
            if prompt_loads is not None:
                prompt_loads[r] += prompts[i]
            replicas[r].arrive(i)

        start_clients(env, clients, arrivals, state, order, rejected_list, dispatch, replicas)
        run_clock(env, cfg, send_until_s, state, progress, None)
    else:
        if n:
            Arrival(env, arrivals[0]).callbacks.append(first)
        run_clock(env, cfg, arrivals[-1] if arrivals else 0.0, state, progress, n)

    sent = state[0]  # all of an open workload; the prefix of a closed pool that was sent
    head = SentRows(clients, order, sent, n)
    rows = head.rows

    counters = tuple(r.counters() for r in replicas)  # books decode runs cut by a stop

    return EngineResult(
        arrival_s=workload.arrival_s if clients is None else head(arrivals),
        replica=head(routed, np.int64),
        admit_s=head(table.admit_s),
        first_token_s=head(table.first_token_s),
        finish_s=head(table.finish_s),
        preemptions=head(table.preemptions, np.int64),
        rejected=rejected[:sent] if rows is None else rejected[rows],
        replicas=counters,
        end_s=float(env.now),
        events=sent + sum(r.events for r in replicas),
        requeues=head(requeues, np.int64),
        timeline=static_timeline(slots) if fleet is None else fleet.timeline(),
        gaps=gaps.counts(),
        max_gap_s=head(table.max_gap_s) if cfg.track_longest_gaps else None,
        sent=rows,
        cached_tokens=head(table.cached, np.int64) if caching else None,
        cached_prefill_s=head(table.cached_s) if caching else None,
    )


