"""A static fleet sized for the daily peak against autoscaled fleets, on the same diurnal day.

    python benchmarks/autoscaling_vs_static.py [--mean-rate 60] [--seed 1]

The default chat workload (Llama-3.1-8B on H100, scenarios/chat-8b-h100.yaml) over 24 hours of
diurnal demand (peak 3 × the trough at 15:00, mean --mean-rate req/s). The static fleet is the
fewest replicas `tokenfactory plan` finds for the day's peak (P(SLO met) ≥ 95% over 4 draws);
the autoscaled fleets start from it, may go from 1 to that count + 2, and get replicas after a
lognormal provisioning delay (mean 180 s), on one of two policies: target-utilization 0.4
(about the share of a replica's sequence slots the static fleet has in use at the peak) and
queue 2 (more replicas while over 2 requests per replica wait). A fourth fleet is the first
autoscaled one where a request for a replica gets capacity only 70% of the time (asked again
60 s later). All see the same requests. The cost model charges what was provisioned: the
static fleet all day, the autoscaled ones the replica-time they held. Prints GPU-hours, cost
per 1M tokens, SLO attainment, p99 latency, scale-ups/downs and failed requests for capacity.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DAY_S = 86_400.0
PEAK_TO_TROUGH, PEAK_HOUR = 3.0, 15.0
DELAY = {"dist": "lognormal", "mean": 180.0, "sigma": 0.3}
SCARCE = {"success_probability": 0.7, "retry_s": 60.0}


def day_scenario(mean_rate: float, seed: int) -> dict[str, Any]:
    from sim.scenario import read_mapping

    raw = read_mapping(REPO / "scenarios" / "chat-8b-h100.yaml")
    raw.update(name="chat-8b-day", seed=seed, duration_s=DAY_S, warmup_s=600.0)
    raw["workload"]["arrival"] = {"process": "poisson", "rate_per_s": mean_rate,
                                  "profile": "diurnal", "peak_to_trough": PEAK_TO_TROUGH,
                                  "peak_hour": PEAK_HOUR, "start_hour": 0.0}
    return raw


def static_replicas(raw: dict[str, Any], peak_rate: float) -> int:
    """The plan's answer for one period at the day's peak (runs of 300 s)."""
    from sim.planning.planner import plan
    from sim.planning.runs import InlineExecutor

    data = copy.deepcopy(raw)
    data["workload"]["arrival"] = {"process": "poisson", "rate_per_s": peak_rate}
    data["plan"] = {"periods": [{"name": "peak", "peak_rate_per_s": peak_rate}],
                    "options": [{"name": "static"}], "target": {"confidence": 0.95, "draws": 4},
                    "run": {"duration_s": 300.0, "warmup_s": 30.0}}
    document = plan(data, REPO, InlineExecutor())
    return document["periods"][0]["options"][0]["replicas"]


def fleets(raw: dict[str, Any], replicas: int) -> dict[str, dict[str, Any]]:
    static = copy.deepcopy(raw)
    static["deployment"]["replicas"] = replicas
    out = {"static": static}
    for name, policy, target, provisioning in (
            ("autoscaled, target-utilization 0.4", "target-utilization", 0.4, {}),
            ("autoscaled, queue 2", "queue", 2, {}),
            ("target-utilization 0.4, 70% capacity", "target-utilization", 0.4, SCARCE)):
        scaled = copy.deepcopy(static)
        scaled["deployment"]["autoscaling"] = {
            "policy": policy, "target": target, "min_replicas": 1, "max_replicas": replicas + 2,
            "provisioning_delay_s": DELAY, "interval_s": 60.0, "provisioning": provisioning}
        out[name] = scaled
    return out


def main() -> None:
    import sim

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mean-rate", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    raw = day_scenario(args.mean_rate, args.seed)
    peak = args.mean_rate * 2 * PEAK_TO_TROUGH / (PEAK_TO_TROUGH + 1)
    replicas = static_replicas(raw, peak)
    print(f"diurnal day: mean {args.mean_rate:g} req/s, peak {peak:g} req/s at "
          f"{PEAK_HOUR:g}:00, trough {peak / PEAK_TO_TROUGH:g} req/s; static fleet sized by "
          f"the planner for the peak: {replicas} replicas; seed {args.seed}")
    rows = []
    for name, data in fleets(raw, replicas).items():
        started = time.perf_counter()
        d = sim.run(data).to_dict()
        wall_s = time.perf_counter() - started
        a, cost, slo = d["availability"], d["cost"], d["slo"]
        rows.append([name, f"{cost['gpu_hours']:.1f}", f"{a['replicas_billed_mean']:.2f}",
                     f"${cost['usd_per_million_tokens']['blended']:.4f}",
                     f"{slo['attainment']:.3%}", "met" if slo["met"] else "missed",
                     f"{d['latency_s']['ttft']['p99'] * 1e3:,.0f}",
                     f"{d['latency_s']['tpot']['p99'] * 1e3:,.1f}",
                     f"{a['scale_ups']}/{a['scale_downs']}", f"{a['provisioning_failures']}",
                     f"{wall_s:.1f}"])
    titles = ["fleet", "GPU-hours", "mean GPUs", "$/1M tokens", "SLO attained", "p99 SLO",
              "TTFT p99 ms", "TPOT p99 ms", "ups/downs", "failed asks", "wall s"]
    widths = [max(len(t), *(len(r[i]) for r in rows)) for i, t in enumerate(titles)]
    print(f"window: {DAY_S - 600:g} s after 600 s warm-up; GPU-hours and cost over the window")
    for row in [titles, *rows]:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))


if __name__ == "__main__":
    main()
