"""Error summaries: median absolute error and the worst row, overall and by group.

The median, not the mean, is the headline: published tables mix engine generations and
configurations the simulator does not model (speculative decoding, kernel choices), and one
such row should not hide how the rest agree. The worst row is reported next to it so that it
is not hidden either. Groups: the profile source the simulation used, the engine family, the
GPU as published, the model simulated (dense and MoE models differ most), and the issue's
target set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from sim.validation.compare import Comparison

# The target: median |error| ≤ TARGET_PCT on these engines, GPUs and model classes.
TARGET_PCT = 15.0
TARGET_ENGINES = ("TensorRT-LLM", "vLLM")
TARGET_GPUS = ("H100", "H200", "A100-80GB")
TARGET_MODELS = ("llama-3.1-8b", "llama-3.1-70b", "llama-2-7b", "llama-2-70b")
TARGET_LABEL = "TensorRT-LLM/vLLM · H100/H200/A100 · Llama 7-8B/70B"


@dataclass(frozen=True)
class GroupError:
    by: str  # all | target | profile | engine | gpu | model
    group: str
    count: int
    median_abs_pct: float
    worst_id: str
    worst_pct: float  # signed error of the worst row


def in_target(c: Comparison) -> bool:
    return c.engine in TARGET_ENGINES and c.gpu in TARGET_GPUS and c.model in TARGET_MODELS


GROUPINGS: tuple[tuple[str, Callable[[Comparison], str | None]], ...] = (
    ("all", lambda c: "all"),
    ("target", lambda c: TARGET_LABEL if in_target(c) else None),
    ("profile", lambda c: c.profile_source),
    ("engine", lambda c: c.engine),
    ("gpu", lambda c: c.gpu),
    ("model", lambda c: c.model or None),
)


def metric_family(metric: str) -> str:
    """output_tokens_per_s | ttft | tpot: latency statistics are summarised together."""
    return metric.split("_ms")[0] if "_ms" in metric else metric


def error_groups(comparisons: Iterable[Comparison], family: str,
                 kinds: tuple[str, ...] = ("row",)) -> list[GroupError]:
    """Median |error| and worst row per group, for the compared entries of one metric family."""
    chosen = [c for c in comparisons if c.compared and c.kind in kinds
              and metric_family(c.metric) == family and c.error_pct is not None]
    out = []
    for by, key in GROUPINGS:
        groups: dict[str, list[Comparison]] = {}
        for c in chosen:
            name = key(c)
            if name is not None:
                groups.setdefault(name, []).append(c)
        for name in sorted(groups):
            members = groups[name]
            errors = np.array([c.error_pct for c in members])
            index = int(np.argmax(np.abs(errors)))
            out.append(GroupError(by, name, len(members), float(np.median(np.abs(errors))),
                                  members[index].id, float(errors[index])))
    return out
