"""What does prefix caching save on a real trace? The Mooncake conversation trace, replayed.

    python benchmarks/prefix_cache.py [--trace PATH] [--minutes M] [--replicas N] [--gpu G]
                                      [--offload-gib H]

Replays the first M minutes of the Mooncake (Kimi) FAST'25 conversation trace, whose requests
carry the hashes of their 512-token prompt blocks, on N Llama-3.1-8B replicas of GPU G
(default H100, as scenarios/longcontext-8b-h100-mooncake.yaml), once without a prefix cache
and then with one under each router, and prints the hit ratio, TTFT, TPOT and $/1M tokens.
Two references computed from the trace check the hit ratio: an unbounded cache (every block
ever seen is kept: an upper bound) and, per replica, the tests' plain LRU cache
(tests/prefix_reference.py) of that replica's KV capacity fed the requests the simulation
routed to it, one after another. The two per-replica ratios differ a little either way: the
simulated cache shares its memory with the running requests and caches a prompt when its
prefill completes (two requests that miss the same prefix together both compute it); the
reference counts a partial last block as a whole one and caches on arrival.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TRACE = REPO.parent / "shared" / "data" / "traces" / "mooncake_conversation_trace.jsonl"
BLOCK_TOKENS = 512  # the trace's hash_ids each stand for 512 prompt tokens
CASES = [("no cache", "least-loaded", False), ("cache", "random", True),
         ("cache", "least-loaded", True), ("cache", "least-pending-tokens", True),
         ("cache", "cache-aware", True)]


def scenario(trace: Path, minutes: float, replicas: int, gpu: str, router: str,
             cache: bool, offload_gib: float = 0.0) -> dict[str, Any]:
    deployment: dict[str, Any] = {"replicas": replicas, "router": router}
    if cache:
        deployment["prefix_cache"] = {"enabled": True, "cpu_offload_gib": offload_gib}
    return {
        "name": "mooncake-prefix-cache", "seed": 1, "duration_s": minutes * 60.0,
        "warmup_s": 60.0, "model": "llama-3.1-8b", "gpu": gpu, "profile": "auto",
        "deployment": deployment,
        "workload": {"trace": {"path": str(trace), "format": "mooncake",
                               "duration_s": minutes * 60.0}},
        "slo": {"ttft_s": 10.0, "tpot_s": 0.1, "percentile": 99},
        "cost": {"gpu_hour_usd": 2.5},
    }


def trace_rows(trace: Path, minutes: float) -> tuple[list[list[int]], list[list[int]]]:
    """The hash ids of the requests in the first `minutes`, in arrival order, and their
    blocks' tokens (512 each, the last one what is left of the prompt)."""
    import json

    rows, tokens = [], []
    with trace.open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row["timestamp"] >= minutes * 60_000:
                break
            ids, prompt = row["hash_ids"], int(row["input_length"])
            rows.append([int(h) for h in ids])
            tokens.append([min(BLOCK_TOKENS, prompt - BLOCK_TOKENS * j) for j in range(len(ids))])
    return rows, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", type=Path, default=TRACE, help="the Mooncake conversation "
                        "trace (default: the shared data folder's copy)")
    parser.add_argument("--minutes", type=float, default=20.0,
                        help="replay this many minutes of the trace (default 20)")
    parser.add_argument("--replicas", type=int, default=4, help="replicas (default 4)")
    parser.add_argument("--gpu", default="h100-sxm", help="a catalogue GPU (default h100-sxm)")
    parser.add_argument("--offload-gib", type=float, default=0.0,
                        help="host memory per replica for evicted prefixes (default 0; the "
                        "LRU reference then holds GPU and host capacity together)")
    args = parser.parse_args()
    if not args.trace.is_file():
        sys.exit(f"no trace at {args.trace}: pass --trace PATH")
    import sim

    sys.path.insert(0, str(REPO / "tests"))  # the tests' plain LRU reference, shared
    from prefix_reference import lru_hit_ratio

    rows, tokens = trace_rows(args.trace, args.minutes)
    print(f"{len(rows):,} requests in the first {args.minutes:g} min on {args.replicas} x "
          f"{args.gpu}; unbounded-cache hit ratio {lru_hit_ratio(rows, tokens, None):.1%}\n")
    print(f"{'case':<10} {'router':<22} {'hit':>6} {'LRU ref':>8} {'TTFT p50':>9} "
          f"{'TTFT p99':>9} {'TPOT p50':>9} {'$/1M in':>8} {'cached':>8} {'out':>7} "
          f"{'blended':>8}")
    for label, router, cache in CASES:
        result = sim.run(scenario(args.trace, args.minutes, args.replicas, args.gpu, router,
                                  cache, args.offload_gib), warn_window=False)
        d = result.to_dict()
        reference = "-"
        if cache:
            host = _host_tokens(result) if args.offload_gib else 0
            capacity = (d["fleet"]["kv_capacity_tokens_per_replica"] + host) // BLOCK_TOKENS
            routed = result.engine.replica
            hit = total = 0.0
            for r in range(args.replicas):
                mine = np.flatnonzero(routed == r).tolist()
                prompt = sum(sum(tokens[i]) for i in mine)
                hit += prompt * lru_hit_ratio([rows[i] for i in mine],
                                              [tokens[i] for i in mine], capacity)
                total += prompt
            reference = f"{hit / total:.1%}"
        prefix = d["prefix_cache"]
        price = d["cost"]["usd_per_million_tokens"]
        lat = d["latency_s"]
        hit_ratio = prefix.get("hit_ratio") if cache else None
        print(f"{label:<10} {router:<22} "
              f"{'-' if hit_ratio is None else format(hit_ratio, '.1%'):>6} {reference:>8} "
              f"{lat['ttft']['p50']:>9.2f} {lat['ttft']['p99']:>9.2f} "
              f"{lat['tpot']['p50'] * 1e3:>7.1f}ms {_usd(price.get('input')):>8} "
              f"{_usd(price.get('cached_input')):>8} {_usd(price.get('output')):>7} "
              f"{_usd(price.get('blended')):>8}")
    print("\n(hit: reused prompt tokens / prompt tokens in the metrics window; LRU ref: the "
          "tests' LRU reference, per replica over the whole replay; $/1M: the phase-time split)")


def _host_tokens(result: Any) -> int:
    """The host tier of the run, in KV tokens, as the engine was given it."""
    from sim.runner.build import engine_config

    return engine_config(result.scenario, 1, False, None).prefix_host_tokens


def _usd(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
