"""The steady-state detector (MSER-5) on series with a known transient, and `warmup_s: auto`
in runs: the window it chooses, what the result records, bad input and the short-window
warning."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pytest
from builders import Case, scenario, tiny

import sim
from sim.metrics.steady import BATCH, mser
from sim.runner.single import WindowWarning

BINS = 200


def _noise(seed: int, n: int = BINS) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 1.0, n)


SEEDS = range(20)


@pytest.mark.parametrize("transient", [30, 60])
def test_a_ramp_up_is_cut_within_a_batch_of_its_end(transient: int) -> None:
    # An empty fleet filling up: the level climbs linearly from 0 to 10 (ten noise
    # standard deviations) over `transient` bins, then holds. Cutting early leaves bias in;
    # cutting late only costs observations, which MSER sometimes does by a few batches.
    level = np.minimum(np.arange(BINS) / transient, 1.0) * 10.0
    cuts = np.array([mser(level + _noise(seed)).observations for seed in SEEDS])
    assert abs(np.median(cuts) - transient) <= BATCH
    assert cuts.min() >= transient - BATCH
    assert cuts.max() <= transient + 6 * BATCH


def test_an_exponential_approach_is_cut_where_its_bias_falls_to_the_noise() -> None:
    # 10·(1 − e^(−t/10)): the gap to the steady level is one noise σ at t = 23 bins.
    t = np.arange(BINS)
    cuts = np.array([mser(10.0 * (1.0 - np.exp(-t / 10.0)) + _noise(seed)).observations
                     for seed in SEEDS])
    assert 20 <= np.median(cuts) <= 40
    assert cuts.min() >= 20


def test_a_stationary_series_is_truncated_little() -> None:
    cuts = np.array([mser(5.0 + _noise(seed)).observations for seed in SEEDS])
    assert np.median(cuts) == 0
    assert cuts.max() <= BINS // 8
    assert all(mser(5.0 + _noise(seed)).settled for seed in SEEDS)


def test_a_constant_series_keeps_everything() -> None:
    assert mser(np.full(BINS, 3.0)).observations == 0


def test_a_series_that_keeps_growing_never_settles() -> None:
    # An overloaded queue: the best cut is at the search limit (half the series).
    cut = mser(np.arange(BINS, dtype=float))
    assert not cut.settled
    assert cut.observations == BINS // 2


def test_too_short_a_series_is_kept_whole() -> None:
    assert mser(np.array([0.0, 1.0, 5.0, 5.0, 5.0, 5.0])).observations == 0


def test_the_truncation_minimises_the_marginal_standard_error() -> None:
    # Worked example with batches of 1: z = 0, 4, 4, 4, 4. Keeping all: mean 3.2,
    # Σ(z − 3.2)² = 12.8, / 25 = 0.512; dropping the first: 0 / 16 = 0.
    assert mser(np.array([0.0, 4.0, 4.0, 4.0, 4.0]), batch=1).observations == 1


# ---- runs --------------------------------------------------------------------------------

def _ramping(**overrides: object) -> dict:
    """One replica at a steady load with long outputs: its batch takes minutes to fill."""
    settings: dict[str, object] = {"duration_s": 600.0, "warmup_s": "auto", **overrides}
    return scenario(
        **settings,
        profile={"kind": "linear", "base_s": 0.01, "per_decode_seq_s": 2e-4},
        deployment={"replicas": 1, "scheduler": {"policy": "chunked-prefill",
                                                 "max_num_seqs": 64,
                                                 "max_batched_tokens": 4096}},
        workload={"arrival": {"process": "poisson", "rate_per_s": 0.5},
                  "prompt_tokens": {"dist": "fixed", "value": 300},
                  "output_tokens": {"dist": "fixed", "value": 2000}})


def test_an_auto_warm_up_starts_the_window_after_the_batch_has_filled() -> None:
    # A request takes ≈ 2000 steps of 10-23 ms: ~30-45 s. Before the first ones finish the
    # batch only grows, so the window must not start in the first 30 s, and not late.
    result = sim.run(_ramping())
    d = result.to_dict()
    start_s, end_s = d["sim"]["window_s"]
    assert d["sim"]["warmup"] == "auto"
    assert 30.0 <= start_s <= 180.0 and end_s == 600.0
    assert start_s / 6.0 == pytest.approx(round(start_s / 6.0))  # a bin edge (600 s / 100)
    # The window's counters are those of [start, end): equal to a run given that warm-up.
    fixed = sim.run(_ramping(warmup_s=start_s))
    for a, b in zip(result.engine.replicas, fixed.engine.replicas, strict=True):
        assert a.window_generated_tokens == b.window_generated_tokens
        assert a.window_prefill_tokens == b.window_prefill_tokens
        assert a.window_steps == b.window_steps
        assert a.busy_s == pytest.approx(b.busy_s, rel=1e-9)
        assert a.kv_token_s == pytest.approx(b.kv_token_s, rel=1e-9)
    assert d["throughput"] == fixed.to_dict()["throughput"]
    assert fixed.to_dict()["sim"]["warmup"] == start_s


def test_auto_is_kept_in_the_recorded_scenario_and_reproduces_the_run() -> None:
    first = sim.run(_ramping())
    recorded = first.to_dict()["provenance"]["scenario"]
    assert recorded["warmup_s"] == "auto"
    again = sim.run(recorded)
    assert again.to_dict()["sim"]["window_s"] == first.to_dict()["sim"]["window_s"]
    assert again.record == first.record


def test_a_warm_up_given_in_seconds_is_reported_as_given() -> None:
    d = sim.run(tiny(warmup_s=2)).to_dict()
    assert d["sim"]["warmup"] == 2 and d["sim"]["window_s"][0] == 2


def test_a_window_shorter_than_three_p95_e2e_times_warns() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sim.run(_ramping(duration_s=60.0, warmup_s=20.0))  # E2E ≈ 25 s
    texts = [str(w.message) for w in caught if issubclass(w.category, WindowWarning)]
    assert any("shorter than 3 × the p95 end-to-end time" in t for t in texts)


def test_a_long_enough_window_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", WindowWarning)
        sim.run(_ramping())


@pytest.mark.parametrize("case", [
    pytest.param(Case("warmup-word", tiny(warmup_s="soon"), "warmup_s", "soon", ("auto",)),
                 id="warmup-word"),
    pytest.param(Case("warmup-auto-key", tiny(warmup_auto=True), "warmup_auto", "True",
                      ("warmup_s",)), id="warmup-auto-key"),
])
def test_bad_warm_up_is_refused(case: Case, check_rejected: Callable[[Case], None]) -> None:
    check_rejected(case)
