"""A replica's side of the inter-token gaps (`sim.engine.gaps`): which gaps a decode step or
run closes, and each sequence's longest one. Mixed into `sim.engine.replica.Replica`, whose
decode bookkeeping it reads; its common cases are inlined there, on the hot path."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.engine.gaps import GapRecorder
    from sim.engine.requests import RequestTable


class GapTracking:
    """The gap mechanisms of a replica."""

    table: RequestTable
    gaps: GapRecorder
    tracks_longest: bool
    dstep: int
    last_token_s: float
    late: list[tuple[int, float]]
    late_from: dict[int, int]

    def _run_gaps(self, t0: float, batch: int, a: float, h: float, k: int,
                  end_s: float) -> None:
        """The gaps closed by the k steps of a decode run from t0 to end_s (booked before
        `dstep` counts them): step i lasts a + 2h·i and closes one gap of every sequence,
        and when every sequence got its last token as the run began (the common case),
        that is all; otherwise step 0 closes gaps of their own lengths."""
        if self.late or t0 != self.last_token_s:
            self._first_gaps(t0 + a, a + (t0 - self.last_token_s), batch)
            if k > 1:
                self.gaps.run(t0, end_s, a, h, 1, k, batch, self.dstep + 2)
        else:
            self.gaps.run(t0, end_s, a, h, 0, k, batch, self.dstep + 1)
        self.last_token_s = end_s

    def _first_gaps(self, end_s: float, wait_s: float, batch: int) -> None:
        """The gaps closed by one decode step ending at end_s (decode step `dstep` + 1):
        wait_s for the sequences that got their last token at `last_token_s`, and for those
        that joined later (`late`), the time since the token their prefill produced."""
        late = self.late
        main = batch - len(late)
        if main:
            self.gaps.step(end_s, wait_s, main, self.dstep + 1)
        else:  # every sequence is late: none will ask about the older steps
            self.gaps.forget_steps()
        if late:
            max_gap, late_from, start = self.table.max_gap_s, self.late_from, self.dstep + 2
            since_s, count = late[0][1], 0
            for rid, token_s in late:
                gap = end_s - token_s
                if gap > max_gap[rid]:
                    max_gap[rid] = gap
                late_from[rid] = start  # its first gap is booked: the steps after it count
                if token_s != since_s:  # those that joined at one instant: one entry
                    self.gaps.gaps(end_s, end_s - since_s, count)
                    since_s, count = token_s, 0
                count += 1
            self.gaps.gaps(end_s, end_s - since_s, count)
            late.clear()
        self.last_token_s = end_s

    def _keep_longest(self, rid: int) -> None:
        """Fold into a decoding sequence that leaves now (done, evicted, handed back) the
        longest of the step gaps since it joined: from decode step j + 1 on, where j is
        `dstep` when it joined (j + 2 for a late one, whose first gap was its own)."""
        if not self.tracks_longest:
            return
        start = self.table.joined(rid) + 1
        if self.late_from:
            start = self.late_from.pop(rid, start)
        longest = self.gaps.longest_since(start)
        max_gap_s = self.table.max_gap_s
        if longest > max_gap_s[rid]:
            max_gap_s[rid] = longest

    def _stop_decoding(self, rid: int) -> None:
        """A decoding sequence leaves unfinished: keep its longest gap, and when it got its
        last token (the token its recompute produces closes that gap)."""
        t = self.table
        self._keep_longest(rid)
        late = self.late
        for i, (other, token_s) in enumerate(late):
            if other == rid:
                del late[i]
                t.last_token_s[rid] = token_s
                return
        t.last_token_s[rid] = self.last_token_s
