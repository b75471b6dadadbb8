"""One model replica: iteration-level scheduling, KV-cache accounting and event skipping.

A replica runs one engine step at a time. At each step boundary its scheduler policy
(`sim.engine.scheduler`) looks at the waiting queue, the sequences still prefilling and the
sequences decoding, and starts the next step with the mechanisms here: admission under the
KV budget, eviction, a prefill (or mixed) step, or a run of pure decode steps.

**Event skipping.** While a replica only decodes, nothing changes between steps except that
each sequence's context grows by one token, so step i of the run takes F(B) + c·(KV₀ + i·B)
and k steps take k·(F(B) + c·KV₀) + c·B·k(k−1)/2. The replica therefore schedules one
timeout for the whole run of steps up to the next thing that changes the batch: the earliest
completion (a heap of finishing step numbers against a decode-step counter) or the KV cache
filling up. An arrival that could join the batch cuts the run short at the end of the step in
progress (found by solving the quadratic for the steps done so far). `exact` mode plans one
step at a time through the same code, which is what the equality tests compare against.

**KV cache.** Each admitted sequence holds its context plus one block of slack (a bound on
the partly filled last 16-token page), so occupancy grows by exactly B per decode step and
the run length until the cache is full is a division. A step that would overflow the cache
first evicts the most recently admitted sequence, which goes back to the head of the queue
and later recomputes its prompt and the tokens it had generated (preemption by recompute).

**Inter-token gaps** (`sim.engine.gaps`). Step i of a decode run closes one gap of
a + 2h·i for each of its B sequences: the run is binned in closed form, and its last (longest)
step is one entry in the replica's suffix maxima, from which a sequence reads its longest
gap when it finishes or leaves. A step mixed with prefill chunks closes B gaps of its own
length (the stall it gives the decodes). A sequence that joined between two decode steps
(after a prefill-only step) has a first gap of its own, booked on its own; one evicted after
its first token keeps the time of its last one, and the token its recompute produces closes
that gap.

**Prefix cache** (`sim.engine.prefix`, the replica's side in `sim.engine.replica_cache`): an
admission takes the cached part of its prompt's prefix and starts its prefill after it; a
cached prefix counts in `kv_used` once, however many hold it.

**Speculative decoding**: a decoding sequence gains `gain` tokens a step (1 without it), so a
run grows the KV by the batch's summed `growth` per step rather than by B, and each sequence
holds its draft positions in its slack. **Disaggregated decode**: a request whose KV came
with it (`prefill_done == prefill_len` at admission) decodes at once, without a prefill.

**Leaving the fleet.** When a replica fails or is reclaimed (`evict_all`), the decode steps of
its current run that finished by then are booked, the step in progress is lost, and every
request it held goes back to the router keeping the tokens it generated, like a preempted
one. Under a spot notice or a scale-in drain it only hands back its queue (`take_waiting`).
These are called by `sim.engine.fleet`, never on the step path.
"""

from __future__ import annotations

import heapq
from collections import deque
from math import floor, log10
from types import MethodType
from typing import TYPE_CHECKING

from sim.engine.gaps import BIN_OFFSET, BINS, BINS_PER_DECADE, LOW_S, UPPER_S, GapRecorder
from sim.engine.prefix import PrefixCache, PrefixIndex
from sim.engine.records import EngineConfig, ReplicaCounters, WindowCounters, whole_steps
from sim.engine.replica_cache import PrefixCaching
from sim.engine.replica_gaps import GapTracking
from sim.engine.requests import RequestTable
from sim.engine.scheduler import POLICIES, reserve_share

if TYPE_CHECKING:
    from collections.abc import Callable

    import simpy

    from sim.engine.seams import StepModel

# (t0, B, a, h, k) of a decode run: it began at t0 with B sequences, and n of its k steps take
# n·a + h·n(n − 1) seconds.
DecodeBlock = tuple[float, int, float, float, int]


class Replica(GapTracking, PrefixCaching):
    def __init__(self, index: int, env: simpy.Environment, cfg: EngineConfig,
                 step_model: StepModel, table: RequestTable, window: WindowCounters,
                 loads: list[int], gaps: GapRecorder,
                 prompt_loads: list[int] | None = None,
                 prefix: PrefixIndex | None = None) -> None:
        self.index = index
        self.env = env
        self.table = table
        self.window = window
        window.mark(cfg.window_marks_s)
        self.gaps = gaps
        self.tracks_longest = cfg.track_longest_gaps  # `gaps` is a `LongestGaps`
        self.loads = loads  # outstanding requests per replica: the router's view, shared
        # Σ prompt tokens of the outstanding requests per replica (shared; None: no router
        # reads it): what a token-aware router weighs, where `loads` counts requests.
        self.prompt_loads = prompt_loads
        self.exact = cfg.exact
        policy = POLICIES[cfg.policy]
        self._plan = MethodType(policy.plan, self)
        self._could_join = MethodType(policy.could_join, self)
        # A sequence reserves its context plus one slack block (a bound on its partly filled
        # last page); a newly admitted one its prompt, the token its prefill produces, and the
        # slack.
        # Speculative decoding adds its draft positions to both.
        self.slack = cfg.kv_block_tokens + cfg.lookahead_tokens
        self.admit_extra = self.slack + 1
        self.width = 1 + cfg.lookahead_tokens  # step-budget tokens of one decoding sequence
        self.max_seqs = cfg.max_num_seqs
        self.max_tokens = cfg.max_batched_tokens
        # Share of the admitted sequences' outputs still to come kept free at admission
        # (0: the prompt's blocks only, `sim.engine.scheduler.ADMISSIONS`).
        self.reserve = reserve_share(cfg.admission, cfg.reserve_ratio)
        self.chunked = cfg.chunked_prefill
        self.whole_cap = cfg.max_prefill_tokens or cfg.max_batched_tokens
        self.cap = cfg.kv_capacity_tokens
        self.step_model = step_model
        self.cache = None if prefix is None else PrefixCache(prefix, cfg.prefix_block_tokens,
                                                             cfg.prefix_host_tokens)
        self.reload_s_per_token = cfg.prefix_reload_s_per_token
        self.reload_s = 0.0  # copying offloaded prefixes back: charged to the next step
        self.c = step_model.per_kv_token_s
        self.fixed_s = [step_model.decode_fixed_s(b) if b else 0.0
                        for b in range(cfg.max_num_seqs + 1)]

        self.waiting: deque[int] = deque()
        self.prefilling: list[int] = []  # admitted, prompt not yet fully processed
        self.running: dict[int, None] = {}  # every admitted request, in admission order
        self.heap: list[tuple[int, int]] = []  # (finish_step, rid) of decoding sequences
        self.n_decoding = 0
        self.growth = 0  # Σ tokens the decoding sequences gain per step (their `gain`)
        self.dstep = 0  # decode steps this replica has run
        self.decode_ctx = 0  # Σ context tokens of decoding sequences (what attention reads)
        self.kv_used = 0  # KV tokens reserved by admitted sequences
        # Inter-token gaps (`sim.engine.gaps`): when the decoding sequences last got a token;
        # the sequences that joined at another time (rid, time of the token their prefill
        # produced), whose first decode gap is their own; and the decode step from which the
        # step gaps count for those of them past that first gap.
        self.last_token_s = 0.0
        self.late: list[tuple[int, float]] = []
        self.late_from: dict[int, int] = {}

        self.on_boundary = self._boundary  # bound once: it is attached to every timeout
        # The timeout that ends the current step or decode run.
        self.pending: simpy.events.Timeout | None = None
        self.block: DecodeBlock | None = None  # the current decode run
        self.chunks: list[tuple[int, int]] = []  # (rid, tokens) of the current step's prefill
        self.step_parts = (0.0, 0.0)  # (prefill_s, decode_s) of the current single step
        self.step_decodes = False
        self.step_start = 0.0
        self.truncated = False
        self.steps = 0
        self.preemptions = 0
        self.events = 0
        self.generated_tokens = 0  # tokens produced (first tokens and decode steps)
        self.prefill_tokens = 0  # prompt tokens processed, recomputation included
        # Told of each request that finishes here (closed-loop clients send their next).
        self.on_done: Callable[[int], None] | None = None

    # ---- arrivals -------------------------------------------------------------------------

    def arrive(self, rid: int) -> None:
        was_empty = not self.waiting
        self.waiting.append(rid)
        if self.pending is None:
            self._plan(self.env.now)
        elif was_empty and self.block is not None and not self.truncated and self._could_join(rid):
            self._cut_block(self.env.now, self.block, self.pending)

    def _cut_block(self, now: float, block: DecodeBlock, pending: simpy.events.Timeout) -> None:
        """End the decode run `block` (its end is the timeout `pending`) at the end of the step
        now in progress."""
        t0, batch, a, h, k = block
        done = whole_steps(now - t0, a, h)
        # Exactly on a boundary (arrivals come before the boundary of their instant), the
        # step that ends now is the last; otherwise the one in progress is.
        on_boundary = done > 0 and done * a + h * done * (done - 1) == now - t0
        steps = done if on_boundary else done + 1
        if steps >= k:
            return
        self.truncated = True
        self.block = (t0, batch, a, h, steps)
        pending.callbacks.clear()  # the old end of the run fires as a no-op
        self._schedule(t0 + steps * a + h * steps * (steps - 1) - now)

    # ---- step boundaries ------------------------------------------------------------------

    def _schedule(self, delay_s: float) -> None:
        event = self.env.timeout(delay_s)
        event.callbacks.append(self.on_boundary)
        self.pending = event
        self.events += 1

    def _boundary(self, event: simpy.events.Event) -> None:
        now = self.env.now
        if self.block is not None:
            self._finish_block(now, self.block)
        else:
            self._finish_step(now)
        self.pending = None
        self._plan(now)

    def _finish_block(self, now: float, block: DecodeBlock) -> None:
        """Book the decode run `block` (the current one), ended at `now`."""
        t0, batch, a, h, k = block
        self.block = None
        self.truncated = False
        self.steps += k
        grown = self.growth * k
        self.generated_tokens += grown
        self.window.add_block(t0, now, batch, a, h, k, self.kv_used, self.growth)
        gaps = self.gaps
        if t0 == self.last_token_s and not self.late and gaps.lo_s <= t0 and now < gaps.hi_s:
            # The common case, `_run_gaps` and `GapRecorder.run` inlined (a call per run is
            # a tenth of the engine's time): every sequence got its last token as the run
            # began, and its steps end in the recorder's row, nearly always in one bin.
            last_s = a + 2.0 * h * (k - 1)
            b = floor(log10(a) * BINS_PER_DECADE + BIN_OFFSET) if a > LOW_S else 0
            if b < BINS and last_s < UPPER_S[b]:
                w = batch * k
                gaps.weights[b] += w
                gaps.seconds[b] += w * 0.5 * (a + last_s)
                if self.tracks_longest:
                    gaps.keep(self.dstep + 1, last_s)
            else:
                gaps.run(t0, now, a, h, 0, k, batch, self.dstep + 1)
            self.last_token_s = now
        else:
            self._run_gaps(t0, batch, a, h, k, now)
        self.dstep += k
        self.decode_ctx += grown
        self.kv_used += grown
        cache = self.cache
        if cache is not None and cache.free_tokens > self.cap - self.kv_used:
            cache.trim(self.cap - self.kv_used)
        if self.heap[0][0] <= self.dstep:
            self._complete_decodes(now)

    def _book_stopped_block(self, now: float) -> None:
        """The run stopped (`stop_s`) inside a decode run: book the steps of it that ended
        before the stop, as exact mode has booked them one by one (a step ending exactly at
        the stop is not reached in either mode: SimPy stops before that instant's events)."""
        assert self.block is not None  # counters(): only with a decode run in progress
        t0, batch, a, h, k = self.block
        done = min(whole_steps(now - t0, a, h), k)
        if done > 0 and done * a + h * done * (done - 1) >= now - t0:
            done -= 1
        self.block = None
        if done <= 0:
            return
        self.steps += done
        self.generated_tokens += self.growth * done
        end = t0 + done * a + h * done * (done - 1)
        self.window.add_block(t0, end, batch, a, h, done, self.kv_used, self.growth)
        self._run_gaps(t0, batch, a, h, done, end)

    def _finish_step(self, now: float) -> None:
        t = self.table
        prefill_s, decode_s = self.step_parts
        decoding = self.n_decoding if self.step_decodes else 0
        chunks = self.chunks
        self.steps += 1
        kv_held = self.kv_used  # during the step, before it books its tokens
        grown = self.growth if decoding else 0
        generated = grown
        fresh = recomputed = 0
        if decoding:
            gap_s = now - self.last_token_s
            gaps = self.gaps
            if not self.late and gaps.lo_s <= now < gaps.hi_s:
                # The common case, `_first_gaps` and `GapRecorder.step` inlined: every
                # decoding sequence got its last token at the end of the last decode step.
                b = floor(log10(gap_s) * BINS_PER_DECADE + BIN_OFFSET) if gap_s > LOW_S else 0
                if b >= BINS:
                    b = BINS - 1
                gaps.weights[b] += decoding
                gaps.seconds[b] += decoding * gap_s
                if self.tracks_longest:
                    gaps.keep(self.dstep + 1, gap_s)
                self.last_token_s = now
            else:
                self._first_gaps(now, gap_s, decoding)
            self.dstep += 1
            self.decode_ctx += grown
            self.kv_used += grown
            if self.heap[0][0] <= self.dstep:
                self._complete_decodes(now)
        prefilled = 0
        for rid, tokens in chunks:
            before = t.prefill_done[rid]
            done = before + tokens
            t.prefill_done[rid] = done
            redo = t.redo[rid]
            again = min(done, redo) - before if redo > before else 0
            recomputed += again
            fresh += tokens - again
            if done < t.prefill_len[rid]:
                break  # only the last chunk of a step can leave its prompt unfinished
            prefilled += 1
            if self.cache is not None:
                self._cache_prompt(rid)
            # The step that completes a prefill produces the next token.
            generated += 1
            prompt = t.prompt[rid]
            kept = t.prefill_len[rid] - prompt + 1
            if t.first_token_s[rid] != t.first_token_s[rid]:  # NaN: first time
                t.first_token_s[rid] = now
            else:  # recomputed: its token closes the gap since its last one
                gap = now - t.last_token_s.pop(rid)
                self.gaps.gaps(now, gap, 1)
                if gap > t.max_gap_s[rid]:
                    t.max_gap_s[rid] = gap
            if kept >= t.output[rid]:
                self.kv_used -= prompt + kept + self.slack
                if self.cache is not None:
                    self._leave_cache(rid, True)
                self._done(rid, now)
                continue
            self._enter_decoding(rid, prompt, kept, now)
        # Chunks are taken from the front of `prefilling`, so the finished ones are a prefix.
        del self.prefilling[:prefilled]
        self.chunks = []
        self.generated_tokens += generated
        self.prefill_tokens += fresh + recomputed
        self.window.add_step(self.step_start, now, prefill_s, decode_s, len(chunks) + decoding,
                             kv_held, generated, fresh, recomputed)
        cache = self.cache
        if cache is not None and cache.free_tokens > self.cap - self.kv_used:
            cache.trim(self.cap - self.kv_used)

    def _enter_decoding(self, rid: int, prompt: int, kept: int, token_s: float) -> None:
        """`rid`, holding `kept` generated tokens (the last at token_s), begins decoding."""
        t = self.table
        gain = t.gain[rid]
        steps = t.output[rid] - kept
        if gain != 1:
            steps = -(-steps // gain)
            final = t.final_ctx
            assert final is not None  # kept whenever a gain is not 1
            final[rid] = prompt + kept + steps * gain
        finish = self.dstep + steps
        t.finish_step[rid] = finish
        heapq.heappush(self.heap, (finish, rid))
        if token_s != self.last_token_s:  # no decode token then: its first gap is its own
            self.late.append((rid, token_s))
        self.n_decoding += 1
        self.growth += gain
        self.decode_ctx += prompt + kept

    def _complete_decodes(self, now: float) -> None:
        heap, t, dstep = self.heap, self.table, self.dstep
        tracks = self.tracks_longest
        while heap and heap[0][0] <= dstep:
            finish, rid = heapq.heappop(heap)
            if t.finish_step[rid] != finish:  # stale: the sequence was preempted
                continue
            t.finish_step[rid] = -1
            final = t.final_ctx
            context = t.prompt[rid] + t.output[rid] if final is None else final[rid]
            if tracks:  # `_keep_longest`, inlined: from the step after it joined
                start = finish - (context - t.prefill_len[rid] - 1) // t.gain[rid] + 1
                if self.late_from:
                    start = self.late_from.pop(rid, start)
                longest = self.gaps.longest_since(start)
                if longest > t.max_gap_s[rid]:
                    t.max_gap_s[rid] = longest
            self.n_decoding -= 1
            self.growth -= t.gain[rid]
            self.decode_ctx -= context
            self.kv_used -= context + self.slack
            if self.cache is not None:
                self._leave_cache(rid, True)
            self._done(rid, now)

    def _done(self, rid: int, now: float) -> None:
        del self.running[rid]
        self.table.finish_s[rid] = now
        self.loads[self.index] -= 1
        if self.prompt_loads is not None:
            self.prompt_loads[self.index] -= self.table.prompt[rid]
        if self.on_done is not None:
            self.on_done(rid)

    # ---- mechanisms the scheduler policies use ----------------------------------------------

    def admit(self, growth: int, now: float) -> None:
        """Admit waiting requests in order while a sequence slot and KV cache are free.

        `growth` keeps room for the decoding sequences' next token (a one-step watermark);
        a request whose KV came with it (a disaggregated decode replica's) decodes at once,
        so its own next token joins the watermark. A reserving admission also keeps its share
        of the outputs still to come free."""
        t, waiting, running, extra = self.table, self.waiting, self.running, self.admit_extra
        reserve, cache = self.reserve, self.cache
        pending = self._outputs_to_come() if reserve and waiting else 0
        node = -1
        while waiting and len(running) < self.max_seqs:
            rid = waiting[0]
            if cache is None:
                need = t.prefill_len[rid] + extra
            else:
                need, node = self._lookup(rid)
            joins = t.prefill_done[rid] == t.prefill_len[rid]
            more = t.gain[rid] if joins else 0
            if reserve:
                to_come = self._output_to_come(rid)
                if (self.kv_used + growth + more + need + reserve * (pending + to_come)
                        > self.cap):
                    return
                pending += to_come
            elif self.kv_used + growth + more + need > self.cap:
                return
            waiting.popleft()
            running[rid] = None
            self.kv_used += need
            if joins:
                self._enter_decoding(rid, t.prompt[rid], 1, t.first_token_s[rid])
                growth += more
            else:
                self.prefilling.append(rid)
            if cache is not None:
                self._take_cached(rid, node)
            if t.admit_s[rid] != t.admit_s[rid]:  # NaN: first admission
                t.admit_s[rid] = now

    def admission_tokens(self, rid: int) -> int:
        """KV tokens admitting `rid` now puts in use: its prefill, the token that produces
        and the slack block, less the cached part of its prompt already in use (a cached node
        nobody references counts: its memory goes from evictable to in use); for one that
        decodes at once, with its next step's tokens."""
        t = self.table
        # One whose KV came with it decodes at once: its next token too.
        more = t.gain[rid] if t.prefill_done[rid] == t.prefill_len[rid] else 0
        if self.cache is None:
            return t.prefill_len[rid] + self.admit_extra + more
        self._evict_as_of_now()
        return self._lookup(rid)[0] + more

    def reservation(self, rid: int) -> float:
        """KV tokens an admission of `rid` must leave free for the outputs still to come."""
        if not self.reserve:
            return 0.0
        return self.reserve * (self._outputs_to_come() + self._output_to_come(rid))

    def _output_to_come(self, rid: int) -> int:
        """The KV growth of a sequence not yet decoding: its tokens after the one its prefill
        produces."""
        t = self.table
        return t.output[rid] - (t.prefill_len[rid] - t.prompt[rid]) - 1

    def _outputs_to_come(self) -> int:
        """The KV growth the admitted sequences still have ahead of them."""
        t, dstep = self.table, self.dstep
        total = 0
        for rid in self.running:
            finish = t.finish_step[rid]
            total += (finish - dstep) * t.gain[rid] if finish >= 0 else self._output_to_come(rid)
        return total

    def make_room(self) -> None:
        """Evict the newest sequences until the next decode step's growth fits."""
        while self.n_decoding and self.kv_used + self.growth > self.cap:
            self._preempt(next(reversed(self.running)))

    def _preempt(self, rid: int) -> None:
        t = self.table
        del self.running[rid]
        if t.finish_step[rid] >= 0:  # decoding: keep what it generated, recompute it later
            self._stop_decoding(rid)
            generated = self.table.generated(rid, self.dstep)
            t.finish_step[rid] = -1  # its heap entry is now stale
            self.n_decoding -= 1
            self.growth -= t.gain[rid]
            self.decode_ctx -= t.prompt[rid] + generated
            self.kv_used -= t.prompt[rid] + generated + self.slack
            t.prefill_len[rid] = t.prompt[rid] + generated
            t.redo[rid] = t.prefill_len[rid]
        else:  # still prefilling
            self.prefilling.remove(rid)
            self.kv_used -= t.prefill_len[rid] + self.admit_extra
            t.redo[rid] = max(t.redo[rid], t.prefill_done[rid])
        if self.cache is not None:
            self._leave_cache(rid, False)
        t.prefill_done[rid] = 0
        t.preemptions[rid] += 1
        self.preemptions += 1
        self.waiting.appendleft(rid)

    def start_step(self, budget: int, decodes: bool, now: float) -> None:
        t = self.table
        chunks: list[tuple[int, int]] = []
        prefill_tokens = 0
        pairs = 0.0
        for rid in self.prefilling:
            if budget <= 0:
                break
            done = t.prefill_done[rid]
            tokens = min(t.prefill_len[rid] - done, budget)
            if not self.chunked and tokens < t.prefill_len[rid] - done:
                if chunks:
                    break  # whole prompts only: this one waits for a step of its own
                # Longer than the budget: it runs whole in a step of its own.
                tokens = min(t.prefill_len[rid] - done, self.whole_cap)
            budget -= tokens
            prefill_tokens += tokens
            pairs += tokens * (done + (tokens + 1) * 0.5)
            chunks.append((rid, tokens))
        self.chunks = chunks
        self.step_decodes = decodes
        decode_seqs = self.n_decoding if decodes else 0
        self.step_parts = self.step_model.step_s(
            prefill_tokens, pairs, decode_seqs, self.decode_ctx if decodes else 0)
        if self.cache is not None:
            self._book_cached_s(chunks, prefill_tokens, pairs, decode_seqs)
            if self.reload_s:  # prefixes copied back from the host for these prefills
                self.step_parts = (self.step_parts[0] + self.reload_s, self.step_parts[1])
                self.reload_s = 0.0
        self.step_start = now
        self._schedule(self.step_parts[0] + self.step_parts[1])

    def start_block(self, now: float) -> None:
        heap, t = self.heap, self.table
        while t.finish_step[heap[0][1]] != heap[0][0]:  # drop entries of preempted sequences
            heapq.heappop(heap)
        batch = self.n_decoding
        # Run until the earliest completion or until the KV cache is full.
        growth = self.growth
        k = 1 if self.exact else min(heap[0][0] - self.dstep, (self.cap - self.kv_used) // growth)
        a = self.fixed_s[batch] + self.c * self.decode_ctx
        h = 0.5 * self.c * growth
        self.block = (now, batch, a, h, k)
        self._schedule(k * a + h * k * (k - 1))

    # ---- the fleet changing around it (failures, preemption, scale-in) ----------------------

    def take_waiting(self) -> list[int]:
        """Hand back the queue of requests not yet admitted (the replica takes no new work)."""
        rids = list(self.waiting)
        self.waiting.clear()
        return rids

    def is_idle(self) -> bool:
        return not self.running and not self.waiting

    def evict_all(self, now: float) -> list[int]:
        """Stop at `now` (the replica failed or was reclaimed) and hand back every request it
        held, in arrival order. Decode steps finished by now are booked, as they would have
        been one by one in exact mode; the step in progress is lost (its time counts as busy).
        Each request keeps the tokens it generated and recomputes its context elsewhere, as
        after a preemption."""
        if self.pending is not None:
            self.pending.callbacks.clear()
            self.pending = None
            self._abort_step(now)
        t = self.table
        for rid in self.running:
            if t.finish_step[rid] >= 0:  # decoding: keep what it generated
                self._stop_decoding(rid)
                generated = self.table.generated(rid, self.dstep)
                t.prefill_len[rid] = t.prompt[rid] + generated
                t.finish_step[rid] = -1
                t.redo[rid] = t.prefill_len[rid]
            else:
                t.redo[rid] = max(t.redo[rid], t.prefill_done[rid])
            t.prefill_done[rid] = 0
        rids = sorted([*self.running, *self.waiting])
        self.waiting.clear()
        self.prefilling = []
        self.running = {}
        self.heap = []
        self.n_decoding = 0
        self.growth = 0
        self.decode_ctx = 0
        self.kv_used = 0
        self.chunks = []
        self.late = []
        self.late_from = {}
        self.gaps.forget_steps()
        if self.cache is not None:  # the replica's memory is gone, its cache with it
            self.cache.clear()
            self.reload_s = 0.0
            for rid in rids:
                t.shared[rid] = 0
                t.ref_node[rid] = -1
        return rids

    def _abort_step(self, now: float) -> None:
        """Book the whole decode steps of the current run done by `now`; count the rest of
        the time since the last boundary as busy work that was lost."""
        if self.block is not None:
            t0, batch, a, h, k = self.block
            done = min(whole_steps(now - t0, a, h), k)
            if done:
                self.block = (t0, batch, a, h, done)
                end = t0 + done * a + h * done * (done - 1)
                self._finish_block(end, self.block)
            else:
                self.block = None
                self.truncated = False
                end = t0
            if now > end:  # the step in progress, lost
                self.window.add_lost(end, now, 0.0, now - end, batch, self.kv_used)
            return
        prefill_s, decode_s = self.step_parts
        length = prefill_s + decode_s
        share = (now - self.step_start) / length if length > 0 else 0.0
        self.window.add_lost(self.step_start, now, prefill_s * share, decode_s * share,
                             len(self.chunks) + (self.n_decoding if self.step_decodes else 0),
                             self.kv_used)

    def counters(self) -> ReplicaCounters:
        """The replica's totals once the run is over (called once, after the last event)."""
        if self.block is not None:
            self._book_stopped_block(self.env.now)
        w = self.window
        w.finish()
        return ReplicaCounters(w.busy_s, w.prefill_s, w.decode_s, w.batch_s, w.kv_token_s,
                               self.steps, self.preemptions, self.generated_tokens,
                               self.prefill_tokens, w.prefill_tokens, w.recomputed_tokens,
                               w.generated_tokens, w.steps,
                               tuple(w.taken_s), tuple(w.taken),
                               0 if self.cache is None else self.cache.evicted_blocks,
                               0 if self.cache is None else self.cache.reloaded_tokens)

