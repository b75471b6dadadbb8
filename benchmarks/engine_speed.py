"""How fast is the engine? Simulated requests per wall-second, events per request, peak memory.

    python benchmarks/engine_speed.py [--requests N] [--exact-requests M] [--seed S]
                                      [--shared-prefix-tokens P] [--prefill-replicas D]

A 16-replica Llama-3.1-8B / H100 chat fleet at 80% load, drained until every request is done.
With P > 0 every prompt starts with the same P tokens and the replicas cache that prefix
(`deployment.prefix_cache`), at the same arrival rate (the capacity probe runs without it).
With D > 0 the fleet is disaggregated: D of the 16 replicas prefill, the rest decode, over a
50 GB/s link each (`deployment.disaggregation`), again at the aggregated fleet's rate.
The small runs (exact, then event-skipping on the same workload) go first and the big one last,
so the process's peak memory (ru_maxrss only grows) at the end is the big run's peak.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

STARTED_S = time.perf_counter()  # before numpy/simpy/pydantic load: process time includes them

REPLICAS = 16
LOAD_FRACTION = 0.8
PROBE_RATE_PER_S = 200.0  # far above one replica's capacity, so the probe runs saturated
PROBE_WARMUP_S, PROBE_DURATION_S = 20.0, 80.0  # 60 s window after the queue has built up
TARGET_REQUESTS_PER_WALL_S = 100_000
TARGET_PEAK_MIB = 1e9 / 2**20  # 1 GB


def scenario_mapping(replicas: int, rate_per_s: float, duration_s: float, seed: int,
                     **extra: Any) -> dict[str, Any]:
    """The benchmark fleet; built here rather than read from scenarios/ so it cannot drift."""
    return {
        "name": "engine-speed", "seed": seed, "duration_s": duration_s, "warmup_s": 0.0,
        "model": "llama-3.1-8b", "gpu": "h100-sxm", "profile": "auto",
        "deployment": {
            "replicas": replicas, "tensor_parallel": 1, "router": "least-loaded",
            "scheduler": {"policy": "chunked-prefill", "max_num_seqs": 256,
                          "max_batched_tokens": 8192},
        },
        "workload": {
            "arrival": {"process": "poisson", "rate_per_s": rate_per_s},
            "prompt_tokens": {"dist": "lognormal", "mean": 1000, "sigma": 0.8},
            "output_tokens": {"dist": "lognormal", "mean": 250, "sigma": 0.7},
        },
        "slo": {"ttft_s": 2.0, "tpot_s": 0.05},
        "cost": {"gpu_hour_usd": 2.5},
        **extra,
    }


def replica_capacity_per_s(seed: int) -> float:
    """Saturation throughput of one replica: completions per second while overloaded."""
    import sim

    mapping = scenario_mapping(1, PROBE_RATE_PER_S, PROBE_DURATION_S, seed,
                               warmup_s=PROBE_WARMUP_S, drain_s=0.0)
    return sim.run(sim.load_scenario(mapping)).to_dict()["throughput"]["requests_per_s"]


@dataclass(frozen=True)
class Figures:
    label: str
    requests: int
    run_wall_s: float  # the whole sim.run: workload, engine, metrics
    engine_wall_s: float  # the engine alone, as the result records it
    events: int
    peak_mib: float  # process peak so far (ru_maxrss), not this run's alone

    @property
    def requests_per_wall_s(self) -> float:
        return self.requests / self.run_wall_s


def measure(label: str, rate_per_s: float, requests: int, seed: int, exact: bool,
            shared_prefix_tokens: int, prefill_replicas: int) -> tuple[Figures, np.ndarray]:
    import sim

    duration_s = requests / rate_per_s  # Poisson: about `requests` arrive
    mapping = scenario_mapping(REPLICAS, rate_per_s, duration_s, seed)
    if shared_prefix_tokens:
        mapping["deployment"]["prefix_cache"] = {"enabled": True}
        mapping["workload"]["shared_prefix_tokens"] = shared_prefix_tokens
    if prefill_replicas:
        mapping["deployment"]["disaggregation"] = {
            "prefill": {"replicas": prefill_replicas},
            "decode": {"replicas": REPLICAS - prefill_replicas},
            "kv_transfer": {"bandwidth_gb_s": 50.0, "latency_s": 0.0005}}
    scenario = sim.load_scenario(mapping)
    started_s = time.perf_counter()
    result = sim.run(scenario, exact=exact)
    run_wall_s = time.perf_counter() - started_s
    data = result.to_dict()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    figures = Figures(label, data["requests"]["arrived"], run_wall_s, data["sim"]["wall_s"],
                      data["sim"]["events"], peak_mib)
    return figures, result.engine.finish_s


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type, so a bad count or seed is one line of usage, not a traceback."""

    def parse(text: str) -> int:
        if not text.isdigit() or int(text) < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= {minimum}")
        return int(text)

    return parse


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Measure the engine's speed on a 16-replica Llama-3.1-8B / H100 fleet at "
        f"{LOAD_FRACTION:.0%} load: event-skipping on N requests, exact and event-skipping on M, "
        "with a check that both modes give the same finish times.")
    parser.add_argument("--requests", type=at_least(1), default=1_000_000, metavar="N",
                        help="requests (about) in the big event-skipping run (default 1,000,000)")
    parser.add_argument("--exact-requests", type=at_least(1), default=100_000, metavar="M",
                        help="requests (about) in the exact-vs-skipping runs (default 100,000)")
    parser.add_argument("--seed", type=at_least(0), default=1, metavar="S",
                        help="seed of every run, the capacity probe included (default 1)")
    parser.add_argument("--shared-prefix-tokens", type=at_least(0), default=0, metavar="P",
                        help="a system prompt of P tokens shared by every request, with prefix "
                        "caching on (default 0: no prefix cache)")
    parser.add_argument("--prefill-replicas", type=at_least(0), default=0, metavar="D",
                        help=f"disaggregate: D of the {REPLICAS} replicas prefill, the rest "
                        "decode (default 0: aggregated)")
    args = parser.parse_args()

    import numpy as np

    capacity_per_s = replica_capacity_per_s(args.seed)
    rate_per_s = LOAD_FRACTION * REPLICAS * capacity_per_s
    print(f"capacity: 1 replica run overloaded ({PROBE_RATE_PER_S:g} req/s for "
          f"{PROBE_DURATION_S:g} s, drain_s 0) completes {capacity_per_s:.2f} req/s in its "
          f"{PROBE_DURATION_S - PROBE_WARMUP_S:g} s window after {PROBE_WARMUP_S:g} s warm-up")
    print(f"fleet rate: {LOAD_FRACTION} x {REPLICAS} x {capacity_per_s:.2f} = "
          f"{rate_per_s:.1f} req/s; drained until every request finishes\n")

    if args.prefill_replicas >= REPLICAS:
        parser.error(f"--prefill-replicas must leave decode replicas: below {REPLICAS}")
    m, seed = args.exact_requests, args.seed
    options = (args.shared_prefix_tokens, args.prefill_replicas)
    exact, exact_finish_s = measure("exact", rate_per_s, m, seed, True, *options)
    small, small_finish_s = measure("event-skipping", rate_per_s, m, seed, False, *options)
    same_nan = bool(np.array_equal(np.isnan(exact_finish_s), np.isnan(small_finish_s)))
    max_diff_s = float(np.nanmax(np.abs(exact_finish_s - small_finish_s), initial=0.0))
    del exact_finish_s, small_finish_s
    big, _ = measure("event-skipping", rate_per_s, args.requests, seed, False, *options)

    print(f"{'mode':<15} {'requests':>9} {'run s':>8} {'engine s':>9} {'sim req/s':>10} "
          f"{'events/req':>10} {'peak MiB':>9}")
    for f in (exact, small, big):
        print(f"{f.label:<15} {f.requests:>9,} {f.run_wall_s:>8.2f} {f.engine_wall_s:>9.2f} "
              f"{f.requests_per_wall_s:>10,.0f} {f.events / f.requests:>10.2f} "
              f"{f.peak_mib:>9.0f}")
    print("(run s: the whole sim.run; engine s: the engine alone; sim req/s: requests / run s; "
          "peak MiB: process peak so far)")
    print(f"exact vs event-skipping finish_s: max |difference| {max_diff_s:.3g} s, "
          f"same unfinished requests: {'yes' if same_nan else 'NO'}; "
          f"event-skipping is {exact.run_wall_s / small.run_wall_s:.1f}x faster on "
          f"{small.requests:,} requests")
    print(f"process wall time from script start: {time.perf_counter() - STARTED_S:.1f} s\n")

    print(f"{'target':<46} {'measured':>10}  verdict")
    for name, measured, ok in (
        ("event-skipping sim req/s >= 100,000 (big run)", big.requests_per_wall_s,
         big.requests_per_wall_s >= TARGET_REQUESTS_PER_WALL_S),
        ("process peak MiB <= 1 GB (953.7 MiB)", big.peak_mib, big.peak_mib <= TARGET_PEAK_MIB),
    ):
        print(f"{name:<46} {measured:>10,.0f}  {'PASS' if ok else 'BELOW'}")


if __name__ == "__main__":
    main()
