"""What the engine asks of the objects it is given: typed seams, no implementations.

The engine imports nothing of the rest of the simulator; a step-time model and a workload
reach it as objects with these shapes (`sim.steptime` and `sim.workload` provide them, tests
can pass their own).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

# (prefill_s, decode_s): one step's seconds charged to prefill and to decode; their sum is
# the step's duration. A plain tuple: it is built on the engine's hottest path.
StepSplit = tuple[float, float]


class StepModel(Protocol):
    """Seconds for one engine step.

    A pure-decode step of B sequences reading KV tokens of context costs
    `decode_fixed_s(B) + per_kv_token_s × KV`: that form is what lets the engine skip over a
    run of decode steps in closed form (`sim.engine.replica`).
    """

    per_kv_token_s: float

    def decode_fixed_s(self, batch: int) -> float: ...

    def step_s(self, prefill_tokens: int, prefill_attn_pairs: float, decode_seqs: int,
               decode_kv_tokens: int) -> StepSplit: ...


class Requests(Protocol):
    """Request i arrives at arrival_s[i] (sorted) with prompt_tokens[i] and wants
    output_tokens[i]. The engine only reads them (read-only members: a frozen dataclass fits)."""

    @property
    def arrival_s(self) -> np.ndarray: ...

    @property
    def prompt_tokens(self) -> np.ndarray: ...

    @property
    def output_tokens(self) -> np.ndarray: ...

    def __len__(self) -> int: ...


class Clients(Protocol):
    """Closed-loop clients: `concurrency` of them send their first request at t = 0, and the
    client of request i sends its next think_s[i] after request i finished (or was
    rejected), until send_until_s. Requests are sent in index order, whichever client is
    ready: request i is the i-th sent, so lengths and think times stay drawn up front."""

    @property
    def concurrency(self) -> int: ...

    @property
    def think_s(self) -> np.ndarray: ...

    @property
    def send_until_s(self) -> float: ...


class PrefixTree(Protocol):
    """Which prompts share a prefix: a forest of nodes, each a run of `node_tokens[v]`
    tokens following its parent's (−1: a root), so node v stands for the whole token
    sequence from its root to its end, `node_depth_tokens[v]` tokens long (a parent's depth
    plus its own tokens). Two requests whose prompts pass through node v begin with the
    same `node_depth_tokens[v]` tokens: that is what a prefix cache can reuse.

    Request i's prompt begins with the path to `prompt_node[i]` (−1: nothing shareable),
    whose depth is at most its prompt; the rest of its prompt is its own. `output_node[i]`
    (−1: none) is a child of `prompt_node[i]` holding the request's answer, which a later
    request extends (a session's next turn resends the history): its KV is cached when the
    request finishes. Nodes are numbered so that a parent comes before its children."""

    @property
    def node_parent(self) -> np.ndarray: ...

    @property
    def node_tokens(self) -> np.ndarray: ...

    @property
    def node_depth_tokens(self) -> np.ndarray: ...

    @property
    def prompt_node(self) -> np.ndarray: ...

    @property
    def output_node(self) -> np.ndarray: ...


@runtime_checkable
class Sessions(Clients, Protocol):
    """Multi-turn sessions: session s sends request first_request[s] first, and after request
    j ended (finished or rejected) sends next_request[j] think_s[j] later (−1: j was the
    session's last turn), unless that is at or after send_until_s. With start_s (sorted),
    session s starts at start_s[s] (an open arrival process; `concurrency` unused); with
    start_s None, `concurrency` clients run a session each: the first sessions start at
    t = 0, and a client whose session's last turn j ended starts the next session not yet
    started think_s[j] later. A closed loop (`Clients`) is the case of one-turn sessions."""

    @property
    def start_s(self) -> np.ndarray | None: ...

    @property
    def first_request(self) -> np.ndarray: ...

    @property
    def next_request(self) -> np.ndarray: ...
