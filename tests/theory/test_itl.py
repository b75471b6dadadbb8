"""Inter-token latency against closed forms: gaps of a constant and of a linear step model,
the stall a chunked prefill gives the decodes it joins, gap totals that must equal each
request's TTFT-to-last-token time, exact mode = event skipping, and an ITL target that
fails a run whose TTFT and TPOT pass."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
from builders import dynamic, scenario
from engine_seam import BASE, STEP, requests, run

import sim
from sim.engine.gaps import BINS_PER_DECADE
from sim.engine.records import EngineResult
from sim.engine.simulation import simulate
from sim.metrics import latency
from sim.runner import build

BIN_RATIO = 10.0 ** (1.0 / BINS_PER_DECADE)  # a reported quantile is within this factor


class LinearStep:
    """A step costs `base_s` + `per_seq_s` per decoding sequence + `per_kv_s` per context
    token its decodes read, plus `per_prefill_s` per prompt token it prefills: the form the
    engine skips decode runs under, with prefill that takes time (ConstantStep's does not)."""

    def __init__(self, base_s: float = 0.01, per_seq_s: float = 1e-4, per_kv_s: float = 1e-4,
                 per_prefill_s: float = 0.0) -> None:
        self.base_s, self.per_seq_s = base_s, per_seq_s
        self.per_kv_token_s, self.per_prefill_s = per_kv_s, per_prefill_s

    def decode_fixed_s(self, batch: int) -> float:
        return self.base_s + self.per_seq_s * batch

    def decode_s(self, seqs: int, kv_tokens: int) -> float:
        return self.decode_fixed_s(seqs) + self.per_kv_token_s * kv_tokens

    def step_s(self, prefill_tokens: int, prefill_attn_pairs: float, decode_seqs: int,
               decode_kv_tokens: int) -> tuple[float, float]:
        prefill = self.per_prefill_s * prefill_tokens
        if not decode_seqs:
            return self.base_s + prefill, 0.0
        return prefill, self.decode_s(decode_seqs, decode_kv_tokens)


def _gaps(engine: EngineResult) -> tuple[np.ndarray, np.ndarray]:
    return engine.gaps.since(-math.inf)


def _inverse_cdf(values: np.ndarray, percentile: float) -> float:
    """The smallest value at or below which `percentile` % of `values` lie."""
    ordered = np.sort(values)
    return float(ordered[math.ceil(percentile / 100.0 * ordered.size - 1e-9) - 1])


def _simulate(reqs: Any, model: LinearStep, exact: bool = False, **changes: Any) -> EngineResult:
    cfg = dataclasses.replace(BASE, exact=exact, **changes)
    return simulate(cfg, reqs, model, np.random.default_rng(0))


@pytest.mark.parametrize("exact", [False, True])
def test_constant_steps_give_every_gap_the_step_time(exact: bool) -> None:
    # Four requests decoding together, each step STEP long: every gap is STEP, so the mean
    # and every quantile are STEP (a bin holding one length reports it exactly).
    outputs = [40, 25, 60, 33]
    result = run(requests(*((0.0, 8, n) for n in outputs)), exact=exact)
    weights, seconds = _gaps(result)
    assert weights.sum() == sum(n - 1 for n in outputs)
    itl = latency.gap_stats(weights, seconds)
    for value in (itl.mean, itl.p50, itl.p90, itl.p99):
        assert value == pytest.approx(STEP, rel=1e-12)
    assert np.allclose(result.max_gap_s, STEP, rtol=1e-12)


@pytest.mark.parametrize("exact", [False, True])
def test_linear_steps_give_gaps_in_closed_form(exact: bool) -> None:
    # Request 0 arrives first and is prefilled alone; the other three join in a step mixed
    # with request 0's first decode, whose length m is its own gap. From then on all four
    # decode together: decode step i reads KV₀ + 4i context tokens and closes 4 gaps of
    # base + 4·per_seq + per_kv·(KV₀ + 4i), i = 0 … O − 2, with KV₀ = (P + 2) + 3(P + 1)
    # (request 0 is one token ahead, so it wants O + 1 tokens to finish with the others).
    # Those gaps grow by a factor 2.3: a hundred bins, binned in closed form when skipped.
    p, o = 10, 50
    model = LinearStep(per_prefill_s=1e-3)
    reqs = requests((0.0, p, o + 1), (0.0, p, o), (0.0, p, o), (0.0, p, o))
    result = _simulate(reqs, model, exact)
    kv0 = (p + 2) + 3 * (p + 1)
    decode = np.array([model.decode_s(4, kv0 + 4 * i) for i in range(o - 1)])
    mixed = model.per_prefill_s * 3 * p + model.decode_s(1, p + 1)
    every_gap = np.concatenate([[mixed], np.repeat(decode, 4)])

    weights, seconds = _gaps(result)
    assert weights.sum() == every_gap.size
    itl = latency.gap_stats(weights, seconds)
    assert itl.mean == pytest.approx(every_gap.mean(), rel=1e-12)
    for q, got in ((50, itl.p50), (90, itl.p90), (99, itl.p99)):
        want = _inverse_cdf(every_gap, q)
        assert want / BIN_RATIO <= got <= want * BIN_RATIO, q
    # Each request's longest gap: its last decode step, or request 0's mixed step.
    assert result.max_gap_s[1:] == pytest.approx(decode[-1], rel=1e-12)
    assert result.max_gap_s[0] == pytest.approx(max(mixed, decode[-1]), rel=1e-12)


@pytest.mark.parametrize("exact", [False, True])
def test_a_chunked_prefill_stalls_every_decode_it_joins(exact: bool) -> None:
    # Four requests decode; at 0.3 s a 3,000-token prompt arrives and is prefilled in one
    # step beside their decodes. That step lasts 3 ms per 1,000 prompt tokens more: each of
    # the four gets one gap of its length. 4 of 197 gaps: the p99 is the stall, the p50 and
    # the mean barely move, and each of the four requests' longest gap is the stall.
    model = LinearStep(per_kv_s=1e-6, per_prefill_s=1e-5)
    prompt, long_prompt, output = 16, 3000, 50
    reqs = requests(*((0.0, prompt, output) for _ in range(4)), (0.3, long_prompt, 2))
    result = _simulate(reqs, model, exact, max_batched_tokens=4096, kv_capacity_tokens=10_000)
    weights, seconds = _gaps(result)
    assert weights.sum() == 4 * (output - 1) + 1
    itl = latency.gap_stats(weights, seconds)
    longest = result.max_gap_s[:4]
    assert np.ptp(longest) == pytest.approx(0.0, abs=1e-15)  # one step stalled all four
    stall = float(longest[0])
    assert stall > model.per_prefill_s * long_prompt  # the prefill's 30 ms and the decodes
    assert itl.p99 == pytest.approx(stall, rel=1e-12)
    assert itl.p50 is not None and itl.p50 < stall / 3
    assert itl.mean is not None and itl.mean < 1.2 * itl.p50
    assert result.first_token_s[4] - result.arrival_s[4] < 2 * stall  # it waited one step at most


def _run_whole(monkeypatch: pytest.MonkeyPatch, data: dict[str, Any],
               exact: bool) -> sim.Result:
    """`sim.run` with the engine counting every gap, warm-up and drain included, and each
    request's longest gap kept (as a run with an ITL target keeps it)."""
    engine_config = build.engine_config

    def whole(*args: Any, **kwargs: Any) -> Any:
        cfg = engine_config(*args, **kwargs)
        return dataclasses.replace(cfg, window_start_s=0.0, window_end_s=math.inf,
                                   window_marks_s=(), track_longest_gaps=True)

    monkeypatch.setattr(build, "engine_config", whole)
    return sim.run(data, exact=exact, warn_window=False)


KV_PRESSURE = {"name": "tiny", "memory_gib": 18.5, "memory_bandwidth_tb_s": 3.35,
               "bf16_tflops": 989.0}


def _kv_pressure(policy: str) -> dict[str, Any]:
    """~12k tokens of KV for long outputs: sequences are evicted and recomputed."""
    return scenario(
        duration_s=60.0, gpu=KV_PRESSURE,
        deployment={"replicas": 1, "gpu_memory_utilization": 1.0, "activation_reserve_gib": 2.0,
                    "scheduler": {"policy": policy, "max_num_seqs": 64,
                                  "max_batched_tokens": 4096}},
        workload={"arrival": {"process": "poisson", "rate_per_s": 3.0},
                  "prompt_tokens": {"dist": "uniform", "low": 200, "high": 1200},
                  "output_tokens": {"dist": "uniform", "low": 200, "high": 1500}})


@pytest.mark.parametrize(("label", "data"), [
    ("kv-pressure-chunked-prefill", _kv_pressure("chunked-prefill")),
    ("kv-pressure-prefill-first", _kv_pressure("prefill-first")),
    ("failures-static", dynamic("failures", "static")),
])
def test_each_requests_gaps_add_up_to_its_time_from_first_to_last_token(
        monkeypatch: pytest.MonkeyPatch, label: str, data: dict[str, Any]) -> None:
    # Conservation: a finished request of n tokens has n − 1 gaps whose lengths sum to its
    # E2E − TTFT, evictions, recomputes and hand-backs to other replicas included. Each
    # longest gap lies between the request's mean gap (TPOT) and that whole time.
    result = _run_whole(monkeypatch, data, exact=False)
    e = result.engine
    finished = np.isfinite(e.finish_s)
    assert finished.all()
    assert e.preemptions.sum() + e.requeues.sum() > 0, label  # the hard paths were taken
    out = result.workload.output_tokens
    span = e.finish_s - e.first_token_s
    weights, seconds = _gaps(e)
    assert weights.sum() == (out - 1).sum()
    assert seconds.sum() == pytest.approx(span.sum(), rel=1e-9)
    several = out > 1
    tpot = span[several] / (out[several] - 1)
    assert np.all(e.max_gap_s[several] >= tpot * (1 - 1e-9))
    assert np.all(e.max_gap_s[several] <= span[several] * (1 + 1e-9))


def _same_gaps(fast: EngineResult, exact: EngineResult) -> None:
    wf, sf = _gaps(fast)
    we, se = _gaps(exact)
    assert wf.sum() == we.sum() > 1000
    assert sf.sum() / wf.sum() == pytest.approx(se.sum() / we.sum(), rel=1e-12)
    for q in (50, 90, 99, 99.9):
        f, e = latency.gap_percentile(wf, sf, q), latency.gap_percentile(we, se, q)
        assert f is not None and e is not None
        assert e / BIN_RATIO <= f <= e * BIN_RATIO, q
    assert np.allclose(fast.max_gap_s, exact.max_gap_s, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("label", "data"), [
    ("prefill-first", scenario(
        duration_s=90.0,
        deployment={"replicas": 3, "scheduler": {"policy": "prefill-first", "max_num_seqs": 48,
                                                 "max_batched_tokens": 2048}},
        workload={"arrival": {"process": "gamma", "rate_per_s": 6.0, "cv": 2.0},
                  "prompt_tokens": {"dist": "lognormal", "mean": 900, "sigma": 1.0},
                  "output_tokens": {"dist": "uniform", "low": 1, "high": 400}})),
    ("cut-off-static", scenario(
        duration_s=60.0, warmup_s=5.0, drain_s=0.0,
        deployment={"replicas": 2, "scheduler": {"policy": "static", "max_num_seqs": 16,
                                                 "max_batched_tokens": 2048}},
        workload={"arrival": {"process": "poisson", "rate_per_s": 40.0},
                  "prompt_tokens": {"dist": "lognormal", "mean": 500, "sigma": 0.5},
                  "output_tokens": {"dist": "uniform", "low": 50, "high": 400}})),
    ("kv-pressure", _kv_pressure("chunked-prefill")),
    ("spot", dynamic("spot", "chunked-prefill")),
    ("warmup-auto", scenario(duration_s=120.0, warmup_s="auto")),
])
def test_exact_mode_equals_event_skipping_on_gaps(label: str, data: dict[str, Any]) -> None:
    # An ITL target, so that each request's longest gap is kept and compared too.
    data = {**data, "slo": {**data["slo"], "itl_s": 10.0}}
    fast = sim.run(data, warn_window=False)
    exact = sim.run(data, exact=True, warn_window=False)
    _same_gaps(fast.engine, exact.engine)
    assert fast.record.itl_p99_s == pytest.approx(exact.record.itl_p99_s, rel=BIN_RATIO - 1)


def test_the_window_counts_the_gaps_that_end_inside_it() -> None:
    # Gaps counted from warm-up on are the whole run's less those that ended before it; the
    # automatic warm-up's rows add up to the whole window.
    data = scenario(duration_s=60.0, warmup_s=0.0, drain_s=0.0)
    whole = sim.run(data, warn_window=False).engine
    later = sim.run({**data, "warmup_s": 18.0}, warn_window=False).engine
    auto = sim.run({**data, "warmup_s": "auto"}, warn_window=False).engine
    w_whole, w_later, w_auto = (_gaps(e)[0].sum() for e in (whole, later, auto))
    assert 0 < w_later < w_whole == w_auto
    assert 18.0 in auto.gaps.start_s  # a mark (60 s × 30/100): the start of a row
    assert auto.gaps.since(18.0)[0].sum() == w_later


def test_an_itl_target_fails_a_run_whose_ttft_and_tpot_pass() -> None:
    # Chunked prefill of 8,000-token prompts stalls the decodes beside them: most gaps are
    # decode steps of ~4.5 ms, and a request decoding for ~0.5 s sees about two arrivals'
    # prefill steps of ~20 ms (2% of its gaps). A target between the p50 and the p99 of the
    # gaps fails the SLO while TTFT and TPOT pass.
    profile = {"kind": "linear", "base_s": 0.004, "per_prefill_token_s": 2e-6,
               "per_decode_seq_s": 1e-4, "per_kv_token_s": 2e-8}
    data = scenario(
        duration_s=120.0, warmup_s=10.0, profile=profile,
        deployment={"replicas": 1, "scheduler": {"policy": "chunked-prefill",
                                                 "max_num_seqs": 32,
                                                 "max_batched_tokens": 8192}},
        workload={"arrival": {"process": "poisson", "rate_per_s": 4.0},
                  "prompt_tokens": {"dist": "fixed", "value": 8000},
                  "output_tokens": {"dist": "fixed", "value": 100}},
        slo={"ttft_s": 5.0, "tpot_s": 1.0, "percentile": 99})
    free = sim.run(data).record
    assert free.slo_met and free.slo_itl_met is None and free.slo_itl_s is None
    assert free.itl_p50_s is not None and free.itl_p99_s is not None
    assert free.itl_p99_s > 3 * free.itl_p50_s
    target = math.sqrt(free.itl_p50_s * free.itl_p99_s)
    judged = sim.run({**data, "slo": {**data["slo"], "itl_s": target}}).record
    assert judged.slo_ttft_met and judged.slo_tpot_met
    assert judged.slo_itl_met is False
    assert judged.slo_met is False
    assert judged.slo_attainment is not None and free.slo_attainment is not None
    assert judged.slo_attainment < free.slo_attainment
    # A target above every gap changes nothing.
    loose = sim.run({**data, "slo": {**data["slo"], "itl_s": 10.0}}).record
    assert loose.slo_met and loose.slo_itl_met and loose.slo_attainment == free.slo_attainment


def test_the_gaps_do_not_depend_on_keeping_each_requests_longest() -> None:
    # Without an ITL target the engine may skip the per-request longest gap; the histogram
    # of all gaps is the same, bin for bin.
    model = LinearStep(per_prefill_s=1e-4)
    reqs = requests(*((0.05 * i, 40 + 7 * i, 30 + 11 * i) for i in range(12)))
    kept = _simulate(reqs, model)
    skipped = _simulate(reqs, model, track_longest_gaps=False)
    assert kept.max_gap_s is not None and skipped.max_gap_s is None
    assert np.array_equal(kept.gaps.weights, skipped.gaps.weights)
    assert np.array_equal(kept.gaps.seconds, skipped.gaps.seconds)
    assert np.array_equal(kept.finish_s, skipped.finish_s)
