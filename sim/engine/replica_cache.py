"""A replica's side of prefix caching (`sim.engine.prefix`): what an admission finds cached
and takes, what a finished prefill and a leaving request give back, and what a hit still
costs a step. Mixed into `sim.engine.replica.Replica`, whose state it reads and changes;
nothing here runs without a cache."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.engine.records import whole_steps

if TYPE_CHECKING:
    import simpy

    from sim.engine.prefix import PrefixCache
    from sim.engine.requests import RequestTable
    from sim.engine.seams import StepModel, StepSplit

    # (t0, B, a, h, k) of a decode run, as `sim.engine.replica` keeps it.
    DecodeBlock = tuple[float, int, float, float, int]


class PrefixCaching:
    """The prefix-cache mechanisms of a replica."""

    env: simpy.Environment
    table: RequestTable
    cache: PrefixCache | None
    step_model: StepModel
    block: DecodeBlock | None
    step_parts: StepSplit
    step_decodes: bool
    kv_used: int
    cap: int
    growth: int
    decode_ctx: int
    admit_extra: int
    reload_s: float
    reload_s_per_token: float

    def cached_prefix_tokens(self, rid: int) -> int:
        """Tokens of `rid`'s prompt this replica's prefix cache holds now, as an admission
        would skip them (0 without a cache): what a cache-aware router weighs."""
        cache = self.cache
        if cache is None:
            return 0
        self._evict_as_of_now()
        node = cache.deepest(cache.index.prompt_node[rid])
        return cache.usable_tokens(node, self.table.prefill_len[rid])

    def _evict_as_of_now(self) -> None:
        """Inside a decode run the cache is trimmed once, at its end; a look at the cache
        during one (an arrival asking what is cached) first evicts what the run's steps done
        so far have needed, as step-by-step simulation would have."""
        cache, block = self.cache, self.block
        if cache is None or block is None:
            return
        t0, batch, a, h, k = block
        elapsed_s = self.env.now - t0
        done = min(whole_steps(elapsed_s, a, h), k)
        # A step ending exactly now is not booked yet: arrivals come before boundaries.
        if done > 0 and done * a + h * done * (done - 1) >= elapsed_s:
            done -= 1
        room = self.cap - self.kv_used - self.growth * done
        if cache.free_tokens > room:
            cache.trim(room)

    def _lookup(self, rid: int) -> tuple[int, int]:
        """(KV tokens its admission puts in use, the deepest cached node of its prompt)."""
        cache = self.cache
        assert cache is not None
        need = self.table.prefill_len[rid] + self.admit_extra
        node = cache.deepest(cache.index.prompt_node[rid])
        if node >= 0:
            need += cache.unreferenced_tokens(node) - cache.index.depth[node]
        return need, node

    def _take_cached(self, rid: int, node: int) -> None:
        """Admitted `rid` takes the cached path to `node` (−1: nothing cached) and starts its
        prefill after the tokens that skips; the memory it put in use may evict."""
        t, cache = self.table, self.cache
        assert cache is not None
        hit = 0
        if node >= 0:
            self.reload_s += cache.acquire(node) * self.reload_s_per_token
            hit = cache.usable_tokens(node, t.prefill_len[rid])
            t.shared[rid] = cache.index.depth[node]
            t.ref_node[rid] = node
        t.hit[rid] = hit
        t.prefill_done[rid] = hit
        if t.admit_s[rid] != t.admit_s[rid]:  # NaN: its first admission
            t.cached[rid] = hit
        room = self.cap - self.kv_used
        if cache.free_tokens > room:
            cache.trim(room)

    def _cache_prompt(self, rid: int) -> None:
        """`rid` finished its prefill: the nodes of its prompt below the cached path it took
        are now computed and cached (held once: a copy another request cached first frees
        this one's)."""
        t, cache = self.table, self.cache
        assert cache is not None
        node = cache.index.prompt_node[rid]
        if node < 0 or node == t.ref_node[rid]:
            return
        self.kv_used -= cache.insert(node, t.ref_node[rid])
        t.shared[rid] = cache.index.depth[node]
        t.ref_node[rid] = node

    def _leave_cache(self, rid: int, finished: bool) -> None:
        """`rid` leaves (finished, or evicted) after the caller freed all of its KV as its
        own: the shared path it held is released instead (its nodes stay cached), and a
        finished request's answer is cached after its prompt."""
        t, cache = self.table, self.cache
        assert cache is not None
        node = t.ref_node[rid]
        if node < 0:
            return
        self.kv_used += t.shared[rid]
        index = cache.index
        if finished and node == index.prompt_node[rid] and index.output_node[rid] >= 0:
            cache.cache_unreferenced(index.output_node[rid])
        self.kv_used -= cache.release(node)
        t.shared[rid] = 0
        t.ref_node[rid] = -1

    def _book_cached_s(self, chunks: list[tuple[int, int]], prefill_tokens: int,
                       pairs: float, decode_seqs: int) -> None:
        """Charge the prefix-cache hits of this step's chunks what they still cost: the step's
        prefill time less what it would be if the new tokens did not attend to the cached
        tokens, shared by the chunks' attention pairs over them."""
        t = self.table
        cached_pairs = 0.0
        for rid, tokens in chunks:
            cached_pairs += tokens * t.hit[rid]
        if not cached_pairs:
            return
        without_s = self.step_model.step_s(
            prefill_tokens, pairs - cached_pairs, decode_seqs,
            self.decode_ctx if self.step_decodes else 0)[0]
        share_s = (self.step_parts[0] - without_s) / cached_pairs
        for rid, tokens in chunks:
            t.cached_s[rid] += share_s * tokens * t.hit[rid]
