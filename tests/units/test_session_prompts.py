"""Sessions: prompts that are the history plus the new message, exactly; the cut to the
context; the links the engine follows; determinism; bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from builders import FIXTURES, Case, scenario, scenario_file, tiny

import sim
from sim.workload.sessions import links, prompts

SESSIONS = {"turns": 3, "think_time_s": 0.5, "new_tokens": {"dist": "fixed", "value": 7}}


def chat(arrival: dict[str, Any] | None = None, **sessions: Any) -> dict[str, Any]:
    return scenario(
        duration_s=60.0, warmup_s=5.0, profile={"kind": "constant", "step_s": 0.01},
        workload={"arrival": arrival or {"process": "poisson", "rate_per_s": 1.0},
                  "prompt_tokens": {"dist": "lognormal", "mean": 200, "sigma": 0.5},
                  "output_tokens": {"dist": "lognormal", "mean": 30, "sigma": 0.5},
                  "sessions": {**SESSIONS, **sessions}})


def test_links_lay_sessions_out_one_after_another() -> None:
    first, next_request, session, turn = links(np.array([2, 1, 3]))
    assert first.tolist() == [0, 2, 3]
    assert next_request.tolist() == [1, -1, -1, 4, 5, -1]
    assert session.tolist() == [0, 0, 1, 2, 2, 2]
    assert turn.tolist() == [0, 1, 0, 0, 1, 2]


def test_a_prompt_is_every_earlier_message_and_answer_plus_its_own() -> None:
    # Two sessions: (100 → 20), (5 → 30), (6 → 1) and (50 → 10), (9 → 4).
    first, _, session, _ = links(np.array([3, 2]))
    message = np.array([100, 5, 6, 50, 9])
    output = np.array([20, 30, 1, 10, 4])
    prompt, cut = prompts(message, output, first, session, 10**6)
    assert prompt.tolist() == [100, 100 + 20 + 5, 100 + 20 + 5 + 30 + 6, 50, 50 + 10 + 9]
    assert not cut.any()


def test_a_history_beyond_the_context_keeps_its_last_tokens() -> None:
    first, _, session, _ = links(np.array([3]))
    prompt, cut = prompts(np.array([100, 5, 6]), np.array([20, 30, 40]), first, session, 180)
    # Turn 3's history and message are 161 tokens; 180 − 40 leave room for 140 of them.
    assert prompt.tolist() == [100, 125, 140]
    assert cut.tolist() == [False, False, True]


def test_the_run_sends_each_turn_with_its_whole_history() -> None:
    result = sim.run(chat())
    plan, sent = result.workload.clients, result.engine.sent
    assert plan is not None and sent is not None
    prompt, output = result.workload.prompt_tokens, result.workload.output_tokens
    by_request = dict(zip(sent.tolist(), range(len(sent)), strict=True))
    for row, rid in enumerate(sent.tolist()):
        then = int(plan.next_request[rid])
        if then in by_request:  # the next turn was sent: 7 new tokens on top
            nxt = by_request[then]
            assert prompt[nxt] == prompt[row] + output[row] + 7
            # ... half a second after this turn's answer.
            assert result.engine.arrival_s[nxt] == pytest.approx(
                result.engine.finish_s[row] + 0.5, abs=1e-9)
    d = result.to_dict()["sessions"]
    assert d["prompt_tokens_mean_by_turn"][1] > d["prompt_tokens_mean_by_turn"][0]
    assert np.all(np.diff(result.engine.arrival_s) >= 0)  # rows in the order sent


def test_closed_sessions_start_a_new_session_after_the_last_turn() -> None:
    result = sim.run(chat({"process": "closed", "concurrency": 3, "think_time_s": 0.0}))
    d = result.to_dict()["sessions"]
    assert d["started"] > 3 and d["completed"] >= d["started"] - 3
    # Every session has 3 turns; the 3 in progress at the end miss at most 2 each.
    assert 3.0 - 3 * 2 / d["started"] <= d["turns_mean"] <= 3.0


def test_same_seed_same_sessions() -> None:
    data = chat(turns={"dist": "geometric", "mean": 3}, think_time_s={
        "dist": "lognormal", "mean": 1.0, "sigma": 0.5})
    a, b = sim.run(data), sim.run(data)
    assert np.array_equal(a.engine.arrival_s, b.engine.arrival_s)
    assert np.array_equal(a.engine.finish_s, b.engine.finish_s, equal_nan=True)
    assert a.record == b.record and a.to_dict()["sessions"] == b.to_dict()["sessions"]


def _trace_sessions(tmp: Any) -> list[str]:
    data = tiny(workload={"trace": {"path": str(FIXTURES / "generic_small.csv")},
                          "sessions": SESSIONS})
    return scenario_file(data)(tmp)


BAD = [
    Case("zero-turns", tiny(workload__sessions={**SESSIONS, "turns": 0}),
         "workload.sessions.turns", "0", ("> 0",)),
    Case("negative-think-time", tiny(workload__sessions={**SESSIONS, "think_time_s": -1}),
         "workload.sessions.think_time_s", "-1", ("≥ 0",)),
    Case("negative-think-distribution", tiny(workload__sessions={
        **SESSIONS, "think_time_s": {"dist": "uniform", "low": -1, "high": 2}}),
         "workload.sessions.think_time_s", "-1", ("low ≥ 0",)),
    Case("sessions-with-a-trace", _trace_sessions, "workload.sessions", "turns",
         ("trace",)),
    Case("sessions-over-the-request-budget",
         tiny(duration_s=100_000, workload__arrival__rate_per_s=2,
              workload__sessions={**SESSIONS, "turns": 5000}),
         "workload.sessions.turns", "5000", ("mean turns", "--max-requests")),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in BAD])
def test_bad_sessions_input(case: Case, check_rejected: Callable[[Case], None]) -> None:
    check_rejected(case)
