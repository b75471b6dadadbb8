"""Driving a run: arrivals that come first at their instant, closed-loop clients and
sessions sending as requests end, running the clock in slices for a progress bar, and the
rows of the result.
Shared by the aggregated engine (`sim.engine.simulation`) and the disaggregated one
(`sim.engine.disaggregated`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import simpy
from simpy.events import URGENT

from sim.engine.records import EngineConfig
from sim.engine.replica import Replica
from sim.engine.seams import Clients, Sessions

Progress = Callable[[int, int | None], None]  # (requests arrived so far, total or None)

PROGRESS_SLICES = 50


class Arrival(simpy.events.Timeout):
    """The timeout of the next arrival, which SimPy processes before the ordinary events of
    the same instant (a step boundary, a fleet event): a request that arrives exactly as a
    step ends is waiting when the replica plans the next step, whichever timeout was
    scheduled first and whether decode steps are simulated one by one or skipped."""

    def __init__(self, env: simpy.Environment, delay_s: float, value: Any = None) -> None:
        # Timeout.__init__, inlined as SimPy does, at URGENT rather than NORMAL priority.
        self.env = env
        self.callbacks = []
        self._value = value
        self._delay = delay_s
        self._ok = True
        env.schedule(self, URGENT, delay_s)


def start_clients(env: simpy.Environment, clients: Clients, arrivals: list[float],
                   state: list[int], order: list[int], rejected: list[bool],
                   dispatch: Callable[[int], None],
                   replicas: list[Replica]) -> Callable[[int], None]:
    """Start the sessions (a closed loop's clients: one-turn sessions, `concurrency` at once
    from t = 0) and hook each request's end (finished on a replica, or rejected on arrival)
    to what its session does next: its next turn, or (closed, after its last) its client's
    next session, think_s later. Returns that hook, for a request that ends elsewhere."""
    think_s = clients.think_s.tolist()
    until_s = clients.send_until_s
    n = len(arrivals)
    if isinstance(clients, Sessions):
        next_request = clients.next_request.tolist()
        first: list[int] | range = clients.first_request.tolist()
        start_s = None if clients.start_s is None else clients.start_s.tolist()
    else:
        next_request, first, start_s = [-1] * n, range(n), None
    sessions = len(first)
    started = [0]  # sessions started

    def send(rid: int) -> None:
        state[0] += 1
        order.append(rid)
        arrivals[rid] = env.now
        if rejected[rid]:
            done(rid)
        else:
            dispatch(rid)

    def next_turn(event: simpy.events.Event) -> None:
        send(event._value)  # the request Arrival carries: the session's next turn

    def next_session(_event: simpy.events.Event | None = None) -> None:
        s = started[0]
        if s >= sessions:  # never: a closed pool is sized so that it lasts (sim.workload)
            return
        started[0] = s + 1
        send(first[s])

    def open_session(_event: simpy.events.Event | None = None) -> None:
        s = started[0]
        started[0] = s + 1
        send(first[s])
        if start_s is not None and s + 1 < sessions:
            Arrival(env, start_s[s + 1] - env.now).callbacks.append(open_session)

    def done(rid: int) -> None:
        delay_s = think_s[rid]
        if env.now + delay_s >= until_s:
            return
        then = next_request[rid]
        if then >= 0:
            Arrival(env, delay_s, then).callbacks.append(next_turn)
        elif start_s is None:
            Arrival(env, delay_s).callbacks.append(next_session)

    for replica in replicas:
        replica.on_done = done
    if until_s <= 0.0 or not sessions:
        return done
    if start_s is not None:
        Arrival(env, start_s[0]).callbacks.append(open_session)
    else:
        for _ in range(clients.concurrency):
            Arrival(env, 0.0).callbacks.append(next_session)
    return done


def run_clock(env: simpy.Environment, cfg: EngineConfig, last_arrival_s: float, state: list[int],
              progress: Progress | None, n: int | None) -> None:
    """Advance in slices of simulated time (up to the last arrival) so a caller can show
    progress: requests arrived of n (None when unknown: a closed loop's clients decide)."""
    stop_s = cfg.stop_s
    if progress is not None and n != 0:
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


class SentRows:
    """The result's rows: the requests that arrived, as columns of the pool. Sessions send
    out of index order, so their rows are the requests sent, in that order (`rows`); the
    others are a prefix of the pool (all of an open workload)."""

    def __init__(self, clients: Clients | None, order: list[int], sent: int, n: int) -> None:
        self.rows = np.asarray(order, dtype=np.int64) if isinstance(clients, Sessions) else None
        self.sent, self.n = sent, n

    def __call__(self, column: list[Any], dtype: type | None = None) -> np.ndarray:
        if self.rows is not None:
            return np.asarray(column, dtype=dtype)[self.rows]
        return np.asarray(column if self.sent == self.n else column[:self.sent], dtype=dtype)

