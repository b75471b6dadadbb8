"""The SLO verdict counts users, not columns: `met` is the joint attainment rule, and the
marginal percentile verdicts are kept beside it under their own names."""

from __future__ import annotations

import numpy as np
import pytest

from sim.metrics import latency

TTFT_S, TPOT_S = 2.0, 0.05


def _lat(ttft_s: np.ndarray, tpot_s: np.ndarray, finished: np.ndarray | None = None
         ) -> latency.Latencies:
    e2e = ttft_s + 100 * tpot_s
    if finished is not None:
        e2e = np.where(finished, e2e, np.nan)
    return latency.Latencies(ttft_s, tpot_s, e2e, np.zeros_like(ttft_s))


def _missing(n: int, ttft_misses: slice, tpot_misses: slice) -> latency.Latencies:
    ttft, tpot = np.full(n, 1.0), np.full(n, 0.02)
    ttft[ttft_misses] = 3.0
    tpot[tpot_misses] = 0.08
    return _lat(ttft, tpot)


def test_marginal_percentiles_pass_while_the_joint_slo_fails() -> None:
    # 1,000 requests: 9 miss TTFT, 9 others miss TPOT. Each p99 is within its target
    # (991 of 1,000 meet it), but only 982 users (98.2%) met both.
    lat = _missing(1000, slice(0, 9), slice(9, 18))
    assert latency.marginal_met(lat, TTFT_S, TPOT_S, 99) == (True, True)
    assert latency.slo_attainment(lat, TTFT_S, TPOT_S).mean() == pytest.approx(0.982)
    assert latency.slo_met(lat, TTFT_S, TPOT_S, 99) is False


def test_misses_on_the_same_requests_count_once() -> None:
    # The 9 requests that miss TTFT also miss TPOT: 99.1% of users met both.
    lat = _missing(1000, slice(0, 9), slice(0, 9))
    assert latency.slo_met(lat, TTFT_S, TPOT_S, 99) is True
    assert latency.marginal_met(lat, TTFT_S, TPOT_S, 99) == (True, True)


@pytest.mark.parametrize(("n", "misses", "met"), [
    (100, 1, True),  # exactly 99%: met (no float rounding turns 99.0 into a miss)
    (100, 2, False),
    (99, 1, False),  # 98 of 99 is 98.99%
    (1, 0, True),
    (1, 1, False),
])
def test_joint_rule_at_the_boundary(n: int, misses: int, met: bool) -> None:
    lat = _missing(n, slice(0, misses), slice(0, 0))
    assert latency.slo_met(lat, TTFT_S, TPOT_S, 99) is met


def test_unfinished_requests_miss_both_ways() -> None:
    n = 200
    finished = np.ones(n, dtype=bool)
    finished[:3] = False  # 1.5% never finished
    lat = _lat(np.full(n, 1.0), np.full(n, 0.02), finished)
    lat = latency.Latencies(np.where(finished, lat.ttft_s, np.nan), lat.tpot_s, lat.e2e_s,
                            lat.queue_s)
    assert latency.slo_met(lat, TTFT_S, TPOT_S, 99) is False
    assert latency.marginal_met(lat, TTFT_S, TPOT_S, 99) == (False, False)
    assert latency.slo_met(lat, TTFT_S, TPOT_S, 98) is True


def test_nothing_measured_is_not_judged() -> None:
    empty = _lat(np.array([]), np.array([]))
    assert latency.slo_met(empty, TTFT_S, TPOT_S, 99) is None
    assert latency.marginal_met(empty, TTFT_S, TPOT_S, 99) == (None, None)
