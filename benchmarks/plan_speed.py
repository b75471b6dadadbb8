"""How long does a year's plan take, how many simulations does the search need, and is the
answer stable under another seed?

    python benchmarks/plan_speed.py [--workers 2] [--seeds 1 2] [--scenario PATH]

Plans scenarios/chat-8b-plan.yaml (12 monthly periods × 3 options, 8 draws per candidate
and up to 64 where the verdict is close, runs shortened to 300 s by the plan's `run:`
block) once per seed on local worker processes, and reports the wall time of each, the runs
the searches made, how many verdicts needed more than the first draws, and how far each
period's replica count moves between the first seed and each other one. Targets: under
10 minutes on 2 workers; no count moves by more than one replica.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TARGET_WALL_S = 600.0
TARGET_MAX_SHIFT = 1


def plan_once(scenario: Path, seed: int, workers: int) -> tuple[dict[str, Any], float]:
    from sim.montecarlo.execute import open_executor
    from sim.planning.planner import plan
    from sim.scenario import read_mapping

    raw = read_mapping(scenario)
    started = time.perf_counter()
    with open_executor(workers) as executor:
        document = plan(raw, scenario.parent, executor, seed=seed)
    return document, time.perf_counter() - started


def replicas(document: dict[str, Any]) -> dict[tuple[str, str], int | None]:
    return {(p["period"], e["option"]): e["replicas"]
            for p in document["periods"] for e in p["options"]}


def describe(document: dict[str, Any], wall_s: float, workers: int) -> list[str]:
    entries = [e for p in document["periods"] for e in p["options"]]
    runs = [e["search"]["simulations"] for e in entries]
    tried = [len(e["search"]["fleets_tried"]) for e in entries]
    verdicts = [v for e in entries for v in e["search"].get("verdicts", [])]
    first = document["target"]["draws"]
    s = document["search"]
    return [
        f"seed {document['seed']}: {wall_s:.1f} s wall on {workers} workers; "
        f"{len(document['periods'])} periods × {len(document['options'])} options = "
        f"{len(entries)} searches",
        f"  runs: {s['simulations']} to search + {s['average_load_simulations']} at the "
        f"average load + {s['capacity_probes']} capacity probes (a few overloaded runs each)",
        f"  per search: {statistics.mean(runs):.1f} runs on average (max {max(runs)}), "
        f"{statistics.mean(tried):.2f} fleet sizes tried (max {max(tried)}), "
        f"{first} draws per fleet size at the first verdict",
        f"  verdicts: {len(verdicts)}, {sum(v['draws'] > first for v in verdicts)} needed more "
        f"than {first} draws (at most {document['target'].get('max_draws', first)}); "
        f"{sum(v['draws'] < first for v in verdicts)} rejected in fewer",
        f"  run length: {document['run']['duration_s']:g} s simulated "
        f"({document['run']['warmup_s']:g} s warm-up)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--scenario", type=Path, default=REPO / "scenarios" / "chat-8b-plan.yaml")
    args = parser.parse_args()

    results = []
    for seed in args.seeds:
        document, wall_s = plan_once(args.scenario, seed, args.workers)
        results.append((document, wall_s))
        print("\n".join(describe(document, wall_s, args.workers)))
    first = replicas(results[0][0])
    verdicts = [(f"plan wall time ≤ {TARGET_WALL_S:g} s (seed {args.seeds[0]})",
                 f"{results[0][1]:.1f} s", results[0][1] <= TARGET_WALL_S)]
    for document, _ in results[1:]:
        other = replicas(document)
        shifts = [abs(first[k] - other[k]) for k in first
                  if first[k] is not None and other[k] is not None]
        moved = sum(1 for s in shifts if s)
        same_pick = sum(a["recommended"] == b["recommended"]
                        for a, b in zip(results[0][0]["periods"], document["periods"],
                                        strict=True))
        print(f"seed {args.seeds[0]} vs {document['seed']}: {moved} of {len(shifts)} replica "
              f"counts differ, by at most {max(shifts, default=0)}; the same option is "
              f"recommended in {same_pick} of {len(document['periods'])} periods")
        verdicts.append((f"replica counts move ≤ {TARGET_MAX_SHIFT} (seed {document['seed']})",
                         str(max(shifts, default=0)), max(shifts, default=0) <= TARGET_MAX_SHIFT))
    print()
    width = max(len(v[0]) for v in verdicts)
    for name, value, ok in verdicts:
        print(f"{name:<{width}}  {value:>10}  {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
