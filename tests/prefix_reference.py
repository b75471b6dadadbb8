"""A plain LRU block cache, written for the tests only and sharing no code with the simulator:
the reference the prefix trees and the engine's cache are checked against.

Requests come in arrival order, each a list of block ids (a Mooncake row's `hash_ids`, say).
A request's hit is the longest run of its leading blocks found in the cache (it stops at the
first miss, as a prefix cache must: a block's KV is only valid after the same prefix); then
every block of it is inserted or touched, in order, as the most recently used, and the least
recently used blocks beyond the capacity are evicted.
"""

from __future__ import annotations

from collections import OrderedDict


def lru_hit_ratio(rows: list[list[int]], block_tokens: list[list[int]] | int,
                  capacity_blocks: int | None) -> float:
    """Hit tokens over prompt tokens, over all rows. `block_tokens` is each block's tokens,
    row by row (a last block may be partial), or one count for every block; a capacity of
    None never evicts."""
    cache: OrderedDict[int, None] = OrderedDict()
    hit_tokens = prompt_tokens = 0
    for i, ids in enumerate(rows):
        tokens = [block_tokens] * len(ids) if isinstance(block_tokens, int) else block_tokens[i]
        prompt_tokens += sum(tokens)
        for block, count in zip(ids, tokens, strict=True):
            if block not in cache:
                break
            hit_tokens += count
        for block in ids:
            cache[block] = None
            cache.move_to_end(block)
            if capacity_blocks is not None and len(cache) > capacity_blocks:
                cache.popitem(last=False)
    return hit_tokens / prompt_tokens if prompt_tokens else 0.0
