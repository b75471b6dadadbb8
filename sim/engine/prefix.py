"""Prefix caching: the KV of shared prompt prefixes kept on a replica for reuse.

What is shared comes from the workload as a forest of nodes (`sim.engine.seams.PrefixTree`):
node v is a run of tokens after its parent's, so the path from a root to v is a prompt prefix
that every request passing through v begins with. A replica's cache holds whole nodes, and
since a node is useless without its parent, the nodes it holds are closed under taking
parents: the cached part of a prompt's path is the part from its root down to the deepest
cached node on it.

**Reuse.** At admission a request takes the cached part of its path: its tokens, floored to
whole blocks of `block_tokens` (vLLM hashes 16-token blocks; SGLang's radix cache matches
single tokens; TensorRT-LLM reuses 32-token blocks) and short of the whole prompt by at
least one token (the engine must compute the last position to produce the first output
token, as vLLM caps a hit at the prompt's length − 1), skip prefill. They are not free:
the new tokens' attention still reads their KV (the prefill's attention pairs count them).

**Memory.** A cached node's KV is held once however many running requests use it: it is
*referenced* while any does and counts in the replica's `kv_used` like the requests' own
tokens; unreferenced, it stays cached in memory that is free for anything else, and the
least recently used unreferenced node goes first when that memory is needed (`trim`). A
node is used when a request takes it at admission and when its last user leaves; the
nodes of a path are released from the deepest up, so a parent is always more recent than
its unreferenced children and eviction keeps the cache closed under parents. When a
request's prefill completes, the nodes of its path it computed become cached (a node some
other request cached meanwhile is taken instead, and the duplicate KV freed); when it
finishes, the node holding its answer (a session's next turn resends it) is cached too.
Eviction is by whole node (a node is one Mooncake block, one message of a session, or the
shared system prompt), where vLLM frees block by block.

**Host offload.** With `host_tokens` > 0 an evicted node moves to the host's memory (an LRU
of that many tokens, as vLLM's CPU offloading and LMCache keep evicted blocks in DRAM)
rather than being dropped, and a later hit on it copies it back: the admission counts it as
cached (it skips prefill) and as memory newly in use on the GPU, and `acquire` returns the
tokens copied, which the replica charges to its next step at the host link's speed. The
host drops its least recently offloaded node when full.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from sim.engine.seams import PrefixTree


@dataclass(frozen=True)
class PrefixIndex:
    """The workload's prefix tree as plain lists (fastest for scalar access), shared by
    every replica's cache."""

    parent: list[int]
    tokens: list[int]
    depth: list[int]
    prompt_node: list[int]
    output_node: list[int]

    @classmethod
    def of(cls, tree: PrefixTree) -> PrefixIndex:
        return cls(np.asarray(tree.node_parent).tolist(), np.asarray(tree.node_tokens).tolist(),
                   np.asarray(tree.node_depth_tokens).tolist(),
                   np.asarray(tree.prompt_node).tolist(), np.asarray(tree.output_node).tolist())

    @classmethod
    def unshared(cls, requests: int) -> PrefixIndex:
        """No prompt shares anything with another."""
        return cls([], [], [], [-1] * requests, [-1] * requests)


class PrefixCache:
    """One replica's cached nodes: reference counts, and the unreferenced ones in LRU order."""

    def __init__(self, index: PrefixIndex, block_tokens: int, host_tokens: int = 0) -> None:
        self.index = index
        self.block_tokens = block_tokens
        self.refs: dict[int, int] = {}  # cached node → running requests that reference it
        self.lru: OrderedDict[int, None] = OrderedDict()  # unreferenced nodes, oldest first
        self.free_tokens = 0  # tokens of the unreferenced nodes: evictable memory
        self.evicted_blocks = 0
        self.host_capacity_tokens = host_tokens
        self.host: OrderedDict[int, None] = OrderedDict()  # offloaded nodes, oldest first
        self.host_tokens = 0
        self.reloaded_tokens = 0

    def deepest(self, node: int) -> int:
        """The deepest cached node (on the GPU or offloaded) on the path from a root to
        `node` (−1: none)."""
        refs, host, parent = self.refs, self.host, self.index.parent
        while node >= 0 and node not in refs and node not in host:
            node = parent[node]
        return node

    def unreferenced_tokens(self, node: int) -> int:
        """Tokens of the unreferenced and offloaded nodes on the (cached) path to `node`:
        the memory a request taking that path puts in use (free, or copied back)."""
        refs, parent, tokens = self.refs, self.index.parent, self.index.tokens
        total = 0
        while node >= 0:
            if not refs.get(node, 0):
                total += tokens[node]
            node = parent[node]
        return total

    def usable_tokens(self, node: int, prefill_tokens: int) -> int:
        """Tokens of the cached path to `node` a prefill of `prefill_tokens` skips: whole
        blocks, at least one token short of the prefill."""
        if node < 0:
            return 0
        block = self.block_tokens
        return min(self.index.depth[node], prefill_tokens - 1) // block * block

    def acquire(self, node: int) -> int:
        """A request takes the cached path to `node`; returns the tokens copied back from
        the host for it."""
        refs, lru, parent, tokens = self.refs, self.lru, self.index.parent, self.index.tokens
        reloaded = 0
        while node >= 0:
            n = refs.get(node)
            if n is None:  # offloaded: back on the GPU, referenced
                del self.host[node]
                self.host_tokens -= tokens[node]
                reloaded += tokens[node]
                n = 0
            elif not n:
                del lru[node]
                self.free_tokens -= tokens[node]
            refs[node] = n + 1
            node = parent[node]
        self.reloaded_tokens += reloaded
        return reloaded

    def insert(self, node: int, stop: int) -> int:
        """A request that holds the path to `stop` has computed the nodes from there down to
        `node`: they become cached and referenced by it. Returns the tokens of its own KV
        freed because a node was cached meanwhile by another request (the duplicates)."""
        refs, lru, parent, tokens = self.refs, self.lru, self.index.parent, self.index.tokens
        freed = 0
        while node != stop:
            n = refs.get(node)
            if n is None:
                self._unhost(node)  # the fresh copy replaces an offloaded one
                refs[node] = 1
            else:
                if not n:
                    del lru[node]
                    self.free_tokens -= tokens[node]
                else:
                    freed += tokens[node]  # held twice: the request's copy goes
                refs[node] = n + 1
            node = parent[node]
        return freed

    def cache_unreferenced(self, node: int) -> bool:
        """Cache `node` (whose parent is cached) unreferenced, as the most recent; False
        when it already is cached."""
        if node in self.refs:
            return False
        self._unhost(node)
        self.refs[node] = 0
        self.lru[node] = None
        self.free_tokens += self.index.tokens[node]
        return True

    def release(self, node: int) -> int:
        """A request leaves the path to `node`; returns the tokens no longer referenced by
        anyone (they stay cached, now evictable)."""
        refs, lru, parent, tokens = self.refs, self.lru, self.index.parent, self.index.tokens
        unreferenced = 0
        while node >= 0:
            n = refs[node] - 1
            refs[node] = n
            if not n:
                lru[node] = None
                unreferenced += tokens[node]
            node = parent[node]
        self.free_tokens += unreferenced
        return unreferenced

    def trim(self, room_tokens: int) -> None:
        """Evict the least recently used unreferenced nodes until they fit in `room_tokens`
        (the memory the running requests leave free)."""
        refs, lru, tokens, block = self.refs, self.lru, self.index.tokens, self.block_tokens
        while self.free_tokens > room_tokens:
            node, _ = lru.popitem(last=False)
            del refs[node]
            size = tokens[node]
            self.free_tokens -= size
            self.evicted_blocks += -(-size // block)
            if self.host_capacity_tokens:
                self._offload(node, size)

    def _offload(self, node: int, size: int) -> None:
        """Keep an evicted node in the host's memory, dropping the host's oldest to fit."""
        host = self.host
        host[node] = None
        self.host_tokens += size
        while self.host_tokens > self.host_capacity_tokens:
            oldest, _ = host.popitem(last=False)
            self.host_tokens -= self.index.tokens[oldest]

    def _unhost(self, node: int) -> None:
        if node in self.host:
            del self.host[node]
            self.host_tokens -= self.index.tokens[node]

    def clear(self) -> None:
        """Forget everything (the replica and its host were lost)."""
        self.refs = {}
        self.lru = OrderedDict()
        self.free_tokens = 0
        self.host = OrderedDict()
        self.host_tokens = 0
