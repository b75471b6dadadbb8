"""Closed-loop clients: N clients, each sending its next request a think time after its last
one finished — how benchmarks (`vllm bench serve --max-concurrency`, genai-perf, InferenceX)
drive a server.

Only the arrival *times* of a closed loop depend on the run; everything else is drawn up
front, vectorised, in a fixed request order: request i (the i-th request any client sends)
has prompt_tokens[i], output_tokens[i] and think_s[i], the time its client waits after it
before sending again. The engine (`sim.engine.simulation`) sends request i when some client
is ready and records when.

**How many to draw.** The run ends at duration_s, not when a pool of requests runs out, so
the pool must be large enough, and is, provably: if every engine step takes at least t_min
(the shortest step there is: one prefill token or one decoding sequence), request i keeps
its client busy at least b_i = think_s[i] + output_tokens[i] × t_min (each output token
takes a step; a request the KV cache cannot hold is rejected at once, so only its think
time counts). A client sends only before duration_s, so the requests of one client, all but
its last, have Σ b ≤ duration_s, and over the N clients the requests sent have
Σ b ≤ N × (duration_s + max b). A pool whose Σ b exceeds that is never used up. The pool
starts at the expected count with a margin and doubles (redrawn from the same seeds, so the
run stays a function of the seed) until the bound holds; beyond the request limit the run is
refused, never cut short.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.errors import InputError
from sim.scenario.workload import ClosedArrivals, ThinkTime
from sim.steptime.model import StepTimeModel

FIRST_POOL_MARGIN = 1.25  # the first pool: this × the expected count, + the clients, + slack
FIRST_POOL_SLACK = 64


@dataclass(frozen=True)
class ClosedLoop:
    """The clients of a closed loop, as the engine takes them (`sim.engine.seams.Clients`)."""

    concurrency: int
    think_s: np.ndarray  # float: the client of request i waits this long before its next
    send_until_s: float  # no request is sent at or after this time (the run's duration_s)


@dataclass(frozen=True)
class PoolLimits:
    """What sizing a pool needs to know of the fleet and the run's budget."""

    min_step_s: float  # the shortest engine step (`min_step_s`)
    max_request_tokens: int  # prompt + output a replica holds at most; larger are rejected
    max_requests: int  # the largest pool allowed


def min_step_s(model: StepTimeModel) -> float:
    """The shortest engine step: one prefill token alone or one decoding sequence alone
    (a step does at least one of them, and more work takes no less time)."""
    prefill_s, decode_s = model.step_s(1, 1.0, 0, 0)
    return min(prefill_s + decode_s, model.decode_fixed_s(1))


def think_times(think: ThinkTime, rng: np.random.Generator, n: int) -> np.ndarray:
    """n think times in seconds: the fixed value, or draws of its distribution (≥ 0)."""
    if isinstance(think, float | int):
        return np.full(n, float(think))
    return np.maximum(think.ppf(rng.random(n)), 0.0)  # a triangle's ppf may round below low


def expected_requests(spec: ClosedArrivals, duration_s: float, mean_output_tokens: float,
                      step_s: float) -> float:
    """An upper bound of the requests a run sends on average: N × duration_s ÷ the least
    mean time one request keeps its client busy (mean think + mean output × t_min), + N."""
    cycle_s = spec.mean_think_s + mean_output_tokens * step_s
    if cycle_s <= 0.0:
        return math.inf
    return spec.concurrency * duration_s / cycle_s + spec.concurrency


def first_pool(spec: ClosedArrivals, duration_s: float, mean_output_tokens: float,
               step_s: float, max_requests: int) -> int:
    """The size of the first pool drawn (`enough` decides whether it is)."""
    expected = expected_requests(spec, duration_s, mean_output_tokens, step_s)
    return int(min(FIRST_POOL_MARGIN * expected + spec.concurrency + FIRST_POOL_SLACK,
                   max_requests))


def busy_bound_s(output_tokens: np.ndarray, fits: np.ndarray, think_s: np.ndarray,
                 step_s: float) -> np.ndarray:
    """The least time each request keeps its client busy: its think time, plus a step per
    output token unless it is rejected (`fits` false)."""
    return think_s + np.where(fits, output_tokens * step_s, 0.0)


def enough(spec: ClosedArrivals, duration_s: float, busy_s: np.ndarray) -> bool:
    """Whether a pool whose requests keep their clients busy at least `busy_s` each is never
    used up before duration_s (the bound in the module docstring)."""
    if not len(busy_s):
        return False
    return float(busy_s.sum()) > spec.concurrency * (duration_s + float(busy_s.max()))


def too_many(spec: ClosedArrivals, duration_s: float, max_requests: int) -> InputError:
    """The refusal when even `max_requests` requests might run out before duration_s."""
    if spec.mean_think_s == 0.0:
        return InputError("workload.arrival.think_time_s", spec.think_time_s,
                          f"a think time > 0, fewer clients or a shorter duration_s: "
                          f"{spec.concurrency:,} clients sending back to back for "
                          f"{duration_s:g} s may send more than {max_requests:,} requests "
                          "(rejected requests return at once)")
    return InputError("workload.arrival.concurrency", spec.concurrency,
                      f"fewer clients, a longer think time or a shorter duration_s: they may "
                      f"send more than {max_requests:,} requests in {duration_s:g} s")
