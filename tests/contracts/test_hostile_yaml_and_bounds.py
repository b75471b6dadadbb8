"""Hostile YAML, numbers past what the simulator can run, and setups no engine can serve: each
stops at loading with exit status 2 and one line naming the key (or file:line), the value and
what is accepted.

The first table runs a real `python -m sim` bounded in time and memory
(`check_rejected_bounded`: a 4 GiB address space and a timeout): an alias bomb, nesting
deeper than any scenario, a file of 20 MiB or of a million values, and numbers that used to
overflow, allocate a table of 10⁸ entries or loop for ever (replicas of 10³⁰, 1e308 seconds,
max_num_seqs 1e8, gamma cv 1e6, an autoscaling tick every microsecond, 10⁶ sweep runs). The
second runs in process: impossible models and parallelism, prompts longer than the model's
context, and the weights-do-not-fit message blaming the key that can fix it. The tests at the
end check that YAML 1.2 numbers (`1e3`) and legitimate anchors and merges still load.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import Builder, Case, params, raw_file, scenario_file, short, tiny

import sim
from sim.cli import main

SWEEP = {"utilization": [0.5], "replications": 2}
PLAN = {"periods": [{"name": "m1", "peak_rate_per_s": 5.0}], "options": [{"name": "base"}],
        "target": {"draws": 2}}
SCALING = {"policy": "target-utilization", "target": 0.5, "min_replicas": 1, "max_replicas": 4}
# A model whose 24 query heads share 6 key-value heads: tp 4 divides the query heads but
# neither divides nor is divided by the key-value heads.
GQA_24_6 = {"name": "gqa-24-6", "layers": 4, "hidden": 1536, "ffn_intermediate": 4096,
            "heads": 24, "kv_heads": 6, "vocab": 32000}


def _text(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False)


def _yaml(text: str) -> Builder:
    """The tiny scenario's YAML with `text` after it (keys of its own, or a repeated one)."""
    return raw_file(_text(tiny()) + text)


def _line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """The 1-based line of the `occurrence`-th line of `text` that starts with `needle`."""
    lines = [n for n, line in enumerate(text.splitlines(), 1) if line.startswith(needle)]
    return lines[occurrence - 1]


def _alias_bomb() -> str:
    """Billion laughs as the value of `name`: nine levels, each nine aliases of the one before
    (9⁹ ≈ 387 million strings once expanded)."""
    rows = ['  - &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for before, anchor in zip("abcdefgh", "bcdefghi", strict=True):
        rows.append(f"  - &{anchor} [{', '.join([f'*{before}'] * 9)}]")
    return "\n".join(rows) + "\n"


def _without_name() -> dict[str, Any]:
    data = tiny()
    del data["name"]
    return data


BOMB = _text(_without_name()) + "name:\n" + _alias_bomb()
DUPLICATE_TOP = _text(tiny()) + "seed: 2\n"
DUPLICATE_NESTED = _text(tiny()).replace("  replicas: 2\n", "  replicas: 2\n  replicas: 3\n")
DEEP_FLOW = _text(_without_name()) + "name: " + "[" * 10_000 + "]" * 10_000 + "\n"
DEEP_BLOCK = _text(_without_name()) + "name:\n" + "".join(
    "  " * depth + "- \n" for depth in range(1, 200)) + "  " * 200 + "- x\n"
# 1.1 million zeros: ~2 MiB of text, refused at the millionth value, before validation.
MANY_VALUES = _text(_without_name()) + "name: [" + "0," * 1_100_000 + "0]\n"
# 20 MiB of comment lines (1 KiB each) after the scenario: over the 16 MiB limit, refused
# before it is parsed.
HUGE_FILE = _text(tiny()) + ("#" + "x" * 1022 + "\n") * (20 * 1024)

BOUNDED = [
    # ---- YAML -----------------------------------------------------------------------------
    Case("alias-bomb-in-a-value", raw_file(BOMB), "scenario.yaml:", "'*",
         ("aliases that repeat at most 100,000 values",), key_first=False),
    Case("recursive-alias", _yaml("notes: &r [*r]\n"), "scenario.yaml:", "'*r'",
         ("alias to a finished node",), key_first=False),
    Case("duplicate-top-level-key", raw_file(DUPLICATE_TOP),
         f"scenario.yaml:{_line_of(DUPLICATE_TOP, 'seed:', 2)}", "'seed'",
         ("a key given once", f"line {_line_of(DUPLICATE_TOP, 'seed:')}"), key_first=False),
    Case("duplicate-nested-key", raw_file(DUPLICATE_NESTED),
         f"scenario.yaml:{_line_of(DUPLICATE_NESTED, '  replicas:', 2)}", "'replicas'",
         ("a key given once",), key_first=False),
    Case("deep-flow-nesting", raw_file(DEEP_FLOW), "scenario.yaml:", "more than 64 levels",
         ("nested at most 64 deep",), key_first=False),
    Case("deep-block-nesting", raw_file(DEEP_BLOCK), "scenario.yaml:", "more than 64 levels",
         key_first=False),
    Case("a-million-values", raw_file(MANY_VALUES), "scenario.yaml:",
         "more than 1,000,000 values", key_first=False),
    Case("twenty-mib-file", raw_file(HUGE_FILE), "scenario.yaml", "20.0 MiB",
         ("at most 16 MiB",), key_first=False),
    Case("integer-of-5000-digits", raw_file(_text(_without_name()) + "name: 1" + "0" * 5000),
         "scenario.yaml:", "integer of 5,001 characters", key_first=False),
    Case("impossible-date", raw_file(_text(_without_name()) + "name: 2024-02-30\n"),
         "scenario.yaml:", "not a date", key_first=False),
    # ---- numbers past what a run can hold -------------------------------------------------
    Case("replicas-beyond-machine-size", tiny(deployment__replicas=10**30),
         "deployment.replicas", "1000000000000000000000000000000", ("≤ 100,000",)),
    Case("rate-1e308", tiny(workload__arrival__rate_per_s=1.0e308),
         "workload.arrival.rate_per_s", "1e+308", ("a number ≤ 1e+06",)),
    Case("duration-1e308", tiny(duration_s=1.0e308), "duration_s", "1e+308",
         ("a number ≤ 1e+07",)),
    Case("drain-1e308", tiny(drain_s=1.0e308), "drain_s", "1e+308", ("≤ 1e+07",)),
    Case("max-num-seqs-1e8", tiny(deployment__scheduler__max_num_seqs=10**8),
         "deployment.scheduler.max_num_seqs", "100000000", ("≤ 65,536",)),
    Case("max-batched-tokens-2e40", tiny(deployment__scheduler__max_batched_tokens=2**40),
         "deployment.scheduler.max_batched_tokens", str(2**40), ("≤ 4,194,304",)),
    Case("gamma-cv-1e6",
         tiny(workload__arrival={"process": "gamma", "rate_per_s": 2.0, "cv": 1.0e6}),
         "workload.arrival.cv", "1000000.0", ("≤ 100",)),
    Case("autoscaling-every-microsecond",
         tiny(deployment__autoscaling={**SCALING, "interval_s": 1.0e-6}),
         "deployment.autoscaling.interval_s", "1e-06", ("≥ 0.1",)),
    Case("spike-times-1e12",
         tiny(workload__arrival__spikes=[{"at_s": 5, "duration_s": 5, "multiplier": 1e12}]),
         "workload.arrival.spikes.0.multiplier", "1000000000000.0", ("≤ 1000",)),
    Case("failures-every-picosecond",
         tiny(deployment__failures={"mtbf_h": 1e-15, "mttr_h": 1}),
         "deployment.failures.mtbf_h", "1e-15", ("≥ 0.001",)),
    Case("prompt-cap-beyond-token-counts",
         tiny(workload__prompt_tokens={"dist": "lognormal", "mean": 200, "sigma": 0.5,
                                       "max_tokens": 10**12}),
         "workload.prompt_tokens.max_tokens", "1000000000000", ("≤ 1,000,000,000",)),
    Case("lognormal-sigma-1000", tiny(workload__output_tokens__sigma=1000),
         "workload.output_tokens.sigma", "1000", ("≤ 10",)),
    Case("seed-beyond-int64", tiny(seed=2**64), "seed", str(2**64),
         ("≤ 9,223,372,036,854,775,807",)),
    Case("step-time-scale-1e6", tiny(step_time_scale=1e6), "step_time_scale", "1000000.0",
         ("≤ 1000",)),
    Case("inline-gpu-with-no-bandwidth",
         tiny(gpu={"name": "slow", "memory_gib": 80, "memory_bandwidth_tb_s": 1e-300,
                   "bf16_tflops": 500}),
         "gpu.memory_bandwidth_tb_s", "1e-300", ("≥ 0.001",)),
    Case("sweep-a-million-replications", short(sweep={**SWEEP, "replications": 10**6}),
         "sweep.replications", "1000000", ("≤ 100,000",), command="sweep"),
    Case("sweep-grid-of-a-million-points",
         short(sweep={"grid": {"deployment.replicas": list(range(1, 1001)),
                               "seed": list(range(1000))}, "replications": 1}),
         "sweep.grid", "{'deployment.replicas': [1, 2, 3", ("at most 100,000 points",),
         command="sweep"),
    Case("plan-ten-thousand-months",
         {**short(), "plan": {**PLAN, "periods": None, "growth": {
             "start": {"name": "2030-01", "peak_rate_per_s": 5}, "months": 10_000,
             "growth_per_month": 0.01}}},
         "plan.growth.months", "10000", ("≤ 600",), command="plan"),
    Case("plan-growth-past-any-rate",
         {**short(), "plan": {**PLAN, "periods": None, "growth": {
             "start": {"name": "2030-01", "peak_rate_per_s": 5}, "months": 600,
             "growth_per_month": 1.0}}},
         "plan.growth.growth_per_month", "1.0", ("1e+06]", "600 months"), command="plan"),
    Case("plan-hundred-thousand-draws", {**short(), "plan": {**PLAN, "target": {
        "draws": 100_000}}}, "plan.target.draws", "100000", ("≤ 10,000",), command="plan"),
    Case("plan-peak-of-ten-million", {**short(), "plan": {**PLAN, "periods": [
        {"name": "m1", "peak_rate_per_s": 1e7}]}}, "plan.periods[0].peak_rate_per_s",
         "10000000.0", ("≤ 1e+06",), command="plan"),
    Case("stress-demand-times-a-million", {**short(), "stress": {"multipliers": [1e6]}},
         "stress.multipliers[0]", "1000000.0", ("≤ 1000",), command="stress"),
]


@pytest.mark.parametrize("case", params(BOUNDED))
def test_hostile_input_is_refused_bounded(case: Case,
                                          check_rejected_bounded: Callable[..., None]) -> None:
    check_rejected_bounded(case, timeout_s=60.0)


def _lengths_file(lines: str, **lengths: Any) -> Builder:
    """The tiny scenario with prompt lengths read from `lengths.txt`."""

    def build(tmp: Path) -> list[str]:
        (tmp / "lengths.txt").write_text(lines, encoding="utf-8")
        spec = {"dist": "empirical", "path": "lengths.txt", **lengths}
        return scenario_file(tiny(workload__prompt_tokens=spec))(tmp)

    return build


def _model(**shape: Any) -> dict[str, Any]:
    return tiny(model={"name": "odd", "layers": 2, "hidden": 64, "ffn_intermediate": 128,
                       "heads": 4, "kv_heads": 4, "vocab": 1000, **shape})


IN_PROCESS = [
    # ---- models no transformer has --------------------------------------------------------
    Case("head-dim-zero", _model(heads=3, hidden=2, kv_heads=1), "model.hidden", "2",
         ("multiple of heads (3)",)),
    Case("kv-heads-above-heads", _model(kv_heads=8), "model.kv_heads", "8",
         ("≤ heads (4)",)),
    Case("heads-not-grouped-by-kv-heads", _model(heads=6, kv_heads=4, hidden=96),
         "model.kv_heads", "4", ("divisor of heads (6)",)),
    Case("more-experts-per-token-than-experts", _model(experts=2, experts_per_token=4),
         "model.experts_per_token", "4", ("≤ experts (2)",)),
    Case("inline-model-of-10-billion-layers", _model(layers=10**10), "model.layers",
         "10000000000", ("≤ 10,000",)),
    # ---- parallelism an engine refuses ----------------------------------------------------
    Case("tensor-parallel-not-dividing-heads", tiny(deployment__tensor_parallel=3),
         "deployment.tensor_parallel", "3", ("32 attention heads", "1, 2, 4, 8, 16, 32")),
    Case("tensor-parallel-not-splitting-kv-heads",
         tiny(model=GQA_24_6, deployment__tensor_parallel=4), "deployment.tensor_parallel",
         "4", ("6 key-value heads", "1, 2, 3, 6, 12, 24")),
    Case("sweep-point-with-impossible-parallelism",
         short(sweep={"grid": {"deployment.tensor_parallel": [1, 3]}, "replications": 2}),
         "sweep.grid.deployment.tensor_parallel", "3", ("attention heads",), command="sweep"),
    Case("plan-option-with-impossible-parallelism",
         {**short(), "plan": {**PLAN, "options": [
             {"name": "base"}, {"name": "tp3", "deployment": {"tensor_parallel": 3}}]}},
         "plan.options[1].deployment.tensor_parallel", "3", ("attention heads",),
         command="plan"),
    # ---- requests longer than the context -------------------------------------------------
    Case("fixed-prompt-over-context",
         tiny(workload__prompt_tokens={"dist": "fixed", "value": 200_000}),
         "workload.prompt_tokens.value", "200000", ("at most 131,071 tokens", "max_context")),
    Case("prompt-cap-at-the-context",
         tiny(workload__prompt_tokens={"dist": "lognormal", "mean": 200, "sigma": 0.5,
                                       "max_tokens": 131_072}),
         "workload.prompt_tokens.max_tokens", "131072", ("131,071",)),
    Case("prompt-and-output-over-context",
         tiny(model="llama-2-7b",
              workload__prompt_tokens={"dist": "uniform", "low": 100, "high": 4000},
              workload__output_tokens={"dist": "fixed", "value": 200}),
         "workload.output_tokens.value", "200", ("at most 96 tokens", "4,096")),
    Case("empirical-prompt-over-context", _lengths_file("100\n200000\n"),
         "workload.prompt_tokens.path", "lengths.txt (longest: 200,000 tokens)",
         ("131,071",)),
    # ---- the weights do not fit: the key that can fix it, with numbers that add up --------
    Case("activation-reserve-above-gpu-memory", tiny(deployment__activation_reserve_gib=500),
         "deployment.activation_reserve_gib", "500", ("h100-sxm × 0.9 = 72.0 GiB",)),
    Case("activation-reserve-crowding-out-weights",
         tiny(deployment__activation_reserve_gib=60), "deployment.tensor_parallel", "1",
         ("needs 15.0 GiB per GPU", "11.5 GiB after the reserves (0.5 GiB NCCL and runtime "
          "and 60 GiB activations)", "smaller deployment.activation_reserve_gib")),
]


@pytest.mark.parametrize("case", params(IN_PROCESS))
def test_impossible_setup_is_refused(case: Case, check_rejected: Callable[[Case], None]) -> None:
    check_rejected(case)


def test_case_ids_are_unique() -> None:
    ids = [case.id for case in BOUNDED + IN_PROCESS]
    assert len(ids) == len(set(ids))


# ---- what must still load ----------------------------------------------------------------


def test_yaml_1_2_numbers_load_as_numbers(tmp_path: Path) -> None:
    text = _text(tiny()).replace("rate_per_s: 2\n", "rate_per_s: 2e0\n").replace(
        "duration_s: 20\n", "duration_s: 2E1\n").replace("sigma: 0.5\n", "sigma: .5\n", 1)
    assert "2e0" in text and "2E1" in text
    path = tmp_path / "floats.yaml"
    path.write_text(text + "step_time_scale: 1e0\n", encoding="utf-8")
    loaded = sim.load_scenario(path)
    assert loaded.duration_s == 20.0 and loaded.step_time_scale == 1.0
    assert loaded.workload.arrival is not None and loaded.workload.arrival.rate_per_s == 2.0
    assert main(["run", str(path), "--json", str(tmp_path / "out.json"), "--quiet"]) == 0


def test_anchors_merges_and_bounds_at_their_limits_load(tmp_path: Path) -> None:
    """Shared blocks through anchors and `<<:` merges (a merged key overridden is no
    duplicate), and every bound reached exactly, are valid."""
    text = _text(_without_name()).replace("slo:\n", "slo: &slo\n") + (
        "name: limits\n"
        "sweep: {grid: {deployment.replicas: [1, 2]}, replications: 100000}\n"
        "stress: {multipliers: [1000], draws: 10000}\n"
        "uncertainty:\n  slo.ttft_s: {dist: uniform, low: 1, high: 3}\n"
        "plan:\n  growth: {start: {name: '2030-01', peak_rate_per_s: 1}, months: 600,\n"
        "           growth_per_month: 0.0}\n"
        "  target: {draws: 10000, slo: {<<: *slo, ttft_s: 3.0}}\n"
        "  options: [{name: base}]\n")
    path = tmp_path / "limits.yaml"
    path.write_text(text, encoding="utf-8")
    loaded = sim.load_scenario(path)
    assert loaded.sweep is not None and loaded.sweep.replications == 100_000
    assert loaded.plan is not None and loaded.plan.target.slo is not None
    assert loaded.plan.target.slo["ttft_s"] == 3.0 and loaded.plan.target.slo["tpot_s"] == 0.05
    at_limits = tiny(deployment__replicas=100_000, deployment__scheduler__max_num_seqs=65_536,
                     deployment__scheduler__max_batched_tokens=2**22, duration_s=1e7,
                     workload__arrival={"process": "gamma", "rate_per_s": 1e6, "cv": 100.0})
    assert sim.load_scenario(at_limits).deployment.replicas == 100_000


def test_tensor_parallel_may_copy_key_value_heads() -> None:
    """vLLM copies each key-value head to tp / kv_heads GPUs when tp exceeds them: 70B's 8
    key-value heads over 16 GPUs is a setup it serves."""
    loaded = sim.load_scenario(tiny(model="llama-3.1-70b", deployment__tensor_parallel=16))
    assert loaded.deployment.tensor_parallel == 16
    assert sim.load_scenario(tiny(model=GQA_24_6, deployment__tensor_parallel=12))
