"""Prefix identities: which prompts begin with the same tokens, as a forest of token runs.

A prefix cache reuses the KV of tokens a request shares with earlier ones, so the engine
needs to know, per request, which leading tokens are the same as whose: the `PrefixTree`
seam (`sim.engine.seams`). A node is a run of tokens that follows its parent's; a request's
prompt begins with the path from a root to its `prompt_node`. Three sources build one:

* a trace's prefix-block ids (Mooncake `hash_ids`, `from_blocks`): one node per block id in
  its parent's context (a trie over the rows' id lists), so the tree stays a tree even where
  a file gave one id two different parents;
* `workload.shared_prefix_tokens` (`shared_prefix`): one root of N tokens, every prompt's;
* sessions (`session_tree`): each turn's prompt extends the previous turn's answer.

Arrays are int64 and indexed by request id (a pool index for closed loops and sessions);
nodes are numbered so that a parent comes before its children (`node_parent[v] < v`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from sim.workload.lengths import Lengths

NO_NODE = -1  # a root's parent; a request with nothing shareable, or no answer node


@dataclass(frozen=True)
class PrefixTree:
    """The engine's `PrefixTree`: node v is `node_tokens[v]` tokens after its parent's
    (`node_parent[v]`, −1 for a root), `node_depth_tokens[v]` tokens from its root to its end;
    request i's prompt begins with the path to `prompt_node[i]`, and `output_node[i]` (a child
    of it, or −1) holds its answer, which a later request of its session resends."""

    node_parent: np.ndarray
    node_tokens: np.ndarray
    node_depth_tokens: np.ndarray
    prompt_node: np.ndarray
    output_node: np.ndarray

    def __len__(self) -> int:
        """The number of nodes."""
        return len(self.node_parent)


def floor_prompts(prompt: Lengths, prefix_tokens: int) -> Lengths:
    """Prompts raised to prefix_tokens + 1 where shorter, and counted as floored: a prompt
    holds the shared prefix and at least one token of its own."""
    if prefix_tokens == 0:
        return prompt
    short = prompt.tokens <= prefix_tokens
    return Lengths(np.maximum(prompt.tokens, prefix_tokens + 1), prompt.was_capped,
                   prompt.was_floored | short)


def shared_prefix(prefix_tokens: int, requests: int) -> PrefixTree:
    """One root of `prefix_tokens` tokens (a system prompt) that every request's prompt
    begins with (prompts are at least one token longer: `floor_prompts`)."""
    one = np.array([prefix_tokens], dtype=np.int64)
    return PrefixTree(np.array([NO_NODE], dtype=np.int64), one, one.copy(),
                      np.zeros(requests, dtype=np.int64),
                      np.full(requests, NO_NODE, dtype=np.int64))


def session_tree(prompt_tokens: np.ndarray, output_tokens: np.ndarray, turn: np.ndarray,
                 truncated: np.ndarray, prefix_tokens: int) -> PrefixTree:
    """Sessions laid out one after another, turns in order (`sim.workload.sessions.links`):
    request i's prompt node P_i and answer node O_i (a child of P_i, its output's tokens).
    A later turn sent whole extends the turn before it: P_i is a child of O_{i−1}, holding
    the new message (prompt_i − prompt_{i−1} − output_{i−1} tokens), so its depth is its
    prompt. A first turn and a turn cut to the context start a fresh path (a cut history no
    longer matches what the earlier turns sent): P_i is a root of its whole prompt or, with
    a shared prefix of N tokens, a child of that prefix's node holding prompt_i − N tokens (a
    front-end that cuts history keeps the system prompt). A turn sent whole never follows a
    cut one: history + answer only grow, so once they overflow the context they always do.
    Nodes: the shared prefix's (if any) first, then P_0, O_0, P_1, O_1, ..."""
    n = len(prompt_tokens)
    base = 1 if prefix_tokens else 0
    prompt_node = base + 2 * np.arange(n, dtype=np.int64)
    fresh = (turn == 0) | truncated
    before = np.r_[0, prompt_tokens[:-1] + output_tokens[:-1]]  # resent history, if extending
    root = 0 if prefix_tokens else NO_NODE
    nodes = base + 2 * n
    parent = np.full(nodes, NO_NODE, dtype=np.int64)
    tokens = np.empty(nodes, dtype=np.int64)
    depth = np.empty(nodes, dtype=np.int64)
    if prefix_tokens:
        tokens[0] = depth[0] = prefix_tokens
    parent[prompt_node] = np.where(fresh, root, prompt_node - 1)
    tokens[prompt_node] = prompt_tokens - np.where(fresh, prefix_tokens, before)
    depth[prompt_node] = prompt_tokens
    parent[prompt_node + 1] = prompt_node
    tokens[prompt_node + 1] = output_tokens
    depth[prompt_node + 1] = prompt_tokens + output_tokens
    return PrefixTree(parent, tokens, depth, prompt_node, prompt_node + 1)


def from_blocks(ids: np.ndarray, offsets: np.ndarray, prompt_tokens: np.ndarray,
                block_tokens: int) -> PrefixTree:
    """The trie of rows of prefix-block ids: row i's ids (ids[offsets[i]:offsets[i + 1]])
    cover its prompt `block_tokens` at a time, block j its tokens [j b, (j + 1) b), the last
    one possibly partial. A node is one id in one parent node's context, holding its block's
    tokens; a row with more ids than its prompt has blocks keeps only those its prompt
    covers, and one with fewer shares only what its ids cover (its depth is then under its
    prompt). Where a node is a row's partial last block and another row's longer block
    (ids that are true prefix hashes never do that), it holds the fewest tokens it was given,
    so no path is deeper than any prompt that passes through it.

    Built a block position at a time over all rows at once: as many numpy passes as the
    longest row has blocks."""
    rows = len(prompt_tokens)
    blocks = -(-prompt_tokens // block_tokens)  # a ceiling
    kept = np.minimum(offsets[1:] - offsets[:-1], blocks)
    row_start = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(kept, out=row_start[1:])
    row = np.repeat(np.arange(rows, dtype=np.int64), kept)
    position = np.arange(row_start[-1], dtype=np.int64) - row_start[row]
    block_ids = ids[offsets[row] + position]
    own_tokens = np.minimum(block_tokens, prompt_tokens[row] - block_tokens * position)
    _, dense_id = np.unique(block_ids, return_inverse=True)
    distinct = int(dense_id.max(initial=-1)) + 1
    # Positions grouped by their place in their row: every parent is numbered a pass earlier.
    by_position = np.argsort(position, kind="stable")
    cuts = np.searchsorted(position[by_position], np.arange(int(kept.max(initial=0)) + 1))
    node_of = np.empty(len(row), dtype=np.int64)
    # At most one node per position: filled a pass at a time, cut to the count at the end.
    node_parent = np.empty(len(row), dtype=np.int64)
    node_tokens = np.empty(len(row), dtype=np.int64)
    node_depth = np.empty(len(row), dtype=np.int64)
    count = 0
    for lo, hi in itertools.pairwise(cuts):
        here = by_position[lo:hi]
        parent = np.where(position[here] == 0, NO_NODE, node_of[here - 1])
        key = (parent + 1) * distinct + dense_id[here]  # < (positions + 1) × ids: no overflow
        unique_keys, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        new = slice(count, count + len(unique_keys))
        node_of[here] = count + inverse
        node_parent[new] = parent[first]
        node_tokens[new] = block_tokens
        np.minimum.at(node_tokens[new], inverse, own_tokens[here])
        node_depth[new] = node_tokens[new] + np.where(
            parent[first] >= 0, node_depth[np.maximum(parent[first], 0)], 0)
        count += len(unique_keys)
    node_parent, node_tokens, node_depth = (a[:count].copy() for a in
                                            (node_parent, node_tokens, node_depth))
    prompt_node = np.full(rows, NO_NODE, dtype=np.int64)
    ends = kept > 0
    prompt_node[ends] = node_of[row_start[1:][ends] - 1]
    return PrefixTree(node_parent, node_tokens, node_depth, prompt_node,
                      np.full(rows, NO_NODE, dtype=np.int64))

