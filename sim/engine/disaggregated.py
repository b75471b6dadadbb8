"""Disaggregated serving: a prefill pool and a decode pool, and the KV moving between them.

A request is routed to a prefill replica, which runs it as a request of one output token:
its prefill (chunked or not, batched with other prompts as that pool's scheduler says)
ends with the first token — TTFT ends there — and frees its KV there. Its KV then crosses
that prefill replica's link (`sim.engine.transfer`: a latency, then the bytes of prompt + 1
tokens at the link's bandwidth shared by the transfers in flight on it) and it is routed to a
decode replica, which admits it with that KV already in place (prompt + 1 tokens and a slack
block reserved, as an aggregated replica holds a request that just finished its prefill) and
decodes it from its second token; the first decode gap runs from the first token, so the
transfer and the decode queue count in its inter-token latency. When the decode replica
first admitted it is kept too (`EngineResult.decode_admit_s`): engines that stream every
token from the decode side (SGLang's and Dynamo's disaggregated serving) deliver the first
token to the client only then, after the transfer and the decode queue. A request of one
output token is done on the prefill side. A decode replica short of KV preempts as an
aggregated one does, and a preempted request recomputes its context there.

Each pool has its own request columns (`RequestTable`: the prefill side's all want one token),
loads and router; the pools never share a replica. Closed-loop clients send their next
request when a request finishes on the decode side (or on the prefill side, for one
token). Nothing here changes the aggregated engine's path.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import simpy

from sim.engine.driving import Arrival, Progress, SentRows, run_clock, start_clients
from sim.engine.fleet import static_timeline
from sim.engine.gaps import GapHistogram
from sim.engine.pools import ReplicaPool, ServingPool, fits
from sim.engine.records import DecodePool, EngineConfig, EngineResult
from sim.engine.requests import RequestTable
from sim.engine.seams import Clients, Requests, StepModel
from sim.engine.transfer import KvLink


def simulate_disaggregated(cfg: EngineConfig, decode: DecodePool, workload: Requests,
                           step_model: StepModel, router_rng: np.random.Generator,
                           progress: Progress | None = None,
                           clients: Clients | None = None) -> EngineResult:
    """`sim.engine.simulation.simulate` with a decode pool: `cfg` and `step_model` are the
    prefill pool's. Both pools draw their random routing from `router_rng`, the prefill
    pool's first."""
    assert cfg.fleet is None and decode.config.fleet is None, "a static fleet only"
    env = simpy.Environment()
    n = len(workload)
    prompt = workload.prompt_tokens.tolist()
    output = workload.output_tokens.tolist()
    prefill_table = RequestTable(prompt, [1] * n)
    decode_table = RequestTable(prompt, output, tokens_per_step=decode.config.tokens_per_step)
    dcfg = decode.config
    # Larger than either side's whole KV cache (the prefill side's holds one output token):
    # could never run, so never admitted.
    rejected = (~fits(cfg, workload.prompt_tokens, 1)
                | ~fits(dcfg, workload.prompt_tokens, workload.output_tokens))
    rejected_list = rejected.tolist()
    gaps = GapHistogram(cfg.window_start_s, cfg.window_end_s, cfg.window_marks_s)
    # Each pool numbers its replicas from 0 (`replica` and `decode_replica` are pool-local).
    prefill = ReplicaPool(env, ServingPool(cfg, step_model), 0, prefill_table, gaps,
                          router_rng, n, None)
    decoding = ReplicaPool(env, ServingPool(dcfg, decode.step_model), 0, decode_table, gaps,
                           router_rng, n, None)
    routed = [-1] * n
    decode_routed = [-1] * n
    transfer_s = [math.nan] * n
    sent_s = [math.nan] * n

    def landed(rid: int) -> None:
        transfer_s[rid] = env.now - sent_s[rid]
        decode_table.prefill_done[rid] = decode_table.prefill_len[rid]  # its KV is here
        decode_table.first_token_s[rid] = prefill_table.first_token_s[rid]
        decode_routed[rid] = decoding.dispatch(rid)

    links = [KvLink(env, decode.link_bytes_per_s, decode.link_latency_s, landed)
             for _ in range(cfg.replicas)]
    finished_early: list[Any] = [None]  # the clients' hook, for one-token requests

    def prefilled(rid: int) -> None:
        """A prefill replica produced rid's first token: send its KV, or it is done."""
        if output[rid] <= 1:
            decode_table.finish_s[rid] = env.now
            hook = finished_early[0]
            if hook is not None:
                hook(rid)
            return
        sent_s[rid] = env.now
        links[routed[rid]].send(rid, (prompt[rid] + 1) * decode.kv_bytes_per_token)

    for replica in prefill.replicas:
        replica.on_done = prefilled

    arrivals = workload.arrival_s.tolist()
    state = [0]
    order: list[int] = []

    def dispatch(i: int) -> None:
        routed[i] = prefill.dispatch(i)

    if clients is None:
        def arrive(_event: simpy.events.Event | None = None) -> None:
            i = state[0]
            state[0] = i + 1
            if not rejected_list[i]:
                dispatch(i)
            if i + 1 < n:
                Arrival(env, arrivals[i + 1] - env.now).callbacks.append(arrive)

        if n:
            Arrival(env, arrivals[0]).callbacks.append(arrive)
        run_clock(env, cfg, arrivals[-1] if arrivals else 0.0, state, progress, n)
    else:
        arrivals = [math.nan] * n
        finished_early[0] = start_clients(env, clients, arrivals, state, order, rejected_list,
                                          dispatch, decoding.replicas)
        run_clock(env, cfg, clients.send_until_s, state, progress, None)

    sent = state[0]
    head = SentRows(clients, order, sent, n)
    rows = head.rows

    counters = tuple(r.counters() for r in (*prefill.replicas, *decoding.replicas))
    preemptions = [a + b for a, b in zip(prefill_table.preemptions, decode_table.preemptions,
                                         strict=True)]
    return EngineResult(
        arrival_s=workload.arrival_s if clients is None else head(arrivals),
        replica=head(routed, np.int64),
        admit_s=head(prefill_table.admit_s),
        first_token_s=head(prefill_table.first_token_s),
        finish_s=head(decode_table.finish_s),
        preemptions=head(preemptions, np.int64),
        rejected=rejected[:sent] if rows is None else rejected[rows],
        replicas=counters,
        end_s=float(env.now),
        events=sent + sum(r.events for r in (*prefill.replicas, *decoding.replicas))
        + sum(link.events for link in links),
        requeues=np.zeros(sent, dtype=np.int64),
        timeline=static_timeline(cfg.replicas + dcfg.replicas),
        gaps=gaps.counts(),
        max_gap_s=head(decode_table.max_gap_s) if dcfg.track_longest_gaps else None,
        sent=rows,
        prefill_replicas=cfg.replicas,
        decode_replica=head(decode_routed, np.int64),
        kv_transfer_s=head(transfer_s),
        kv_transfer_bytes=sum(link.bytes_sent for link in links),
        decode_admit_s=head(decode_table.admit_s),
    )
