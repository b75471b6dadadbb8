"""KV transfer from a prefill replica to the decode pool: a link whose bandwidth its
transfers in flight share.

A transfer waits the link's latency, then its bytes flow at the link's bandwidth divided
equally among the transfers flowing at the time (processor sharing, what a NIC's or
NVLink's fair share among concurrent RDMA reads comes to): alone, b bytes take b / B; n
equal transfers started together take n·b / B each. Between two changes of the set
(a start or a landing) every transfer's bytes left fall at the same rate, so one timeout,
for the transfer with the fewest bytes left, is all the link keeps pending; a change
supersedes it. Events are two per transfer (the latency's end and the landing) at most.
A landing is an arrival at the decode pool, so its events come first at their instant, as
arrivals do (`sim.engine.driving.Arrival`): before a step that ends then.
"""

from __future__ import annotations

from collections.abc import Callable

import simpy

from sim.engine.driving import Arrival

# Bytes left under this share of a transfer's size count as landed: the sharing arithmetic
# leaves rounding crumbs on the transfers that land at the same instant.
LANDED_FRACTION = 1e-9


class KvLink:
    """One prefill replica's link; `landed(rid)` is called when request rid's KV is across."""

    def __init__(self, env: simpy.Environment, bytes_per_s: float, latency_s: float,
                 landed: Callable[[int], None]) -> None:
        self.env = env
        self.bytes_per_s = bytes_per_s
        self.latency_s = latency_s
        self.landed = landed
        self.left: dict[int, float] = {}  # flowing transfers: request → bytes left
        self.size: dict[int, float] = {}  # and their sizes
        self.since_s = 0.0  # when `left` was last brought up to date
        self.pending: simpy.events.Timeout | None = None
        self.events = 0
        self.bytes_sent = 0.0

    def send(self, rid: int, nbytes: float) -> None:
        """Start moving request rid's KV (`nbytes`) now."""
        self.bytes_sent += nbytes
        if self.latency_s > 0:
            def flow(_event: simpy.events.Event, rid: int = rid) -> None:
                self._flow(rid, nbytes)

            Arrival(self.env, self.latency_s).callbacks.append(flow)
            self.events += 1
        else:
            self._flow(rid, nbytes)

    def _advance(self) -> None:
        """Take off each flowing transfer its share of the bytes sent since `since_s`."""
        now = self.env.now
        if self.left and now > self.since_s:
            sent = (now - self.since_s) * self.bytes_per_s / len(self.left)
            for rid in self.left:
                self.left[rid] -= sent
        self.since_s = now

    def _flow(self, rid: int, nbytes: float) -> None:
        self._advance()
        if nbytes <= 0:
            self.landed(rid)
            return
        self.left[rid] = nbytes
        self.size[rid] = nbytes
        self._schedule()

    def _schedule(self) -> None:
        if self.pending is not None:
            self.pending.callbacks.clear()  # superseded: fires as a no-op
            self.pending = None
        if not self.left:
            return
        fewest = min(self.left.values())
        delay_s = max(fewest, 0.0) * len(self.left) / self.bytes_per_s
        event = Arrival(self.env, delay_s)
        event.callbacks.append(self._land)
        self.pending = event
        self.events += 1

    def _land(self, _event: simpy.events.Event) -> None:
        self.pending = None
        self._advance()
        done = [rid for rid, left in self.left.items()
                if left <= LANDED_FRACTION * self.size[rid]]
        if not done:  # rounding left the smallest a crumb above the bar: it lands now
            done = [min(self.left, key=lambda r: (self.left[r], r))]
        for rid in done:
            del self.left[rid]
            del self.size[rid]
        self._schedule()
        for rid in done:
            self.landed(rid)
