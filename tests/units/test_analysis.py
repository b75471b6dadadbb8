"""The numbers a report derives from a sweep's rows."""

from __future__ import annotations

import math

from sim.report.analysis import tornado


def _rows(price: list[float], gpu: list[str], cost: list[float]) -> list[dict]:
    return [{"point": 0, "usd_per_million_blended": c, "cost.gpu_hour_usd": p,
             "gpu": g} for p, g, c in zip(price, gpu, cost, strict=True)]


def test_tornado_slope_of_a_numeric_input_and_no_bar_for_a_choice_of_names() -> None:
    """Cost ∝ price exactly, so log cost = log price + c: the regression of log cost on price
    gives the swing from P5 to P95 around the base; an input drawn from names has no slope
    and gets no bar (it used to stop the report with a conversion error)."""
    price = [1.0, 2.0, 3.0, 4.0]
    rows = _rows(price, ["h100", "h200", "h100", "h200"], [0.1 * p for p in price])
    swings = tornado(rows, ["cost.gpu_hour_usd", "gpu"], base_usd=1.0)
    assert [s.key for s in swings] == ["cost.gpu_hour_usd"]
    assert math.isclose(swings[0].low_value, 1.15) and math.isclose(swings[0].high_value, 3.85)
    assert swings[0].usd_at_high > 1.0 > swings[0].usd_at_low
