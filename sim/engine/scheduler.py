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

**Admission** (`ADMISSIONS`: how much KV cache a newcomer must find free) is the other half
of an engine's behaviour, and `ENGINE_PRESETS` holds each serving engine's defaults for both:

* `prompt` (vLLM): its prompt's blocks. Decodes then grow block by block; when the cache is
  full the most recently admitted sequence is preempted and later recomputed.
* `reserve-output` (TensorRT-LLM's `GUARANTEED_NO_EVICT` capacity scheduler): its prompt plus
  its maximum new tokens, beside what the admitted sequences still need for theirs, so the
  cache never overflows and nothing is evicted. The sim knows each output's length and
  reserves exactly that.
* `reserve-ratio` (SGLang): the same reservation with the outputs still to come weighted by
  `reserve_ratio` (SGLang's `new_token_ratio`): more admitted, and retraction (preemption, as
  above) when decoding runs out of room.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class ReplicaState(Protocol):
    """What a policy reads of a replica and the mechanisms it may call."""

    waiting: deque[int]  # routed here, not yet admitted, in arrival order
    prefilling: list[int]  # admitted, prompt not yet fully processed
    running: dict[int, None]  # every admitted request, in admission order
    n_decoding: int  # sequences past their prefill
    growth: int  # KV tokens the decoding sequences gain per step (n_decoding without drafts)
    width: int  # tokens of a step's budget one decoding sequence takes (1 + draft tokens)
    kv_used: int  # KV tokens reserved by admitted sequences
    cap: int  # KV capacity in tokens
    max_seqs: int
    max_tokens: int  # token budget of one step

    def admission_tokens(self, rid: int) -> int: ...
    def reservation(self, rid: int) -> float: ...
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
    """A newcomer's prompt fits beside the decoding sequences' next tokens (and, under a
    reserving admission, beside the outputs still to come)."""
    return r.kv_used + r.growth + r.admission_tokens(rid) + r.reservation(rid) <= r.cap


def _plan_chunked_prefill(r: ReplicaState, now: float) -> None:
    if r.kv_used + r.growth > r.cap:
        r.make_room()
    budget = r.max_tokens - r.n_decoding * r.width
    if r.waiting:
        r.admit(r.growth, now)
    if r.prefilling and budget > 0:
        r.start_step(budget, True, now)
    elif r.n_decoding:
        r.start_block(now)


def _join_chunked_prefill(r: ReplicaState, rid: int) -> bool:
    # Nothing inside a decode run frees a slot or KV, so a request that cannot join at the
    # run's start cannot join before it ends.
    if len(r.running) >= r.max_seqs or r.max_tokens <= r.n_decoding * r.width:
        return False
    return _kv_fits(r, rid)


def _prefill_or_decode(r: ReplicaState, now: float) -> None:
    """Prefill whatever is admitted (all of the step's budget), else decode."""
    if r.prefilling:
        r.start_step(r.max_tokens, False, now)
        return
    if r.kv_used + r.growth > r.cap:
        r.make_room()
    if r.n_decoding:
        r.start_block(now)


def _plan_prefill_first(r: ReplicaState, now: float) -> None:
    if r.waiting:
        r.admit(r.growth, now)
    _prefill_or_decode(r, now)


def _join_prefill_first(r: ReplicaState, rid: int) -> bool:
    return len(r.running) < r.max_seqs and _kv_fits(r, rid)


def _plan_static(r: ReplicaState, now: float) -> None:
    if r.waiting and not r.running:
        r.admit(r.growth, now)
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


# Admission rules (`deployment.scheduler.admission`) and the share of the outputs still to
# come that each reserves; None: `deployment.scheduler.reserve_ratio`.
ADMISSIONS: dict[str, float | None] = {
    "prompt": 0.0,
    "reserve-output": 1.0,
    "reserve-ratio": None,
}


def reserve_share(admission: str, reserve_ratio: float) -> float:
    """The share of the admitted sequences' remaining output tokens kept free in the cache."""
    share = ADMISSIONS[admission]
    return reserve_ratio if share is None else share


@dataclass(frozen=True)
class EnginePreset:
    """A serving engine's scheduling defaults, each what the engine itself does out of the box
    (sources in the comments of `ENGINE_PRESETS`); a scenario's explicit keys win."""

    policy: str
    admission: str
    reserve_ratio: float
    chunked_prefill: bool  # False: a prompt is prefilled whole, in one step
    max_num_seqs: int
    # Token budget of one step by GPU memory: (below this many GiB, budget), the last for
    # any larger GPU.
    max_batched_tokens: tuple[tuple[float, int], ...]
    # The prefix cache's reuse granularity: a hit is whole blocks of this many tokens.
    prefix_block_tokens: int

    def batched_tokens(self, gpu_memory_gib: float) -> int:
        for below_gib, tokens in self.max_batched_tokens:
            if gpu_memory_gib < below_gib:
                return tokens
        return self.max_batched_tokens[-1][1]

    def keys(self, gpu_memory_gib: float) -> dict[str, object]:
        """The preset as `deployment.scheduler` keys, for a GPU of this much memory."""
        return {"policy": self.policy, "admission": self.admission,
                "reserve_ratio": self.reserve_ratio, "chunked_prefill": self.chunked_prefill,
                "max_num_seqs": self.max_num_seqs,
                "max_batched_tokens": self.batched_tokens(gpu_memory_gib)}


ENGINE_PRESETS: dict[str, EnginePreset] = {
    # vLLM V1: chunked prefill, admission by the prompt's blocks, preemption by recompute.
    # 256 sequences and 8192 tokens are this simulator's long-standing defaults; vLLM's own
    # (EngineArgs.get_batch_defaults, API server) are 1024 / 8192 on GPUs of >= 70 GiB other
    # than the A100, 256 / 2048 elsewhere: set the keys to follow it exactly.
    # Automatic prefix caching hashes whole blocks of block_size 16.
    "vllm": EnginePreset("chunked-prefill", "prompt", 0.0, True, 256, ((math.inf, 8192),), 16),
    # SGLang: a step is prefill-only or decode-only unless --enable-mixed-chunk (policy
    # chunked-prefill); admission reserves init_new_token_ratio 0.7 of the new tokens still
    # to come (SGLang lowers it towards 0.1 over quiet decode steps: not modelled, so this is
    # its cautious end); chunked_prefill_size by GPU memory: 2048 below 35 GiB, 8192 below
    # 160 GiB, 16384 above (server_args); max_running_requests is derived from the KV pool,
    # at least 2048 on a large one.
    # Its radix cache matches single tokens (page_size 1).
    "sglang": EnginePreset("prefill-first", "reserve-ratio", 0.7, True, 2048,
                           ((35.0, 2048), (160.0, 8192), (math.inf, 16384)), 1),
    # TensorRT-LLM (PyTorch backend): in-flight batching mixes prompts with decodes, the
    # GUARANTEED_NO_EVICT capacity scheduler, enable_chunked_prefill False, max_batch_size
    # 2048, max_num_tokens 8192; KV block reuse (enable_block_reuse) in tokens_per_block 32.
    "trtllm": EnginePreset("chunked-prefill", "reserve-output", 1.0, False, 2048,
                           ((math.inf, 8192),), 32),
}
