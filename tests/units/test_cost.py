"""Cost model: the README's worked example, by hand, and the run-level identities."""

from __future__ import annotations

import pytest
from builders import scenario

import sim
from sim.metrics.cost import token_cost


def test_worked_example_from_the_readme() -> None:
    c = token_cost(gpus=2, gpu_hour_usd=2.5, window_s=600, prefill_busy_s=250,
                   decode_busy_s=750, input_tokens=2.0e6, output_tokens=0.5e6)
    assert c.fleet_usd_per_hour == 5.0
    assert c.window_usd == pytest.approx(0.8333, abs=1e-4)
    assert c.input_usd_per_million == pytest.approx(0.1042, abs=1e-4)
    assert c.output_usd_per_million == pytest.approx(1.25, abs=1e-9)
    assert c.blended_usd_per_million == pytest.approx(0.3333, abs=1e-4)


def test_no_tokens_means_no_price_rather_than_infinity() -> None:
    c = token_cost(1, 2.0, 60, 0.0, 0.0, 0, 0)
    assert c.blended_usd_per_million is None and c.input_usd_per_million is None


def test_run_cost_identities() -> None:
    d = sim.run(scenario(duration_s=120.0, warmup_s=20.0)).to_dict()
    window_s = 100.0
    gpus = d["fleet"]["gpus"]
    assert d["cost"]["fleet_usd_per_hour"] == gpus * 2.5
    window_usd = gpus * 2.5 * window_s / 3600
    thr = d["throughput"]
    tokens_in = thr["input_tokens_per_s"] * window_s
    tokens_out = thr["output_tokens_per_s"] * window_s
    per_m = d["cost"]["usd_per_million_tokens"]
    assert per_m["blended"] == pytest.approx(window_usd / (tokens_in + tokens_out) * 1e6)
    # Input and output shares add back up to the whole window's cost.
    spent = per_m["input"] * tokens_in / 1e6 + per_m["output"] * tokens_out / 1e6
    assert spent == pytest.approx(window_usd)


def test_price_scales_cost_linearly() -> None:
    # Metamorphic: doubling the GPU price doubles every cost figure and changes nothing else.
    a = sim.run(scenario(cost={"gpu_hour_usd": 2.0})).to_dict()
    b = sim.run(scenario(cost={"gpu_hour_usd": 4.0})).to_dict()
    for key in ("input", "output", "blended"):
        ratio = b["cost"]["usd_per_million_tokens"][key] / a["cost"]["usd_per_million_tokens"][key]
        assert ratio == pytest.approx(2.0)
    assert a["latency_s"] == b["latency_s"]
