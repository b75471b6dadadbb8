"""How faithful is a fitted workload? Latency of replaying a trace vs simulating its fit.

    python benchmarks/trace_fidelity.py [--trace PATH] [--scenario YAML] [--seeds N]

Replays the trace on the scenario's fleet (default: the Azure LLM inference 2023
conversation trace on scenarios/conversation-8b-h100-azure.yaml's fleet, over the trace's
whole span), then simulates workloads fitted to it by `trace fit` (the automatic choice, and
empirical-CDF lengths) with N seeds, and prints TTFT and TPOT p50 and p99 with each fit's
error against the replay (the mean over seeds, and the range). Two more blocks say where
the error comes from. "lengths shuffled" replays the trace with its lengths shuffled among
its requests (arrival times kept): what is lost there is what the order of the lengths in
time is worth, which no fit that draws lengths independently of time can reproduce.
"lengths by phase" keeps the fitted arrivals but draws each request's lengths from the
trace's requests of the same PHASE_S window: what a fit whose length model changed every
PHASE_S seconds could reach.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
TRACE = REPO.parent / "shared" / "data" / "traces" / "AzureLLMInferenceTrace_conv.csv"
SCENARIO = REPO / "scenarios" / "conversation-8b-h100-azure.yaml"
METRICS = [("ttft", "p50"), ("ttft", "p99"), ("tpot", "p50"), ("tpot", "p99")]
PHASE_S = 300.0
LABEL = 44


def latencies(scenario: dict[str, Any], seed: int) -> dict[tuple[str, str], float]:
    import sim

    data = sim.run(scenario, seed=seed).to_dict()
    assert data["requests"]["unfinished"] == 0
    return {(m, q): data["latency_s"][m][q] for m, q in METRICS}


def write_trace(path: Path, arrival_s: np.ndarray, prompt: np.ndarray,
                output: np.ndarray) -> Path:
    """A generic-CSV trace (times printed exactly: repr round-trips a float)."""
    rows = zip(arrival_s.tolist(), prompt.tolist(), output.tolist(), strict=True)
    path.write_text("timestamp,prompt_tokens,output_tokens\n"
                    + "".join(f"{t!r},{p},{o}\n" for t, p, o in rows), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", type=Path, default=TRACE)
    parser.add_argument("--scenario", type=Path, default=SCENARIO,
                        help="the fleet, SLO and warm-up come from here")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()

    from sim.scenario.traces import read_trace
    from sim.scenario.workload import WorkloadSpec
    from sim.workload.fit import fit_workload
    from sim.workload.rate import nhpp_arrival_times

    trace = read_trace(args.trace)
    base = yaml.safe_load(args.scenario.read_text(encoding="utf-8"))
    base["duration_s"] = float(trace.arrival_s[-1]) + 1e-6
    seeds = range(1, args.seeds + 1)

    def with_workload(workload: dict[str, Any]) -> dict[str, Any]:
        return {**base, "workload": workload}

    replay = latencies(with_workload({"trace": {"path": str(args.trace)}}), seed=1)
    d = base["deployment"]
    print(f"trace    {args.trace.name}: {len(trace.arrival_s):,} requests over "
          f"{trace.arrival_s[-1]:,.1f} s")
    print(f"fleet    {d['replicas']} × {base['model']} on {base['gpu']} (from "
          f"{args.scenario.name}); warm-up {base.get('warmup_s', 0)} s; {args.seeds} seeds")
    print()
    header = "".join(f"{m.upper() + ' ' + q:>13}" for m, q in METRICS)
    print(f"{'workload':<{LABEL}}{header}")
    print(f"{'replay (ms)':<{LABEL}}" + "".join(f"{replay[k] * 1e3:>13.2f}" for k in METRICS))

    def report(label: str, runs: list[dict[tuple[str, str], float]]) -> None:
        errors = {k: np.array([r[k] / replay[k] - 1 for r in runs]) for k in METRICS}
        print(f"{label + ' (ms)':<{LABEL}}" + "".join(
            f"{np.mean([r[k] for r in runs]) * 1e3:>13.2f}" for k in METRICS))
        print(f"{'  error, mean':<{LABEL}}" + "".join(
            f"{errors[k].mean():>+13.1%}" for k in METRICS))
        print(f"{'  error, range':<{LABEL}}" + "".join(
            f"{f'{errors[k].min():+.0%}..{errors[k].max():+.0%}':>13}" for k in METRICS))

    for lengths in ("auto", "empirical_cdf"):
        fit = fit_workload(trace, lengths=lengths)
        label = f"fit: {fit.arrival.model}, {fit.prompt.model}"
        report(label, [latencies(with_workload(fit.workload()), seed) for seed in seeds])

    rng = np.random.default_rng(0)
    shuffled, phased = [], []
    curve = fit_workload(trace).workload()["arrival"]
    arrival_spec = WorkloadSpec.model_validate(
        {"arrival": curve, "prompt_tokens": {"dist": "fixed", "value": 1},
         "output_tokens": {"dist": "fixed", "value": 1}}).arrival
    phase = np.floor(trace.arrival_s / PHASE_S).astype(np.int64)
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            order = rng.permutation(len(trace.arrival_s))
            path = write_trace(Path(tmp) / f"shuffled-{seed}.csv", trace.arrival_s,
                               trace.prompt_tokens[order], trace.output_tokens[order])
            shuffled.append(latencies(with_workload({"trace": {"path": str(path)}}), seed))

            arrival_s = nhpp_arrival_times(arrival_spec, base["duration_s"],
                                           np.random.default_rng(seed))
            want = np.minimum(np.floor(arrival_s / PHASE_S).astype(np.int64), phase.max())
            pick = np.empty(len(arrival_s), dtype=np.int64)
            for k in range(phase.max() + 1):
                pick[want == k] = rng.choice(np.flatnonzero(phase == k), (want == k).sum())
            path = write_trace(Path(tmp) / f"phased-{seed}.csv", arrival_s,
                               trace.prompt_tokens[pick], trace.output_tokens[pick])
            phased.append(latencies(with_workload({"trace": {"path": str(path)}}), seed))
    report("replay, lengths shuffled", shuffled)
    report(f"fit arrivals, lengths by {PHASE_S:g} s phase", phased)


if __name__ == "__main__":
    main()
