"""A fleet that changes while it runs: failures, spot preemption, outages, autoscaling.

Closed-form truths (availability of an alternating renewal process, replica-time of a known
scale-in sequence, an outage's lost replica-time), metamorphic checks (a fleet that never
actually changes gives the static fleet's results) and conservation of requests and tokens
when replicas die with work on them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from builders import dynamic, scenario

import sim
from sim.engine.faults import failure_events


def _without_wall(d: dict) -> dict:
    d = dict(d)
    d["sim"] = {k: v for k, v in d["sim"].items() if k not in ("wall_s", "requests_per_wall_s")}
    return d


def _long_availability(tensor_parallel: int, mtbf_h: float, mttr_h: float,
                       replicas: int, duration_s: float) -> float:
    """Simulated availability of a lightly loaded fleet over a long horizon."""
    d = sim.run(scenario(
        duration_s=duration_s, warmup_s=0.0, drain_s=0.0,
        profile={"kind": "constant", "step_s": 0.01},
        deployment={"replicas": replicas, "tensor_parallel": tensor_parallel,
                    "failures": {"mtbf_h": mtbf_h, "mttr_h": mttr_h}},
        workload={"arrival": {"process": "poisson", "rate_per_s": 0.02},
                  "prompt_tokens": {"dist": "fixed", "value": 10},
                  "output_tokens": {"dist": "fixed", "value": 2}},
    )).to_dict()
    return d["availability"]["fraction"]


@pytest.mark.parametrize("tensor_parallel", [1, 2])
def test_long_run_availability_is_mtbf_over_mtbf_plus_mttr(tensor_parallel: int) -> None:
    # Each replica alternates exponential up (mean MTBF/tp) and down (mean MTTR) times: a
    # two-state Markov process with rates α = 1/up, β = 1/down, up a fraction β/(α + β) of
    # the time; over T seconds that fraction has variance 2αβ / ((α + β)³ T), and the
    # replicas are independent.
    mtbf_h, mttr_h, replicas, duration_s = 1.0, 0.25, 16, 400_000.0
    up_s, down_s = mtbf_h * 3600 / tensor_parallel, mttr_h * 3600
    alpha, beta = 1 / up_s, 1 / down_s
    expected = up_s / (up_s + down_s)
    sd = math.sqrt(2 * alpha * beta / ((alpha + beta) ** 3 * duration_s) / replicas)
    measured = _long_availability(tensor_parallel, mtbf_h, mttr_h, replicas, duration_s)
    assert abs(measured - expected) < 4 * sd, (measured, expected, sd)
    assert sd < 0.01  # tight enough to tell tp = 1 (0.8) from tp = 2 (0.667) apart


def test_failure_times_are_exponential_with_tp_times_the_gpu_rate() -> None:
    rng = np.random.default_rng(4)
    times, slots, kinds = failure_events(200, 4, mtbf_h=2.0, mttr_h=0.5, horizon_s=3600 * 400,
                                         rng=rng)
    fails = np.sort(times[kinds == 0][slots[kinds == 0] == 0])
    repairs = np.sort(times[kinds == 1][slots[kinds == 1] == 0])
    assert len(fails) == len(repairs) > 100
    up = fails[1:] - repairs[:-1]
    assert np.all(repairs > fails) and np.all(up > 0)
    # Mean up time MTBF/tp = 1800 s and mean repair 1800 s, within 4 standard errors.
    for values, mean in ((up, 1800.0), (repairs - fails, 1800.0)):
        assert abs(values.mean() - mean) < 4 * mean / math.sqrt(len(values))





@pytest.mark.parametrize("kind", ["failures", "spot", "outage"])
def test_requeued_requests_are_conserved(kind: str) -> None:
    result = sim.run(dynamic(kind, "chunked-prefill"))
    d = result.to_dict()
    req, tok = d["requests"], d["tokens"]
    assert req["requeued"] > 0
    assert req["completed"] == req["arrived"]  # drained: every one finished somewhere
    # Each output token is generated exactly once, however often its request moved; the
    # prompts (and tokens generated before a move) are recomputed, so prefill grows.
    assert tok["generated"] == tok["output"]
    assert tok["prefilled"] > tok["input"]
    assert req["requeued_requests"] == int((result.engine.requeues > 0).sum())


def test_a_fleet_that_never_changes_gives_the_static_result() -> None:
    base = scenario(duration_s=60.0, deployment={"replicas": 3})
    static = _without_wall(sim.run(base).to_dict())
    never_fails = scenario(duration_s=60.0, deployment={
        "replicas": 3, "failures": {"mtbf_h": 1e9, "mttr_h": 1.0}})
    pinned = scenario(duration_s=60.0, deployment={
        "replicas": 3, "autoscaling": {"policy": "target-utilization", "target": 0.5,
                                       "min_replicas": 3, "max_replicas": 3}})
    for data in (never_fails, pinned):
        d = _without_wall(sim.run(data).to_dict())
        for key in ("requests", "latency_s", "throughput", "utilization", "slo", "cost",
                    "tokens"):
            assert d[key] == static[key], key
        assert d["availability"]["fraction"] == 1.0


def test_outage_takes_its_replicas_for_exactly_its_duration() -> None:
    data = scenario(duration_s=100.0, warmup_s=0.0,
                    deployment={"replicas": 4, "outage": {"replicas": 1, "at_s": 20.0,
                                                          "duration_s": 30.0}})
    a = sim.run(data).to_dict()["availability"]
    assert a["replicas_working_mean"] == pytest.approx((4 * 100 - 30) / 100, rel=1e-12)
    assert a["fraction"] == pytest.approx(370 / 400, rel=1e-12)
    assert a["replicas_billed_mean"] == 4.0  # a failed replica is still paid for


@pytest.mark.parametrize(("stabilization_s", "first_s"), [(0.0, 30.0), (300.0, 300.0),
                                                          (100.0, 120.0)])
def test_idle_autoscaled_fleet_scales_in_one_replica_per_tick_and_pays_for_what_it_held(
        stabilization_s: float, first_s: float) -> None:
    # Almost no traffic: every tick wants min_replicas. Once the stabilisation window is full
    # of such ticks (⌈window ÷ 30 s⌉ of them), each tick drains one idle replica, released at
    # once: 4 → 3 → 2 → 1 at first_s, first_s + 30, first_s + 60.
    data = scenario(duration_s=600.0, warmup_s=0.0,
                    workload__arrival={"process": "poisson", "rate_per_s": 1e-6},
                    deployment={"replicas": 4, "tensor_parallel": 2, "autoscaling": {
                        "policy": "target-utilization", "target": 0.5, "min_replicas": 1,
                        "max_replicas": 6, "interval_s": 30.0,
                        "scale_in_stabilization_s": stabilization_s}})
    d = sim.run(data).to_dict()
    replica_s = 4 * first_s + 3 * 30 + 2 * 30 + 1 * (600 - first_s - 60)
    assert d["availability"]["replicas_billed_mean"] == pytest.approx(replica_s / 600)
    assert d["availability"]["scale_downs"] == 3
    assert d["cost"]["gpu_hours"] == pytest.approx(2 * replica_s / 3600)
    assert d["cost"]["window_usd"] == pytest.approx(2 * replica_s / 3600 * 2.5)


def test_autoscaler_adds_replicas_under_load_and_they_start_after_the_delay() -> None:
    # One replica with 4 sequence slots and 20 req/s of long answers: queues at once.
    data = scenario(duration_s=120.0, warmup_s=0.0,
                    workload={"arrival": {"process": "poisson", "rate_per_s": 20.0},
                              "prompt_tokens": {"dist": "fixed", "value": 100},
                              "output_tokens": {"dist": "fixed", "value": 200}},
                    deployment={"replicas": 1, "scheduler": {"max_num_seqs": 4},
                                "autoscaling": {"policy": "queue", "target": 2,
                                                "min_replicas": 1, "max_replicas": 3,
                                                "provisioning_delay_s": 25.0,
                                                "interval_s": 10.0}})
    result = sim.run(data)
    timeline = result.engine.timeline
    assert result.to_dict()["availability"]["scale_ups"] == 2
    # Asked for at the 10 s and 20 s ticks, billed from then, serving 25 s later.
    billed_at = timeline.time_s[np.argmax(timeline.billed >= 3)]
    working_at = timeline.time_s[np.argmax(timeline.working >= 3)]
    assert billed_at == pytest.approx(20.0)
    assert working_at == pytest.approx(45.0)


def test_spot_notice_sends_no_new_requests_to_the_noticed_replica() -> None:
    data = dynamic("spot", "chunked-prefill")
    result = sim.run(data)
    plan_events = _spot_windows(result)
    arrival = result.workload.arrival_s
    for slot, start, end in plan_events:
        during = (arrival >= start) & (arrival < end) & (result.engine.requeues == 0)
        assert not np.any(result.engine.replica[during] == slot)
    assert plan_events


def _spot_windows(result: sim.Result) -> list[tuple[int, float, float]]:
    """(slot, notice, reclaim) of every spot cycle, from the same draws the run used."""
    from sim.engine.faults import spot_events
    from sim.runner.single import SEED_STREAMS

    spot = result.scenario.deployment.spot
    seqs = dict(zip(SEED_STREAMS, np.random.SeedSequence(result.seed).spawn(len(SEED_STREAMS)),
                    strict=True))
    times, slots, kinds = spot_events(result.scenario.deployment.replicas,
                                      spot.preemptions_per_h, spot.notice_s, spot.replace_s,
                                      result.scenario.duration_s,
                                      np.random.default_rng(seqs["spot"]))
    notices = kinds == 2
    return [(int(s), float(t), float(t) + spot.notice_s)
            for s, t in zip(slots[notices], times[notices], strict=True)]


def test_the_summary_tells_what_the_fleet_went_through() -> None:
    from sim.report.run_text import format_summary

    changed = format_summary(sim.run(dynamic("failures", "chunked-prefill")).to_dict())
    assert "availability" in changed and "re-queued" in changed and "failures" in changed
    static = format_summary(sim.run(scenario()).to_dict())
    assert "availability" not in static
