"""What one replica of each pool of a disaggregated option delivers flat out, in closed form,
and the split search's first guess from it.

No overloaded run measures it, as one does an aggregated replica (`sim.montecarlo.capacity`):
the two pools saturate separately, and an overloaded fleet shows only the slower one. The
closed form of `sim.metrics.capacity` on each pool's step model and KV cache does: a prefill
replica prefills the mix's mean prompt in steps of its token budget (its requests want one
token each), a decode replica decodes the mix's mean output at its saturated batch. The
figures only start the search, which decides on runs; the plan reports them as estimates.

The guess: the prefill pool is where requests queue for their first token, so it gets the
aggregated guess (`search.first_guess`: utilisation, and Erlang C against the TTFT target);
the decode pool only the utilisation part, as its queue is not timed against a target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sim.metrics.capacity import Mix, saturation
from sim.planning.options import Option
from sim.planning.search import Guess, first_guess
from sim.planning.split import Split
from sim.runner.build import sides
from sim.scenario.planning import Target


@dataclass(frozen=True)
class PoolCapacity:
    prefill_requests_per_s: float  # one prefill replica, flat out
    decode_requests_per_s: float  # one decode replica, flat out
    prompt_tokens_mean: float
    output_tokens_mean: float

    def fleet_requests_per_s(self, split: Split) -> float:
        """What a split delivers flat out: the slower of its pools."""
        return min(split[0] * self.prefill_requests_per_s,
                   split[1] * self.decode_requests_per_s)

    def to_dict(self) -> dict[str, Any]:
        return {"method": "closed form per pool (an estimate; runs decide)",
                "prefill": {"requests_per_s": self.prefill_requests_per_s,
                            "input_tokens_per_s": self.prefill_requests_per_s
                            * self.prompt_tokens_mean},
                "decode": {"requests_per_s": self.decode_requests_per_s,
                           "output_tokens_per_s": self.decode_requests_per_s
                           * self.output_tokens_mean}}


def pool_capacity(option: Option) -> PoolCapacity:
    """Both pools' saturation throughput per replica at the workload's mean lengths."""
    scenario = option.scenario
    both = sides(scenario)
    w = scenario.workload
    assert both is not None and w.prompt_tokens is not None and w.output_tokens is not None
    # (a plan's scenario is disaggregated here and has an open arrival process: options.load)
    prompt, output = w.prompt_tokens.mean_tokens, w.output_tokens.mean_tokens
    pairs = prompt * (prompt + 1.0) / 2.0
    rates = []
    for side, mix in ((both.prefill, Mix(prompt, 1.0, pairs)),
                      (both.decode, Mix(prompt, output, pairs))):
        s = side.pool.scheduler
        full = saturation(side.step_model, mix, s.max_num_seqs, s.max_batched_tokens,
                          side.kv_capacity_tokens)
        busy_s = (prompt * full.prefill_s_per_token if side is both.prefill
                  else max(output - 1.0, 1.0) * full.decode_s_per_token)
        rates.append(1.0 / busy_s if busy_s > 0 else math.inf)
    return PoolCapacity(rates[0], rates[1], prompt, output)


def split_guess(rate_per_s: float, capacity: PoolCapacity, target: Target, ttft_s: float,
                percentile: float, limit: int) -> tuple[Guess, Guess]:
    """The first guess of each pool's replicas (see the module docstring)."""
    prefill = first_guess(rate_per_s, capacity.prefill_requests_per_s, target.utilization,
                          ttft_s, percentile, limit)
    by_use = max(1, math.ceil(rate_per_s / (capacity.decode_requests_per_s
                                            * target.utilization)))
    by_use = min(by_use, limit)
    return prefill, Guess(by_use, by_use, by_use)
