"""The pieces of inter-token latency: binning a run of decode steps in closed form against
binning each gap, the window's rows, the suffix maxima behind each request's longest gap,
quantiles of a binned histogram, the ITL target in the SLO, and how results show ITL."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from builders import Case, tiny

from sim.engine.gaps import BINS, BINS_PER_DECADE, GapHistogram, GapRecorder, LongestGaps, bin_of
from sim.errors import InputError
from sim.metrics import latency
from sim.report import result_schema
from sim.report.run_text import format_summary

BIN_RATIO = 10.0 ** (1.0 / BINS_PER_DECADE)


def _by_gap(gaps_s: np.ndarray, weight: int) -> np.ndarray:
    """Each gap binned on its own: what the closed form must reproduce."""
    counts = np.zeros(BINS)
    for gap in gaps_s:
        counts[bin_of(float(gap))] += weight
    return counts


def _inverse_cdf(values: np.ndarray, weights: np.ndarray, percentile: float) -> float:
    """The smallest value at or below which `percentile` % of the weight lies."""
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, percentile / 100 * cumulative[-1])])


@pytest.mark.parametrize("seed", range(5))
def test_a_run_of_steps_is_binned_as_its_gaps_one_by_one(seed: int) -> None:
    # Runs whose steps grow from 1–50 ms to up to 10× that, crossing up to 300 bins.
    rng = np.random.default_rng(seed)
    histogram = GapHistogram(0.0, math.inf, ())
    recorder = GapRecorder(histogram)
    expected = np.zeros(BINS)
    every_gap, every_weight = [], []
    start_s = 0.0
    for _ in range(40):
        a = float(rng.uniform(1e-3, 5e-2))
        k = int(rng.integers(1, 400))
        h = float(rng.choice([0.0, rng.uniform(0, 9 * a / max(k, 2))]))
        weight = int(rng.integers(1, 64))
        end_s = start_s + k * a + h * k * (k - 1)
        recorder.run(start_s, end_s, a, h, 0, k, weight, 0)
        gaps_s = a + 2 * h * np.arange(k)
        expected += _by_gap(gaps_s, weight)
        every_gap.append(gaps_s)
        every_weight.append(np.full(k, float(weight)))
        start_s = end_s
    counts = histogram.counts()
    weights, seconds = counts.weights[0], counts.seconds[0]
    values, value_weights = np.concatenate(every_gap), np.concatenate(every_weight)
    assert weights.sum() == expected.sum() == value_weights.sum()
    assert seconds.sum() == pytest.approx(float(values @ value_weights), rel=1e-12)
    # A gap within float rounding of a bin edge may land in the bin beside it, no further.
    assert np.abs(np.cumsum(weights - expected)).max() <= 64
    for q in (1, 10, 50, 90, 99, 99.9):
        got = latency.gap_percentile(weights, seconds, q)
        want = _inverse_cdf(values, value_weights, q)
        assert got is not None
        assert want / BIN_RATIO <= got <= want * BIN_RATIO, q


def test_steps_count_in_the_row_of_the_window_they_end_in() -> None:
    # A run from 0.5 s to past 3.5 s against a window [1, 3) with a mark at 2: the steps
    # ending before 1 or at or after 3 are left out, the others go to the row they end in.
    histogram = GapHistogram(1.0, 3.0, (2.0,))
    recorder = GapRecorder(histogram)
    a, h, k, weight = 0.01, 2e-5, 150, 3
    start_s = 0.5
    ends_s = start_s + np.arange(1, k + 1) * a + h * np.arange(1, k + 1) * np.arange(k)
    recorder.run(start_s, float(ends_s[-1]), a, h, 0, k, weight, 0)
    counts = histogram.counts()
    assert list(counts.start_s) == [1.0, 2.0]
    gaps_s = a + 2 * h * np.arange(k)
    for row, (lo, hi) in enumerate(((1.0, 2.0), (2.0, 3.0))):
        inside = (ends_s >= lo) & (ends_s < hi)
        assert counts.weights[row].sum() == weight * inside.sum() > 0
        assert counts.seconds[row].sum() == pytest.approx(weight * gaps_s[inside].sum())
    later_w, _ = counts.since(2.0)
    assert later_w.sum() == weight * ((ends_s >= 2.0) & (ends_s < 3.0)).sum()


def test_single_gaps_outside_the_window_are_left_out() -> None:
    histogram = GapHistogram(1.0, 2.0, ())
    recorder = GapRecorder(histogram)
    for end_s in (0.5, 1.0, 1.5, 2.0, 2.5):
        recorder.gaps(end_s, 0.1, 1)
    assert histogram.counts().weights.sum() == 2  # ending at 1.0 and 1.5


def test_longest_since_is_the_maximum_of_the_later_steps() -> None:
    rng = np.random.default_rng(3)
    recorder = LongestGaps(GapHistogram(0.0, math.inf, ()))
    seen: list[tuple[int, float]] = []
    step = 1
    for _ in range(300):
        gap_s = float(rng.exponential(0.01))
        recorder.step(step, gap_s, 1, step)
        seen.append((step, gap_s))
        step += int(rng.integers(1, 4))
        for n in (1, step // 2, step - 3, step):
            want = max((g for s, g in seen if s >= n), default=0.0)
            assert recorder.longest_since(n) == want
    recorder.forget_steps()
    assert recorder.longest_since(0) == 0.0
    # A plain recorder keeps none (the engine asks only when it tracks them).
    assert GapRecorder(GapHistogram(0.0, 1.0, ())).longest_since(0) == 0.0


def test_quantiles_of_a_binned_histogram_are_bin_means() -> None:
    weights = np.zeros(BINS)
    seconds = np.zeros(BINS)
    for gap_s, n in ((0.010, 90), (0.011, 9), (0.050, 1)):
        b = bin_of(gap_s)
        weights[b] += n
        seconds[b] += n * gap_s
    stats = latency.gap_stats(weights, seconds)
    assert stats.mean == pytest.approx((0.9 + 0.099 + 0.05) / 100)
    assert stats.p50 == pytest.approx(0.010)
    assert stats.p90 == pytest.approx(0.010)  # 90 of 100 gaps are at or below 10 ms
    assert stats.p99 == pytest.approx(0.011)
    assert latency.gap_percentile(weights, seconds, 99.5) == pytest.approx(0.050)
    assert latency.gap_stats(np.zeros(BINS), np.zeros(BINS)).p99 is None


def test_bins_are_log_spaced_and_catch_every_length() -> None:
    assert bin_of(1e-3 * BIN_RATIO ** 0.5) == bin_of(1e-3 * BIN_RATIO ** 0.9)
    assert bin_of(1e-3 * BIN_RATIO ** 1.1) == bin_of(1e-3 * BIN_RATIO ** 0.5) + 1
    assert bin_of(0.0) == 0 and bin_of(1e-9) == 0
    assert bin_of(1e9) == BINS - 1


def _lat(ttft_s: list[float], worst_gap_s: list[float] | None) -> latency.Latencies:
    ttft = np.array(ttft_s)
    e2e = ttft + 1.0
    worst = None if worst_gap_s is None else np.array(worst_gap_s)
    return latency.Latencies(ttft, np.full(ttft.size, 0.01), e2e, np.zeros(ttft.size), worst)


def test_an_itl_target_judges_each_requests_longest_gap() -> None:
    # Four requests within TTFT and TPOT; one had a 90 ms stall, one output a single token
    # (no gap: nothing to judge).
    lat = _lat([0.1, 0.1, 0.1, 0.1], [0.02, 0.09, math.nan, 0.03])
    assert latency.slo_attainment(lat, 1.0, 0.05).tolist() == [True] * 4
    assert latency.slo_attainment(lat, 1.0, 0.05, 0.05).tolist() == [True, False, True, True]
    assert latency.slo_met(lat, 1.0, 0.05, 75.0, 0.05) is True
    assert latency.slo_met(lat, 1.0, 0.05, 99.0, 0.05) is False
    assert latency.slo_met(lat, 1.0, 0.05, 99.0) is True
    assert latency.subset(lat, np.array([True, False, True, True])).worst_gap_s is not None
    with pytest.raises(ValueError, match="worst_gap_s"):
        latency.slo_attainment(_lat([0.1], None), 1.0, 0.05, 0.05)


def test_worst_gaps_leave_one_token_outputs_out() -> None:
    worst = latency.worst_gaps(np.array([0.0, 0.02]), np.array([1, 5]))
    assert math.isnan(worst[0]) and worst[1] == 0.02


@pytest.mark.parametrize("value", [0, -0.5, "fast"])
def test_a_bad_itl_target_is_refused(value: object,
                                     check_rejected: Callable[[Case], None]) -> None:
    shown = "'fast'" if isinstance(value, str) else str(value)
    check_rejected(Case(f"itl-{value}", tiny(slo__itl_s=value), "slo.itl_s", shown))


def test_an_itl_target_loads() -> None:
    import sim

    assert sim.load_scenario(tiny(slo__itl_s=0.1)).slo.itl_s == 0.1
    assert sim.load_scenario(tiny()).slo.itl_s is None
    with pytest.raises(InputError):
        sim.load_scenario(tiny(slo__itl_s=math.inf))


def _result(itl: bool) -> dict:
    import sim

    d = sim.run(tiny(), warn_window=False).to_dict()
    d["latency_s"].pop("itl", None)
    d["slo"].pop("itl_s", None)
    if itl:
        d["latency_s"]["itl"] = {"mean": 0.011, "p50": 0.010, "p90": 0.012, "p99": 0.0456}
        d["slo"]["itl_s"] = 0.04
        d["slo"]["itl_met"] = False
    return d


def test_the_text_report_shows_an_itl_row_and_target() -> None:
    text = format_summary(_result(itl=True))
    row = next(line for line in text.splitlines() if line.startswith("ITL"))
    assert row.split()[1:] == ["11.0", "10.0", "12.0", "45.6"]
    assert "longest gap ≤ 0.04 s" in text
    old = format_summary(_result(itl=False))  # a result from before ITL existed
    assert not any(line.startswith("ITL") for line in old.splitlines())
    assert "longest gap" not in old


def test_the_result_schema_takes_itl_and_refuses_a_bad_one() -> None:
    d = _result(itl=True)
    result_schema.walk(result_schema.RUN, d, "", "run.json")
    d["latency_s"]["itl"]["p99"] = "slow"
    with pytest.raises(InputError, match="latency_s.itl.p99"):
        result_schema.walk(result_schema.RUN, d, "", "run.json")
