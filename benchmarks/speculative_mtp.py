"""Does speculative decoding's step model predict what MTP buys DeepSeek-R1? Measured with and
without MTP on the same GPUs, lengths and concurrency, against the simulated ratios.

    python benchmarks/speculative_mtp.py [--gpu h200] [--max-days 45]

The pairs come from the InferenceX history fixture (`../shared/data/published/sweeps_raw/
inferencex_benchmarks_history_dsr1_fixture.json`: DeepSeek-R1-0528, SGLang, FP8, TP8, one
node, closed loop at a fixed concurrency): each MTP run beside the run without MTP of the
same GPU, ISL/OSL and concurrency nearest in date (within --max-days). Each is simulated as
the closed loop it was measured as, through the validation path (`sim.validation.mapping`
turns the row into a replica, `sim.validation.sweep_loop` runs and measures the loop), once
plain and once with `deployment.speculative`, and the table compares the MTP/no-MTP ratios
of output tokens/s and median TPOT.

The speculative settings are cited, never fitted to these rows:
- num_tokens 2: InferenceX's SGLang MTP scripts (dsr1_fp8_b200_mtp.sh and the H200 one
  modelled on it) run `--speculative-algorithm EAGLE --speculative-num-steps 2
  --speculative-num-draft-tokens 3 --speculative-eagle-topk 1`: two drafted tokens, three
  verified a sequence.
- acceptance 0.85 and 0.90: the DeepSeek-V3 technical report (arXiv:2412.19437, §5.4.3)
  gives the second token's acceptance rate with its one MTP module as 85–90%. SGLang drafts
  the second position by running that module again; nothing published gives its own rate,
  so both positions take the report's (an upper bound for the second).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from datetime import date
from pathlib import Path
from typing import Any

from sim.runner.build import step_model
from sim.scenario import load_scenario
from sim.validation.mapping import setup_for_row
from sim.validation.silicon import run_closed_loop
from sim.validation.silicon_mapping import RowPlan
from sim.validation.simulate import Simulated, scenario_mapping
from sim.validation.sweep_loop import _lifetime_hint_s, _measure

REPO = Path(__file__).resolve().parents[1]
HISTORY = (REPO.parent / "shared" / "data" / "published" / "sweeps_raw"
           / "inferencex_benchmarks_history_dsr1_fixture.json")
NUM_TOKENS = 2  # InferenceX SGLang MTP: --speculative-num-steps 2 (module docstring)
ACCEPTANCE = (0.85, 0.90)  # DeepSeek-V3 report: second-token acceptance 85–90%
GPU_NAMES = {"h200": "H200", "b200": "B200", "b300": "B300"}


def runs(history: Path, gpu: str) -> list[dict[str, Any]]:
    """The fixture's single-node, aggregated SGLang FP8 TP8 runs of `gpu`."""
    rows = json.loads(history.read_text(encoding="utf-8"))
    return [r for r in rows if r["hardware"] == gpu and r["framework"] == "sglang"
            and r["precision"] == "fp8" and not r["disagg"] and not r["is_multinode"]
            and r["decode_tp"] == 8 and r["decode_ep"] == 1 and not r["decode_dp_attention"]]


def pairs(rows: list[dict[str, Any]], max_days: int) -> list[tuple[dict, dict]]:
    """(MTP run, the run without MTP of the same ISL/OSL and concurrency nearest in date)."""
    found = []
    for mtp in (r for r in rows if r["spec_method"] == "mtp"):
        plain = [r for r in rows if r["spec_method"] == "none"
                 and (r["isl"], r["osl"], r["conc"]) == (mtp["isl"], mtp["osl"], mtp["conc"])]
        if not plain:
            continue
        nearest = min(plain, key=lambda r: abs(_days(r, mtp)))
        if abs(_days(nearest, mtp)) <= max_days:
            found.append((mtp, nearest))
    return sorted(found, key=lambda p: (p[0]["isl"], p[0]["osl"], p[0]["conc"], p[0]["date"]))


def _days(a: dict[str, Any], b: dict[str, Any]) -> int:
    return (date.fromisoformat(a["date"]) - date.fromisoformat(b["date"])).days


def published_row(run: dict[str, Any]) -> dict[str, Any]:
    """The run in the published-row words `sim.validation.mapping` reads (MTP or not: the
    speculative block is added to the scenario, not read from the row)."""
    return {"id": f"{run['hardware']}/{run['isl']}-{run['osl']}/c{run['conc']}/{run['date']}",
            "model": "DeepSeek-R1-0528", "gpu": GPU_NAMES[run["hardware"]], "gpu_count": 8,
            "parallelism": "TP8", "precision": "FP8", "engine": "SGLang",
            "spec_decoding": "none", "isl": run["isl"], "osl": run["osl"],
            "concurrency": run["conc"]}


def simulate(run: dict[str, Any], speculative: dict[str, Any] | None) -> Simulated:
    """The run's closed loop as `sim.validation.sweep_loop.simulate_closed` runs it, with
    `speculative` as the deployment's `speculative:` block (None: without)."""
    setup = setup_for_row(published_row(run), closed_loop=True)
    assert setup.concurrency is not None
    base = scenario_mapping(setup, 1.0, 0.0, 1.0, None)
    base["workload"]["arrival"] = {"process": "closed", "concurrency": setup.concurrency,
                                   "think_time_s": 0}
    if speculative is not None:
        base["deployment"]["speculative"] = speculative
    measured = {"ttft_ms_median": 1e3 * run["metrics"]["median_ttft"],
                "tpot_ms_median": 1e3 * run["metrics"]["median_tpot"]}
    plan = RowPlan(setup.row_id, base, setup.concurrency, math.ceil(setup.mean_prompt_tokens),
                   math.ceil(setup.mean_output_tokens), _lifetime_hint_s(setup, measured),
                   setup.assumptions)
    return _measure(run_closed_loop(plan), setup.concurrency)


def step_cost_ratio(run: dict[str, Any], acceptance: float) -> float:
    """A pure-decode step of `conc` sequences at mid-output context with MTP over one
    without: what the verify and the drafts add (the TPOT ratio is this over τ, less the
    prefill steps' share)."""
    setup = setup_for_row(published_row(run), closed_loop=True)
    base = scenario_mapping(setup, 1.0, 0.0, 10.0, None)
    plain = step_model(load_scenario(base))
    base["deployment"]["speculative"] = {"method": "mtp", "num_tokens": NUM_TOKENS,
                                         "acceptance_rate": acceptance}
    mtp = step_model(load_scenario(base))
    batch = run["conc"]
    kv = batch * (run["isl"] + run["osl"] // 2)
    return (mtp.decode_fixed_s(batch) + mtp.per_kv_token_s * kv) / (
        plain.decode_fixed_s(batch) + plain.per_kv_token_s * kv)


def output_per_s(run: dict[str, Any]) -> float:
    return 8.0 * run["metrics"]["output_tput_per_gpu"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", default="h200", choices=sorted(GPU_NAMES))
    parser.add_argument("--max-days", type=int, default=45,
                        help="the most days between an MTP run and its run without MTP")
    parser.add_argument("--history", type=Path, default=HISTORY)
    args = parser.parse_args()
    if not args.history.is_file():
        raise SystemExit(f"{args.history} is absent (the shared published data)")
    found = pairs(runs(args.history, args.gpu), args.max_days)
    rates = " ".join(f"α={a:g}" for a in ACCEPTANCE)
    print(f"DeepSeek-R1 FP8 TP8 SGLang on {args.gpu}, MTP num_tokens {NUM_TOKENS}; "
          f"simulated at {rates}\n")
    print(f"{'ISL/OSL':>9} {'conc':>5} {'MTP date':>10} {'plain date':>10}   "
          f"{'throughput ratio (MTP / plain)':<30} {'TPOT ratio (MTP / plain)':<30} "
          "sim step cost")
    print(f"{'':>9} {'':>5} {'':>10} {'':>10}   {'measured':>9} "
          + " ".join(f"{a:>9g}" for a in ACCEPTANCE) + "  "
          f"{'measured':>9} " + " ".join(f"{a:>9g}" for a in ACCEPTANCE)
          + f"  {'MTP/plain':>9}")
    started = time.perf_counter()
    for mtp, plain in found:
        base = simulate(plain, None)
        sims = [simulate(mtp, {"method": "mtp", "num_tokens": NUM_TOKENS,
                               "acceptance_rate": a}) for a in ACCEPTANCE]
        thr = output_per_s(mtp) / output_per_s(plain)
        tpot = mtp["metrics"]["median_tpot"] / plain["metrics"]["median_tpot"]
        sim_thr = [s.output_tokens_per_s / base.output_tokens_per_s for s in sims]
        sim_tpot = [s.latency_ms["tpot"]["p50"] / base.latency_ms["tpot"]["p50"] for s in sims]
        print(f"{mtp['isl']:>4}/{mtp['osl']:<4} {mtp['conc']:>5} {mtp['date']:>10} "
              f"{plain['date']:>10}   {thr:>9.2f} "
              + " ".join(f"{x:>9.2f}" for x in sim_thr) + "  "
              f"{tpot:>9.2f} " + " ".join(f"{x:>9.2f}" for x in sim_tpot)
              + f"  {step_cost_ratio(mtp, ACCEPTANCE[0]):>9.2f}")
    print(f"\n{len(found)} pairs, simulated in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
