"""Scheduler policies: what a replica runs next, decided at every step boundary.

A policy is two small functions over a replica's state (`ReplicaState`):

* `plan(replica, now)` — at a step boundary, admit waiting requests and start the next step
  (a prefill or mixed step, or a run of pure decode steps), or leave the replica idle.
* `could_join(replica, rid)` — whether request `rid`, arriving during a run of decode
  steps, might be admitted at the next boundary; if so the run is cut at the end of the step
  in progress. Erring towards yes costs a little speed, never correctness; answering no
  when it could join would delay it.

The policies (`POLICIES`; their keys are what `deployment.scheduler.policy` accepts):

* `chunked-prefill` (vLLM V1's default): every decoding sequence gets one token; what is left
  of the token budget (`max_batched_tokens`) goes to prefill chunks, continuing ones first,
  then newly admitted requests in arrival order, while `max_num_seqs` and the KV cache allow.
* `prefill-first`: a step is all prefill (whenever anything can be prefilled) or all decode.
* `static`: a batch is admitted only when the previous one has completely finished.

The replica provides the mechanisms (admission under the KV budget, eviction, starting a
step or a decode run); a policy only decides which to use, so a new policy is one more pair
of functions here and one more registry entry.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class RequestColumns(Protocol):
    prefill_len: list[int]  # tokens a request must (re)prefill: prompt + tokens generated


class ReplicaState(Protocol):
    """What a policy reads of a replica and the mechanisms it may call."""

    table: RequestColumns
    waiting: deque[int]  # routed here, not yet admitted, in arrival order
    prefilling: list[int]  # admitted, prompt not yet fully processed
    running: dict[int, None]  # every admitted request, in admission order
    n_decoding: int  # sequences past their prefill
    kv_used: int  # KV tokens reserved by admitted sequences
    cap: int  # KV capacity in tokens
    max_seqs: int
    max_tokens: int  # token budget of one step
    admit_extra: int  # KV a new admission reserves beyond its prompt

    def admit(self, growth: int, now: float) -> None: ...
    def make_room(self) -> None: ...
    def start_step(self, budget: int, decodes: bool, now: float) -> None: ...
    def start_block(self, now: float) -> None: ...


@dataclass(frozen=True)
class Policy:
    plan: Callable[[ReplicaState, float], None]
    could_join: Callable[[ReplicaState, int], bool]
    summary: str  # one line for --help


def _kv_fits(r: ReplicaState, rid: int) -> bool:
    """A newcomer's prompt fits beside the decoding sequences' next tokens."""
    return r.kv_used + r.n_decoding + r.table.prefill_len[rid] + r.admit_extra <= r.cap


def _plan_chunked_prefill(r: ReplicaState, now: float) -> None:
    if r.kv_used + r.n_decoding > r.cap:
        r.make_room()
    budget = r.max_tokens - r.n_decoding
    if r.waiting:
        r.admit(r.n_decoding, now)
    if r.prefilling and budget > 0:
        r.start_step(budget, True, now)
    elif r.n_decoding:
        r.start_block(now)


def _join_chunked_prefill(r: ReplicaState, rid: int) -> bool:
    # Nothing inside a decode run frees a slot or KV, so a request that cannot join at the
    # run's start cannot join before it ends.
    if len(r.running) >= r.max_seqs or r.max_tokens <= r.n_decoding:
        return False
    return _kv_fits(r, rid)


def _prefill_or_decode(r: ReplicaState, now: float) -> None:
    """Prefill whatever is admitted (all of the step's budget), else decode."""
    if r.prefilling:
        r.start_step(r.max_tokens, False, now)
        return
    if r.kv_used + r.n_decoding > r.cap:
        r.make_room()
    if r.n_decoding:
        r.start_block(now)


def _plan_prefill_first(r: ReplicaState, now: float) -> None:
    if r.waiting:
        r.admit(r.n_decoding, now)
    _prefill_or_decode(r, now)


def _join_prefill_first(r: ReplicaState, rid: int) -> bool:
    return len(r.running) < r.max_seqs and _kv_fits(r, rid)


def _plan_static(r: ReplicaState, now: float) -> None:
    if r.waiting and not r.running:
        r.admit(r.n_decoding, now)
    _prefill_or_decode(r, now)


def _join_static(r: ReplicaState, rid: int) -> bool:
    return False  # a batch runs to its end before anything new is admitted


POLICIES: dict[str, Policy] = {
    "chunked-prefill": Policy(
        _plan_chunked_prefill, _join_chunked_prefill,
        "decodes first, prefill chunks fill the rest of max_batched_tokens (vLLM V1)"),
    "prefill-first": Policy(
        _plan_prefill_first, _join_prefill_first,
        "a step is all prefill when any prompt is admitted, else all decode"),
    "static": Policy(
        _plan_static, _join_static,
        "a new batch is admitted only when the last one has finished"),
}
