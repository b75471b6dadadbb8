"""What a 2024 vLLM (the V0 engine, v0.5 and v0.6) did by default, for rows measured on one.

The step model composes operator tables timed in current engine builds, whose schedulers
overlap the host's work with the GPU's (`sim.steptime.composed`: no host time per step). The
V0 engine did not, and its defaults differ from today's; a row that names such a version
("vLLM v0.5.4", "vLLM v0.6.0 steps=10") is simulated with what that version documents:

* **Host time per step.** The V0 engine scheduled, prepared inputs and processed outputs
  (detokenising, stop checks, streaming through the API server in the same process) between
  GPU steps, synchronously: "the GPU is often idle, waiting for CPU operations (5-13ms of GPU
  bubble)" per decode step (vLLM RFC "Multi-Step Scheduling", vllm-project/vllm#6854, July
  2024, on v0.5.3). `HOST_STEP_S` is the middle of that range, the same for every model, GPU
  and batch: the host's work does not depend on the model, and the RFC gives no split by
  batch size (output processing, one part of it, grows with the batch: 0.2 ms at batch 1,
  3.4 ms at 32, vllm-project/vllm#6913; not modelled). Multi-step scheduling
  (`--num-scheduler-steps n`, v0.6.0, vllm-project/vllm#7000) schedules once per n steps,
  "spreading the CPU overhead across multiple steps" (vLLM blog, "vLLM v0.6.0: 2.7x
  Throughput Improvement and 5x Latency Reduction", 2024-09-05): HOST_STEP_S / n. The same
  post puts the host's share at 62% of the time for Llama 3 8B on one H100 under v0.5.3 (API
  server 33%, scheduling 29%, GPU 38%), the same order as this figure beside that model's
  few-millisecond GPU steps; v0.6.0's other gains (API server in its own process,
  asynchronous output processing) are not subtracted.
* **Scheduler.** Without chunked prefill (`--enable-chunked-prefill` not given; the rows that
  had it say so) a step is all prefill or all decode, prefills first, and a step's token
  budget is `max(max_model_len, 2048)`; with it, decodes first and a 512-token budget (vLLM
  v0.5 `SchedulerConfig`).
* **KV cache format.** `--kv-cache-dtype auto` "will use model data type" (vLLM's
  `CacheConfig.cache_dtype` help): the activations' 16 bits for an FP8 checkpoint, unless
  the server is started with `--kv-cache-dtype fp8`, which the benchmark rows' commands do
  not do (LambdaLabsML/vllm-benchmark `benchmark.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

HOST_STEP_S = 0.009  # vllm-project/vllm#6854: 5-13 ms of GPU idle per V0 step; the middle
V0_CHUNKED_BUDGET_TOKENS = 512  # vLLM v0.5 SchedulerConfig, enable_chunked_prefill
V0_MIN_BUDGET_TOKENS = 2048  # vLLM v0.5 SchedulerConfig: max(max_model_len, 2048)

_VERSION = re.compile(r"vllm\s*v?0\.(\d+)(?:\.\d+)?", flags=re.IGNORECASE)
_STEPS = re.compile(r"(?:num-scheduler-)?steps(?:\s*=\s*|\s+)(\d+)", flags=re.IGNORECASE)
_MAX_LEN = re.compile(r"max-(?:seq|model)-len\s*=\s*(\d+)", flags=re.IGNORECASE)
V0_MINORS = (5, 6)  # the V0 versions these defaults are documented for


@dataclass(frozen=True)
class V0Defaults:
    """A V0 vLLM's scheduler, host time per step and KV format for one row."""

    policy: str  # prefill-first | chunked-prefill
    max_batched_tokens: int
    host_overhead_s: float
    kv_cache_dtype: str  # auto | bf16
    notes: tuple[str, ...]


def vllm_v0(row: dict[str, Any], dtype: str) -> V0Defaults | None:
    """The defaults of the V0 vLLM the row's `engine` names (None: not such a version).
    `dtype`: the weights' format the row runs in."""
    engine = str(row.get("engine", ""))
    version = _VERSION.search(engine)
    if version is None or int(version.group(1)) not in V0_MINORS:
        return None
    steps_match = _STEPS.search(engine)
    steps = int(steps_match.group(1)) if steps_match else 1
    notes = [f"{engine}: the V0 engine's host work between steps, {HOST_STEP_S * 1e3:g} ms "
             f"per scheduler call (vllm-project/vllm#6854: 5-13 ms)"
             + (f" over {steps} steps" if steps > 1 else "")]
    if "chunked" in engine.lower():
        policy, budget = "chunked-prefill", V0_CHUNKED_BUDGET_TOKENS
        notes.append(f"V0 chunked prefill: decodes first, max_batched_tokens {budget}")
    else:
        text = f"{row.get('scenario', '')} {row.get('notes', '')}"
        found = _MAX_LEN.search(text)
        max_len = int(found.group(1)) if found else None
        policy, budget = "prefill-first", max(max_len or V0_MIN_BUDGET_TOKENS,
                                              V0_MIN_BUDGET_TOKENS)
        said = f"max_model_len {max_len}" if max_len else "max_model_len not stated, ≤ 2048 assumed"
        notes.append(f"V0 scheduler without chunked prefill: a step all prefill (first) or all "
                     f"decode, max_batched_tokens max(max_model_len, 2048) = {budget} ({said})")
    kv = "auto"
    if dtype == "fp8":
        kv = "bf16"
        notes.append("KV cache bf16: vLLM --kv-cache-dtype auto is the model's 16-bit dtype for "
                     "an FP8 checkpoint")
    return V0Defaults(policy, budget, HOST_STEP_S / steps, kv, tuple(notes))
