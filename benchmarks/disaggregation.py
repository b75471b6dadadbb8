"""When does disaggregation pay? The splits of scenarios/moe-gptoss-b200-disagg.yaml compared.

    python benchmarks/disaggregation.py [--scenario YAML] [--rates R1,R2,...] [--seed S]

Runs the scenario's fleet aggregated (3 and 5 replicas) and disaggregated (1 prefill : 2
decode, 2 : 3) at each arrival rate, and prints GPUs, TTFT and TPOT p99, whether the SLO
is met, and $/1M tokens (blended, and goodput: within the SLO).
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "scenarios" / "moe-gptoss-b200-disagg.yaml"
SPLITS: list[tuple[str, dict[str, Any]]] = [
    ("aggregated 3", {"replicas": 3}), ("aggregated 5", {"replicas": 5}),
    ("1P:2D", {"prefill": {"replicas": 1}, "decode": {"replicas": 2}}),
    ("2P:3D", {"prefill": {"replicas": 2}, "decode": {"replicas": 3}}),
]


def variant(base: dict[str, Any], split: dict[str, Any], rate: float) -> dict[str, Any]:
    data = copy.deepcopy(base)
    data["workload"]["arrival"]["rate_per_s"] = rate
    deployment = data["deployment"]
    link = deployment.pop("disaggregation")["kv_transfer"]
    if "replicas" in split:
        deployment["replicas"] = split["replicas"]
    else:
        deployment["disaggregation"] = {**split, "kv_transfer": link}
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=SCENARIO,
                        help="a disaggregated scenario (default: the bundled example)")
    parser.add_argument("--rates", default="6,10",
                        help="arrival rates to compare, comma-separated (default 6,10)")
    parser.add_argument("--seed", type=int, default=1, help="seed of every run (default 1)")
    args = parser.parse_args()
    import sim

    base = yaml.safe_load(args.scenario.read_text(encoding="utf-8"))
    slo = base["slo"]
    print(f"{base['name']}: SLO TTFT <= {slo['ttft_s']:g} s, TPOT <= {slo['tpot_s'] * 1e3:g} ms "
          f"at p{slo.get('percentile', 99):g}\n")
    print(f"{'rate':>5} {'fleet':<13} {'GPUs':>4} {'TTFT p99':>9} {'TPOT p99':>9} {'SLO':>4} "
          f"{'within':>7} {'$/1M':>7} {'goodput':>8}")
    for rate in (float(r) for r in args.rates.split(",")):
        for label, split in SPLITS:
            d = sim.run(variant(base, split, rate), seed=args.seed, warn_window=False).to_dict()
            lat, price = d["latency_s"], d["cost"]["usd_per_million_tokens"]
            print(f"{rate:>5g} {label:<13} {d['fleet']['gpus']:>4g} "
                  f"{lat['ttft']['p99']:>8.2f}s {lat['tpot']['p99'] * 1e3:>7.1f}ms "
                  f"{'met' if d['slo']['met'] else 'miss':>4} {d['slo']['attainment']:>7.1%} "
                  f"{price['blended']:>7.4f} {price['goodput']:>8.4f}")


if __name__ == "__main__":
    main()
