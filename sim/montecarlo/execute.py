"""Running a sweep design's runs on a `concurrent.futures` executor, yielding rows as they finish.

Runs are independent tasks (a scenario and a seed in, a flat row of headline metrics out), so
any executor will do: a local `ProcessPoolExecutor` by default, or a Dask cluster's
`Client.get_executor()` when one machine is not enough. Rows come back in completion order,
each carrying its run index; the results are the same whichever executor ran them.

The local pool is made to behave like part of the command that started it:

- its workers die with their parent: each watches the parent (a thread waiting on the pipe
  the parent holds open) and exits the moment it is gone, so a sweep or plan killed with
  SIGKILL leaves no worker (and so no resource tracker, which exits with the last process
  holding its pipe) running on;
- they ignore Ctrl-C, which a terminal sends to every process of the command: the parent
  handles it once, and stops them;
- what they warn about reaches the CLI's one-line warnings: a task's warnings are recorded
  in the worker, travel back with its result and are re-issued in the parent, once each.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from typing import Any

from sim.errors import InputError
from sim.metrics.cost import COST_ITEMS
from sim.metrics.record import RunRecord
from sim.montecarlo.design import RunSpec
from sim.runner.single import run

# runs.csv metric columns, in file order (the names are a file contract): column → the
# RunRecord field it holds, which has the column's name for all but one.
METRICS: dict[str, str] = {
    **{column: column for column in (
        "usd_per_million_input", "usd_per_million_output", "usd_per_million_blended",
        "usd_per_million_goodput", "fleet_usd_per_hour", "energy_j_per_token",
        "requests_per_s", "input_tokens_per_s", "output_tokens_per_s", "goodput_tokens_per_s",
        "ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s", "busy_fraction",
        "gpu_hour_usd", "slo_attainment", "slo_met", "requests_completed",
        "requests_unfinished")},
    "preempted": "preemptions",
    # Headroom (appended, so older columns keep their places): what the report's cost
    # waterfall splits ownership by, and how loaded the fleet was.
    **{column: column for column in (
        "capacity_used_fraction", "load_fraction", "mfu", "mbu")},
}

# What a GPU-hour was made of, one column per item (the record's fields of the same names):
# rental for rented GPUs, the TCO items for owned ones, empty where an item does not apply.
# Reports draw the cost waterfall of a sweep's median run from these.
ITEM_COLUMNS = tuple(f"gpu_hour_usd_{item}" for item in COST_ITEMS)


def metrics_row(record: RunRecord) -> dict[str, Any]:
    """The headline numbers of one run, as runs.csv holds them."""
    row = {column: getattr(record, name) for column, name in METRICS.items()}
    row.update({column: getattr(record, column) for column in ITEM_COLUMNS})
    return row


def run_one(spec: RunSpec) -> dict[str, Any]:
    """One task: simulate the run's scenario with its seed (executed in a worker); the row
    travels back rather than the result, whose per-request columns nobody needs here."""
    # max_requests=None: the design checked every run's work before the first one started.
    return metrics_row(run(spec.scenario, seed=spec.seed, max_requests=None).record)


def execute(runs: Iterable[RunSpec], executor: Executor) -> Iterator[tuple[RunSpec, dict]]:
    """Submit every run, then yield (run, metrics) as each finishes."""
    futures = {executor.submit(run_one, spec): spec for spec in runs}
    try:
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:  # interrupted or failed: do not start what is still queued
        for future in futures:
            future.cancel()


@contextmanager
def open_executor(workers: int | None = None, scheduler: str | None = None) -> Iterator[Executor]:
    """Local worker processes (default: one per CPU), or a Dask scheduler's executor.
    Workers are spawned, so a script that uses this needs the `if __name__ == "__main__":`
    guard (the CLI and notebooks need nothing).

    Local workers die with the process that started them and ignore Ctrl-C; their warnings
    are re-issued here (see the module's docstring). Leaving the block by an exception, or
    with tasks still running that nobody will read, stops the workers at once rather than
    waiting for those tasks to finish."""
    if scheduler is None:
        # 'spawn' starts clean interpreters: safe whatever threads the caller has running.
        context = multiprocessing.get_context("spawn")
        pool = _Pool(workers or os.cpu_count(), mp_context=context,
                     initializer=_start_worker, initargs=(os.getpid(),))
        executor = WarningRelay(pool)
        try:
            yield executor
        except BaseException:
            _stop(pool)
            raise
        if executor.unfinished():
            _stop(pool)
        else:
            pool.shutdown(wait=True)
        return
    try:
        from distributed import Client
    except ImportError:
        raise InputError("--scheduler", scheduler, "dask's distributed package installed "
                         "(pip install 'tokenfactory[cluster]')") from None
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError("--scheduler", scheduler, f"a reachable Dask scheduler address such "
                         f"as tcp://HOST:8786 ({exc})") from None
    try:
        yield client.get_executor()
    finally:
        client.close()


# ---- the local pool's workers ------------------------------------------------------------

POLL_S = 0.5  # how often a worker without a parent pipe to wait on checks its parent
# Signal masks are POSIX; elsewhere a worker ignores Ctrl-C from its initializer on.
_MASKS = hasattr(signal, "pthread_sigmask")


class _Pool(ProcessPoolExecutor):
    """A process pool whose workers start with Ctrl-C blocked, until their initializer
    ignores it: a Ctrl-C in the second a worker takes to start is then not a traceback
    from its start-up code. (Workers are started as tasks are submitted, in the submitting
    thread, which passes its signal mask on to them; that thread gets a Ctrl-C sent in
    that moment as soon as the worker is started.)"""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if not _MASKS:
            return super().submit(fn, *args, **kwargs)
        before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            return super().submit(fn, *args, **kwargs)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _start_worker(parent_pid: int) -> None:
    """Run in each worker before its first task: ignore Ctrl-C (the parent, which gets it
    too, stops the pool) and exit as soon as the parent is gone.

    Not PR_SET_PDEATHSIG: Linux sends that signal when the *thread* that started the worker
    ends, and the planner submits runs (so starts workers) from per-option threads that end
    while the pool is still in use."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if _MASKS:  # blocked since the worker started (`_Pool`): a Ctrl-C pending is dropped
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    parent = multiprocessing.parent_process()
    watch: Callable[[], None]
    if parent is not None:
        watch = parent.join  # returns when the pipe the parent holds open closes
    else:  # not started by multiprocessing: fall back to noticing the new parent
        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(POLL_S)

    def orphaned() -> None:
        watch()
        os._exit(1)  # no clean-up: the queues it would flush lead nowhere now

    threading.Thread(target=orphaned, name="tokenfactory-parent-watch", daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before the thread started
        os._exit(1)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop the pool now: drop what is queued and end the workers, whose running tasks
    nobody will read (interrupted, failed, or given up on), instead of waiting for them."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=5)
    pool.shutdown(wait=True)


# A warning as it travels from a worker: its category, text, and where it was raised.
Caught = tuple[type[Warning], str, str, int]


def _recording(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> tuple[Any, list[Caught]]:
    """Run one task in a worker with its warnings recorded instead of printed (a worker's
    stderr is the terminal, where they would appear as raw two-line warnings, --quiet or
    not) and return them, each once, with the task's result. A task that fails reports
    its error alone: that ends the command, and says more than its warnings."""
    with warnings.catch_warnings(record=True) as records:
        value = fn(*args, **kwargs)
    caught: dict[tuple[type[Warning], str], Caught] = {}
    for w in records:
        category = _portable(w.category)
        caught.setdefault((category, str(w.message)),
                          (category, str(w.message), w.filename, w.lineno))
    return value, list(caught.values())


def _portable(category: type[Warning]) -> type[Warning]:
    """The category, if it can travel to the parent (a class defined at a module's top
    level); else the nearest built-in one, so that a warning never fails its task."""
    try:
        pickle.dumps(category)
    except Exception:
        return UserWarning
    return category


class WarningRelay(Executor):
    """An executor that runs each task on `pool` with its warnings recorded there and
    re-issues them here, in the thread that reads the task's result, through `warnings` —
    so the CLI shows each as one line, or none with --quiet — and each text only once over
    all the tasks (a hundred runs of one scenario warn a hundred times about the same thing).
    """

    def __init__(self, pool: Executor) -> None:
        self.pool = pool
        self._shown: set[tuple[type[Warning], str]] = set()
        self._running: set[Future[Any]] = set()
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        relay = _Relayed(self, self.pool.submit(_recording, fn, *args, **kwargs))
        with self._lock:
            if not relay.done():
                self._running.add(relay)
        relay.add_done_callback(self._finished)
        return relay

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.pool.shutdown(wait=wait, cancel_futures=cancel_futures)

    def unfinished(self) -> bool:
        """Whether a task submitted here has not finished (nor been cancelled)."""
        with self._lock:
            return bool(self._running)

    def _finished(self, relay: Future[Any]) -> None:
        with self._lock:
            self._running.discard(relay)

    def reissue(self, caught: list[Caught]) -> None:
        for category, text, filename, lineno in caught:
            with self._lock:
                if (category, text) in self._shown:
                    continue
                self._shown.add((category, text))
            # No registry: whether it shows is the filters' call (--quiet ignores all),
            # not that of what this module warned before.
            warnings.warn_explicit(text, category, filename, lineno)


class _Relayed(Future[Any]):
    """The caller's future of a task run through `WarningRelay`: it completes, fails or is
    cancelled with the pool's future, and its result is the task's own, read with the
    task's warnings re-issued."""

    def __init__(self, relay: WarningRelay, inner: Future[Any]) -> None:
        super().__init__()
        self._relay = relay
        self._inner = inner
        inner.add_done_callback(self._follow)

    def _follow(self, inner: Future[Any]) -> None:
        if inner.cancelled():
            super().cancel()
            self.set_running_or_notify_cancel()  # wakes as_completed and wait
        elif inner.exception() is not None:
            self.set_exception(inner.exception())
        else:
            self.set_result(inner.result())

    def cancel(self) -> bool:
        return self._inner.cancel()  # and `_follow` cancels this one

    def result(self, timeout: float | None = None) -> Any:
        value, caught = super().result(timeout)
        self._relay.reissue(caught)
        return value
