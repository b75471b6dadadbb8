"""Cost model: owned-hardware TCO and named prices by hand, goodput and energy, and the
utilisation identities (a fully busy fleet; half the load, twice the cost per token)."""

from __future__ import annotations

import pytest
from builders import scenario

import sim
from sim.metrics.cost import energy_j_per_token, gpu_hour, per_million, token_cost
from sim.scenario.schema import Cost

# The worked example of the sim.metrics.cost docstring and the README.
WORKED_TCO = {
    "capex_per_gpu_usd": 30_000, "server_network_share_usd": 13_800, "amortization_years": 5,
    "maintenance_fraction_per_year": 0.04, "hosting_usd_per_gpu_year": 876,
    "power_busy_w": 700, "power_idle_w": 100, "pue": 1.2, "usd_per_kwh": 0.10,
}


def test_tco_worked_example_by_hand() -> None:
    hour = gpu_hour(Cost.model_validate({"tco": WORKED_TCO}), busy_fraction=0.75,
                    used_fraction=0.5)
    assert hour.usd_by_item["capex"] == pytest.approx(1.00)  # 43,800 / (5 × 8760)
    assert hour.usd_by_item["maintenance"] == pytest.approx(0.20)  # 43,800 × 0.04 / 8760
    assert hour.usd_by_item["hosting"] == pytest.approx(0.10)  # 876 / 8760
    assert hour.facility_w == pytest.approx(660.0)  # (0.75 × 700 + 0.25 × 100) × 1.2
    assert hour.usd_by_item["power"] == pytest.approx(0.066)  # 0.66 kW × $0.10
    assert hour.usd == pytest.approx(1.366)
    fleet_usd_per_hour, tokens_per_s = 4 * hour.usd, 10_000.0
    assert fleet_usd_per_hour == pytest.approx(5.464)
    one_hour = token_cost(4, hour.usd, 3600.0, 1.0, 3.0, 0.0, tokens_per_s * 3600)
    assert one_hour.blended_usd_per_million == pytest.approx(0.1518, abs=1e-4)
    assert energy_j_per_token(hour.facility_w, 4, tokens_per_s) == pytest.approx(0.264)


def test_power_follows_busy_fraction_and_nothing_else_does() -> None:
    cost = Cost.model_validate({"tco": WORKED_TCO})
    idle, busy = gpu_hour(cost, 0.0, 0.0), gpu_hour(cost, 1.0, 0.0)
    assert idle.facility_w == pytest.approx(100 * 1.2)
    assert busy.facility_w == pytest.approx(700 * 1.2)
    for item in ("capex", "maintenance", "hosting"):
        assert idle.usd_by_item[item] == busy.usd_by_item[item]
    assert busy.usd - idle.usd == pytest.approx((700 - 100) * 1.2 / 1000 * 0.10)


def test_named_price_points_pick_the_chosen_price() -> None:
    cost = Cost.model_validate({"prices": {"on_demand": 3.9, "reserved": 2.35},
                                "price": "reserved"})
    hour = gpu_hour(cost, 0.5, 0.5)
    assert hour.usd == 2.35 and hour.usd_by_item == {"rental": 2.35}
    assert hour.facility_w is None  # a rental price includes power; the watts are unknown


def test_fully_busy_fleet_cost_is_hourly_cost_over_hourly_tokens_exactly() -> None:
    # 100% busy for the whole window, delivering a known tokens/s: cost per 1M tokens is
    # $/hour ÷ (tokens/s × 3600) × 1e6, whatever the window length.
    gpus, price, window_s, tokens_per_s = 8, 2.5, 600.0, 12_345.0
    c = token_cost(gpus, price, window_s, prefill_busy_s=0.3 * window_s,
                   decode_busy_s=0.7 * window_s, input_tokens=0.8 * tokens_per_s * window_s,
                   output_tokens=0.2 * tokens_per_s * window_s)
    assert c.blended_usd_per_million == pytest.approx(
        gpus * price / (tokens_per_s * 3600) * 1e6, rel=1e-12)


def test_halving_the_tokens_doubles_the_idle_inclusive_cost() -> None:
    full = token_cost(4, 2.0, 600.0, 100.0, 500.0, 4e6, 1e6)
    half = token_cost(4, 2.0, 600.0, 50.0, 250.0, 2e6, 0.5e6)  # idle half the time
    assert half.blended_usd_per_million == pytest.approx(2 * full.blended_usd_per_million)
    assert half.input_usd_per_million == pytest.approx(2 * full.input_usd_per_million)
    assert half.output_usd_per_million == pytest.approx(2 * full.output_usd_per_million)


def test_per_million_of_nothing_is_no_price() -> None:
    assert per_million(1.0, 0.0) is None


# A fleet whose saturation throughput is known in closed form: constant step time s, static
# batches of N sequences with fixed P-token prompts and O-token outputs. Each cycle is one
# prefill step (its end is the first token) and O − 1 decode steps, delivering N × (P + O)
# tokens every O × s seconds.
STEP_S, N_SEQS, PROMPT, OUTPUT = 0.01, 8, 20, 10
CYCLE_S = OUTPUT * STEP_S
CLOSED_FORM_TOKENS_PER_S = N_SEQS * (PROMPT + OUTPUT) / CYCLE_S


def _static_fleet(rate_per_s: float, **extra) -> dict:
    return scenario(
        duration_s=30.0, warmup_s=10.0, profile={"kind": "constant", "step_s": STEP_S},
        deployment={"replicas": 1, "scheduler": {"policy": "static", "max_num_seqs": N_SEQS,
                                                 "max_batched_tokens": 4096}},
        workload={"arrival": {"process": "poisson", "rate_per_s": rate_per_s},
                  "prompt_tokens": {"dist": "fixed", "value": PROMPT},
                  "output_tokens": {"dist": "fixed", "value": OUTPUT}},
        **extra)


def test_saturated_fleet_reproduces_the_closed_form_cost() -> None:
    # Offered 100 req/s against a capacity of N / (O × s) = 80, the queue never empties after
    # the first second; the 20 s window holds exactly 200 back-to-back cycles wherever they
    # start, so the delivered rate, and with it the cost, is the closed form.
    d = sim.run(_static_fleet(100.0)).to_dict()
    assert d["utilization"]["busy_fraction"] == pytest.approx(1.0)
    tokens_per_s = d["throughput"]["input_tokens_per_s"] + d["throughput"]["output_tokens_per_s"]
    assert tokens_per_s == pytest.approx(CLOSED_FORM_TOKENS_PER_S, rel=1e-9)
    assert d["cost"]["usd_per_million_tokens"]["blended"] == pytest.approx(
        2.5 / (CLOSED_FORM_TOKENS_PER_S * 3600) * 1e6, rel=1e-9)


def test_tco_run_reports_power_at_its_busy_fraction_and_energy_per_token() -> None:
    d = sim.run(scenario(cost={"tco": WORKED_TCO})).to_dict()
    cost, busy = d["cost"], d["utilization"]["busy_fraction"]
    assert cost["model"] == "tco"
    assert cost["facility_w_per_gpu"] == pytest.approx((busy * 700 + (1 - busy) * 100) * 1.2)
    assert cost["fleet_usd_per_hour"] == pytest.approx(d["fleet"]["gpus"] * cost["gpu_hour_usd"])
    tokens_per_s = d["throughput"]["input_tokens_per_s"] + d["throughput"]["output_tokens_per_s"]
    assert cost["energy_j_per_token"] == pytest.approx(
        cost["facility_w_per_gpu"] * d["fleet"]["gpus"] / tokens_per_s)


def test_rental_run_has_no_energy_figure() -> None:
    d = sim.run(scenario()).to_dict()
    assert d["cost"]["model"] == "rental" and d["cost"]["energy_j_per_token"] is None


def test_goodput_cost_counts_only_tokens_within_the_slo() -> None:
    # A TTFT target no request can meet: no goodput, so no finite goodput price; a lax SLO:
    # every request meets it and goodput cost equals blended cost.
    strict = sim.run(scenario(slo={"ttft_s": 1e-6, "tpot_s": 1.0})).to_dict()
    assert strict["throughput"]["goodput_tokens_per_s"] == 0
    assert strict["cost"]["usd_per_million_tokens"]["goodput"] is None
    lax = sim.run(scenario(slo={"ttft_s": 1e3, "tpot_s": 1e3})).to_dict()
    per_m = lax["cost"]["usd_per_million_tokens"]
    assert per_m["goodput"] == pytest.approx(per_m["blended"])
    tight = sim.run(scenario(slo={"ttft_s": 0.1, "tpot_s": 1.0})).to_dict()
    attained = tight["slo"]["attainment"]
    assert 0 < attained < 1
    assert tight["cost"]["usd_per_million_tokens"]["goodput"] > per_m["blended"]


def test_step_time_scale_is_the_same_as_a_proportionally_slower_profile() -> None:
    # Metamorphic: doubling every step time by the scale or by the profile is one thing.
    scaled = sim.run(_static_fleet(50.0, step_time_scale=2.0)).to_dict()
    slower = sim.run(_static_fleet(50.0) | {"profile": {"kind": "constant",
                                                         "step_s": 2 * STEP_S}}).to_dict()
    for key in ("latency_s", "throughput", "utilization", "cost"):
        assert scaled[key] == slower[key]
    assert scaled["profile"]["step_time_scale"] == 2.0
