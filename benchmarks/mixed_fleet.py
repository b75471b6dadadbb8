"""When does a heterogeneous fleet pay? Its pools sized against one-GPU-type fleets.

    python benchmarks/mixed_fleet.py [--scenario YAML] [--max-replicas N] [--seed S]

For a scenario with two `deployment.pools` (default: scenarios/mixed-8b-h100-h200.yaml),
finds the cheapest fleet meeting the scenario's SLO three ways: each pool's GPU alone
(every request on one fleet, under the least-loaded and the least-pending-tokens router,
at that pool's price), and the pools as the scenario splits them (the count of each pool
searched, up to --max-replicas). Prints each fleet's GPUs, $/hour, TTFT and TPOT p99, $/1M
tokens, and for the mix each pool's own TTFT p99: a fleet-wide p99 can hide a pool whose
requests are fewer than 1 in 100.
"""

from __future__ import annotations

import argparse
import copy
import warnings
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "scenarios" / "mixed-8b-h100-h200.yaml"
ROUTERS = ("least-loaded", "least-pending-tokens")


def one_type(base: dict[str, Any], pool: dict[str, Any], replicas: int,
             router: str) -> dict[str, Any]:
    """Every request on `replicas` of `pool`'s GPU at its price."""
    data = copy.deepcopy(base)
    deployment = data["deployment"]
    deployment.pop("pools")
    deployment.pop("pool_split", None)
    deployment.update(replicas=replicas, router=router)
    data["gpu"] = pool.get("gpu", base["gpu"])
    if "gpu_hour_usd" in pool:
        data["cost"] = {"gpu_hour_usd": pool["gpu_hour_usd"]}
    return data


def mixed(base: dict[str, Any], counts: tuple[int, int]) -> dict[str, Any]:
    data = copy.deepcopy(base)
    for pool, n in zip(data["deployment"]["pools"], counts, strict=True):
        pool["replicas"] = n
    return data


def cheapest(candidates: list[tuple[Any, dict[str, Any]]], seed: int,
             ) -> tuple[Any, dict[str, Any]] | None:
    """The first candidate (in order of cost) whose run meets the SLO."""
    import sim

    for label, data in candidates:
        d = sim.run(data, seed=seed, warn_window=False).to_dict()
        if d["slo"]["met"]:
            return label, d
    return None


def line(label: str, d: dict[str, Any]) -> str:
    lat, cost = d["latency_s"], d["cost"]
    return (f"{label:<34} {d['fleet']['gpus']:>4g} {cost['fleet_usd_per_hour']:>8.2f} "
            f"{lat['ttft']['p99'] * 1e3:>9.0f} {lat['tpot']['p99'] * 1e3:>9.1f} "
            f"{cost['usd_per_million_tokens']['blended']:>8.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=SCENARIO,
                        help="a scenario with two deployment.pools (default: the example)")
    parser.add_argument("--max-replicas", type=int, default=8,
                        help="the most replicas a fleet or a pool is given (default 8)")
    parser.add_argument("--seed", type=int, default=1, help="seed of every run (default 1)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # short runs of overloaded fleets warn by design
    base = yaml.safe_load(args.scenario.read_text(encoding="utf-8"))
    pools = base["deployment"]["pools"]
    assert len(pools) == 2, "this comparison takes two pools"
    slo = base["slo"]
    print(f"{base['name']}: SLO TTFT <= {slo['ttft_s']:g} s, TPOT <= {slo['tpot_s'] * 1e3:g} ms "
          f"at p{slo.get('percentile', 99):g}\n")
    print(f"{'cheapest fleet meeting the SLO':<34} {'GPUs':>4} {'$/hour':>8} "
          f"{'TTFT p99':>9} {'TPOT p99':>9} {'$/1M':>8}")
    n = args.max_replicas
    for pool in pools:
        gpu = pool.get("gpu", base["gpu"])
        for router in ROUTERS:
            found = cheapest([(k, one_type(base, pool, k, router)) for k in range(1, n + 1)],
                             args.seed)
            label = f"{gpu}, {router}"
            print(line(f"{label} × {found[0]}", found[1]) if found else f"{label}: none up to {n}")
    prices = [p.get("gpu_hour_usd", base["cost"]["gpu_hour_usd"]) for p in pools]
    grid = sorted(((a, b) for a in range(1, n + 1) for b in range(1, n + 1)),
                  key=lambda c: (c[0] * prices[0] + c[1] * prices[1], c))
    found = cheapest([(c, mixed(base, c)) for c in grid], args.seed)
    if found is None:
        print(f"pools: none up to {n} each")
        return
    counts, d = found
    names = " + ".join(f"{k} {p['name']}" for k, p in zip(counts, pools, strict=True))
    print(line(f"pools: {names}", d))
    for p in d["pools"]:
        print(f"  pool {p['name']:<14} {p['requests_measured']:>6,} requests   TTFT p99 "
              f"{p['ttft_p99_s'] * 1e3:,.0f} ms   TPOT p99 {p['tpot_p99_s'] * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
