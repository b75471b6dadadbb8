"""What each pool of a heterogeneous option takes of the traffic and delivers flat out, in
closed form, and the split search's first guess from it.

The planner sizes two pools split by prompt size (`options.load` refuses other fleets).
There a pool's requests are set by their prompts, whatever the counts: its share is the
fraction of the workload's prompts its bound gives it, and its mix their mean lengths,
both estimated from `SAMPLE` requests drawn from the workload's length distributions (the
plan's probe seed, so a plan repeats). One replica of a pool then delivers
`sim.metrics.capacity`'s closed form on that mix, and the fleet flat out is the rate at
which the first of its pools saturates. No run measures it, as one does an aggregated
replica (`sim.montecarlo.capacity`): an overloaded run of the fleet shows only its slower
pool. The figures only start the search, which decides on runs; the plan reports them as
estimates.

The guess: each pool is a queue of its own for the first token, so each gets the
aggregated guess (`search.first_guess`: utilisation, and Erlang C against the TTFT target)
at its share of the rate. The SLO's percentile is fleet-wide, so a pool with share s may
miss the target for (1 − percentile) / s of its own requests: a pool of rarer requests
than the SLO's tail is guessed by utilisation alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.engine.pools import by_size
from sim.metrics.capacity import Mix, saturation
from sim.planning.options import Option
from sim.planning.search import Guess, first_guess
from sim.planning.split import Split
from sim.runner.build import fleet_sides
from sim.scenario.planning import Target
from sim.workload.lengths import sample_lengths

SAMPLE = 100_000  # requests drawn to estimate the pools' shares and mixes


@dataclass(frozen=True)
class PoolShares:
    names: tuple[str, str]
    shares: tuple[float, float]  # of the requests, by prompt length
    requests_per_s: tuple[float, float]  # one replica of each pool, flat out, on its mix
    prompt_tokens_mean: tuple[float, float]  # of the prompts each pool takes (0: none)

    def fleet_requests_per_s(self, counts: Split) -> float:
        """What the fleet delivers flat out: the rate at which its first pool saturates."""
        return min((n * rate / share for n, rate, share in
                    zip(counts, self.requests_per_s, self.shares, strict=True) if share > 0),
                   default=math.inf)

    def to_dict(self) -> dict[str, Any]:
        return {"method": "closed form per pool on its share of the prompts (an estimate; "
                          "runs decide)",
                "pools": {name: {"share": share, "requests_per_s": rate,
                                 "prompt_tokens_mean": prompt}
                          for name, share, rate, prompt in zip(
                              self.names, self.shares, self.requests_per_s,
                              self.prompt_tokens_mean, strict=True)}}


def pool_shares(option: Option, seed: int) -> PoolShares:
    """Each pool's share of the requests, mean prompt and one replica's saturation rate."""
    scenario = option.scenario
    names, specs, each = option.pool_names, scenario.deployment.pools, fleet_sides(scenario)
    w = scenario.workload
    assert names is not None and specs is not None and each is not None
    assert w.prompt_tokens is not None and w.output_tokens is not None
    # (a plan's scenario has an open arrival process, so lengths: options.load)
    prompt_rng, output_rng = (np.random.default_rng(s)
                              for s in np.random.SeedSequence(seed).spawn(2))
    prompts = np.maximum(sample_lengths(w.prompt_tokens, prompt_rng, SAMPLE).tokens,
                         w.shared_prefix_tokens + 1)
    outputs = sample_lengths(w.output_tokens, output_rng, SAMPLE).tokens
    pool_of = by_size([spec.max_prompt_tokens for spec in specs], prompts)
    shares, rates, means = [], [], []
    for p, side in enumerate(each):
        mine = pool_of == p
        mix = Mix.of(prompts[mine], outputs[mine])
        shares.append(float(mine.mean()))
        means.append(0.0 if mix is None else mix.prompt_tokens)
        if mix is None:
            rates.append(math.inf)  # no request to serve
            continue
        s = side.pool.scheduler
        full = saturation(side.step_model, mix, s.max_num_seqs, s.max_batched_tokens,
                          side.kv_capacity_tokens)
        rates.append(full.requests_per_s or math.inf)
    return PoolShares(names, (shares[0], shares[1]), (rates[0], rates[1]),
                      (means[0], means[1]))


def pools_guess(rate_per_s: float, capacity: PoolShares, target: Target, ttft_s: float,
                percentile: float, limit: int) -> tuple[Guess, Guess]:
    """The first guess of each pool's replicas (see the module docstring)."""
    tail = 1.0 - percentile / 100.0
    first, second = (first_guess(rate_per_s * share, rate, target.utilization, ttft_s,
                                 100.0 * (1.0 - min(1.0, tail / share)), limit)
                     if share > 0 else Guess(1, 1, 1)
                     for share, rate in zip(capacity.shares, capacity.requests_per_s,
                                            strict=True))
    return first, second
