"""Sessions against theory: the closed-system law X = N / (R + Z) counted in turns, the
open-system rate of turns (session rate × mean turns), and exact = event skipping."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from builders import scenario

import sim

STEP_S = 0.02


def sessions(arrival: dict[str, Any], *, turns: Any = 4, think: Any = 1.0,
             duration_s: float = 600.0, warmup_s: float = 100.0,
             output: Any = None) -> dict[str, Any]:
    """One replica with a constant step time serving multi-turn sessions."""
    return scenario(
        duration_s=duration_s, warmup_s=warmup_s,
        profile={"kind": "constant", "step_s": STEP_S},
        deployment={"replicas": 1, "scheduler": {"policy": "chunked-prefill",
                                                 "max_num_seqs": 64,
                                                 "max_batched_tokens": 8192}},
        workload={"arrival": arrival,
                  "prompt_tokens": {"dist": "lognormal", "mean": 300, "sigma": 0.5},
                  "output_tokens": output or {"dist": "lognormal", "mean": 40, "sigma": 0.6},
                  "sessions": {"turns": turns, "think_time_s": think,
                               "new_tokens": {"dist": "lognormal", "mean": 60, "sigma": 0.5}}})


@pytest.mark.parametrize(("n", "think"), [(12, 2.0), (32, 0.5)])
def test_closed_sessions_obey_the_closed_system_law_per_turn(n: int, think: float) -> None:
    # Every turn, the last of a session too, is followed by a think of mean Z (the arrival's
    # think_time_s, between sessions, is set equal), so a client cycles turn → think → turn
    # and Little's law on the N clients gives X = N / (R + Z) in turns per second. In a
    # 500 s window at most one turn per client straddles each edge: 2N / (X × 500), 1.3% at
    # N = 12, under 1% at N = 32; geometric turns and lognormal lengths add noise, hence 3%.
    result = sim.run(sessions({"process": "closed", "concurrency": n, "think_time_s": think},
                              turns={"dist": "geometric", "mean": 4}, think=think))
    d = result.to_dict()
    x = d["throughput"]["requests_per_s"]
    r = d["latency_s"]["e2e"]["mean"]
    assert x == pytest.approx(n / (r + think), rel=0.03)
    assert d["sessions"]["turns_mean"] > 2.0  # the sessions had several turns


@pytest.mark.slow
def test_open_sessions_send_turns_at_the_session_rate_times_the_mean_turns() -> None:
    # Poisson session starts at λ, T turns each, every turn sent before the run ends: in a
    # steady window the turn rate is λ × E[T] (a renewal-reward argument). 0.2 sessions/s ×
    # 5 turns for 3,600 s is ~3,600 turns; sessions (not turns) are the independent units,
    # ~720 of them with sd ~ sqrt(720) ≈ 27 → a 95% band of ±7.5%: 8% is about 2 sd.
    rate, turns = 0.2, 5
    result = sim.run(sessions({"process": "poisson", "rate_per_s": rate}, turns=turns,
                              duration_s=3700.0, warmup_s=100.0))
    x = result.to_dict()["throughput"]["requests_per_s"]
    assert x == pytest.approx(rate * turns, rel=0.08)


def test_open_sessions_turn_rate_with_fixed_turns_tracks_the_sessions_started() -> None:
    # The same law on the run's own sessions: turns sent in the window = 4 × sessions
    # started in it, give or take the sessions straddling its edges (each session lasts
    # ~4 × (think + E2E) ≈ 6 s, so ±2 sessions' turns at each edge).
    result = sim.run(sessions({"process": "poisson", "rate_per_s": 0.5}, duration_s=300.0,
                              warmup_s=30.0))
    plan = result.workload.clients
    assert plan is not None
    sent = result.engine.sent
    assert sent is not None
    turn = plan.turn[sent]
    inside = result.measured
    assert abs(int(inside.sum()) - 4 * int((inside & (turn == 0)).sum())) <= 16


def test_exact_mode_gives_the_same_sessions() -> None:
    # Drawn think times: a fixed one that is a whole number of steps ties a send with a step
    # boundary, which float rounding breaks differently in the two modes (closed loops too).
    think = {"dist": "uniform", "low": 0.1, "high": 0.5}
    data = sessions({"process": "closed", "concurrency": 8, "think_time_s": think},
                    turns={"dist": "uniform", "low": 1, "high": 6}, think=think,
                    duration_s=60.0, warmup_s=10.0)
    fast, exact = sim.run(data), sim.run(data, exact=True)
    for column in ("arrival_s", "first_token_s", "finish_s"):
        a, b = getattr(fast.engine, column), getattr(exact.engine, column)
        assert np.allclose(a, b, rtol=1e-9, atol=1e-9, equal_nan=True)
    assert np.array_equal(fast.engine.sent, exact.engine.sent)
    assert fast.to_dict()["sessions"] == exact.to_dict()["sessions"]
