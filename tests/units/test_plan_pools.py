"""`tokenfactory plan` on heterogeneous options (`deployment.pools`): two pools split by
prompt size are sized pool by pool by the split search (against brute force over every
pair of counts on the planner's own draws), each pool's share of the prompts is the
distribution's, the plan reports each pool's replicas in plan.json, plan.csv, its table
and its report, and what the planner cannot size soundly (one or three pools, a load
split, `split`, an uncertain pool count; `stress` on pools) exits 2 naming the key."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from builders import PLAN_FLEET, Case, derive, params, plan_verdicts, scenario, scenario_file

from sim.cli import main
from sim.engine.pools import by_size
from sim.planning import options as option_specs
from sim.planning.planner import plan
from sim.planning.poolshares import pool_shares
from sim.planning.runs import InlineExecutor
from sim.planning.split import Split, cheapest_split
from sim.scenario import load_scenario

# test_plan_disagg's queue-bound constant-step fleet (20 ms steps, at most 4 sequences a
# replica, ~25-token answers) with prompts uniform on [50, 150]: about half of them at most
# 100 tokens, for the pool `short`; the rest to `long`, on dearer GPUs.
FLEET = derive(PLAN_FLEET, workload__prompt_tokens={"dist": "uniform", "low": 50,
                                                    "high": 150})
POOLS = [{"name": "short", "replicas": 1, "max_prompt_tokens": 100, "gpu_hour_usd": 2.0},
         {"name": "long", "replicas": 1, "gpu": "h200", "gpu_hour_usd": 3.0}]
PRICES = {"short": 2.0, "long": 3.0}


def _plan_data(rate_per_s: float, pools: list[dict[str, Any]] | None = None,
               **option: Any) -> dict[str, Any]:
    data = scenario(seed=5, **FLEET)
    data["plan"] = {
        "periods": [{"name": "a", "peak_rate_per_s": rate_per_s}],
        "options": [{"name": "agg"},
                    {"name": "pools", "deployment": {"pool_split": "size",
                                                     "pools": pools or POOLS}, **option}],
        "target": {"confidence": 0.75, "draws": 4, "max_draws": 8},
    }
    return data


def _brute_force(data: dict[str, Any], tmp: Path, limit: int) -> Split | None:
    """The cheapest pair of counts by judging every pair up to `limit` by the planner's
    rule on its own draws (`builders.plan_verdicts`)."""
    verdicts = plan_verdicts(data, tmp, limit)
    feasible = [s for s, ok in verdicts.items() if ok]
    return min(feasible, key=lambda s: (s[0] * PRICES["short"] + s[1] * PRICES["long"],
                                        sum(s), s[0]), default=None)


def test_a_plan_sizes_each_pool_to_the_brute_force_cheapest(tmp_path: Path) -> None:
    data = _plan_data(12.0)
    document = plan(data, tmp_path, InlineExecutor())
    entries = {e["option"]: e for e in document["periods"][0]["options"]}
    pools = entries["pools"]
    truth = _brute_force(data, tmp_path, 4)
    assert truth is not None and truth != (1, 1)  # the search had something to find
    assert pools["pools"] == {"short": truth[0], "long": truth[1]}
    assert pools["replicas"] == pools["gpus"] == sum(truth)
    assert pools["usd_per_month"] == pytest.approx(
        (truth[0] * PRICES["short"] + truth[1] * PRICES["long"]) * 730)
    assert pools["split"] is None and entries["agg"]["pools"] is None
    tried = pools["search"]["fleets_tried"]
    assert f"short:{truth[0]}+long:{truth[1]}" in tried
    assert [v["pools"] for v in pools["search"]["verdicts"]] == [
        dict(zip(("short", "long"), map(int, (p.split(":")[1] for p in t.split("+"))),
                 strict=True)) for t in tried]
    summary = {o["option"]: o for o in document["options"]}["pools"]
    assert summary["pool_split"] == "size"
    assert summary["pools"]["short"]["max_prompt_tokens"] == 100
    assert summary["pools"]["long"]["gpu"] == "h200"
    assert document["search"]["capacity_probes"] == 1  # the pools need no probe run


def test_the_plan_command_prints_and_writes_each_pools_replicas(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(_plan_data(6.0)))
    out = tmp_path / "out"
    assert main(["plan", str(path), "-o", str(out), "--report"]) == 0
    printed = capsys.readouterr().out
    document = json.loads((out / "plan.json").read_text())
    entry = next(e for e in document["periods"][0]["options"] if e["option"] == "pools")
    counts = entry["pools"]
    assert f"{counts['short']} short + {counts['long']} long" in printed
    with (out / "plan.csv").open() as f:
        rows = {row["option"]: row for row in csv.DictReader(f)}
    assert rows["pools"]["pools"] == f"short:{counts['short']}+long:{counts['long']}"
    assert rows["pools"]["replicas"] == str(sum(counts.values()))
    assert rows["agg"]["pools"] == ""
    # the report reads plan.csv back (its cells checked) and names the pools' replicas
    assert f"{counts['short']} short + {counts['long']} long" in (
        out / "report.html").read_text(encoding="utf-8")


def test_each_pools_share_is_the_prompt_distributions(tmp_path: Path) -> None:
    data = _plan_data(12.0)
    spec = load_scenario(data, base_dir=tmp_path).plan
    assert spec is not None
    option = option_specs.load(data, spec, tmp_path)[1]
    shares = pool_shares(option, seed=3)
    # uniform on [50, 150), floored to whole tokens: P(tokens ≤ 100) = 51/100
    assert shares.shares[0] == pytest.approx(0.51, abs=0.01)
    assert sum(shares.shares) == pytest.approx(1.0)
    assert shares.prompt_tokens_mean[0] == pytest.approx(75.0, abs=1.0)
    assert shares.prompt_tokens_mean[1] == pytest.approx(125.0, abs=1.0)
    # flat out, the fleet is limited by the pool that saturates first on its share
    rate = min(2 * shares.requests_per_s[0] / shares.shares[0],
               1 * shares.requests_per_s[1] / shares.shares[1])
    assert shares.fleet_requests_per_s((2, 1)) == pytest.approx(rate)
    assert pool_shares(option, seed=3) == shares  # a plan repeats


def test_a_prompt_goes_to_the_smallest_bound_holding_it() -> None:
    pools = by_size([4096, None, 512], np.array([1, 512, 513, 4096, 4097]))
    assert pools.tolist() == [2, 2, 0, 0, 1]


@pytest.mark.parametrize("seed", range(30))
def test_the_split_search_finds_the_cheapest_pair_of_independent_pools(seed: int) -> None:
    """Two pools split by size each need their own count (a predicate A(a) and B(b), the
    shape a size split gives when the fleet-wide percentile hardly couples them)."""
    rng = np.random.default_rng(seed)
    limit = int(rng.integers(2, 10))
    need = rng.integers(1, limit + 2, size=2)
    gpus = (int(rng.choice([1, 2])), int(rng.choice([1, 2, 4])))
    usd = (float(rng.choice([2.5, 3.5])), float(rng.choice([2.5, 3.5])))
    found = cheapest_split(lambda a, b: a >= need[0] and b >= need[1],
                           (int(rng.integers(1, limit + 1)), int(rng.integers(1, limit + 1))),
                           gpus, limit, gpu_hour_usd=usd)
    within = bool(need[0] <= limit and need[1] <= limit)
    assert found.split == ((int(need[0]), int(need[1])) if within else None)


UNBOUNDED = [{"name": "short", "replicas": 1}, {"name": "long", "replicas": 1, "gpu": "h200"}]
THREE = [*POOLS[:1], {"name": "mid", "max_prompt_tokens": 120}, POOLS[1]]


def _plan_case(id: str, data: dict[str, Any], where: str, value: str,
               *also: str) -> Case:
    return Case(id, scenario_file(data), where, value, also, command="plan")


def _pools_in_base(pools: list[dict[str, Any]] = POOLS, **deployment: Any) -> dict[str, Any]:
    """The pools in the scenario itself, one option that keeps them."""
    data = _plan_data(6.0)
    data["deployment"] = {**data["deployment"], "pools": pools, **deployment}
    data["plan"]["options"] = [{"name": "pools"}]
    return data


def _uncertain_pool() -> dict[str, Any]:
    data = _pools_in_base(pool_split="size")
    data["uncertainty"] = {"deployment.pools.0.replicas": {"dist": "uniform", "low": 1,
                                                           "high": 2}}
    return data


BAD = [
    _plan_case("three pools", _plan_data(6.0, THREE), "plan.options[1].deployment.pools",
               "3 pools", "2 pools in a plan", "sweep grid"),
    _plan_case("one pool", _plan_data(6.0, [{"name": "only", "replicas": 1}]),
               "plan.options[1].deployment.pools", "1 pool", "2 pools in a plan"),
    _plan_case("a load split in the base", _pools_in_base(UNBOUNDED, pool_split="load"),
               "deployment.pool_split", "load", "size in a plan"),
    _plan_case("split on a pools option", _plan_data(6.0, split="search"),
               "plan.options[1].split", "search", "deployment.pools"),
    _plan_case("an uncertain pool count", _uncertain_pool(),
               "uncertainty.deployment.pools.0.replicas", "uniform",
               "a key the plan does not set itself"),
    Case("stress on pools", scenario_file(_pools_in_base(pool_split="size")),
         "deployment.pools", "short", ("stress test sizes deployment.replicas",),
         command="stress"),
]


@pytest.mark.parametrize("case", params(BAD))
def test_what_the_planner_cannot_size_is_refused(case: Case,
                                                 check_rejected: Callable[[Case], None]) -> None:
    check_rejected(case)
