"""Multi-turn sessions: conversations whose prompts grow with their history.

A session of T turns is T requests, laid out one session after another in the pool: the
first turn's prompt is a draw of `workload.prompt_tokens` (a system prompt and the first
message), turn k > 1 sends the whole history — every earlier message and answer of its
session — plus `new_tokens`, and each answer is a draw of `workload.output_tokens`. So

    prompt_k = Σ_{i<k} (message_i + output_i) + message_k,

cut to the context: a prompt that would not leave room for its answer keeps its last
max_context − output_k tokens (history truncated, as chat front-ends do), and is counted.
With `workload.shared_prefix_tokens: N` the first turn's prompt includes those N tokens, and
every prompt, a cut one too, is at least N + 1 tokens (raised and counted as floored).
Which turn resends which history is the prefix tree's to say (`sim.workload.prefix`); a
prefix cache can then reuse it rather than prefill it again.

Only the send times depend on the run (`sim.engine.simulation` follows `next_request`);
everything else is drawn up front, vectorised, from its own seed stream. Open sessions start
at the arrival process's times (each start is a session, not a request). Closed sessions
(`concurrency` at once) size their pool of sessions as closed loops do (`sim.workload.closed`)
with a session as the unit: a client's sessions, all but its last, keep it busy at most
duration_s, so a pool whose Σ per-session busy bound exceeds N × (duration_s + the largest
session's) is never used up; it doubles until it is, and beyond the request limit the run is
refused naming the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from sim.errors import InputError
from sim.scenario.workload import (
    MAX_SESSION_TURNS,
    ClosedArrivals,
    SessionsSpec,
    WorkloadSpec,
    mean_think_s,
)
from sim.workload import closed
from sim.workload.arrivals import arrival_times
from sim.workload.lengths import Lengths, sample_lengths
from sim.workload.prefix import floor_prompts
from sim.workload.rate import is_time_varying, nhpp_arrival_times

# The prompt means reported per turn: the first turns say how the history grows; a long
# tail of turns would only lengthen the result.
REPORTED_TURNS = 16


@dataclass(frozen=True)
class SessionPlan:
    """The sessions as the engine takes them (`sim.engine.seams.Sessions`), and which
    session and turn each request of the pool is."""

    concurrency: int  # closed: sessions at once; 0 for open sessions
    think_s: np.ndarray  # after request j: before its session's next turn (or next session)
    send_until_s: float
    start_s: np.ndarray | None  # open: session s starts then; None: closed
    first_request: np.ndarray  # int: the pool index of each session's first turn
    next_request: np.ndarray  # int: the next turn of request j's session, −1 after its last
    session: np.ndarray  # int: the session of request j
    turn: np.ndarray  # int: request j is turn turn[j] + 1 of its session
    truncated: np.ndarray  # bool: request j's history was cut to fit the context


@dataclass(frozen=True)
class SessionPool:
    """The requests of the sessions drawn, and how they link."""

    prompt: Lengths  # was_capped includes the prompts cut to the context
    output: Lengths
    plan: SessionPlan


def draw(spec: WorkloadSpec, duration_s: float, seeds: dict[str, np.random.SeedSequence],
         limits: closed.PoolLimits, max_context_tokens: int) -> SessionPool:
    """The sessions of an open process (started over [0, duration_s)), or a closed pool
    that its clients cannot use up; `InputError` beyond `limits.max_requests`."""
    sessions = spec.sessions
    assert sessions is not None and spec.arrival is not None  # the caller checked
    if isinstance(spec.arrival, ClosedArrivals):
        return _closed(spec, sessions, spec.arrival, duration_s, seeds, limits,
                       max_context_tokens)
    rng = np.random.default_rng(seeds["arrivals"])
    if is_time_varying(spec.arrival):
        start_s = nhpp_arrival_times(spec.arrival, duration_s, rng)
    else:
        start_s = arrival_times(spec.arrival, duration_s, rng)
    pool = _pool(spec, sessions, len(start_s), seeds, max_context_tokens, None, duration_s)
    if len(pool.plan.session) > limits.max_requests:
        raise too_many_turns(sessions, len(pool.plan.session), limits.max_requests)
    return replace(pool, plan=replace(pool.plan, start_s=start_s))


def _closed(spec: WorkloadSpec, sessions: SessionsSpec, arrival: ClosedArrivals,
            duration_s: float, seeds: dict[str, np.random.SeedSequence],
            limits: closed.PoolLimits, max_context_tokens: int) -> SessionPool:
    assert spec.output_tokens is not None
    expected = expected_closed_requests(sessions, arrival, duration_s,
                                        spec.output_tokens.mean_tokens, limits.min_step_s)
    count = int(min(closed.FIRST_POOL_MARGIN * expected / sessions.mean_turns
                    + arrival.concurrency + closed.FIRST_POOL_SLACK, limits.max_requests))
    while True:
        pool = _pool(spec, sessions, count, seeds, max_context_tokens, arrival, duration_s)
        plan = pool.plan
        requests = len(plan.session)
        if requests > limits.max_requests:
            raise too_many_turns(sessions, requests, limits.max_requests)
        fits = pool.prompt.tokens + pool.output.tokens <= limits.max_request_tokens
        busy_s = closed.busy_bound_s(pool.output.tokens, fits, plan.think_s, limits.min_step_s)
        if closed.enough(arrival, duration_s, np.add.reduceat(busy_s, plan.first_request)):
            return pool
        if count >= limits.max_requests:
            raise closed.too_many(arrival, duration_s, limits.max_requests)
        count = min(2 * count, limits.max_requests)


def _pool(spec: WorkloadSpec, sessions: SessionsSpec, count: int,
          seeds: dict[str, np.random.SeedSequence], max_context_tokens: int,
          arrival: ClosedArrivals | None, duration_s: float) -> SessionPool:
    """`count` sessions: their turns, lengths and think times, each from its own stream."""
    assert spec.prompt_tokens is not None and spec.output_tokens is not None
    turns = turn_counts(sessions, np.random.default_rng(seeds["turns"]), count)
    first, next_request, session, turn = links(turns)
    n = len(session)
    opening = floor_prompts(sample_lengths(
        spec.prompt_tokens, np.random.default_rng(seeds["prompt_tokens"]), count),
        spec.shared_prefix_tokens)
    new = sample_lengths(sessions.new_tokens, np.random.default_rng(seeds["new_tokens"]), n)
    output = sample_lengths(spec.output_tokens, np.random.default_rng(seeds["output_tokens"]),
                            n)
    message = new.tokens.copy()
    message[first] = opening.tokens
    prompt_tokens, truncated = prompts(message, output.tokens, first, session,
                                       max_context_tokens)
    was_capped = new.was_capped.copy()
    was_capped[first] = opening.was_capped
    was_floored = new.was_floored.copy()
    was_floored[first] = opening.was_floored
    think_s = closed.think_times(sessions.think_time_s,
                                 np.random.default_rng(seeds["think_times"]), n)
    if arrival is not None:  # after a closed session's last turn: the client's pause
        think_s[next_request < 0] = closed.think_times(
            arrival.think_time_s, np.random.default_rng(seeds["session_think"]), count)
    plan = SessionPlan(arrival.concurrency if arrival is not None else 0, think_s, duration_s,
                       None, first, next_request, session, turn, truncated)
    prompt = floor_prompts(Lengths(prompt_tokens, was_capped | truncated, was_floored),
                           spec.shared_prefix_tokens)  # a cut prompt keeps the shared prefix
    return SessionPool(prompt, output, plan)


def turn_counts(sessions: SessionsSpec, rng: np.random.Generator, count: int) -> np.ndarray:
    """Turns of `count` sessions: the number, or draws (≥ 1, cut at MAX_SESSION_TURNS)."""
    if isinstance(sessions.turns, int):
        return np.full(count, sessions.turns, dtype=np.int64)
    drawn = sample_lengths(sessions.turns, rng, count).tokens
    return np.minimum(drawn, MAX_SESSION_TURNS)


def links(turns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sessions one after another: each one's first request, each request's next turn (−1
    after the last), its session and its turn (0-based)."""
    n = int(turns.sum())
    first = np.concatenate(([0], np.cumsum(turns)[:-1])).astype(np.int64)
    session = np.repeat(np.arange(len(turns), dtype=np.int64), turns)
    turn = np.arange(n, dtype=np.int64) - first[session]
    next_request = np.arange(1, n + 1, dtype=np.int64)
    next_request[first + turns - 1] = -1
    return first, next_request, session, turn


def prompts(message: np.ndarray, output: np.ndarray, first: np.ndarray, session: np.ndarray,
            max_context_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """Each turn's prompt — its session's earlier messages and answers, plus its message —
    and whether it was cut to leave room for its answer in the context (its last
    max_context − output tokens kept; at least 1)."""
    exchange = message + output  # what a turn adds to its session's history
    before = np.cumsum(exchange) - exchange  # over the whole pool, before request j
    full = before - before[first[session]] + message
    room = np.maximum(max_context_tokens - output, 1)
    return np.minimum(full, room), full > room


def expected_closed_requests(sessions: SessionsSpec, arrival: ClosedArrivals,
                             duration_s: float, mean_output_tokens: float,
                             step_s: float) -> float:
    """An upper bound of the turns closed sessions send on average: N × duration_s ÷ the
    least mean time a turn keeps its client busy (its share of think times + mean output ×
    t_min), + N whole sessions (each client's last, drawn whole)."""
    turns = sessions.mean_turns
    think_s = ((turns - 1.0) * mean_think_s(sessions.think_time_s)
               + arrival.mean_think_s) / turns
    cycle_s = think_s + mean_output_tokens * step_s
    if cycle_s <= 0.0:
        return math.inf
    return arrival.concurrency * (duration_s / cycle_s + turns)


def too_many_turns(sessions: SessionsSpec, requests: int, max_requests: int) -> InputError:
    """The refusal when the sessions drawn hold more turns than a run may simulate."""
    return InputError("workload.sessions.turns", sessions.turns,
                      f"fewer turns, fewer sessions or a shorter duration_s: the sessions "
                      f"drawn hold {requests:,} turns, more than the {max_requests:,} requests "
                      "a run may simulate")


def summary(plan: SessionPlan, sent: np.ndarray, prompt_tokens: np.ndarray,
            finish_s: np.ndarray) -> dict[str, float | int | list[float]]:
    """What the result says of the sessions (over the whole run): how many started and
    completed every turn, turns sent per started session, the mean prompt of each turn (the
    first REPORTED_TURNS), and the turns whose history was cut to the context."""
    session = plan.session[sent]
    turn = plan.turn[sent]
    started = int(np.count_nonzero(turn == 0))
    last = plan.next_request[sent] < 0
    completed = int(np.count_nonzero(last & np.isfinite(finish_s)))
    shown = min(int(turn.max()) + 1 if len(turn) else 0, REPORTED_TURNS)
    sums = np.bincount(turn, weights=prompt_tokens, minlength=shown)[:shown]
    counts = np.bincount(turn, minlength=shown)[:shown]
    return {
        "started": started,
        "completed": completed,
        "turns_mean": len(session) / started if started else 0.0,
        "prompt_tokens_mean_by_turn": [float(x) for x in sums / np.maximum(counts, 1)],
        "truncated_turns": int(np.count_nonzero(plan.truncated[sent])),
    }
