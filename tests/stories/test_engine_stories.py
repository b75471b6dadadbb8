"""Tiny exact stories at the engine seam: a few requests, a constant step, timestamps by hand.

Every step takes STEP = 0.01 s whatever is in it, so a story's timeline is a count of steps.
The rules the expected values follow (`sim.engine.replica`, `sim.engine.scheduler`):

* a request is admitted (`admit_s`) at the first step boundary where a policy takes it from
  the queue; it reserves prompt + 1 + `kv_block_tokens` of KV cache;
* the step that completes a prefill produces the first token (`first_token_s` = its end);
* each decode step gives every decoding sequence one token and one more token of KV;
* a request is finished (`finish_s`) at the end of the step that produced its last token.

The engine is given plain arrays and a step model written here, so these stories need no
catalogue, no scenario file and no validation layer.
"""

from __future__ import annotations

import math

import pytest
from engine_seam import STEP, requests, run

from sim.engine.records import EngineResult

NAN = math.nan


def approx(values: list[float]) -> object:
    return pytest.approx(values, abs=1e-12, nan_ok=True)


def assert_times(result: EngineResult, admit: list[float], first: list[float],
                 finish: list[float]) -> None:
    assert result.admit_s.tolist() == approx(admit), "admit_s"
    assert result.first_token_s.tolist() == approx(first), "first_token_s"
    assert result.finish_s.tolist() == approx(finish), "finish_s"


# ---- one request -----------------------------------------------------------------------------


def test_one_request_prefills_in_one_step_then_decodes_one_token_a_step() -> None:
    """Request 0 arrives at 0 and is admitted at once; its prefill is the step [0, 0.01),
    which gives the first token at 0.01; 3 more tokens take 3 decode steps: finish at 0.04.
    The 3 decode steps are one skipped run: 1 arrival + 2 timeouts."""
    result = run(requests((0.0, 4, 4)))
    assert_times(result, admit=[0.0], first=[0.01], finish=[0.04])
    counters = result.replicas[0]
    assert counters.steps == 4
    assert counters.generated_tokens == 4
    assert counters.prefill_tokens == 4
    assert counters.busy_s == pytest.approx(0.04, abs=1e-12)
    assert counters.prefill_s == pytest.approx(0.01, abs=1e-12)
    assert counters.decode_s == pytest.approx(0.03, abs=1e-12)
    assert result.events == 3
    assert result.end_s == pytest.approx(0.04, abs=1e-12)


def test_a_one_token_request_finishes_on_its_prefill_step() -> None:
    """The prefill step produces the only token wanted: first token and finish both at 0.01,
    and no decode step is ever run."""
    result = run(requests((0.0, 4, 1)))
    assert_times(result, admit=[0.0], first=[0.01], finish=[0.01])
    assert result.replicas[0].steps == 1
    assert result.replicas[0].decode_s == 0.0


def test_stop_time_leaves_the_request_unfinished() -> None:
    """Stopped at 0.025, in the middle of the second decode step: the first token (0.01) was
    given, the finish (0.04) never comes, and the clock stops at 0.025."""
    result = run(requests((0.0, 4, 4)), stop_s=0.025)
    assert_times(result, admit=[0.0], first=[0.01], finish=[NAN])
    assert result.end_s == pytest.approx(0.025, abs=1e-12)


# ---- the three scheduler policies on the same three requests ---------------------------------

# r0 arrives at 0 (prompt 4, 4 tokens), r1 at 0.005 during r0's prefill step (prompt 4,
# 2 tokens), r2 at 0.025 during a decode step (prompt 4, 2 tokens).
THREE = ((0.0, 4, 4), (0.005, 4, 2), (0.025, 4, 2))

POLICY_STORIES = {
    # chunked-prefill: a newcomer's prefill shares a step with the decodes.
    # [0, .01) r0 prefill → r0 token 1.  r1 waits for the boundary (a step is not cut).
    # [.01, .02) r1 prefill + r0 decode → r1 token 1, r0 token 2.
    # [.02, .03) decode both → r1 token 2: r1 done at .03; r0 token 3.  r2 arrived at .025,
    #   inside this last step of the run, so nothing is cut.
    # [.03, .04) r2 prefill + r0 decode → r2 token 1, r0 token 4: r0 done at .04.
    # [.04, .05) r2 decode → done at .05.
    "chunked-prefill": ([0.0, 0.01, 0.03], [0.01, 0.02, 0.04], [0.04, 0.03, 0.05]),
    # prefill-first: a prefill step runs alone, so r0 stalls for each newcomer's prefill.
    # [0, .01) r0 prefill → r0 token 1.
    # [.01, .02) r1 prefill only (r0 waits) → r1 token 1.
    # [.02, .03) decode both → r1 done at .03; r0 token 2.
    # [.03, .04) r2 prefill only → r2 token 1.
    # [.04, .05) decode r0, r2 → r2 done at .05; r0 token 3.
    # [.05, .06) decode r0 → token 4, done at .06 (two stalled steps later than chunked).
    "prefill-first": ([0.0, 0.01, 0.03], [0.01, 0.02, 0.04], [0.06, 0.03, 0.05]),
    # static: nothing joins a running batch; r1 and r2 wait for r0 and start together.
    # [0, .01) r0 prefill; [.01, .04) 3 decode steps → r0 done at .04.
    # At .04 r1 and r2 are admitted as one batch: [.04, .05) both prefill → both token 1;
    # [.05, .06) decode → both done at .06.
    "static": ([0.0, 0.04, 0.04], [0.01, 0.05, 0.05], [0.04, 0.06, 0.06]),
}


@pytest.mark.parametrize("exact", [False, True], ids=["skipping", "exact"])
@pytest.mark.parametrize("policy", sorted(POLICY_STORIES))
def test_each_policy_on_the_same_three_requests(policy: str, exact: bool) -> None:
    """See POLICY_STORIES: the same three requests, three different timelines; every request
    gets all its tokens, nothing is preempted, and stepping one decode step at a time
    changes nothing."""
    result = run(requests(*THREE), policy=policy, exact=exact)
    admit, first, finish = POLICY_STORIES[policy]
    assert_times(result, admit, first, finish)
    assert result.replicas[0].generated_tokens == 4 + 2 + 2
    assert result.preemptions.tolist() == [0, 0, 0]


def test_the_policies_differ_where_the_story_says() -> None:
    """The differences themselves, read off the engine's own runs: prefill-first finishes r0
    two stalled steps after chunked-prefill, static admits r1 only when r0 has finished."""
    finish = {p: run(requests(*THREE), policy=p).finish_s for p in POLICY_STORIES}
    admit_static = run(requests(*THREE), policy="static").admit_s
    assert finish["prefill-first"][0] - finish["chunked-prefill"][0] == pytest.approx(
        2 * STEP, abs=1e-12)
    assert admit_static[1] == pytest.approx(finish["static"][0], abs=1e-12)
    assert finish["chunked-prefill"][0] < finish["static"][1]


# ---- prefill split into chunks ---------------------------------------------------------------


def test_a_long_prompt_is_prefilled_in_chunks_of_the_token_budget() -> None:
    """A 10-token prompt under max_batched_tokens = 4 is prefilled 4 + 4 + 2 over three
    steps, so its first token comes at 0.03 (not 0.01); one decode step: finish at 0.04."""
    result = run(requests((0.0, 10, 2)), max_batched_tokens=4)
    assert_times(result, admit=[0.0], first=[0.03], finish=[0.04])
    counters = result.replicas[0]
    assert counters.steps == 4
    assert counters.prefill_tokens == 10
    assert counters.prefill_s == pytest.approx(0.03, abs=1e-12)


def test_decoding_sequences_take_their_token_of_the_budget_first() -> None:
    """max_batched_tokens = 4 and r0 decoding: a chunk of r1's prompt gets 4 − 1 = 3 tokens.

    r0 (prompt 2, 5 tokens) prefills in [0, .01) → token 1, and starts a 4-step decode run.
    r1 (prompt 7, 1 token) arrives at .015 and cuts the run after its first step (.02).
    [.02, .03), [.03, .04): 3 prompt tokens each + r0's decode; [.04, .05): the last 1 token
    + r0's decode.  At .05 r0 has its 5th token and r1 its only one: both done at .05.

    Split of the step seconds: a step of p prefill tokens and d decodes charges p/(p+d) of
    STEP to prefill: prefill 0.01 + 2·0.0075 + 0.005 = 0.03, decode 0.01 + 2·0.0025 + 0.005
    = 0.02."""
    result = run(requests((0.0, 2, 5), (0.015, 7, 1)), max_batched_tokens=4)
    assert_times(result, admit=[0.0, 0.02], first=[0.01, 0.05], finish=[0.05, 0.05])
    counters = result.replicas[0]
    assert counters.prefill_tokens == 9
    assert counters.steps == 5
    assert counters.busy_s == pytest.approx(0.05, abs=1e-12)
    assert counters.prefill_s == pytest.approx(0.03, abs=1e-12)
    assert counters.decode_s == pytest.approx(0.02, abs=1e-12)


# ---- event skipping: an arrival cuts a decode run --------------------------------------------


@pytest.mark.parametrize("exact", [False, True], ids=["skipping", "exact"])
def test_an_arrival_cuts_a_decode_run_at_the_end_of_the_step_in_progress(exact: bool) -> None:
    """r0 (prompt 4, 6 tokens): prefill [0, .01) → token 1, then a run of 5 decode steps that
    would end at .06. r1 (prompt 4, 2 tokens) arrives at .035, in the run's third step, so
    the run is cut at .04 and r1 is admitted there (not at .06): [.04, .05) r1 prefill + r0
    decode → r1 token 1; [.05, .06) decode both → both done at .06.

    Event skipping books the whole run as one timeout and reschedules it once when cut:
    2 arrivals + prefill + run + cut run + mixed step + last step = 7 events. Exact mode
    has a timeout per step: 2 + 1 + 3 + 1 + 1 = 8. The timestamps are the same."""
    result = run(requests((0.0, 4, 6), (0.035, 4, 2)), exact=exact)
    assert_times(result, admit=[0.0, 0.04], first=[0.01, 0.05], finish=[0.06, 0.06])
    assert result.replicas[0].steps == 6
    assert result.events == (8 if exact else 7)


@pytest.mark.parametrize("exact", [False, True], ids=["skipping", "exact"])
def test_an_arrival_that_cannot_join_does_not_cut_the_run(exact: bool) -> None:
    """As above but max_num_seqs = 1: r1 could not be admitted before r0 finishes, so the
    run goes on to .06; r1 is admitted at .06, prefills to .07, decodes to .08.
    Skipping: 2 arrivals + prefill + run + prefill + run = 6 events; exact: 2 + 1 + 5 + 1 + 1
    = 10."""
    result = run(requests((0.0, 4, 6), (0.035, 4, 2)), max_num_seqs=1, exact=exact)
    assert_times(result, admit=[0.0, 0.06], first=[0.01, 0.07], finish=[0.06, 0.08])
    assert result.events == (10 if exact else 6)


TIE_STEP = 0.25  # a binary fraction: step boundaries are exact, so a tie is a real tie


@pytest.mark.parametrize("exact", [False, True], ids=["skipping", "exact"])
def test_an_arrival_exactly_on_a_step_boundary_joins_at_that_boundary(exact: bool) -> None:
    """Step 0.25 s. r0 (prompt 4, 6 tokens) prefills [0, .25) and starts a 5-step decode
    run. r1 (prompt 4, 2 tokens) arrives at .75, the very instant r0's second decode step
    ends, so it is admitted at .75, as when stepping one step at a time: [.75, 1.0) r1
    prefill + r0 decode → r1 token 1 at 1.0; [1.0, 1.25) → r1 done; r0's 6th token at 1.5."""
    result = run(requests((0.0, 4, 6), (0.75, 4, 2)), step=TIE_STEP, exact=exact)
    assert_times(result, admit=[0.0, 0.75], first=[0.25, 1.0], finish=[1.5, 1.25])


@pytest.mark.parametrize("exact", [False, True], ids=["skipping", "exact"])
def test_a_boundary_tie_does_not_depend_on_event_order(exact: bool) -> None:
    """The story above on two replicas, with r1 (arriving at .6) sent to replica 1: replica
    0 sees r2 arrive at .75, exactly at its step boundary, and admits it there, though r2's
    arrival timeout was scheduled (at .6) after replica 0's boundary (at .5): arrivals come
    before the other events of their instant."""
    result = run(requests((0.0, 4, 6), (0.6, 4, 2), (0.75, 4, 2)), step=TIE_STEP,
                 replicas=2, exact=exact)
    assert result.replica.tolist() == [0, 1, 0]
    assert result.admit_s[2] == pytest.approx(0.75, abs=1e-12)


# ---- KV cache ---------------------------------------------------------------------------------


@pytest.mark.parametrize("exact", [False, True], ids=["skipping", "exact"])
def test_a_full_kv_cache_preempts_the_newest_sequence(exact: bool) -> None:
    """kv_capacity_tokens = 14, kv_block_tokens = 1: a sequence holds its context + 1.

    r0 (prompt 2, 8 tokens) is admitted at 0 reserving 2 + 1 + 1 = 4, prefills [0, .01).
    r1 (prompt 2, 8 tokens) arrives at .005, is admitted at .01 (4 + 1 growth + 4 = 9 ≤ 14),
    prefills beside r0's decode in [.01, .02): KV 9, r0 has 2 tokens, r1 has 1.
    The decode run is limited by the cache: (14 − 9) // 2 = 2 steps, to .04: KV 13.
    The next step needs 13 + 2 > 14, so r1 (the newest) is evicted, keeping its 3 tokens:
    KV 13 − (2 + 3 + 1) = 7, and it cannot come back (7 + 1 + 5 + 2 > 14) before r0 is done:
    r0 decodes 4 more steps alone, done at .08. Then r1 recomputes its 5 tokens of context in
    [.08, .09) → token 4, and decodes 4 steps: done at .13. Its admission (.01) and first
    token (.02) stay as they first happened. Without the eviction it would finish at .09."""
    result = run(requests((0.0, 2, 8), (0.005, 2, 8)), kv_capacity_tokens=14,
                 kv_block_tokens=1, exact=exact)
    assert_times(result, admit=[0.0, 0.01], first=[0.01, 0.02], finish=[0.08, 0.13])
    assert result.preemptions.tolist() == [0, 1]
    counters = result.replicas[0]
    assert counters.preemptions == 1
    assert counters.prefill_tokens == 2 + 2 + 5  # the recomputed context included
    assert counters.generated_tokens == 16  # kept tokens are not generated twice


@pytest.mark.parametrize("exact", [False, True], ids=["skipping", "exact"])
def test_a_prompt_evicted_mid_prefill_starts_its_prefill_over(exact: bool) -> None:
    """max_batched_tokens = 3, kv_capacity_tokens = 14, kv_block_tokens = 1.

    r0 (prompt 2, 8 tokens) prefills [0, .01) → token 1 (KV 4). r1 (prompt 6, 3 tokens)
    arrives at .005 and is admitted at .01 (4 + 1 + 8 = 13 ≤ 14, KV 12); beside r0's decode
    it gets 3 − 1 = 2 prompt tokens a step: [.01, .02) and [.02, .03) (KV 14, 4 of 6 done).
    r0's next token would overflow (14 + 1 > 14), so r1, still prefilling, is evicted and
    its 4 prefilled tokens are lost (KV 6). r0 decodes its last 5 tokens alone: done at .08.
    r1 then prefills all 6 again, 3 a step (nothing decodes): [.08, .10) → token 1 at .10,
    2 decode steps: done at .12."""
    result = run(requests((0.0, 2, 8), (0.005, 6, 3)), max_batched_tokens=3,
                 kv_capacity_tokens=14, kv_block_tokens=1, exact=exact)
    assert_times(result, admit=[0.0, 0.01], first=[0.01, 0.10], finish=[0.08, 0.12])
    assert result.preemptions.tolist() == [0, 1]
    assert result.replicas[0].prefill_tokens == 2 + 4 + 6
    assert result.replicas[0].generated_tokens == 8 + 3


def test_without_kv_pressure_the_same_requests_are_not_preempted() -> None:
    """The control for the story above: with room for both, r1 finishes one step after r0
    (r0 at .08, r1 at .09) and nothing is evicted."""
    result = run(requests((0.0, 2, 8), (0.005, 2, 8)), kv_block_tokens=1)
    assert_times(result, admit=[0.0, 0.01], first=[0.01, 0.02], finish=[0.08, 0.09])
    assert result.preemptions.tolist() == [0, 0]


def test_a_request_larger_than_the_kv_cache_is_rejected() -> None:
    """kv_capacity_tokens = 20, kv_block_tokens = 2: a request needs prompt + output + 2.

    r1 (15 + 4 + 2 = 21) can never fit: rejected, never routed, no timestamps.
    r2 (14 + 4 + 2 = 20) fits exactly, but not beside r0: admitting it needs 14 + 1 + 2 = 17
    on top of r0's 4 + 1 + 2 = 7 and r0's next token. So r2 waits in the queue while r0
    prefills [0, .01) and decodes [.01, .02) (done at .02); r2 is admitted at .02, prefills
    to .03 and decodes 3 steps (KV 17 → 20, full just as it finishes): done at .06."""
    result = run(requests((0.0, 4, 2), (0.001, 15, 4), (0.002, 14, 4)),
                 kv_capacity_tokens=20, kv_block_tokens=2)
    assert result.rejected.tolist() == [False, True, False]
    assert result.replica.tolist() == [0, -1, 0]
    assert_times(result, admit=[0.0, NAN, 0.02], first=[0.01, NAN, 0.03],
                 finish=[0.02, NAN, 0.06])
    assert result.preemptions.tolist() == [0, 0, 0]
    assert result.replicas[0].generated_tokens == 2 + 4


# ---- two replicas ----------------------------------------------------------------------------


def test_two_replicas_serve_side_by_side() -> None:
    """Round-robin sends r0 to replica 0 and r1 to replica 1: each runs alone, so r1's
    timeline is r0's shifted by its arrival (0.003): first token 0.013, finish 0.043."""
    result = run(requests((0.0, 4, 4), (0.003, 4, 4)), replicas=2)
    assert result.replica.tolist() == [0, 1]
    assert_times(result, admit=[0.0, 0.003], first=[0.01, 0.013], finish=[0.04, 0.043])
    assert [c.generated_tokens for c in result.replicas] == [4, 4]
