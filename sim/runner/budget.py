"""What a run will ask of the machine, estimated before it starts, and the limits on it.

The schema bounds each number on its own; what a run allocates and how long it takes come
from products of them (a rate of 10⁶ per second is fine for a minute, not for a hundred
days; ×1000 spikes are fine for a second, not for an hour). So before any simulation the
work is estimated in closed form from the validated scenario — nothing is sampled — and a
run beyond a limit is refused with an `InputError` that names the key driving it, the
estimate and how it was made, and what to change:

    workload.arrival.rate_per_s: 1000000.0 — expected a workload of at most 20,000,000
    requests per run (this one: 600,000,000 = rate × duration_s); lower the rate or
    duration_s, or raise the limit with --max-requests

Per run (`run_work`; `check_run` refuses):

* **requests**: the expected arrivals simulated — rate × duration_s for Poisson; the
  integral of the rate (profile, rate curve and spikes) for a time-varying one; + cv² for
  gamma gaps (Lorden's bound: bursty gaps come in clusters of about cv² requests); a trace's
  requests in its window before duration_s × scale; for closed-loop clients, concurrency ×
  duration_s ÷ the least mean time a request keeps its client busy (think time + output
  tokens × the shortest engine step), + concurrency; for sessions, the turns: the sessions
  an open process starts × the mean turns, or closed sessions' clients' pace per turn (think
  times shared over a session's turns) + a whole session per client. The renewal generator's
  chunks, the
  length draws and the engine's per-request tables all grow with this count;
* **arrival table**: what the generator holds at once — λ_max × duration_s candidates for a
  time-varying rate (drawn at its peak, then thinned), a trace window × scale copies (made
  before the cut at duration_s);
* **per-batch table**: each replica tables the fixed cost of every batch size, replicas ×
  (max_num_seqs + 1) step-time calls; the step-time table: max_batched_tokens +
  max_num_seqs entries;
* **autoscaling decisions** ((duration_s + drain_s) ÷ interval_s), **provisioning
  retries** when capacity can be refused (max_replicas × horizon ÷ retry_s) and **fault
  events** (replicas × horizon ÷ mean time up, per kind), each a step of the event loop.

A sweep, plan or stress test bounds each of its runs so, and all of them together
(`check_total`, `check_runs`): see `sim.montecarlo.design`, `sim.planning.planner` and
`sim.planning.stress`, where the totals are assembled.

Defaults, from measurement: the engine simulates about 90,000 requests a second on one core
and holds about 0.5 KB per request (benchmarks/engine_speed.py: 1 M requests, ~460 MiB at
peak). So DEFAULT_MAX_REQUESTS, 20 M requests per run, is about 10 GB and 4 minutes — room
on a 16 GB machine, where 50 M (~25 GB) would not fit even a 24 GB one. A numpy table entry
costs a few tens of bytes (10⁷ thinning candidates — times, their sorted copy, the thinning
draws, λ there — peak at ~330 MB), under a tenth of a request, so tables may hold
TABLE_ENTRIES_PER_REQUEST × as many;
decisions and events are steps of the event loop like a request's, and count one for one.
DEFAULT_MAX_TOTAL_REQUESTS, 200 M requests for all of a command's runs, is about 40
core-minutes: a long wait, not an unbounded one. DEFAULT_MAX_RUNS bounds how many runs a
command may set up at all: a sweep validates and keeps one scenario per run (~12 KB and
~0.8 ms each), so 50,000 runs is 600 MB and 40 s before the first one starts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.errors import InputError
from sim.runner import build
from sim.scenario import Scenario
from sim.scenario.workload import (
    ArrivalSpec,
    ClosedArrivals,
    GammaArrivals,
    PoissonArrivals,
    TraceSpec,
)
from sim.workload import arrivals, closed, rate, sessions
from sim.workload.replay import window

DEFAULT_MAX_REQUESTS = 20_000_000  # per run: ~10 GB, ~4 minutes
DEFAULT_MAX_TOTAL_REQUESTS = 200_000_000  # all runs of a sweep, plan or stress test
DEFAULT_MAX_RUNS = 50_000  # runs (or cells of option × period × draw) one command sets up
TABLE_ENTRIES_PER_REQUEST = 10  # numpy table entries per request of the limit
REQUESTS_FLAG = "--max-requests"
TOTAL_FLAG = "--max-total-requests"
SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class Work:
    """One quantity a run needs: how many, the key that drives it and its value, how the
    count follows from the scenario, and what would lower it."""

    noun: str  # what is counted ("requests", "arrival candidates", ...)
    count: float
    key: str
    value: Any
    formula: str  # how count is made of the keys: "rate × duration_s"
    advice: str  # what to change: "lower the rate or duration_s"
    per_request: float = 1.0  # its limit, in multiples of the request limit

    def limit(self, max_requests: int) -> int:
        return int(max_requests * self.per_request)


@dataclass(frozen=True)
class RunWork:
    """Everything one run is estimated to need; `requests` is what totals add up."""

    requests: Work
    tables: tuple[Work, ...]

    @property
    def items(self) -> tuple[Work, ...]:
        return (self.requests, *self.tables)


def counted(n: int, noun: str) -> str:
    """'1 point', '1,000 points': a count and its noun, for a message."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def count_text(count: float) -> str:
    """A count for a message: digits with separators, or powers of ten when astronomical."""
    if not math.isfinite(count):
        return "more than 1e308"
    return f"{count:,.0f}" if count < 1e15 else f"{count:.3g}"


# ---- one run ---------------------------------------------------------------------------------


def check_run(scenario: Scenario, max_requests: int = DEFAULT_MAX_REQUESTS,
              flag: str = REQUESTS_FLAG) -> RunWork:
    """The run's work, or `InputError` for the first quantity beyond its limit."""
    work = run_work(scenario)
    for item in work.items:
        check_item(item, max_requests, flag)
    return work


def check_item(item: Work, max_requests: int = DEFAULT_MAX_REQUESTS,
               flag: str = REQUESTS_FLAG) -> None:
    """`InputError` naming the item's key when its count is beyond its limit."""
    limit = item.limit(max_requests)
    if not item.count <= limit:  # NaN refused too
        what = (f"a workload of at most {limit:,} requests" if item.noun == "requests"
                else f"at most {limit:,} {item.noun}")
        raise InputError(item.key, item.value, f"{what} per run (this one: "
                         f"{count_text(item.count)} = {item.formula}); {item.advice}, or "
                         f"raise the limit with {flag}")


def run_work(scenario: Scenario) -> RunWork:
    """The estimate of every quantity a run of `scenario` needs (see the module docstring)."""
    workload = scenario.workload
    tables: list[Work] = []
    if workload.trace is not None:
        requests, copies = _trace_work(workload.trace, scenario.duration_s)
        if copies is not None:
            tables.append(copies)
    else:
        assert workload.arrival is not None  # WorkloadSpec: an arrival when there is no trace
        if workload.sessions is not None:
            requests = _sessions_work(scenario)
        elif isinstance(workload.arrival, ClosedArrivals):
            requests = _clients_work(scenario, workload.arrival)
        else:
            requests = _arrival_work(workload.arrival, scenario.duration_s)
        if rate.is_time_varying(workload.arrival):
            tables.append(_candidates(workload.arrival, scenario.duration_s))
    tables += _engine_tables(scenario)
    return RunWork(requests, tuple(tables))


def arrival_requests(arrival: ArrivalSpec, duration_s: float) -> float:
    """The expected arrivals of `arrival` over [0, duration_s) (an upper bound for gamma)."""
    if rate.is_time_varying(arrival):
        return _finite_or_inf(rate.expected_count(arrival, duration_s))
    return _finite_or_inf(arrivals.expected_count(arrival, duration_s))


def _arrival_work(arrival: ArrivalSpec, duration_s: float) -> Work:
    count = arrival_requests(arrival, duration_s)
    key, value = "workload.arrival.rate_per_s", arrival.rate_per_s
    advice = "lower the rate or duration_s"
    if isinstance(arrival, GammaArrivals):
        formula = "rate × duration_s + cv², a gamma process's most on average"
        if arrival.cv**2 > arrival.rate_per_s * duration_s:
            key, value = "workload.arrival.cv", arrival.cv
            formula += " (its gaps come in clusters of about cv² requests)"
            advice = "lower cv"
        return Work("requests", count, key, value, formula, advice)
    if not rate.is_time_varying(arrival):
        return Work("requests", count, key, value, "rate × duration_s", advice)
    formula = "the integral of the rate over duration_s"
    excess = [rate.spike_excess(arrival, i, duration_s) for i in range(len(arrival.spikes))]
    if excess and max(excess) > count / 2:  # one spike brings most of the requests
        i = int(np.argmax(excess))
        spike = arrival.spikes[i]
        key, value = f"workload.arrival.spikes.{i}.multiplier", spike.multiplier
        formula += f", spike {i} (× {spike.multiplier:g} for {spike.duration_s:g} s) included"
        advice = "lower the spike's multiplier or duration_s"
    return Work("requests", count, key, value, formula, advice)


def _clients_work(scenario: Scenario, spec: ClosedArrivals) -> Work:
    """A closed loop's requests: at most its clients' pace allows, each request keeping its
    client busy at least its think time plus a step per output token (`sim.workload.closed`;
    the shortest step comes from the scenario's step-time model)."""
    output = scenario.workload.output_tokens
    assert output is not None  # WorkloadSpec: lengths with an arrival process
    count = closed.expected_requests(spec, scenario.duration_s, output.mean_tokens,
                                     build.shortest_token_s(scenario))
    return Work("requests", _finite_or_inf(count), "workload.arrival.concurrency",
                spec.concurrency, "concurrency × duration_s ÷ (mean think time + mean output "
                "tokens × the shortest engine step) + concurrency",
                "fewer clients, a longer think time or a shorter duration_s")


def _sessions_work(scenario: Scenario) -> Work:
    """The turns sessions send: the sessions started × their mean turns (open), or at most
    what closed sessions' clients' pace allows (`sim.workload.sessions`). Blames the rate
    when the sessions alone are beyond the default limit, else the turns (the message
    shows both factors)."""
    w = scenario.workload
    assert w.sessions is not None and w.arrival is not None and w.output_tokens is not None
    turns = w.sessions.mean_turns
    if isinstance(w.arrival, ClosedArrivals):
        count = sessions.expected_closed_requests(
            w.sessions, w.arrival, scenario.duration_s, w.output_tokens.mean_tokens,
            build.shortest_token_s(scenario))
        return Work("requests", _finite_or_inf(count), "workload.arrival.concurrency",
                    w.arrival.concurrency, "concurrency × (duration_s ÷ (mean think time per "
                    "turn + mean output tokens × the shortest engine step) + mean turns)",
                    "fewer clients, longer think times or a shorter duration_s")
    started = arrival_requests(w.arrival, scenario.duration_s)
    work = _arrival_work(w.arrival, scenario.duration_s)
    if started > DEFAULT_MAX_REQUESTS or turns <= 1.0:
        key, value = work.key, work.value
    else:
        key, value = "workload.sessions.turns", w.sessions.turns
    return Work("requests", _finite_or_inf(started * turns), key, value,
                f"sessions started ({work.formula}) × {turns:g} mean turns",
                "fewer sessions (a lower rate or duration_s) or fewer turns")


def _candidates(arrival: PoissonArrivals, duration_s: float) -> Work:
    """λ_max × duration_s: the thinning generator draws them all at once."""
    count = _finite_or_inf(rate.max_rate_per_s(arrival, duration_s) * duration_s)
    key = "workload.arrival.rate_per_s"
    value: Any = arrival.rate_per_s
    during = [i for i, s in enumerate(arrival.spikes) if s.at_s < duration_s]
    tallest = max(during, key=lambda i: arrival.spikes[i].multiplier, default=None)
    if tallest is not None and arrival.spikes[tallest].multiplier > 1.0:
        key = f"workload.arrival.spikes.{tallest}.multiplier"
        value = arrival.spikes[tallest].multiplier
    elif arrival.rate_curve is not None:
        key, value = "workload.arrival.rate_curve", arrival.rate_curve
    return Work("arrival candidates", count, key, value, "the peak rate × duration_s: a "
                "time-varying rate is drawn at its peak, then thinned",
                "a lower peak (rate, rate curve or spike multiplier) or a shorter duration_s",
                TABLE_ENTRIES_PER_REQUEST)


def _trace_work(spec: TraceSpec, duration_s: float) -> tuple[Work, Work | None]:
    """The replayed requests before duration_s, and (when scaled up) the copies made of the
    whole window before that cut; `InputError` when the window holds no request."""
    lo, hi = window(spec)
    trace = spec.requests
    assert trace is not None  # window(): load_scenario attached them
    end = spec.start_s + duration_s * spec.speedup  # trace time of the run's last arrival
    inside = min(hi, int(np.searchsorted(trace.arrival_s, end, side="left"))) - lo
    count = _finite_or_inf(inside * spec.scale)
    value: Any
    if spec.scale > 1.0:
        key, value = "workload.trace.scale", spec.scale
        advice = "lower workload.trace.scale, or replay a shorter window"
    else:
        key, value = "workload.trace.path", spec.path
        advice = ("replay a shorter window (workload.trace.start_s, duration_s) or thin it "
                  "(workload.trace.scale < 1)")
    requests = Work("requests", count, key, value,
                    f"{inside:,} trace requests before duration_s × scale {spec.scale:g}",
                    advice)
    if spec.scale <= 1.0:
        return requests, None
    copies = Work("replayed copies", _finite_or_inf((hi - lo) * spec.scale),
                  "workload.trace.scale", spec.scale,
                  f"{hi - lo:,} requests in the trace window × scale, made before the cut at "
                  "duration_s", "lower workload.trace.scale, or replay a shorter window "
                  "(workload.trace.start_s, duration_s)", TABLE_ENTRIES_PER_REQUEST)
    return requests, copies


def _engine_tables(scenario: Scenario) -> list[Work]:
    d = scenario.deployment
    pools = scenario.pools or scenario.fleet_pools
    if pools is not None:  # disaggregated or pools: each pool tables its own (static fleet)
        return [work for pool in pools
                for work in _step_tables(pool.key, pool.replicas, f"{pool.key}.replicas",
                                         pool.scheduler.max_num_seqs,
                                         pool.scheduler.max_batched_tokens)]
    slots_key = "deployment.replicas" if d.autoscaling is None else (
        "deployment.autoscaling.max_replicas")
    slots = d.replicas if d.autoscaling is None else d.autoscaling.max_replicas
    out = _step_tables("deployment", slots, slots_key, d.scheduler.max_num_seqs,
                       d.scheduler.max_batched_tokens)
    horizon_s = scenario.duration_s + (scenario.drain_s or 0.0)
    if d.autoscaling is not None:
        a = d.autoscaling
        out.append(Work("autoscaling decisions", horizon_s / a.interval_s,
                        "deployment.autoscaling.interval_s", a.interval_s,
                        "(duration_s + drain_s) ÷ interval_s", "a longer interval_s or a "
                        "shorter duration_s"))
        if a.provisioning.success_probability < 1.0:
            # Each wanted replica may be asked for again every retry_s while it is refused.
            out.append(Work("provisioning retries", a.max_replicas * horizon_s
                            / a.provisioning.retry_s,
                            "deployment.autoscaling.provisioning.retry_s",
                            a.provisioning.retry_s,
                            "max_replicas × (duration_s + drain_s) ÷ retry_s",
                            "a longer retry_s, fewer max_replicas or a shorter duration_s"))
    if d.failures is not None:
        up_s = d.failures.mtbf_h * SECONDS_PER_HOUR / scenario.gpus_per_replica
        out.append(Work("fault events", 2.0 * slots * horizon_s / up_s,
                        "deployment.failures.mtbf_h", d.failures.mtbf_h,
                        "2 × replicas × (duration_s + drain_s) ÷ (mtbf_h ÷ GPUs per replica): "
                        "a failure and a repair each", "a longer mtbf_h, fewer replicas or a "
                        "shorter duration_s"))
    if d.spot is not None:
        up_s = SECONDS_PER_HOUR / d.spot.preemptions_per_h
        out.append(Work("fault events", 3.0 * slots * horizon_s / up_s,
                        "deployment.spot.preemptions_per_h", d.spot.preemptions_per_h,
                        "3 × replicas × (duration_s + drain_s) × preemptions_per_h ÷ 3600: "
                        "a notice, a reclaim and a replacement each", "fewer preemptions_per_h, "
                        "fewer replicas or a shorter duration_s"))
    return out


def _step_tables(key: str, slots: int, slots_key: str, seqs: int, tokens: int) -> list[Work]:
    """What the step-time tables of `slots` replicas batching `seqs` sequences and `tokens`
    tokens hold; `key`: where their scheduler is (a pool's, or the deployment's)."""
    big_seqs = seqs >= slots
    return [
        Work("per-batch step times", float(slots) * (seqs + 1),
             f"{key}.scheduler.max_num_seqs" if big_seqs else slots_key,
             seqs if big_seqs else slots,
             "replicas × (max_num_seqs + 1): each replica tables every batch size's cost",
             "fewer replicas or a lower max_num_seqs"),
        Work("step-time table entries", float(tokens + seqs),
             f"{key}.scheduler.max_batched_tokens", tokens,
             "max_batched_tokens + max_num_seqs", "a lower max_batched_tokens",
             TABLE_ENTRIES_PER_REQUEST),
    ]


def _finite_or_inf(count: float) -> float:
    """NaN (∞ × 0 somewhere in a product) counts as ∞: refused, never let through."""
    return math.inf if math.isnan(count) else count


# ---- many runs -------------------------------------------------------------------------------


def renamed(exc: InputError, where: Mapping[str, str | tuple[str, Any]]) -> InputError:
    """`exc` under the key the user wrote when a sweep, plan or stress case set the key it
    names (or a mapping above it): `where` maps scenario key paths to those names, or to a
    (name, value) pair where the user wrote another value (a period's peak for the rate)."""
    for key, target in where.items():
        name, value = target if isinstance(target, tuple) else (target, exc.value)
        if exc.where == key:
            return InputError(name, value, exc.expected)
        if exc.where.startswith((key + ".", key + "[")):
            return InputError(name + exc.where[len(key):], exc.value, exc.expected)
    return exc


def check_runs(runs: int, max_runs: int, where: str, value: Any, formula: str,
               advice: str, what: str) -> None:
    """`InputError` when a command would set up more than `max_runs` runs (`what`: "a
    sweep", "a plan", "a stress test")."""
    if runs > max_runs:
        raise InputError(where, value, f"{what} of at most {max_runs:,} runs (this one: "
                         f"{runs:,} = {formula}); {advice}")


def check_total(total: float, max_total_requests: int, where: str, value: Any, formula: str,
                advice: str, what: str) -> None:
    """`InputError` when all of a command's runs together would simulate more than
    `max_total_requests`."""
    if not total <= max_total_requests:
        raise InputError(where, value, f"{what} of at most {max_total_requests:,} requests "
                         f"in all (this one: {count_text(total)} = {formula}); {advice}, or "
                         f"raise the limit with {TOTAL_FLAG}")
