"""Monte Carlo draws for the planner, run on an executor and remembered, and the rule that
calls a candidate fleet feasible.

Draw d is the same everywhere: one run seed (so the same arrivals and lengths, scaled to the
rate), one uniform for the demand multiplier and one set of sampled inputs (the scenario's
`uncertainty:` block plus the default step-time error, as in a sweep: validation's for
the model's family, `sim.montecarlo.model_error`). Every option, period and fleet size sees
draw d — common random numbers, so neighbouring fleet sizes differ only in the fleet.

The rule (`sim.montecarlo.confidence`). Each draw meets the joint SLO or does not; a
plan's candidate is judged by Wald's sequential test on those verdicts and reported with
the Wilson 95% interval of its share met. Draws run in chunks of `CHUNK`, in draw order,
and the test looks after every chunk:

- it stops as soon as it calls the fleet feasible or infeasible: draws are added only
  where the decision is close;
- `first` (`plan.target.draws`) is the first look that may go on past itself: a search
  takes at most `EXTENDED_PER_SEARCH` fleets beyond it (the boundary lies between two
  sizes, so those are the close ones), and a further fleet still undecided there is called
  infeasible; that bounds the runs a plan can make before it starts;
- a fleet still undecided after every draw (`plan.target.max_draws`) is infeasible.

The cut-offs only ever call fleets infeasible, so the test's bound holds: a fleet whose
true P(SLO met) is at most p₀ (0.80 for a target of 0.95) is called feasible with
probability at most 5%. The price of that, and of being vouched for by counts alone, is
that a feasible fleet takes 15 straight met draws at 0.95 (8 before: "8 of 8").

A stress test's fixed draws are judged by count instead (`Evaluator(sequential=False)`): at
least ⌈confidence × draws⌉ of them met — what the draws showed, not a guarantee; its
interval says how little a few draws prove. The chunks do not depend on the number of
workers, so the count of runs is the same on any executor.

The planner sizes its options side by side, one thread each, and Ctrl-C reaches only the
main thread, which then waits for those threads to end: so `planning_executor` turns Ctrl-C
into a stop that the threads see too (a new run is refused, a wait for one given up), and
an interrupted plan or stress test ends within one run.
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

import numpy as np

from sim.metrics.record import RunRecord
from sim.montecarlo.confidence import SequentialTest, Share, wilson
from sim.montecarlo.design import int_seed, uncertain_inputs
from sim.montecarlo.execute import metrics_row, open_executor
from sim.planning.options import Fleet, Option
from sim.runner.single import run
from sim.scenario import Scenario
from sim.scenario.uncertain import sample, uniforms

CHUNK = 4
EXTENDED_PER_SEARCH = 2  # fleets a search may run past the first look


def run_draw(scenario: Scenario, seed: int) -> dict[str, Any]:
    """One run (in a worker), as a row."""
    # max_requests=None: the planner checked the biggest draw's work before any run.
    # No window warnings: the search tries fleets too small on purpose, whose queues
    # (and so E2E times) grow without bound; a fleet that meets the SLO has short ones.
    return draw_row(run(scenario, seed=seed, max_requests=None,
                        warn_window=False).record)


def draw_row(record: RunRecord) -> dict[str, Any]:
    """The sweep's metrics of a run plus what the planner prices and reports."""
    return {**metrics_row(record), "gpu_hour_usd": record.gpu_hour_usd,
            "replicas_billed_mean": record.replicas_billed_mean,
            "availability": record.availability_fraction}


class InlineExecutor(Executor):
    """Runs each task at once in the caller's thread (one worker: no process start-up)."""

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to whoever reads the future, as a pool does
            future.set_exception(exc)
        return future


POLL_S = 0.25  # how often a thread waiting for a run looks whether Ctrl-C stopped the plan


class Stoppable(Executor):
    """An executor that, once `stopped` is set, refuses new runs and, through `result`,
    stops waiting for those under way: in every thread, with KeyboardInterrupt."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self.stopped = threading.Event()

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        if self.stopped.is_set():
            raise KeyboardInterrupt
        return self.inner.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.inner.shutdown(wait=wait, cancel_futures=cancel_futures)


def result(executor: Executor, future: Future) -> Any:
    """`future.result()`, given up with KeyboardInterrupt when `executor` is a stopped
    `Stoppable` (a worker thread is never interrupted by Ctrl-C itself)."""
    stopped = getattr(executor, "stopped", None)
    if stopped is None:
        return future.result()
    while True:
        try:
            return future.result(timeout=POLL_S)
        except FutureTimeout:
            if stopped.is_set():
                raise KeyboardInterrupt from None


@contextmanager
def planning_executor(workers: int | None) -> Iterator[Executor]:
    """One worker runs in-process (no start-up cost, same results); more use worker processes
    (`open_executor`'s: they die with this process and their warnings are shown here).
    Ctrl-C stops every thread's use of it, not only the main thread's."""
    if workers == 1:
        with _stop_on_ctrl_c(Stoppable(InlineExecutor())) as executor:
            yield executor
        return
    with open_executor(workers) as pool, _stop_on_ctrl_c(Stoppable(pool)) as executor:
        yield executor


@contextmanager
def _stop_on_ctrl_c(executor: Stoppable) -> Iterator[Stoppable]:
    """While in the block, Ctrl-C sets `executor.stopped` and then does what it did before
    (raise KeyboardInterrupt in the main thread). Off the main thread, where no signal
    handler can be set, the block only yields the executor."""
    if threading.current_thread() is not threading.main_thread():
        yield executor
        return
    previous = signal.getsignal(signal.SIGINT)

    def interrupted(signum: int, frame: FrameType | None) -> None:
        executor.stopped.set()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupted)
    try:
        yield executor
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass(frozen=True)
class Draws:
    seeds: tuple[int, ...]
    demand_u: np.ndarray  # one uniform per draw for the demand multiplier
    inputs_seed: np.random.SeedSequence  # sampled inputs: the same stream for every option

    @classmethod
    def spawn(cls, seed: np.random.SeedSequence, count: int) -> Draws:
        runs, demand, inputs = seed.spawn(3)
        u = uniforms(count, 1, "lhs", np.random.default_rng(demand))[:, 0]
        return cls(tuple(int_seed(s) for s in runs.spawn(count)), u, inputs)

    def sampled(self, option: Option) -> tuple[list[dict[str, Any]], list[str]]:
        """Per draw, the option's sampled inputs; and notes on what was sampled."""
        inputs = uncertain_inputs(option.scenario)
        draws = sample(inputs.specs, len(self.seeds), "lhs",
                       np.random.default_rng(self.inputs_seed))
        return draws, inputs.notes


@dataclass(frozen=True)
class Verdict:
    """What the rule said of one candidate, and the draws it read."""

    feasible: bool
    share: Share
    rows: list[dict[str, Any]]

    def to_dict(self, replicas: int) -> dict[str, Any]:
        return {"replicas": replicas, "feasible": self.feasible, "draws": self.share.draws,
                "slo_met_probability": self.share.probability,
                "slo_met_probability_ci": self.share.interval()}


class Evaluator:
    """Runs and remembers the draws of candidate fleets, judges them by the rule above, and
    counts the runs it made. `first` is the first look that may go on past itself (default:
    every draw); `sequential` False judges by count (a stress test's fixed draws)."""

    def __init__(self, executor: Executor, draws: Draws, confidence: float,
                 on_run: Callable[[], None] | None = None, first: int | None = None,
                 sequential: bool = True) -> None:
        self.executor = executor
        self.draws = draws
        self.confidence = confidence
        self.test = SequentialTest(confidence) if sequential else None
        self.total = len(draws.seeds)
        self.first = min(first or self.total, self.total)
        self.on_run = on_run or (lambda: None)
        self.cache: dict[tuple, list[dict[str, Any]]] = {}
        self.runs: dict[int, int] = {}  # runs made, per option index
        self.lock = threading.Lock()

    def rows(self, option: Option, replicas: Fleet, rates: Sequence[float],
             sampled: Sequence[dict[str, Any]], count: int | None = None,
             shaped: bool = False) -> list[dict]:
        """The first `count` draws' rows (default all) for this fleet at these per-draw
        rates (peak rates of the day shape when `shaped`)."""
        key = (option.index, replicas, tuple(rates), shaped)
        with self.lock:
            done = list(self.cache.get(key, []))
        count = self.total if count is None else min(count, self.total)
        while len(done) < count:
            batch = range(len(done), min(len(done) + CHUNK, count))
            futures = [self.executor.submit(
                run_draw, option.candidate(replicas, rates[d], sampled[d], shaped),
                self.draws.seeds[d])
                for d in batch]
            for future in futures:
                done.append(result(self.executor, future))
                self.on_run()
            with self.lock:
                if len(done) > len(self.cache.get(key, [])):
                    self.cache[key] = list(done)
                self.runs[option.index] = self.runs.get(option.index, 0) + len(futures)
        return done[:count]

    def looks(self) -> list[int]:
        """The draw counts after which the rule looks: every chunk, the first look, the end."""
        return sorted({*range(CHUNK, self.total, CHUNK), self.first, self.total})

    def verdict(self, option: Option, replicas: Fleet, rates: Sequence[float],
                sampled: Sequence[dict[str, Any]], extend: bool = True) -> Verdict:
        """The rule's verdict on the fleet at these per-draw peak rates (day-shaped); with
        `extend` False, no draws past the first look (undecided there: infeasible)."""
        for n in self.looks():
            if n > self.first and not extend:
                break
            rows = self.rows(option, replicas, rates, sampled, n, shaped=True)
            met = met_count(rows)
            called = self._call(met, n, last=n == self.total)
            if called is not None:
                return Verdict(called, wilson(met, n), rows)
        return Verdict(False, wilson(met, len(rows)), rows)

    def _call(self, met: int, draws: int, last: bool) -> bool | None:
        if self.test is not None:
            return self.test.verdict(met, draws, last)
        needed = math.ceil(self.confidence * self.total - 1e-9)
        if draws - met > self.total - needed:
            return False  # too many missed already to reach the count
        return met >= needed if last else None

    def feasible(self, option: Option, replicas: Fleet, rates: Sequence[float],
                 sampled: Sequence[dict[str, Any]]) -> bool:
        """Whether the fleet meets the target at these per-draw peak rates."""
        return self.verdict(option, replicas, rates, sampled).feasible


def met_count(rows: Sequence[dict[str, Any]]) -> int:
    """Draws whose SLO was met (a run with no measured request counts as a miss)."""
    return sum(1 for row in rows if row["slo_met"] is True)
