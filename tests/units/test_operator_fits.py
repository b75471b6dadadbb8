"""The fitting and leave-one-out helpers behind the derived operator tables, on synthetic
data whose answer is known in closed form."""

from __future__ import annotations

import numpy as np
import pytest

from sim.calibrate import operator_fits as fits


def test_nnls_recovers_non_negative_coefficients_exactly() -> None:
    rng = np.random.default_rng(3)
    a = rng.uniform(0.1, 1.0, size=(40, 3))
    truth = np.array([0.5, 0.0, 2.0])
    assert fits.nnls(a, a @ truth) == pytest.approx(truth, abs=1e-9)


def test_nnls_clips_a_coefficient_the_unconstrained_fit_makes_negative() -> None:
    # b = 1 − 0.2·x: unconstrained least squares wants a negative slope; the best
    # non-negative answer on [1, x] is then the mean of b with slope 0.
    x = np.linspace(0.0, 1.0, 11)
    a = np.column_stack([np.ones_like(x), x])
    b = 1.0 - 0.2 * x
    assert np.linalg.lstsq(a, b, rcond=None)[0][1] < 0
    assert fits.nnls(a, b) == pytest.approx([b.mean(), 0.0])


def test_prefill_form_is_recovered_from_synthetic_latencies() -> None:
    """fixed + per-token + per-pair, over four decades of latency, comes back to 1e-6."""
    batch, isl = np.meshgrid([1.0, 4.0, 32.0], [16.0, 256.0, 2048.0, 16384.0])
    batch, isl = batch.ravel(), isl.ravel()
    features = np.column_stack([np.ones_like(batch), batch * isl,
                                batch * fits.causal_pairs(isl, 0)])
    truth = np.array([0.012, 3e-6, 4e-10])
    coefficients = fits.fit_relative(features, features @ truth)
    assert coefficients == pytest.approx(truth, rel=1e-6)


def test_fit_is_in_relative_error() -> None:
    """A 10% error on the one row 1000× larger than the rest barely moves the fixed cost the
    small rows measure (< 2%), where a plain least-squares fit is pulled off by > 10%."""
    x = np.array([1.0, 1.0, 1.0, 1.0, 10.0, 100.0, 1000.0])
    features = np.column_stack([np.ones_like(x), x])
    y = 0.01 + 0.001 * x
    y[-1] *= 1.1
    assert fits.fit_relative(features, y)[0] == pytest.approx(0.01, rel=0.02)
    assert abs(fits.nnls(features, y)[0] / 0.01 - 1) > 0.1


def test_causal_pairs_full_and_windowed_match_a_direct_sum() -> None:
    for isl in (1, 7, 128, 1000):
        for window in (0, 1, 16, 128, 4096):
            direct = sum(min(i, window) if window else i for i in range(1, isl + 1))
            assert fits.causal_pairs(np.array([isl]), window)[0] == direct


def test_cached_tokens_cap_at_the_window() -> None:
    context = np.array([1.0, 100.0, 5000.0])
    assert list(fits.cached_tokens(context, 0)) == [1.0, 100.0, 5000.0]
    assert list(fits.cached_tokens(context, 128)) == [1.0, 100.0, 128.0]


def test_leave_one_out_is_exact_on_a_power_law_and_sees_a_kink() -> None:
    x = 2.0 ** np.arange(8)
    assert fits.loo_curve_errors_pct(x, 3.0 * x**1.5) == pytest.approx(np.zeros(6), abs=1e-9)
    y = 3.0 * x**1.5
    y[4] *= 1.2  # one knot 20% off its neighbours' line
    errors = fits.loo_curve_errors_pct(x, y)
    assert errors[3] == pytest.approx(100 * (1 - 1 / 1.2))


def test_grid_leave_one_out_skips_points_not_measured() -> None:
    m = 2.0 ** np.arange(4)
    n = 2.0 ** np.arange(3)
    grid = m[:, None] * n[None, :]  # y = m·n: exact in log-log along both axes
    grid[1, 1] = np.nan
    errors = fits.loo_grid_errors_pct([m, n], grid)
    # along m: interior rows 1, 2 × 3 columns, minus (1,1) itself and (2,1) whose
    # neighbour is missing; along n: interior column 1 × 4 rows, minus row 1.
    assert len(errors) == 4 + 3
    assert errors == pytest.approx(np.zeros(7), abs=1e-9)


def test_padded_minimum_never_falls_and_keeps_missing_points() -> None:
    y = np.array([[5.0, 1.0], [4.0, np.nan], [6.0, 3.0], [5.5, 4.0]])
    out = fits.padded_minimum(y, axis=0)
    assert out[:, 0].tolist() == [4.0, 4.0, 5.5, 5.5]
    assert out[0, 1] == 1.0 and np.isnan(out[1, 1]) and out[2:, 1].tolist() == [3.0, 4.0]


def test_nearest_log_subset_picks_measured_values_near_powers_of_two() -> None:
    measured = [1, 2, 3, 5, 17, 32, 33, 48, 100, 129]
    assert fits.nearest_log_subset(measured, [1, 2, 4, 8, 16, 32, 64, 128]) == \
        [1, 2, 5, 17, 32, 48, 129]


def test_summary_reports_median_and_p90() -> None:
    summary = fits.summary_pct(np.arange(1.0, 11.0))
    assert summary["median_pct"] == 5.5
    assert summary["p90_pct"] == pytest.approx(9.1)
    assert summary["points"] == 10
