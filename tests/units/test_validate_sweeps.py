"""Load sweeps: concurrency points run as closed loops, the knee, and what is skipped.

The fixture (tests/fixtures/validate_sweeps_closed.yaml, made-up measured numbers) is a
sweep on a tiny config at concurrency 1, 4 and 512, and a speculative-decoding sweep. The
checks are properties a closed loop must have whatever the step times are: each client's
rate is its output over its lifetime (so throughput = N × OSL ÷ (TTFT + (OSL − 1) × TPOT)
with fixed lengths), and with twice as many clients as batch slots every request waits in the
queue for about one service lifetime, which a TTFT from the send includes.
"""

from __future__ import annotations

import pytest
from builders import FIXTURES, run_validate

from sim.validation import Comparison, read_sweeps
from sim.validation.compare import COMPARED
from sim.validation.silicon_mapping import ModelFinder
from sim.validation.sweeps import compare_sweeps, knee

SWEEPS = FIXTURES / "validate_sweeps_closed.yaml"
CLOSED = "tiny/closed/dense-gqa/H100-tp1/128-64"
MTP = "tiny/mtp/dense-gqa/H100-tp1/128-64"
OSL = 64


@pytest.fixture(scope="module")
def points() -> dict[tuple[str, str], Comparison]:
    out = compare_sweeps(read_sweeps(SWEEPS), models=ModelFinder(FIXTURES))
    return {(c.id, c.metric): c for c in out}


def _simulated(points: dict[tuple[str, str], Comparison], load: int, metric: str) -> float:
    c = points[(f"{CLOSED}/c{load}", metric)]
    assert c.compared and c.simulated is not None, c.status
    return c.simulated


def test_every_closed_point_is_compared_as_a_closed_loop(
        points: dict[tuple[str, str], Comparison]) -> None:
    for load in (1, 4, 512):
        for metric in ("output_tokens_per_s", "ttft_ms", "tpot_ms"):
            c = points[(f"{CLOSED}/c{load}", metric)]
            assert c.status == COMPARED and c.kind == "sweep" and c.load == load
            assert any("closed loop of `concurrency` clients" in a for a in c.assumptions)
            assert not any("overloaded queue" in a for a in c.assumptions)


@pytest.mark.parametrize("load", [1, 4, 512])
def test_throughput_is_clients_times_output_over_lifetime(
        points: dict[tuple[str, str], Comparison], load: int) -> None:
    lifetime_ms = (_simulated(points, load, "ttft_ms")
                   + (OSL - 1) * _simulated(points, load, "tpot_ms"))
    expected = load * OSL / (lifetime_ms / 1000.0)
    assert _simulated(points, load, "output_tokens_per_s") == pytest.approx(expected, rel=0.01)


def test_clients_beyond_the_batch_wait_in_the_queue(
        points: dict[tuple[str, str], Comparison]) -> None:
    """512 clients, 256 slots (vLLM's limit): half wait, each about one service lifetime."""
    decode_ms = (OSL - 1) * _simulated(points, 512, "tpot_ms")
    assert _simulated(points, 512, "ttft_ms") > 0.8 * decode_ms
    assert _simulated(points, 1, "ttft_ms") < 0.1 * _simulated(points, 512, "ttft_ms")


def test_knee_of_the_closed_sweep(points: dict[tuple[str, str], Comparison]) -> None:
    c = points[(f"{CLOSED}/knee", "knee_concurrency")]
    # measured TTFT: 0.08, 0.2, 6 ms: only 6 ms passes 3 × 0.08
    assert c.status == COMPARED and c.measured == 512 and c.simulated == 512


def test_speculative_decoding_is_skipped_with_its_reason(
        points: dict[tuple[str, str], Comparison]) -> None:
    mtp = [c for (row_id, _), c in points.items() if row_id.startswith(MTP)]
    assert len(mtp) == 2 * 3 + 1  # two points of three metrics, and the knee
    assert all(c.status == "skipped: speculative decoding not modelled" for c in mtp)


def _ttft(load: float, measured: float, simulated: float) -> Comparison:
    return Comparison(f"s/c{load:g}", "ttft_ms_median", measured, simulated, COMPARED,
                      "measured-operators", kind="sweep", group="s", load=load)


def test_knee_found_where_ttft_passes_three_times_its_low_load_value() -> None:
    """Measured TTFT turns up between 8 and 16, simulated between 16 and 32."""
    loads = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    measured = [10.0, 11.0, 12.0, 20.0, 45.0, 200.0]
    simulated = [8.0, 9.0, 10.0, 12.0, 20.0, 90.0]
    compared = [_ttft(load, m, s) for load, m, s in zip(loads, measured, simulated,
                                                         strict=True)]
    rows = [{"concurrency": int(load), "gpu": "H100"} for load in loads]
    entry = knee("s", rows, compared)
    assert entry.status == COMPARED and entry.metric == "knee_concurrency"
    assert (entry.measured, entry.simulated) == (16.0, 32.0)


def test_text_report_has_the_sweep_summary_and_knee_table(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_validate(capsys, str(FIXTURES / "validate_measurements.yaml"),
                                  "--sweeps", str(SWEEPS), "--models", str(FIXTURES),
                                  "--rows", f"{CLOSED}*")
    assert code == 0, err
    assert "load sweeps: 1 sweep (3 points), 1 compared, 0 skipped" in out
    assert "sweep points: median |error|" in out
    knee_lines = [line for line in out.splitlines() if line.strip().startswith(CLOSED)
                  and "compared" in line]
    assert knee_lines and "concurrency" in knee_lines[0]
