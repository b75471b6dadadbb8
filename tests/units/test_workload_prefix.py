"""Prefix identities (`Workload.prefix`): a Mooncake trace's `hash_ids` read and carried
through replay, the trie built from them, a shared system prompt, sessions' histories;
worked examples, the tree's invariants, determinism and bad input."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import FIXTURES, Case, replay_scenario, tiny, trace_spec

from sim.errors import InputError
from sim.scenario.traces import MOONCAKE_BLOCK_TOKENS, TraceWarning, read_trace
from sim.scenario.workload import WorkloadSpec
from sim.workload import Workload, generate
from sim.workload.closed import PoolLimits
from sim.workload.prefix import PrefixTree, from_blocks
from sim.workload.sessions import SessionPlan

STREAMS = ("arrivals", "prompt_tokens", "output_tokens", "think_times", "turns", "new_tokens",
           "session_think")
LIMITS = PoolLimits(min_step_s=0.01, max_request_tokens=10**6, max_requests=10**6)
LOGNORMAL_PROMPT = {"dist": "lognormal", "mean": 200, "sigma": 0.8}
SHORT_OUTPUT = {"dist": "lognormal", "mean": 30, "sigma": 0.5}


def _seeds(seed: int = 0) -> dict[str, np.random.SeedSequence]:
    return dict(zip(STREAMS, np.random.SeedSequence(seed).spawn(len(STREAMS)), strict=True))


def _generate(workload: dict[str, Any], duration_s: float = 100.0, seed: int = 0,
              max_context_tokens: int = 10**6) -> Workload:
    return generate(WorkloadSpec.model_validate(workload), duration_s, _seeds(seed), LIMITS,
                    max_context_tokens)


def _check_tree(tree: PrefixTree, prompt_tokens: np.ndarray) -> None:
    """The seam's promises: parents first, depths add up, no empty node, no path deeper than
    its prompt, an answer node a child of its prompt node."""
    v = np.arange(len(tree))
    parent = tree.node_parent
    assert (parent < v).all() and (parent >= -1).all()
    assert (tree.node_tokens >= 1).all()
    above = np.where(parent >= 0, tree.node_depth_tokens[np.maximum(parent, 0)], 0)
    assert np.array_equal(tree.node_depth_tokens, above + tree.node_tokens)
    shared = tree.prompt_node >= 0
    assert (tree.node_depth_tokens[tree.prompt_node[shared]] <= prompt_tokens[shared]).all()
    answered = tree.output_node >= 0
    assert np.array_equal(parent[tree.output_node[answered]], tree.prompt_node[answered])


def _path(tree: PrefixTree, node: int) -> list[int]:
    """The nodes from `node` up to its root."""
    path = []
    while node >= 0:
        path.append(node)
        node = int(tree.node_parent[node])
    return path


# ---- Mooncake hash_ids -----------------------------------------------------------------------

MOONCAKE = (
    '{"timestamp": 10, "input_length": 1000, "output_length": 5, "hash_ids": [7, 8]}\n'
    '{"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [ 7 , 9 ]}\n'
    '{"timestamp": 20, "input_length": 5, "output_length": 0, "hash_ids": [3]}\n'
    '\n'
    '{"hash_ids":[],"timestamp":30,"input_length":5,"output_length":1}\n'
    '{"timestamp": 40, "input_length": 5, "output_length": 1}\n'
)


def _read(tmp_path: Path, content: str, name: str = "t.jsonl") -> Any:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceWarning)
        return read_trace(path)


def test_hash_ids_are_read_row_by_row_and_follow_the_sort_and_the_drop(tmp_path: Path) -> None:
    trace = _read(tmp_path, MOONCAKE)
    # Sorted by time (line 2 first), line 3 left out (0 output tokens), lines 5 and 6 share
    # nothing (an empty list, no key).
    assert trace.prompt_tokens.tolist() == [600, 1000, 5, 5]
    assert trace.hash_ids.tolist() == [7, 9, 7, 8]
    assert trace.hash_offsets.tolist() == [0, 2, 4, 4, 4]
    assert trace.block_tokens == MOONCAKE_BLOCK_TOKENS == 512
    assert not trace.hash_ids.flags.writeable


def test_traces_without_ids_have_none_and_ids_take_part_in_equality(tmp_path: Path) -> None:
    assert read_trace(FIXTURES / "azure_small.csv").hash_ids is None
    bare = _read(tmp_path, '{"timestamp": 0, "input_length": 5, "output_length": 1}\n')
    assert bare.hash_ids is None and bare.hash_offsets is None
    one = _read(tmp_path, MOONCAKE)
    other = _read(tmp_path, MOONCAKE.replace("[7, 8]", "[7, 6]"))
    assert one == _read(tmp_path, MOONCAKE) and one != other
    assert one.prompt_tokens.tolist() == other.prompt_tokens.tolist()


OK_LINE = '{"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [1, 2]}\n'


@pytest.mark.parametrize(("ids", "shown"), [
    ("[1, -2]", "[1, -2]"),
    ("[1,,2]", "[1,,2]"),
    ("[1 2]", "[1 2]"),
    ("[1, 2,]", "[1, 2,]"),
    ("[,1]", "[,1]"),
    ("[1.5]", "[1.5]"),
    ('["a"]', '["a"]'),
    ("[[1]]", "[[1]"),
    ("7", "7}"),
    ("[1, 2", "[1, 2}"),
    ("[" + "9" * 19 + "]", "[" + "9" * 19 + "]"),
])
def test_a_malformed_list_names_file_line_and_key(tmp_path: Path, ids: str,
                                                  shown: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(OK_LINE + OK_LINE.replace("[1, 2]", ids), encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_trace(path)
    assert info.value.where == f"{path}:2:hash_ids"
    assert f"{path}:2:hash_ids: {shown!r} — expected" in str(info.value)
    assert "integers ≥ 0, comma-separated" in str(info.value)


def test_the_key_twice_on_a_line_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "twice.jsonl"
    path.write_text(OK_LINE.replace('}', ', "hash_ids": [3]}'), encoding="utf-8")
    with pytest.raises(InputError, match=r"twice.jsonl:1:hash_ids: .*at most once"):
        read_trace(path)


def test_the_run_refuses_a_malformed_list(check_rejected: Callable[[Case], None]) -> None:
    check_rejected(Case(
        "mooncake-bad-hash-ids", replay_scenario({"path": "t.jsonl"}, 10.0), "t.jsonl:2:hash_ids",
        "'[1, x]'", ("integers ≥ 0",), setup={"t.jsonl": OK_LINE + OK_LINE.replace(
            "[1, 2]", "[1, x]")}, key_first=False))


# ---- the trie of block ids -------------------------------------------------------------------


def _tree(rows: list[list[int]], prompts: list[int], block_tokens: int = 512) -> PrefixTree:
    ids = np.array([i for row in rows for i in row], dtype=np.int64)
    offsets = np.cumsum([0, *map(len, rows)]).astype(np.int64)
    prompt_tokens = np.array(prompts, dtype=np.int64)
    tree = from_blocks(ids, offsets, prompt_tokens, block_tokens)
    _check_tree(tree, prompt_tokens)
    return tree


def test_rows_sharing_leading_ids_share_nodes() -> None:
    # Blocks of 512: A = 512 + 512 + 176, B = 512 × 3 + 464, C = 512 + 188 tokens.
    tree = _tree([[1, 2, 3], [1, 2, 4, 5], [1, 6]], [1200, 2000, 700])
    # Numbered a block position at a time: 1; then 2, 6 under it; then 3, 4; then 5.
    assert tree.node_parent.tolist() == [-1, 0, 0, 1, 1, 4]
    assert tree.node_tokens.tolist() == [512, 512, 188, 176, 512, 464]
    assert tree.node_depth_tokens.tolist() == [512, 1024, 700, 1200, 1536, 2000]
    assert tree.prompt_node.tolist() == [3, 5, 2]
    assert tree.output_node.tolist() == [-1, -1, -1]


def test_an_id_under_two_parents_is_two_nodes() -> None:
    tree = _tree([[1, 2], [3, 2]], [1024, 1024])
    assert tree.node_parent.tolist() == [-1, -1, 0, 1]
    assert tree.prompt_node.tolist() == [2, 3]


def test_rows_with_too_few_or_too_many_ids_cover_what_both_allow() -> None:
    rows = [[1, 2, 3], [1], [1, 2, 3, 4, 5], [1, 2, 3], []]
    prompts = [1500, 1500, 1200, 1100, 40]
    blocks = -(-np.array(prompts) // 512)
    lengths = np.array(list(map(len, rows)))
    assert (np.count_nonzero(lengths < blocks), np.count_nonzero(lengths > blocks)) == (2, 1)
    tree = _tree(rows, prompts)
    depth = np.where(tree.prompt_node >= 0, tree.node_depth_tokens[tree.prompt_node], 0)
    # Row 2 shares only its first block; row 3's ids 4 and 5 lie past its prompt (3 blocks);
    # row 4 is row 1's ids with a shorter last block, so their node holds the fewer tokens
    # (76 of row 4's prompt against row 1's 476) and row 1's path is under its prompt too.
    assert depth.tolist() == [1100, 512, 1100, 1100, 0]
    assert len(tree) == 3


def test_replay_carries_each_kept_rows_ids(tmp_path: Path) -> None:
    lines = [f'{{"timestamp": {1000 * i}, "input_length": {600 + i}, "output_length": 3, '
             f'"hash_ids": [0, {i + 1}]}}\n' for i in range(40)]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    for scale in (2.0, 0.5):
        spec = WorkloadSpec(trace=trace_spec(path, scale=scale))
        w = generate(spec, 1000.0, _seeds(3))
        tree = w.prefix
        assert tree is not None
        _check_tree(tree, w.prompt_tokens)
        # Request i's ids were [0, i + 1] with prompt 600 + i: its node is the one block
        # i + 1 makes under block 0, whichever copy or subset was kept.
        own = w.prompt_tokens - 600
        node = tree.prompt_node
        assert (tree.node_parent[node] == 0).all() and (tree.node_depth_tokens[node]
                                                        == w.prompt_tokens).all()
        assert len(np.unique(node)) == len(np.unique(own))
        assert all(len(set(node[own == k].tolist())) == 1 for k in np.unique(own))
        if scale == 2.0:
            assert len(w) == 80
        else:
            assert 0 < len(w) < 40


def test_a_trace_without_ids_has_no_tree() -> None:
    spec = WorkloadSpec(trace=trace_spec(FIXTURES / "azure_small.csv"))
    assert generate(spec, 1e6, _seeds()).prefix is None


# ---- a shared system prompt ------------------------------------------------------------------


def _plain(**extra: Any) -> dict[str, Any]:
    return {"arrival": {"process": "poisson", "rate_per_s": 20.0},
            "prompt_tokens": LOGNORMAL_PROMPT, "output_tokens": SHORT_OUTPUT, **extra}


def test_every_prompt_starts_with_the_shared_node_and_short_ones_are_raised() -> None:
    bare = _generate(_plain())
    assert bare.prefix is None
    shared = _generate(_plain(shared_prefix_tokens=150))
    tree = shared.prefix
    assert tree is not None
    assert (tree.node_parent.tolist(), tree.node_tokens.tolist(),
            tree.node_depth_tokens.tolist()) == ([-1], [150], [150])
    assert (tree.prompt_node == 0).all() and (tree.output_node == -1).all()
    assert len(tree.prompt_node) == len(shared)
    # The same draws (the prefix takes no randomness), raised to 151 where at most 150.
    assert np.array_equal(shared.prompt_tokens, np.maximum(bare.prompt_tokens, 151))
    raised = int(np.count_nonzero(bare.prompt_tokens <= 150))
    assert 0 < raised < len(bare)
    assert shared.floored["prompt_tokens"] == raised  # none of the lognormal's draws was < 1
    assert bare.floored["prompt_tokens"] == 0
    _check_tree(tree, shared.prompt_tokens)


def test_a_closed_pool_shares_the_prefix_by_pool_index() -> None:
    w = _generate(_plain(arrival={"process": "closed", "concurrency": 4},
                         shared_prefix_tokens=64), duration_s=5.0)
    assert w.prefix is not None and len(w.prefix.prompt_node) == len(w) > 4
    assert (w.prompt_tokens >= 65).all()
    sent = w.arrived(np.arange(3.0))
    assert sent.prefix is w.prefix and len(sent) == 3


@pytest.mark.parametrize(("value", "shown"), [(-1, "-1"), (1.5, "1.5"), ("64", "'64'"),
                                              (True, "True"), (10**9 + 1, "1000000001")])
def test_bad_shared_prefix_tokens_are_refused(check_rejected: Callable[[Case], None],
                                              value: object, shown: str) -> None:
    check_rejected(Case("shared-prefix", tiny(workload__shared_prefix_tokens=value),
                        "workload.shared_prefix_tokens", shown))


def test_a_shared_prefix_with_a_trace_is_refused(check_rejected: Callable[[Case], None]) -> None:
    data = replay_scenario({"path": "t.jsonl"}, 10.0)
    data["workload"]["shared_prefix_tokens"] = 100
    check_rejected(Case("shared-prefix-trace", data, "workload.shared_prefix_tokens", "100",
                        ("when workload.trace is given",), setup={"t.jsonl": OK_LINE}))


# ---- sessions --------------------------------------------------------------------------------


def _chat(shared_prefix_tokens: int = 0, turns: int = 6) -> dict[str, Any]:
    return {"arrival": {"process": "poisson", "rate_per_s": 2.0},
            "prompt_tokens": LOGNORMAL_PROMPT, "output_tokens": SHORT_OUTPUT,
            "sessions": {"turns": turns, "new_tokens": {"dist": "fixed", "value": 40}},
            "shared_prefix_tokens": shared_prefix_tokens}


@pytest.mark.parametrize("shared", [0, 100])
def test_each_turn_extends_the_previous_answer_unless_cut(shared: int) -> None:
    # A context of 600 tokens cuts the later turns of most sessions (200 + 5 × 70 on average).
    w = _generate(_chat(shared), max_context_tokens=600)
    tree, plan = w.prefix, w.clients
    assert tree is not None and isinstance(plan, SessionPlan)
    _check_tree(tree, w.prompt_tokens)
    assert np.array_equal(tree.node_depth_tokens[tree.prompt_node], w.prompt_tokens)
    assert np.array_equal(tree.node_depth_tokens[tree.output_node],
                          w.prompt_tokens + w.output_tokens)
    cut = plan.truncated
    assert 0 < np.count_nonzero(cut) < len(w)
    # Once a session's turn is cut, so are its later ones (the tree relies on it).
    assert not (~cut & (plan.turn > 0) & np.r_[False, cut[:-1]]).any()
    extends = (plan.turn > 0) & ~cut
    assert np.count_nonzero(extends) > 0
    for i in range(len(w)):
        path = _path(tree, int(tree.prompt_node[i]))
        if extends[i]:
            assert int(tree.output_node[i - 1]) in path
        else:  # a fresh path: its own node, under the shared prefix if there is one
            assert path[1:] == ([0] if shared else [])
    if shared:
        assert (w.prompt_tokens > shared).all()
        assert tree.node_tokens[0] == shared


def test_sessions_without_a_cut_chain_every_turn() -> None:
    w = _generate(_chat(turns=3))
    tree, plan = w.prefix, w.clients
    assert tree is not None and isinstance(plan, SessionPlan)
    assert not plan.truncated.any()
    later = plan.turn > 0
    assert np.array_equal(tree.node_parent[tree.prompt_node[later]],
                          tree.output_node[np.flatnonzero(later) - 1])
    assert (tree.node_tokens[tree.prompt_node[later]] == 40).all()  # the new message alone


def test_same_seed_same_trees(tmp_path: Path) -> None:
    def arrays(w: Workload) -> list[list[int]]:
        assert w.prefix is not None
        p = w.prefix
        return [a.tolist() for a in (p.node_parent, p.node_tokens, p.node_depth_tokens,
                                     p.prompt_node, p.output_node, w.prompt_tokens)]

    chat = _chat(50)
    assert arrays(_generate(chat, seed=5, max_context_tokens=600)) == arrays(
        _generate(chat, seed=5, max_context_tokens=600))
    path = tmp_path / "t.jsonl"
    path.write_text(MOONCAKE.replace('"output_length": 0', '"output_length": 2')
                    .replace('"timestamp": 0,', '"timestamp": 15,'))
    spec = WorkloadSpec(trace=trace_spec(path, scale=1.5))
    assert arrays(generate(spec, 1e3, _seeds(2))) == arrays(generate(spec, 1e3, _seeds(2)))
