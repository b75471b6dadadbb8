"""Closed-loop clients: the closed-system law X = N / (R + Z), its closed form on a
constant-step profile, saturation at the batch-limited rate, think times drawn from a
distribution, and bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from builders import FIXTURES, Case, scenario, scenario_file, tiny

import sim

STEP_S = 0.02


def closed(concurrency: int, think: Any = 0.0, *, duration_s: float = 300.0,
           warmup_s: float = 60.0, max_num_seqs: int = 64, output: Any = None,
           prompt: Any = None, **overrides: Any) -> dict[str, Any]:
    """One replica with a constant step time driven by `concurrency` clients."""
    return scenario(
        duration_s=duration_s, warmup_s=warmup_s,
        profile={"kind": "constant", "step_s": STEP_S},
        deployment={"replicas": 1, "scheduler": {"policy": "chunked-prefill",
                                                 "max_num_seqs": max_num_seqs,
                                                 "max_batched_tokens": 8192}},
        workload={"arrival": {"process": "closed", "concurrency": concurrency,
                              "think_time_s": think},
                  "prompt_tokens": prompt or {"dist": "fixed", "value": 100},
                  "output_tokens": output or {"dist": "fixed", "value": 50}},
        **overrides)


def _law(result: sim.Result) -> tuple[float, float, float]:
    """Measured throughput X, response time R (mean E2E of the window's arrivals) and the
    mean think time of those requests."""
    d = result.to_dict()
    think_s = result.workload.clients.think_s[: len(result.workload)][result.measured]
    return (d["throughput"]["requests_per_s"], d["latency_s"]["e2e"]["mean"],
            float(think_s.mean()))


def test_back_to_back_clients_have_a_closed_form_response_time() -> None:
    # Z = 0, fewer clients than sequence slots, a step of STEP_S whatever it holds: a request
    # sent as its predecessor finishes waits out the step just planned, then takes one
    # prefill step (its first token) and 49 decode steps: R = (1 + 50) × STEP_S exactly,
    # so X = N / R.
    n, output = 8, 50
    result = sim.run(closed(n))
    response_s = (output + 1) * STEP_S
    e2e = result.latencies.e2e_s[result.measured]
    assert e2e == pytest.approx(np.full(len(e2e), response_s), rel=1e-9)
    window_s = 240.0
    x = result.to_dict()["throughput"]["requests_per_s"]
    # Finishes counted in a window are whole: off by at most one per client at its edges.
    assert abs(x - n / response_s) <= n / window_s


@pytest.mark.parametrize(("n", "think"), [(16, 2.0), (40, 0.5)])
def test_closed_system_law(n: int, think: float) -> None:
    # Lognormal lengths, so response times vary and batches change: the law still holds.
    result = sim.run(closed(n, think, duration_s=900.0, warmup_s=100.0,
                            prompt={"dist": "lognormal", "mean": 400, "sigma": 0.6},
                            output={"dist": "lognormal", "mean": 60, "sigma": 0.6}))
    x, r, z = _law(result)
    assert z == think
    assert x == pytest.approx(n / (r + z), rel=0.03)
    # Fewer clients than slots: no queueing beyond the step an arrival waits for.
    assert result.to_dict()["latency_s"]["queue"]["mean"] <= STEP_S + 1e-9


def test_saturation_is_the_batch_limited_rate() -> None:
    # Four times more clients than sequence slots: 64 slots, each held for exactly one
    # prefill step and 49 decode steps, refilled at the boundary it frees: 64 / (50 × step).
    seqs, output = 64, 50
    result = sim.run(closed(4 * seqs, 0.1, max_num_seqs=seqs))
    d = result.to_dict()
    limit = seqs / (output * STEP_S)
    assert d["throughput"]["requests_per_s"] == pytest.approx(limit, rel=0.01)
    assert d["utilization"]["batch_size_mean"] == pytest.approx(seqs, rel=0.01)
    # The excess clients wait: the law holds with the queueing inside R.
    x, r, z = _law(result)
    assert x == pytest.approx(4 * seqs / (r + z), rel=0.01)
    assert d["latency_s"]["queue"]["mean"] > 1.0


def test_think_time_distribution_paces_each_client() -> None:
    think = {"dist": "uniform", "low": 0.5, "high": 1.5}
    n = 12
    result = sim.run(closed(n, think, duration_s=200.0, warmup_s=20.0,
                            output={"dist": "uniform", "low": 1, "high": 120}))
    w, e = result.workload, result.engine
    drawn = w.clients.think_s
    assert drawn.min() >= 0.5 and drawn.max() <= 1.5
    assert drawn.mean() == pytest.approx(1.0, abs=0.03)
    # Every request after the first N was sent by a client think_s after its previous one
    # finished: the arrivals are exactly the finishes shifted by their think times.
    assert np.all(np.isfinite(e.finish_s))  # drained to the end
    sent = e.finish_s + drawn[: len(w)]
    sent = np.sort(sent[sent < 200.0])
    assert np.array_equal(w.arrival_s[:n], np.zeros(n))
    assert np.allclose(np.sort(w.arrival_s[n:]), sent, rtol=0, atol=1e-9)
    x, r, z = _law(result)
    assert x == pytest.approx(n / (r + z), rel=0.05)


def test_the_pool_outlasts_the_run_and_the_result_covers_what_was_sent() -> None:
    result = sim.run(closed(8, 0.0, duration_s=60.0, warmup_s=5.0,
                            output={"dist": "geometric", "mean": 20}))
    w, d = result.workload, result.to_dict()
    pool = len(w.clients.think_s)
    assert len(w) < pool  # the clients never ran out of requests to send
    assert d["requests"]["arrived"] == len(w) == len(result.engine.finish_s)
    assert np.all(np.diff(w.arrival_s) >= 0) and w.arrival_s[-1] < 60.0
    assert d["tokens"]["output"] == w.output_tokens.sum()


def test_rejected_requests_return_their_client_at_once() -> None:
    # A replica's whole KV cache is far smaller than some prompts: those are rejected, and
    # their client sends the next one after its think time, so the loop keeps going.
    data = closed(4, 0.5, duration_s=60.0, warmup_s=5.0,
                  prompt={"dist": "uniform", "low": 100, "high": 30_000}, **SMALL_GPU)
    result = sim.run(data)
    d = result.to_dict()
    assert 0 < d["requests"]["rejected"] < d["requests"]["arrived"]
    assert d["requests"]["completed"] + d["requests"]["rejected"] == d["requests"]["arrived"]


def test_same_seed_same_arrivals() -> None:
    a = sim.run(closed(10, {"dist": "lognormal", "mean": 1.0, "sigma": 0.5}, duration_s=60.0,
                      warmup_s=5.0))
    b = sim.run(closed(10, {"dist": "lognormal", "mean": 1.0, "sigma": 0.5}, duration_s=60.0,
                      warmup_s=5.0))
    assert np.array_equal(a.workload.arrival_s, b.workload.arrival_s)
    assert np.array_equal(a.engine.finish_s, b.engine.finish_s, equal_nan=True)


# A tiny inline GPU: Llama-3.1-8B's 16 GB of weights leave ~1.5 GiB for KV (~12k tokens).
SMALL_GPU = {"deployment__gpu_memory_utilization": 1.0,
             "deployment__activation_reserve_gib": 2.0,
             "gpu": {"name": "tiny", "memory_gib": 18.5, "memory_bandwidth_tb_s": 3.35,
                     "bf16_tflops": 989.0}}


def _trace_scenario(tmp: Any) -> list[str]:
    data = tiny(workload={"trace": {"path": str(FIXTURES / "generic_small.csv")},
                          "arrival": {"process": "closed", "concurrency": 4}})
    return scenario_file(data)(tmp)


BAD = [
    Case("zero-concurrency", tiny(workload__arrival={"process": "closed", "concurrency": 0}),
         "workload.arrival.concurrency", "0", ("> 0",)),
    Case("fractional-concurrency",
         tiny(workload__arrival={"process": "closed", "concurrency": 2.5}),
         "workload.arrival.concurrency", "2.5", ("integer",)),
    Case("negative-think-time",
         tiny(workload__arrival={"process": "closed", "concurrency": 4, "think_time_s": -1}),
         "workload.arrival.think_time_s", "-1", ("≥ 0",)),
    Case("negative-think-distribution",
         tiny(workload__arrival={"process": "closed", "concurrency": 4, "think_time_s": {
             "dist": "uniform", "low": -1, "high": 2}}),
         "workload.arrival.think_time_s", "-1", ("low ≥ 0",)),
    Case("closed-loop-with-a-rate",
         tiny(workload__arrival={"process": "closed", "concurrency": 4, "rate_per_s": 2}),
         "workload.arrival.rate_per_s", "2", ("concurrency", "think_time_s")),
    Case("closed-loop-with-a-trace", _trace_scenario, "workload.arrival", "closed",
         ("trace",)),
    Case("unknown-process", tiny(workload__arrival={"process": "open", "rate_per_s": 2}),
         "workload.arrival.process", "'open'", ("poisson", "gamma", "closed")),
    Case("closed-loop-over-the-request-budget",
         tiny(duration_s=100_000, workload__arrival={"process": "closed",
                                                     "concurrency": 100_000}),
         "workload.arrival.concurrency", "100000", ("concurrency × duration_s", "--max-requests")),
    # A stress test scales the arrival rate; a closed loop has none.
    Case("closed-loop-stress-test",
         tiny(workload__arrival={"process": "closed", "concurrency": 4},
              stress={"multipliers": [1.5], "draws": 1}),
         "workload.arrival.process", "'closed'", ("poisson or gamma",), command="stress"),
    # A utilisation sweep and a plan write an arrival rate; the message says why it can't be.
    Case("closed-loop-utilization-sweep",
         tiny(workload__arrival={"process": "closed", "concurrency": 4},
              sweep={"utilization": [0.5], "replications": 1}),
         "sweep.utilization", "0.5", ("closed loop", "poisson or gamma"), command="sweep"),
    Case("closed-loop-plan",
         tiny(workload__arrival={"process": "closed", "concurrency": 4},
              plan={"periods": [{"name": "a", "peak_rate_per_s": 5}],
                    "options": [{"name": "x"}]}),
         "plan.periods", "5", ("closed loop", "poisson or gamma"), command="plan"),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in BAD])
def test_bad_closed_loop_input(case: Case, check_rejected: Callable[[Case], None]) -> None:
    check_rejected(case)


def test_back_to_back_clients_whose_requests_are_all_rejected_are_refused() -> None:
    # Every request larger than the KV cache and no think time: the clients would send
    # without end at t = 0. The pool cannot be sized, so the run is refused, not cut short.
    data = closed(2, 0.0, duration_s=10.0, warmup_s=1.0,
                  prompt={"dist": "fixed", "value": 20_000}, **SMALL_GPU)
    with pytest.raises(sim.InputError) as info:
        sim.run(data, max_requests=100_000)
    assert info.value.where == "workload.arrival.think_time_s"

