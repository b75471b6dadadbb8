"""Cached-input cost and the prefix-cache figures of a result: the cost module's worked
prefix-cache example by hand, and a real run's engine result given cache columns by hand
(the hit ratio counts requests by their first token, the split still adds up to the window
cost, a cache that reused nothing prices like no cache, and without one nothing changes)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from builders import scenario

import sim
from sim.errors import InputError
from sim.metrics.cost import capacity_price, token_cost
from sim.report.document import compose
from sim.report.load import from_run_data
from sim.report.result_schema import RUN, walk
from sim.report.run_text import format_summary
from sim.runner import build, result

CACHED_PREFILL_S_PER_TOKEN = 2e-6  # what the hand-made reuse costs, per cached token


def test_worked_prefix_cache_example_from_the_cost_docstring() -> None:
    c = token_cost(gpus=2, gpu_hour_usd=2.5, window_s=600, prefill_busy_s=250,
                   decode_busy_s=750, input_tokens=2.0e6, output_tokens=0.5e6,
                   cached_prefill_s=50, cached_tokens=1.0e6)
    assert c.window_usd == pytest.approx(0.8333, abs=1e-4)
    assert c.cached_input_usd_per_million == pytest.approx(0.04167, abs=1e-5)
    assert c.input_usd_per_million == pytest.approx(0.08333, abs=1e-5)
    assert c.output_usd_per_million == pytest.approx(1.25, abs=1e-9)
    assert c.blended_usd_per_million == pytest.approx(0.2381, abs=1e-4)
    spent = (2.0 * c.input_usd_per_million + 1.0 * c.cached_input_usd_per_million
             + 0.5 * c.output_usd_per_million)
    assert spent == pytest.approx(c.window_usd)


def test_worked_capacity_example_with_cached_tokens() -> None:
    p = capacity_price(gpu_hour_usd=2.0, paid_gpu_s=1800, prefill_gpu_s_per_token=5e-5,
                       decode_gpu_s_per_token=1e-3, input_tokens=2e6, output_tokens=501_000,
                       requests=1000, cached_gpu_s=30, cached_tokens=1.5e6)
    assert p.used_fraction == pytest.approx(0.35)
    assert p.at_capacity_cached_input == pytest.approx(0.01111, abs=1e-5)
    assert p.split_cached_input == pytest.approx(0.03175, abs=1e-5)
    assert p.split_input == pytest.approx(0.07937, abs=1e-5)
    assert p.split_output == pytest.approx(1.584, abs=1e-3)
    assert p.at_capacity_blended == pytest.approx(0.08748, abs=1e-5)
    spent = 2.0 * p.split_input + 1.5 * p.split_cached_input + 0.501 * p.split_output
    assert spent == pytest.approx(1.0, rel=1e-9)


def test_without_cached_tokens_the_prices_are_the_old_ones_exactly() -> None:
    plain = token_cost(2, 2.5, 600, 250, 750, 2.0e6, 0.5e6)
    # Reuse seconds without a cached token have no one to charge: nothing changes.
    idle = token_cost(2, 2.5, 600, 250, 750, 2.0e6, 0.5e6, cached_prefill_s=50)
    assert plain.cached_input_usd_per_million is None
    assert idle == plain
    assert plain.input_usd_per_million == 0.8333333333333334 * 0.25 / 2.0
    assert capacity_price(2.0, 1800, 5e-5, 1e-3, 2e6, 501_000, 1000).split_cached_input is None


@pytest.fixture(scope="module")
def plain() -> result.Result:
    return sim.run(scenario(duration_s=30.0, warmup_s=5.0))


def _with_cache(done: result.Result, cached: np.ndarray,
                evicted: tuple[int, ...] | None = None) -> result.Result:
    """The same run as if a prefix cache had served `cached` prompt tokens per request, at
    CACHED_PREFILL_S_PER_TOKEN of prefill each, and evicted `evicted` blocks per replica."""
    engine = done.engine
    replicas = engine.replicas if evicted is None else tuple(
        replace(r, evicted_blocks=n) for r, n in zip(engine.replicas, evicted, strict=True))
    engine = replace(engine, replicas=replicas, cached_tokens=cached,
                     cached_prefill_s=cached * CACHED_PREFILL_S_PER_TOKEN)
    return result.build(done.scenario, done.seed, done.workload, engine,
                        build.step_model(done.scenario),
                        done.record.kv_capacity_tokens_per_replica, 0.0, done.record.sim_mode
                        == "exact")


def _half_prompts(done: result.Result) -> np.ndarray:
    return done.workload.prompt_tokens // 2


def _in_window(done: result.Result) -> np.ndarray:
    first = done.engine.first_token_s
    return (first >= done.record.window_start_s) & (first < done.record.window_end_s)


def test_hit_ratio_counts_the_requests_whose_first_token_came_in_the_window(
        plain: result.Result) -> None:
    cached = _half_prompts(plain)
    doc = _with_cache(plain, cached, evicted=(3, 4)).to_dict()
    inside = _in_window(plain)
    assert (~inside).any() and inside.any()  # requests on both sides of the window's edges
    assert doc["prefix_cache"] == {
        "enabled": True,
        "hit_ratio": cached[inside].sum() / plain.workload.prompt_tokens[inside].sum(),
        "hit_tokens": int(cached[inside].sum()),
        "evicted_blocks": 7, "reloaded_tokens": 0}
    # Hits only on requests prefilled before the window: none counts.
    before = np.where(plain.engine.first_token_s < plain.record.window_start_s, cached, 0)
    assert before.any()
    outside = _with_cache(plain, before).to_dict()["prefix_cache"]
    assert outside["hit_tokens"] == 0 and outside["hit_ratio"] == 0.0


def test_the_cached_share_is_carved_out_of_the_prefill_share(plain: result.Result) -> None:
    cached = _half_prompts(plain)
    done = _with_cache(plain, cached)
    r, before = done.record, plain.record
    inside = _in_window(plain)
    hits = float(cached[inside].sum())
    reuse_s = hits * CACHED_PREFILL_S_PER_TOKEN
    replicas = plain.engine.replicas
    busy_s = sum(x.prefill_s + x.decode_s for x in replicas)
    assert reuse_s < sum(x.prefill_s for x in replicas)  # the cap does not bind here
    window_s = r.window_end_s - r.window_start_s
    fresh, out = r.input_tokens_per_s * window_s, r.output_tokens_per_s * window_s
    assert r.usd_per_million_cached_input == pytest.approx(
        r.window_usd * reuse_s / busy_s / hits * 1e6, rel=1e-12)
    assert r.usd_per_million_output == before.usd_per_million_output  # decode share as before
    assert r.usd_per_million_input < before.usd_per_million_input
    assert r.usd_per_million_blended == pytest.approx(r.window_usd / (fresh + hits + out) * 1e6)
    spent = (r.usd_per_million_input * fresh + r.usd_per_million_cached_input * hits
             + r.usd_per_million_output * out) / 1e6
    assert spent == pytest.approx(r.window_usd, rel=1e-12)
    # The capacity split adds the reuse's GPU-seconds and still adds up to the window cost.
    gpu_s = reuse_s * r.gpus_per_replica
    assert r.usd_per_million_cached_input_at_capacity == pytest.approx(
        r.gpu_hour_usd / 3600 * gpu_s / hits * 1e6, rel=1e-12)
    assert r.capacity_used_fraction == pytest.approx(
        before.capacity_used_fraction + gpu_s / (r.gpu_hours * 3600), rel=1e-12)
    split = (r.usd_per_million_input_capacity_split * fresh
             + r.usd_per_million_cached_input_capacity_split * hits
             + r.usd_per_million_output_capacity_split * out) / 1e6
    assert split == pytest.approx(r.window_usd, rel=1e-9)
    # Goodput counts cached tokens as delivered, as blended does: every request met the SLO.
    assert r.slo_attainment == 1.0
    assert r.usd_per_million_goodput == pytest.approx(r.usd_per_million_blended)


def test_a_cache_that_reused_nothing_prices_like_none(plain: result.Result) -> None:
    none = np.zeros(len(plain.workload), dtype=np.int64)
    doc, before = _with_cache(plain, none).to_dict(), plain.to_dict()
    per_m = doc["cost"]["usd_per_million_tokens"]
    assert list(per_m) == ["input", "cached_input", "output", "blended", "goodput"]
    assert per_m.pop("cached_input") is None
    assert per_m == before["cost"]["usd_per_million_tokens"]
    assert doc["prefix_cache"] == {"enabled": True, "hit_ratio": 0.0, "hit_tokens": 0,
                                   "evicted_blocks": 0, "reloaded_tokens": 0}
    walk(RUN, doc, "", "result.json")


def test_without_a_prefix_cache_the_result_has_no_cache_prices(plain: result.Result) -> None:
    doc = plain.to_dict()
    # The block is a contract key: there, saying nothing was reused.
    assert doc["prefix_cache"] == {"enabled": False, "hit_ratio": 0.0, "hit_tokens": 0,
                                   "evicted_blocks": 0, "reloaded_tokens": 0}
    cost = doc["cost"]
    assert list(cost["usd_per_million_tokens"]) == ["input", "output", "blended", "goodput"]
    assert list(cost["usd_per_million_tokens_at_capacity"]) == ["input", "output", "blended"]
    assert list(cost["usd_per_million_tokens_capacity_split"]) == ["input", "output"]
    assert plain.record.prefix_hit_tokens is None
    assert plain.record.usd_per_million_cached_input is None
    text = format_summary(doc)
    assert "cached" not in text and "prefix cache" not in text


def test_the_schema_takes_the_cache_block_and_refuses_a_ratio_above_one(
        plain: result.Result) -> None:
    doc = _with_cache(plain, _half_prompts(plain)).to_dict()
    walk(RUN, doc, "", "result.json")
    doc["prefix_cache"]["hit_ratio"] = 1.5
    with pytest.raises(InputError, match="prefix_cache.hit_ratio"):
        walk(RUN, doc, "", "result.json")


def test_summary_and_report_show_the_cache_and_the_cached_price(plain: result.Result) -> None:
    doc = _with_cache(plain, _half_prompts(plain), evicted=(5, 0)).to_dict()
    text = format_summary(doc)
    cache = doc["prefix_cache"]
    assert (f"prefix cache hit ratio {cache['hit_ratio']:.1%} of prompt tokens "
            f"({cache['hit_tokens']:,} reused in the window)   evicted 5 blocks") in text
    cached_usd = doc["cost"]["usd_per_million_tokens"]["cached_input"]
    assert f"cached input ${cached_usd:,.4f}" in text
    report = compose(from_run_data(doc))
    tables = {b.name: b for s in report.sections for b in s.blocks if hasattr(b, "rows")}
    kinds = tables["cost_by_token_kind.csv"]
    assert kinds.columns[2] == "cached input"
    assert [row[2] for row in kinds.rows] == [
        cached_usd, doc["cost"]["usd_per_million_tokens_at_capacity"]["cached_input"],
        doc["cost"]["usd_per_million_tokens_capacity_split"]["cached_input"]]
    summary = " ".join(b for b in report.sections[0].blocks if isinstance(b, str))
    assert "prefix cache served" in summary and "cached input" in summary
    plain_report = compose(from_run_data(plain.to_dict()))
    assert not any(getattr(b, "name", "") == "cost_by_token_kind.csv"
                   for s in plain_report.sections for b in s.blocks)
