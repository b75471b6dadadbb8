"""TCO beyond the GPU: the host's power per GPU, the cost of capital (annuity instead of
straight-line) and power that follows the work done; the docstring's worked examples by
hand, defaults that keep the old numbers, and one bad-input row per new key."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from builders import Case, params, scenario, tiny

import sim
from sim.metrics.cost import annuity, gpu_hour
from sim.scenario.schema import Cost

BASE_TCO = {
    "capex_per_gpu_usd": 30_000, "server_network_share_usd": 13_800, "amortization_years": 4,
    "power_busy_w": 700, "power_idle_w": 100, "pue": 1.2, "usd_per_kwh": 0.10,
}


def _hour(busy: float = 1.0, used: float = 1.0, **tco: object):
    return gpu_hour(Cost.model_validate({"tco": BASE_TCO | tco}), busy, used)


def test_eight_percent_over_four_years_costs_about_21_percent_more_than_straight_line() -> None:
    assert annuity(0.08, 4) == pytest.approx(0.08 / (1 - 1.08 ** -4))
    assert annuity(0.08, 4) == pytest.approx(0.30192, abs=1e-5)
    assert annuity(0.08, 4) / annuity(0.0, 4) == pytest.approx(1.2077, abs=1e-4)
    straight, financed = _hour(), _hour(cost_of_capital=0.08)
    assert straight.usd_by_item["capex"] == pytest.approx(43_800 / (4 * 8760))  # $1.2500/h
    assert financed.usd_by_item["capex"] == pytest.approx(1.5096, abs=1e-4)
    # Only capex moves: the rate is about money, not about watts or upkeep.
    for item in ("maintenance", "hosting", "power"):
        assert financed.usd_by_item[item] == straight.usd_by_item[item]


def test_annuity_repays_the_price_exactly() -> None:
    # The present value of n yearly payments of annuity(r, n) at rate r is 1.
    rate, years = 0.11, 5
    paid = sum(annuity(rate, years) / (1 + rate) ** k for k in range(1, years + 1))
    assert paid == pytest.approx(1.0, rel=1e-12)


def test_dgx_h100_host_power_per_gpu() -> None:
    # 10.2 kW for 8 GPUs at 700 W: 575 W of host per GPU, 1,275 W per GPU-slot busy.
    host_w = 10_200 / 8 - 700
    assert host_w == 575
    hour = _hour(host_power_busy_w=host_w, host_power_idle_w=0)
    assert hour.facility_w == pytest.approx(1_275 * 1.2)
    assert hour.usd_by_item["power"] == pytest.approx(1.530 * 0.10)
    idle = _hour(busy=0.0, used=0.0, host_power_busy_w=host_w, host_power_idle_w=250)
    assert idle.facility_w == pytest.approx((100 + 250) * 1.2)


def test_defaults_keep_the_gpu_only_straight_line_busy_time_numbers() -> None:
    hour = _hour(busy=0.75, used=0.2)
    assert hour.facility_w == pytest.approx((0.75 * 700 + 0.25 * 100) * 1.2)
    assert hour.usd_by_item["capex"] == pytest.approx(43_800 / (4 * 8760))


def test_load_scaling_draws_between_idle_and_busy_by_the_capacity_used() -> None:
    half = _hour(busy=1.0, used=0.5, power_scaling="load", host_power_busy_w=500,
                 host_power_idle_w=100)
    assert half.facility_w == pytest.approx(((100 + 0.5 * 600) + (100 + 0.5 * 400)) * 1.2)
    # Work beyond the estimated capacity draws no more than busy watts.
    over = _hour(busy=1.0, used=1.3, power_scaling="load")
    assert over.facility_w == pytest.approx(700 * 1.2)


def test_load_scaled_energy_per_token_falls_as_load_rises_busy_time_does_not_see_it() -> None:
    # Continuous batching keeps GPUs busy at any load, so busy-time power barely moves with
    # load; load-scaled power draws less per GPU at low load than busy-time power does.
    def run(rate: float, scaling: str) -> dict:
        return sim.run(scenario(
            duration_s=40.0, workload__arrival={"process": "poisson", "rate_per_s": rate},
            deployment__replicas=1, cost={"tco": BASE_TCO | {"power_scaling": scaling}},
        )).to_dict()

    low_busy, low_load = run(2.0, "busy-time"), run(2.0, "load")
    used = low_load["utilization"]["capacity_used_fraction"]
    assert 0 < used < 0.5
    assert low_load["cost"]["facility_w_per_gpu"] == pytest.approx((100 + used * 600) * 1.2)
    assert low_load["cost"]["facility_w_per_gpu"] < low_busy["cost"]["facility_w_per_gpu"]
    assert low_load["cost"]["energy_j_per_token"] < low_busy["cost"]["energy_j_per_token"]


def _tco(**extra: object) -> dict:
    return tiny(cost={"tco": BASE_TCO | extra})


BAD = [
    Case("host-busy-negative", _tco(host_power_busy_w=-1), "cost.tco.host_power_busy_w", "-1",
         ("≥ 0",)),
    Case("host-idle-above-busy", _tco(host_power_busy_w=300, host_power_idle_w=400),
         "cost.tco.host_power_idle_w", "400", ("host_power_busy_w",)),
    Case("host-idle-text", _tco(host_power_idle_w="lots"), "cost.tco.host_power_idle_w",
         "'lots'", ("a number",)),
    Case("cost-of-capital-negative", _tco(cost_of_capital=-0.05), "cost.tco.cost_of_capital",
         "-0.05", ("≥ 0",)),
    Case("cost-of-capital-percent", _tco(cost_of_capital=8), "cost.tco.cost_of_capital", "8",
         ("≤ 1",)),
    Case("power-scaling-unknown", _tco(power_scaling="mfu"), "cost.tco.power_scaling",
         "'mfu'", ("busy-time", "load")),
]


@pytest.mark.parametrize("case", params(BAD))
def test_bad_tco_keys_are_rejected(case: Case, check_rejected: Callable[[Case], None]) -> None:
    check_rejected(case)
