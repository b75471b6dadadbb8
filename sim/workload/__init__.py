"""Workloads: what arrives and when, as flat numpy arrays indexed by request id."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from sim.scenario.workload import ClosedArrivals, LengthSpec, WorkloadSpec
from sim.workload import closed, prefix, sessions
from sim.workload.arrivals import arrival_times
from sim.workload.lengths import Lengths, mean_tokens, sample_lengths
from sim.workload.prefix import PrefixTree
from sim.workload.rate import is_time_varying, nhpp_arrival_times
from sim.workload.replay import replay

__all__ = ["Workload", "generate", "mean_tokens"]


@dataclass(frozen=True)
class Workload:
    """Request i arrives at arrival_s[i] with prompt_tokens[i] and wants output_tokens[i].

    A closed loop's workload (`clients` set) is a pool drawn before the run: its arrival_s
    are NaN until the engine has sent them, and `arrived` gives the workload as it ran.

    `prefix` says which prompts begin with the same tokens (`sim.workload.prefix`: a trace's
    block ids, a shared system prompt, sessions' histories), indexed by request id as the
    engine sees it (a pool index for closed loops and sessions); None when nothing is
    shared."""

    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    capped: dict[str, int]
    floored: dict[str, int]
    clients: closed.ClosedLoop | sessions.SessionPlan | None = None
    pool: tuple[Lengths, Lengths] | None = None  # a closed loop's (prompt, output) draws
    prefix: PrefixTree | None = None

    def __len__(self) -> int:
        return len(self.arrival_s)

    def arrived(self, arrival_s: np.ndarray, sent: np.ndarray | None = None) -> Workload:
        """The requests that arrived, at the times given (the engine's record: a prefix of a
        closed loop's pool, as it sends requests in index order; all of an open workload;
        the pool's requests `sent`, in that order, for sessions). `prefix` stays as it was,
        indexed by pool index: the engine, its only reader, knows requests by that index."""
        if self.pool is None:
            return self
        n = len(arrival_s)
        if sent is None:
            prompt, output = (lengths.head(n) for lengths in self.pool)
        else:
            prompt, output = (Lengths(x.tokens[sent], x.was_capped[sent], x.was_floored[sent])
                              for x in self.pool)
        return replace(_workload(arrival_s, prompt, output, self.clients, self.prefix),
                       pool=None)


def generate(spec: WorkloadSpec, duration_s: float, seeds: dict[str, np.random.SeedSequence],
             limits: closed.PoolLimits | None = None,
             max_context_tokens: int | None = None) -> Workload:
    """Draw arrivals and lengths, each from its own seed stream so one does not shift another
    (or replay a trace, thinned or replicated with the arrivals stream). A closed loop
    (`limits` required) draws a pool of requests and their think times instead of arrival
    times (`sim.workload.closed`); sessions (`limits` and the model's context required) a
    pool of conversations (`sim.workload.sessions`). Prefix identities come with them
    (`Workload.prefix`)."""
    if spec.trace is not None:
        trace = replay(spec.trace, duration_s, np.random.default_rng(seeds["arrivals"]))
        none = {"prompt_tokens": 0, "output_tokens": 0}
        tree = None if trace.hash_ids is None or trace.hash_offsets is None else (
            prefix.from_blocks(trace.hash_ids, trace.hash_offsets, trace.prompt_tokens,
                               trace.block_tokens))
        return Workload(trace.arrival_s, trace.prompt_tokens, trace.output_tokens, none,
                        dict(none), prefix=tree)
    # WorkloadSpec's validator: without a trace, arrival and both lengths are given.
    assert spec.arrival and spec.prompt_tokens and spec.output_tokens
    shared_tokens = spec.shared_prefix_tokens
    if spec.sessions is not None:
        assert limits is not None and max_context_tokens is not None  # the runner gives them
        drawn = sessions.draw(spec, duration_s, seeds, limits, max_context_tokens)
        tree = prefix.session_tree(drawn.prompt.tokens, drawn.output.tokens, drawn.plan.turn,
                                   drawn.plan.truncated, shared_tokens)
        return _workload(np.full(len(drawn.prompt.tokens), np.nan), drawn.prompt, drawn.output,
                         drawn.plan, tree)
    if isinstance(spec.arrival, ClosedArrivals):
        assert limits is not None  # the runner gives them
        return _closed_pool(spec.arrival, spec.prompt_tokens, spec.output_tokens, duration_s,
                            seeds, limits, shared_tokens)
    rng = np.random.default_rng(seeds["arrivals"])
    if is_time_varying(spec.arrival):
        arrival_s = nhpp_arrival_times(spec.arrival, duration_s, rng)
    else:
        arrival_s = arrival_times(spec.arrival, duration_s, rng)
    n = len(arrival_s)
    prompt = prefix.floor_prompts(sample_lengths(
        spec.prompt_tokens, np.random.default_rng(seeds["prompt_tokens"]), n), shared_tokens)
    output = sample_lengths(spec.output_tokens, np.random.default_rng(seeds["output_tokens"]), n)
    return _workload(arrival_s, prompt, output, None, _shared(shared_tokens, n))


def _shared(shared_tokens: int, requests: int) -> PrefixTree | None:
    """The tree of a shared system prompt, None without one."""
    return prefix.shared_prefix(shared_tokens, requests) if shared_tokens else None


def _workload(arrival_s: np.ndarray, prompt: Lengths, output: Lengths,
              clients: closed.ClosedLoop | sessions.SessionPlan | None = None,
              tree: PrefixTree | None = None) -> Workload:
    """The workload of these draws; a pool's keeps them, to be cut to what it sent."""
    return Workload(
        arrival_s=arrival_s,
        prompt_tokens=prompt.tokens,
        output_tokens=output.tokens,
        capped={"prompt_tokens": prompt.capped, "output_tokens": output.capped},
        floored={"prompt_tokens": prompt.floored, "output_tokens": output.floored},
        clients=clients,
        pool=None if clients is None else (prompt, output),
        prefix=tree,
    )


def _closed_pool(spec: ClosedArrivals, prompt_spec: LengthSpec, output_spec: LengthSpec,
                 duration_s: float, seeds: dict[str, np.random.SeedSequence],
                 limits: closed.PoolLimits, shared_tokens: int) -> Workload:
    """A pool the clients cannot use up before duration_s (`closed.enough`), doubled until
    it is; `InputError` when that takes more than the limit allows."""
    n = closed.first_pool(spec, duration_s, output_spec.mean_tokens, limits.min_step_s,
                          limits.max_requests)
    while True:
        prompt = prefix.floor_prompts(sample_lengths(
            prompt_spec, np.random.default_rng(seeds["prompt_tokens"]), n), shared_tokens)
        output = sample_lengths(output_spec, np.random.default_rng(seeds["output_tokens"]), n)
        think_s = closed.think_times(spec.think_time_s,
                                     np.random.default_rng(seeds["think_times"]), n)
        fits = prompt.tokens + output.tokens <= limits.max_request_tokens
        busy_s = closed.busy_bound_s(output.tokens, fits, think_s, limits.min_step_s)
        if closed.enough(spec, duration_s, busy_s):
            break
        if n >= limits.max_requests:
            raise closed.too_many(spec, duration_s, limits.max_requests)
        n = min(2 * n, limits.max_requests)
    clients = closed.ClosedLoop(spec.concurrency, think_s, duration_s)
    return _workload(np.full(n, np.nan), prompt, output, clients, _shared(shared_tokens, n))
