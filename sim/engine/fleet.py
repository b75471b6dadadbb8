"""A fleet that changes while it runs: failures, spot preemption, outages and autoscaling.

Each replica slot carries flags, and two facts follow from them:

* **working** — provisioned, booted, and not failed, reclaimed or in an outage: it runs steps;
* **accepting** — working and neither under a spot notice nor draining: the router may send
  it requests.

When a slot stops working, every request it held is handed back (`Replica.evict_all`) and
routed again; when it stops accepting but keeps working (a spot notice, a scale-in drain),
only its queue is handed back and its running sequences finish there. Each hand-back counts
as a requeue of that request. A slot that is not accepting carries `BLOCKED` on top of its
load (and of its prompt tokens outstanding, where a token-aware router keeps them), so the
load-aware routers never pick it; any router's pick of such a slot falls back to
the least-loaded accepting one, and with none accepting the request waits at the fleet
(`parked`) until one is.

Fault events are pre-generated (`sim.engine.faults`) and walked by one chain of timeouts,
like arrivals. A failure or a spot notice only takes effect on a provisioned slot (its repair
or reclaim then follows it); on an empty autoscaling slot it is skipped. The autoscaler is a
second chain of timeouts, one tick every `interval_s`. Its load signal is the number of
requests outstanding (arrived, not finished) averaged over the interval since the last
tick, time-weighted: a reading at the tick alone would see whichever phase of a burst the
tick fell on, want a replica at one tick and give it back a few ticks later. `capacity` is
the sequences one replica holds at the workload's mean context (`concurrency_per_replica`:
max_num_seqs, or fewer where the KV cache binds first).

* `target-utilization`: wanted = ⌈mean outstanding ÷ (target × capacity)⌉;
* `queue`: one more while the queue (read at the tick) exceeds `target` per serving
  replica; one fewer while nothing waits and the mean outstanding requests fill at most half
  the slots of one replica fewer.

It asks for new replicas at once (draining ones are recalled first). A request gets capacity
with a drawn chance; then the replica serves after a drawn provisioning delay, and otherwise
the request is asked again `retry_s` later, for as long as the last tick still wants it (a
request still waiting to be asked again counts as asked for: the next tick does not ask
twice, and a tick that wants fewer drops it first). It drains one replica per tick only
when every tick of the last `scale_in_stabilization_s` wanted fewer (a stabilisation window,
as Kubernetes' HPA has, so a momentary lull does not give back capacity it will need a
provisioning delay to regain), and releases drained replicas once they are empty. Nothing
here runs unless the scenario asks for it: a static fleet routes through the plain router
with no per-request or per-step extra work.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

import numpy as np
import simpy

from sim.engine.records import (
    FAIL,
    NOTICE,
    OUTAGE_END,
    OUTAGE_START,
    RECLAIM,
    REPAIR,
    RESTORE,
    AutoscaleSettings,
    FleetSchedule,
    FleetTimeline,
)
from sim.engine.replica import Replica

BLOCKED = 1 << 40  # added to the load of a slot that takes no new requests
SCALE_IN_FILL = 0.5  # queue policy: scale in when one replica fewer would be at most half full
# A whole number of replicas read through a float average (4 × 0.1 s summed is not 0.4 s)
# must not round up to one more.
WANTED_SLACK = 1e-9


class Fleet:
    def __init__(self, env: simpy.Environment, plan: FleetSchedule, replicas: list[Replica],
                 loads: list[int], route: Callable[[int, list[int]], int], routed: list[int],
                 requeues: list[int], arrivals_left: Callable[[], bool],
                 horizon_s: float, prompt_loads: list[int] | None) -> None:
        self.env = env
        self.plan = plan
        self.replicas = replicas
        self.loads = loads
        # Σ prompt tokens outstanding per slot (None: the router does not read them).
        self.prompt_loads = prompt_loads
        self.prompt = replicas[0].table.prompt  # every replica shares the table
        self.route = route
        self.routed = routed
        self.requeues = requeues
        self.arrivals_left = arrivals_left
        self.horizon_s = horizon_s  # keep acting at least this long (the metrics window's end)
        n = plan.slots
        self.provisioned = [s < plan.initial for s in range(n)]
        self.booting = [False] * n
        self.draining = [False] * n
        self.notice = [False] * n
        self.failed = [False] * n
        self.reclaimed = [False] * n
        self.in_outage = [False] * n
        self.in_spot_cycle = [False] * n  # a notice was taken: its reclaim and restore apply
        self.working = list(self.provisioned)
        self.accepting = list(self.provisioned)
        for s in range(n):
            if not self.accepting[s]:
                self._block(s, BLOCKED)
        self.parked: deque[int] = deque()
        self.counts = {"failures": 0, "spot_preemptions": 0, "outages": 0, "scale_ups": 0,
                       "scale_downs": 0, "provisioning_failures": 0}
        self.times: list[float] = []
        self.n_working: list[int] = []
        self.n_due: list[int] = []
        self.n_billed: list[int] = []
        self._record(0.0)
        self.next_event = 0
        # The replicas wanted at the last few ticks: scale in only when all wanted fewer.
        self.recent_wanted: deque[int] = deque(
            maxlen=1 if plan.autoscaling is None else plan.autoscaling.scale_in_ticks)
        self.wanted = plan.initial  # the last tick's answer, which a retried request checks
        self.retrying = [False] * n  # a request for this slot failed; it is asked again later
        self.attempts = [0] * n  # failed requests per slot: a dropped retry's timer is stale
        # Requests outstanding since the last tick (request → when it became outstanding),
        # for the time-weighted mean the autoscaler reads; only kept when it autoscales.
        self.outstanding_since: dict[int, float] | None = (
            None if plan.autoscaling is None else {})
        self.last_tick_s = 0.0
        self.finish_s = replicas[0].table.finish_s  # every replica shares the table
        if len(plan.event_s):
            env.timeout(float(plan.event_s[0])).callbacks.append(self._on_event)
        if plan.autoscaling is not None:
            env.timeout(plan.autoscaling.interval_s).callbacks.append(self._tick)

    # ---- routing --------------------------------------------------------------------------

    def dispatch(self, rid: int) -> None:
        """Route a request to an accepting replica, or park it when there is none."""
        loads = self.loads
        if self.outstanding_since is not None:
            self.outstanding_since.setdefault(rid, self.env.now)  # a requeue keeps its start
        r = self.route(rid, loads)
        if not self.accepting[r]:
            r = loads.index(min(loads))  # least loaded; blocked slots carry BLOCKED
            if not self.accepting[r]:
                self.parked.append(rid)
                return
        self.routed[rid] = r
        loads[r] += 1
        if self.prompt_loads is not None:
            self.prompt_loads[r] += self.prompt[rid]
        self.replicas[r].arrive(rid)

    def _hand_back(self, s: int, rids: list[int]) -> None:
        """Slot s gave back `rids`: they leave its loads and are routed again."""
        self.loads[s] -= len(rids)
        if self.prompt_loads is not None:
            prompt = self.prompt
            self.prompt_loads[s] -= sum(prompt[rid] for rid in rids)
        self._requeue(rids)

    def _block(self, s: int, by: int) -> None:
        """Add `by` (±BLOCKED) to slot s's loads, so the routers never pick it."""
        self.loads[s] += by
        if self.prompt_loads is not None:
            self.prompt_loads[s] += by

    def _requeue(self, rids: list[int]) -> None:
        for rid in rids:
            self.requeues[rid] += 1
            self.dispatch(rid)

    def _unpark(self) -> None:
        parked, self.parked = self.parked, deque()
        for rid in parked:
            self.dispatch(rid)

    # ---- slot state -----------------------------------------------------------------------

    def _update(self, s: int, now: float) -> None:
        """Recompute slot s's working/accepting state and act on what changed."""
        working = (self.provisioned[s] and not self.booting[s] and not self.failed[s]
                   and not self.reclaimed[s] and not self.in_outage[s])
        accepting = working and not self.notice[s] and not self.draining[s]
        was_working, was_accepting = self.working[s], self.accepting[s]
        self.working[s], self.accepting[s] = working, accepting
        replica = self.replicas[s]
        if was_accepting and not accepting:
            self._block(s, BLOCKED)
        if was_working and not working:
            self._hand_back(s, replica.evict_all(now))
        elif was_accepting and not accepting:
            self._hand_back(s, replica.take_waiting())
        if accepting and not was_accepting:
            self._block(s, -BLOCKED)
            self._unpark()

    def _record(self, now: float) -> None:
        due = [p and not b for p, b in zip(self.provisioned, self.booting, strict=True)]
        billed = [p and not r for p, r in zip(self.provisioned, self.reclaimed, strict=True)]
        self.times.append(now)
        self.n_working.append(sum(self.working))
        self.n_due.append(sum(due))
        self.n_billed.append(sum(billed))

    def outstanding(self) -> int:
        """Requests arrived and not finished: on replicas or parked."""
        return sum(load % BLOCKED for load in self.loads) + len(self.parked)

    def _finished(self) -> bool:
        """Past the horizon with every request done: nothing left for the fleet to change."""
        return (self.env.now >= self.horizon_s and not self.arrivals_left()
                and self.outstanding() == 0)

    # ---- fault events ---------------------------------------------------------------------

    def _on_event(self, _event: simpy.events.Event | None = None) -> None:
        plan, i, now = self.plan, self.next_event, self.env.now
        times = plan.event_s
        while i < len(times) and times[i] <= now:
            self._apply(int(plan.event_slot[i]), int(plan.event_kind[i]), now)
            i += 1
        self.next_event = i
        self._record(now)
        if i < len(times) and not self._finished():
            self.env.timeout(float(times[i]) - now).callbacks.append(self._on_event)

    def _apply(self, s: int, kind: int, now: float) -> None:
        if kind == FAIL:
            if not self.provisioned[s]:
                return
            self.failed[s] = True
            self.counts["failures"] += 1
        elif kind == REPAIR:
            self.failed[s] = False
        elif kind == NOTICE:
            if not self.provisioned[s]:
                return
            self.in_spot_cycle[s] = True
            self.notice[s] = True
            self.counts["spot_preemptions"] += 1
        elif kind == RECLAIM:
            if not self.in_spot_cycle[s]:
                return
            self.notice[s] = False
            self.reclaimed[s] = True
        elif kind == RESTORE:
            if not self.in_spot_cycle[s]:
                return
            self.in_spot_cycle[s] = False
            self.reclaimed[s] = False
        elif kind == OUTAGE_START:
            self.in_outage[s] = True
            self.counts["outages"] += 1
        elif kind == OUTAGE_END:
            self.in_outage[s] = False
        self._update(s, now)

    # ---- autoscaling ----------------------------------------------------------------------

    def _tick(self, _event: simpy.events.Event | None = None) -> None:
        cfg, now = self.plan.autoscaling, self.env.now
        assert cfg is not None  # ticks are only scheduled (in __init__) when the plan autoscales
        for s in range(self.plan.slots):
            if self.draining[s] and self.replicas[s].is_idle():
                self._release(s, now)
        asked = self._asked()
        wanted = self._wanted(asked, self._mean_outstanding(now), cfg)
        wanted = min(max(wanted, cfg.min_replicas), cfg.max_replicas)
        self.wanted = wanted
        self.recent_wanted.append(wanted)
        if wanted > asked:
            self._scale_out(wanted - asked, now, cfg)
        else:
            self._drop_retries(asked - wanted)
            held = self._asked()
            if len(self.recent_wanted) == cfg.scale_in_ticks and max(self.recent_wanted) < held:
                self._scale_in(now)
        self._record(now)
        if not self._finished():
            self.env.timeout(cfg.interval_s).callbacks.append(self._tick)

    def _asked(self) -> int:
        """Replicas held or asked for: provisioned and not draining, or waiting to be asked
        for again after a failed request."""
        return sum(p and not d for p, d in zip(self.provisioned, self.draining, strict=True)) \
            + sum(self.retrying)

    def _mean_outstanding(self, now: float) -> float:
        """Requests outstanding, time-averaged over (last tick, now]; forgets the finished.

        Each request adds the part of [became outstanding, finished) that overlaps the
        interval: work per tick ∝ the requests outstanding during it, none per step. Ticks
        are `interval_s` > 0 apart, so the interval is never empty."""
        since, finish_s, start_s = self.outstanding_since, self.finish_s, self.last_tick_s
        assert since is not None  # kept whenever the plan autoscales
        self.last_tick_s = now
        request_s = 0.0
        finished = []
        for rid, from_s in since.items():
            end_s = finish_s[rid]
            if end_s == end_s:  # not NaN: finished
                finished.append(rid)
            else:
                end_s = now
            request_s += end_s - max(from_s, start_s)
        for rid in finished:
            del since[rid]
        return request_s / (now - start_s)

    def _wanted(self, current: int, outstanding: float, cfg: AutoscaleSettings) -> int:
        capacity = cfg.concurrency_per_replica
        if cfg.policy == "target-utilization":
            return math.ceil(outstanding / (cfg.target * capacity) - WANTED_SLACK)
        waiting = len(self.parked) + sum(len(r.waiting) for r in self.replicas)
        if waiting > cfg.target * max(sum(self.accepting), 1):
            return current + 1
        if waiting == 0 and outstanding <= SCALE_IN_FILL * (current - 1) * capacity:
            return current - 1
        return current

    def _scale_out(self, count: int, now: float, cfg: AutoscaleSettings) -> None:
        for s in range(self.plan.slots):
            if count and self.draining[s]:  # recall a draining replica first
                self.draining[s] = False
                self._update(s, now)
                count -= 1
        for s in range(self.plan.slots):
            if count and not self.provisioned[s] and not self.retrying[s]:
                self._provision(s, cfg)
                count -= 1

    def _provision(self, s: int, cfg: AutoscaleSettings) -> None:
        """Ask for a replica in slot s: it boots after a drawn delay, or the request gets no
        capacity and is asked again `retry_s` later."""
        if not cfg.provisioning_succeeds():
            self.counts["provisioning_failures"] += 1
            self.retrying[s] = True
            self.attempts[s] += 1
            attempt = self.attempts[s]

            def retry(_event: simpy.events.Event, s: int = s, attempt: int = attempt) -> None:
                self._retry(s, attempt, cfg)

            self.env.timeout(cfg.retry_s).callbacks.append(retry)
            return
        self.provisioned[s] = True
        self.booting[s] = True
        self.counts["scale_ups"] += 1

        def booted(_event: simpy.events.Event, s: int = s) -> None:
            self._booted(s)

        self.env.timeout(cfg.provisioning_delay_s()).callbacks.append(booted)

    def _retry(self, s: int, attempt: int, cfg: AutoscaleSettings) -> None:
        """Ask again for slot s, unless its request was dropped (or asked again) since, the
        run is over, or the last tick no longer wants it."""
        if not self.retrying[s] or self.attempts[s] != attempt:
            return
        self.retrying[s] = False
        if not self._finished() and self.wanted > self._asked():
            self._provision(s, cfg)
            self._record(self.env.now)  # billed from now if it got capacity

    def _drop_retries(self, count: int) -> None:
        """Stop asking for up to `count` replicas whose requests failed (the last first)."""
        for s in reversed(range(self.plan.slots)):
            if count and self.retrying[s]:
                self.retrying[s] = False
                count -= 1

    def _booted(self, s: int) -> None:
        self.booting[s] = False
        self._update(s, self.env.now)
        self._record(self.env.now)

    def _scale_in(self, now: float) -> None:
        """Drain the serving replica with the least work (the highest index on a tie)."""
        serving = [s for s in range(self.plan.slots) if self.accepting[s]]
        if not serving:
            return
        s = min(reversed(serving), key=lambda slot: self.loads[slot])
        self.draining[s] = True
        self.counts["scale_downs"] += 1
        self._update(s, now)
        if self.replicas[s].is_idle():
            self._release(s, now)

    def _release(self, s: int, now: float) -> None:
        self.draining[s] = False
        self.provisioned[s] = False
        self._update(s, now)

    # ---- result ---------------------------------------------------------------------------

    def timeline(self) -> FleetTimeline:
        return FleetTimeline(
            time_s=np.asarray(self.times), working=np.asarray(self.n_working),
            due=np.asarray(self.n_due), billed=np.asarray(self.n_billed), **self.counts)


def static_timeline(replicas: int) -> FleetTimeline:
    """A fleet that never changes: every replica serving from start to end."""
    one = np.array([replicas])
    return FleetTimeline(time_s=np.zeros(1), working=one, due=one, billed=one)
