"""Bad plan, stress and fleet-dynamics input: exit status 2, one line naming the key (options
as plan.options[i].key), the value and what is accepted, and nothing written.

Each row breaks one thing in a short valid plan (`builders.short` with a plan block); the
harness in tests/conftest.py runs it and checks the promise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import builders
import pytest
from builders import params, short

PLAN = {"periods": [{"name": "m1", "peak_rate_per_s": 5.0}], "options": [{"name": "base"}],
        "target": {"draws": 2}}


@dataclass(frozen=True)
class Case(builders.Case):
    """A row of this table: the command is `tokenfactory plan` unless the row says otherwise."""

    command: str = "plan"


def _plan(**changes: Any) -> dict[str, Any]:
    data = short()
    data["plan"] = {**PLAN, **changes}
    return data


def _option(option: dict[str, Any]) -> dict[str, Any]:
    return _plan(options=[{"name": "base"}, option])


def _deployment(**keys: Any) -> dict[str, Any]:
    data = short()
    data["deployment"].update(keys)
    return data


DISAGGREGATED = {"prefill": {"replicas": 1}, "decode": {"replicas": 1},
                 "kv_transfer": {"bandwidth_gb_s": 50}}
SCALING = {"policy": "target-utilization", "target": 0.5, "min_replicas": 1, "max_replicas": 4}

CASES = [
    Case("no-plan-block", short(), "plan", "missing", ("periods",)),
    Case("periods-and-growth", _plan(growth={"start": {"name": "a", "peak_rate_per_s": 1},
                                             "growth_per_month": 0.1}),
         "plan.periods", "[{", ("exactly one of",)),
    Case("no-forecast", {**_plan(), "plan": {"options": [{"name": "x"}]}}, "plan.periods",
         "missing", ("growth",)),
    Case("average-above-peak", _plan(periods=[{"name": "m", "peak_rate_per_s": 5,
                                               "average_rate_per_s": 6}]),
         "plan.periods[0].average_rate_per_s", "6", ("≤ peak_rate_per_s",)),
    Case("zero-peak", _plan(periods=[{"name": "m", "peak_rate_per_s": 0}]),
         "plan.periods[0].peak_rate_per_s", "0", ("> 0",)),
    Case("negative-multiplier-draws",
         _plan(periods=[{"name": "m", "peak_rate_per_s": 5,
                         "uncertainty": {"dist": "normal", "mean": 1, "std": 3}}]),
         "plan.periods[0].uncertainty", "'normal'", ("positive multipliers",)),
    Case("no-options", _plan(options=[]), "plan.options", "[]", ("at least 1",)),
    Case("option-without-name", _option({"gpu": "h200"}), "plan.options[1].name", "missing",
         ("name",)),
    Case("duplicate-option-name", _option({"name": "base"}), "plan.options[1].name",
         "'base'", ("not used by another",)),
    Case("option-bad-tensor-parallel", _option({"name": "x", "deployment":
                                                {"tensor_parallel": 0}}),
         "plan.options[1].deployment.tensor_parallel", "0", ("≥ 1",)),
    Case("option-unknown-gpu", _option({"name": "x", "gpu": "h1000"}), "plan.options[1].gpu",
         "'h1000'", ("h100-sxm",)),
    Case("option-unknown-key", _option({"name": "x", "deployment": {"replicaz": 2}}),
         "plan.options[1].deployment.replicaz", "2", ("replicas",)),
    Case("option-two-cost-models",
         _option({"name": "x", "cost": {"prices": {"spot": 1.0}, "price": "spot"}}),
         "plan.options[1].cost.prices", "{'spot': 1.0}", ("exactly one of", )),
    Case("option-weights-do-not-fit", _option({"name": "x", "model": "llama-3.1-70b"}),
         "plan.options[1]", "'llama-3.1-70b'", ("deployment.tensor_parallel", "merged")),
    Case("confidence-above-one", _plan(target={"confidence": 1.5}), "plan.target.confidence",
         "1.5", ("≤ 1",)),
    Case("zero-draws", _plan(target={"draws": 0}), "plan.target.draws", "0", ("> 0",)),
    Case("max-draws-below-draws", _plan(target={"draws": 8, "max_draws": 4}),
         "plan.target.max_draws", "4", ("≥ draws (8)",)),
    Case("fractional-max-draws", _plan(target={"max_draws": 12.5}), "plan.target.max_draws",
         "12.5", ("an integer",)),
    # The sequential test needs 83 straight met draws to call a fleet feasible at 0.99.
    Case("too-few-draws-to-certify", _plan(target={"confidence": 0.99, "max_draws": 64}),
         "plan.target.max_draws", "64", ("at least 83",)),
    Case("default-draws-too-few-to-certify", _plan(target={"confidence": 0.99}),
         "plan.target.confidence", "0.99", ("max_draws of at least 83",)),
    Case("bad-slo-override", _plan(target={"slo": {"ttft_s": -1}}), "plan.target.slo.ttft_s",
         "-1", ("> 0",)),
    Case("run-warmup-past-duration", _plan(run={"duration_s": 5.0, "warmup_s": 8.0}),
         "plan.run.warmup_s", "8.0", ("< duration_s",)),
    Case("diurnal-without-peak-hour", _plan(shape={"profile": "diurnal",
                                                   "peak_to_trough": 2}),
         "plan.shape.peak_hour", "missing", ("diurnal",)),
    Case("uncertain-rate", {**_plan(), "uncertainty": {"workload.arrival.rate_per_s": {
        "dist": "uniform", "low": 1, "high": 2}}}, "uncertainty.workload.arrival.rate_per_s",
         "'uniform'", ("plan.periods[i].uncertainty",)),
    Case("output-not-empty", _plan(), "-o", "out", ("empty",), setup={"out/keep.txt": "x"}),
    Case("split-on-an-aggregated-option", _option({"name": "agg", "split": "ratio"}),
         "plan.options[1].split", "'ratio'", ("no split for an aggregated option",)),
    Case("split-unknown", _option({"name": "pd", "split": "even",
                                   "deployment": {"disaggregation": DISAGGREGATED}}),
         "plan.options[1].split", "'even'", ("search", "ratio")),
    Case("split-option-with-autoscaling", _option({"name": "pd", "deployment": {
        "disaggregation": DISAGGREGATED, "autoscaling": SCALING}}),
         "plan.options[1].deployment.autoscaling", "{", ("not simulated",)),
    Case("stress-a-disaggregated-fleet", {**short(), "stress": {}, "deployment": {
        **short()["deployment"], "disaggregation": DISAGGREGATED}},
         "deployment.disaggregation", "{", ("an aggregated deployment",), command="stress"),
    Case("stress-down-the-whole-fleet", {**short(), "stress": {"replicas_down": 2}},
         "stress.replicas_down", "2", ("fewer than",), command="stress"),
    Case("stress-bad-multiplier", {**short(), "stress": {"multipliers": [1.5, -2]}},
         "stress.multipliers[1]", "-2", ("> 0",), command="stress"),
    Case("stress-a-replayed-trace",
         {**short(), "workload": {"trace": {"path": "trace.csv", "format": "csv"}}},
         "workload.arrival", "missing", ("trace fit",), command="stress",
         setup={"trace.csv": "timestamp,prompt_tokens,output_tokens\n0,10,5\n1,20,6\n"}),
    Case("failures-zero-mtbf", _deployment(failures={"mtbf_h": 0, "mttr_h": 1}),
         "deployment.failures.mtbf_h", "0", ("> 0",), command="run"),
    Case("autoscaling-max-below-min",
         _deployment(autoscaling={**SCALING, "min_replicas": 3, "max_replicas": 2},
                     replicas=2),
         "deployment.autoscaling.max_replicas", "2", ("≥ min_replicas",), command="run"),
    Case("replicas-outside-autoscaling", _deployment(autoscaling=SCALING, replicas=6),
         "deployment.replicas", "6", ("1–4",), command="run"),
    Case("utilization-target-above-one",
         _deployment(autoscaling={**SCALING, "target": 2}),
         "deployment.autoscaling.target", "2", ("fraction",), command="run"),
    Case("negative-provisioning-delay",
         _deployment(autoscaling={**SCALING, "provisioning_delay_s": {
             "dist": "uniform", "low": -5, "high": 10}}),
         "deployment.autoscaling.provisioning_delay_s", "'uniform'", ("≥ 0",),
         command="run"),
    Case("unknown-autoscaling-policy", _deployment(autoscaling={**SCALING, "policy": "pid"}),
         "deployment.autoscaling.policy", "'pid'", ("target-utilization", "queue"),
         command="run"),
    Case("outage-bigger-than-fleet", _deployment(outage={"replicas": 3}),
         "deployment.outage", "{'replicas': 3}", ("at most replicas",), command="run"),
]


@pytest.mark.parametrize("case", params(CASES))
def test_bad_plan_input(case: Case, check_rejected: Callable[[Case], None]) -> None:
    check_rejected(case)


def test_bad_option_through_a_real_process(
        check_rejected_by_subprocess: Callable[[Case], None]) -> None:
    case = next(c for c in CASES if c.id == "option-bad-tensor-parallel")
    check_rejected_by_subprocess(case)


def test_case_ids_are_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)
