"""Workloads: what arrives and when, as flat numpy arrays indexed by request id."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.scenario.workload import WorkloadSpec
from sim.workload.arrivals import arrival_times
from sim.workload.lengths import mean_tokens, sample_lengths
from sim.workload.rate import is_time_varying, nhpp_arrival_times
from sim.workload.replay import replay

__all__ = ["Workload", "generate", "mean_tokens"]


@dataclass(frozen=True)
class Workload:
    """Request i arrives at arrival_s[i] with prompt_tokens[i] and wants output_tokens[i]."""

    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    capped: dict[str, int]
    floored: dict[str, int]

    def __len__(self) -> int:
        return len(self.arrival_s)


def generate(spec: WorkloadSpec, duration_s: float, seeds: dict[str, np.random.SeedSequence]
             ) -> Workload:
    """Draw arrivals and lengths, each from its own seed stream so one does not shift another
    (or replay a trace, thinned or replicated with the arrivals stream)."""
    if spec.trace is not None:
        trace = replay(spec.trace, duration_s, np.random.default_rng(seeds["arrivals"]))
        none = {"prompt_tokens": 0, "output_tokens": 0}
        return Workload(trace.arrival_s, trace.prompt_tokens, trace.output_tokens, none,
                        dict(none))
    # WorkloadSpec's validator: without a trace, arrival and both lengths are given.
    assert spec.arrival and spec.prompt_tokens and spec.output_tokens
    rng = np.random.default_rng(seeds["arrivals"])
    if is_time_varying(spec.arrival):
        arrival_s = nhpp_arrival_times(spec.arrival, duration_s, rng)
    else:
        arrival_s = arrival_times(spec.arrival, duration_s, rng)
    n = len(arrival_s)
    prompt = sample_lengths(spec.prompt_tokens, np.random.default_rng(seeds["prompt_tokens"]), n)
    output = sample_lengths(spec.output_tokens, np.random.default_rng(seeds["output_tokens"]), n)
    return Workload(
        arrival_s=arrival_s,
        prompt_tokens=prompt.tokens,
        output_tokens=output.tokens,
        capped={"prompt_tokens": prompt.capped, "output_tokens": output.capped},
        floored={"prompt_tokens": prompt.floored, "output_tokens": output.floored},
    )
