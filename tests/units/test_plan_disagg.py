"""`tokenfactory plan` on disaggregated options: the split search finds the cheapest
feasible (prefill, decode) split (against brute force over every split, on fake monotone
predicates and on the planner's own draws), a pool too small for the TTFT target is ruled
out at the ample decode pool only, the per-pool capacity is the closed form's, and a plan
reports the split it chose in plan.json, plan.csv and its printed table."""

from __future__ import annotations

import csv
import itertools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from builders import PLAN_FLEET, REPO, plan_verdicts, scenario

from sim.cli import main
from sim.errors import InputError
from sim.planning import options as option_specs
from sim.planning.planner import plan
from sim.planning.poolcapacity import pool_capacity
from sim.planning.runs import InlineExecutor
from sim.planning.sizing import max_splits
from sim.planning.split import Split, cheapest_split, split_text
from sim.runner import budget
from sim.scenario import load_scenario


def _cheapest(feasible: Callable[[int, int], bool], gpus: Split, limit: int,
              usd: tuple[float, float] = (1.0, 1.0)) -> Split | None:
    """Brute force: every split in [1, limit]², cheapest per hour, then fewest GPUs, then
    fewest prefill (prices in whole cents, so float sums compare exactly enough)."""
    splits = [(p, d) for p, d in itertools.product(range(1, limit + 1), repeat=2)
              if feasible(p, d)]
    return min(splits, key=lambda s: (round(s[0] * gpus[0] * usd[0] + s[1] * gpus[1] * usd[1],
                                            6), s[0] * gpus[0] + s[1] * gpus[1], s[0]),
               default=None)


def _staircase(rng: np.random.Generator, limit: int) -> Callable[[int, int], bool]:
    """A random predicate monotone in both counts: P at least a floor, and D at least a
    need that does not grow with P (down a random staircase to a plateau)."""
    floor = int(rng.integers(1, limit + 1))
    need = np.sort(rng.integers(1, limit + 3, size=limit + 1))[::-1]
    return lambda p, d: p >= floor and d >= need[p]


@pytest.mark.parametrize("seed", range(60))
def test_the_split_search_finds_the_brute_force_cheapest(seed: int) -> None:
    rng = np.random.default_rng(seed)
    limit = int(rng.integers(2, 13))
    feasible = _staircase(rng, limit)
    gpus = (int(rng.choice([1, 2, 4])), int(rng.choice([1, 2, 4])))
    usd = (float(rng.choice([2.0, 2.5, 4.0])), float(rng.choice([2.0, 2.5, 4.0])))
    guess = (int(rng.integers(1, limit + 1)), int(rng.integers(1, limit + 1)))
    calls: list[Split] = []

    def counted(p: int, d: int) -> bool:
        calls.append((p, d))
        return feasible(p, d)

    found = cheapest_split(counted, guess, gpus, limit, span=limit, gpu_hour_usd=usd)
    assert found.split == _cheapest(feasible, gpus, limit, usd)
    assert len(calls) == len(set(calls)) == len(found.evaluated) <= max_splits(limit, limit)


def test_a_prefill_pool_too_small_for_the_ttft_target_is_ruled_out_at_the_ample_pool() -> None:
    """TTFT needs 5 prefill replicas whatever the decode pool: the P below that are tested
    only beside ample decode pools (from twice the decode guess up), never searched in D."""
    found = cheapest_split(lambda p, d: p >= 5 and d >= 3, (1, 3), (1, 1), 64)
    assert found.split == (5, 3)
    assert min(d for p, d in found.evaluated if p < 5) >= 6
    assert len(found.evaluated) <= 12


def test_no_split_within_the_limit_is_reported_as_none() -> None:
    found = cheapest_split(lambda p, d: False, (2, 2), (1, 1), 16)
    assert found.split is None
    assert 0 < len(found.evaluated) <= max_splits(16)


def test_split_text_names_prefill_then_decode() -> None:
    assert split_text((1, 2)) == "1P:2D"


# The queue-bound constant-step fleet of builders.PLAN_FLEET: 20 ms steps, at most 4
# sequences per replica, 100-token prompts, ~25-token answers. A decode replica completes
# about 4 / 0.02 / 24 requests/s; a prefill replica 4 prompts a step.
FLEET = PLAN_FLEET
LINK = {"kv_transfer": {"bandwidth_gb_s": 50}}


def _plan_data(rate_per_s: float) -> dict[str, Any]:
    data = scenario(seed=5, **FLEET)
    data["plan"] = {
        "periods": [{"name": "a", "peak_rate_per_s": rate_per_s}],
        "options": [{"name": "agg"},
                    {"name": "pd", "deployment": {"disaggregation": LINK}},
                    {"name": "1P:2D", "split": "ratio", "deployment": {"disaggregation": {
                        **LINK, "prefill": {"replicas": 1}, "decode": {"replicas": 2}}}}],
        "target": {"confidence": 0.75, "draws": 4, "max_draws": 8},
    }
    return data


def test_pool_capacity_is_the_closed_form_of_each_pools_steps(tmp_path: Path) -> None:
    data = _plan_data(12.0)
    spec = load_scenario(data, base_dir=tmp_path).plan
    assert spec is not None
    option = option_specs.load(data, spec, tmp_path)[1]
    capacity = pool_capacity(option)
    # prefill: 4 prompts of 100 tokens in one 20 ms step; decode: 4 sequences a step, the
    # 24 tokens after the first (which the prefill pool makes)
    assert capacity.prefill_requests_per_s == pytest.approx(4 / 0.02)
    assert capacity.decode_requests_per_s == pytest.approx(4 / 0.02 / 24)
    assert capacity.fleet_requests_per_s((1, 3)) == pytest.approx(3 * 4 / 0.02 / 24)


def _brute_force_split(data: dict[str, Any], tmp: Path, limit: int) -> Split | None:
    """The cheapest split by judging every split up to `limit` in each pool by the
    planner's rule on its own draws (`builders.plan_verdicts`)."""
    verdicts = plan_verdicts(data, tmp, limit)
    return _cheapest(lambda p, d: verdicts[(p, d)], (1, 1), limit)


def test_a_plan_chooses_the_cheapest_split_on_its_draws(tmp_path: Path) -> None:
    data = _plan_data(12.0)
    document = plan(data, tmp_path, InlineExecutor())
    entries = {e["option"]: e for e in document["periods"][0]["options"]}
    pd = entries["pd"]
    truth = _brute_force_split(data, tmp_path, 5)
    assert truth is not None
    assert (pd["prefill_replicas"], pd["decode_replicas"]) == truth
    assert pd["split"] == split_text(truth)
    assert pd["replicas"] == pd["gpus"] == sum(truth)
    assert pd["prefill_gpus"] + pd["decode_gpus"] == pd["gpus"]
    assert all(isinstance(f, str) and "P:" in f for f in pd["search"]["fleets_tried"])
    # A ratio option grows in whole units of its own split.
    unit = entries["1P:2D"]
    k = unit["prefill_replicas"]
    assert (unit["decode_replicas"], unit["replicas"]) == (2 * k, 3 * k)
    assert entries["agg"]["split"] is None and entries["agg"]["prefill_replicas"] is None
    summary = {o["option"]: o for o in document["options"]}
    assert summary["pd"]["split"] == "search" and summary["1P:2D"]["unit"] == "1P:2D"
    assert set(summary["pd"]["pools"]) == {"prefill", "decode"}


def test_the_plan_command_prints_and_writes_the_split(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(_plan_data(6.0)))
    assert main(["plan", str(path), "-o", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    document = json.loads((tmp_path / "out" / "plan.json").read_text())
    entry = next(e for e in document["periods"][0]["options"] if e["option"] == "pd")
    assert entry["split"] in printed
    with (tmp_path / "out" / "plan.csv").open() as f:
        rows = {row["option"]: row for row in csv.DictReader(f)}
    assert rows["pd"]["split"] == entry["split"]
    assert rows["pd"]["prefill_replicas"] == str(entry["prefill_replicas"])
    assert rows["agg"]["split"] == ""


def test_the_worked_example_fits_the_default_total_before_any_run() -> None:
    """Its worst case (every split search at `max_splits` splits of every draw) is under the
    default limit; refused with a limit of 1, the message says by how much."""
    raw = yaml.safe_load((REPO / "scenarios" / "moe-gptoss-b200-disagg-plan.yaml").read_text(
        "utf-8"))
    with pytest.raises(InputError, match="requests in all") as caught:
        plan(raw, REPO / "scenarios", InlineExecutor(), max_total_requests=1)
    found = re.search(r"this one: (?:up to )?([\d,]+)", str(caught.value))
    assert found is not None
    assert int(found.group(1).replace(",", "")) < budget.DEFAULT_MAX_TOTAL_REQUESTS
