"""The fleet's saturation throughput for its workload mix, measured once per sweep.

A utilisation sweep sets the arrival rate to a fraction of what the fleet can deliver. That
capacity depends on the scheduler, the KV cache and the length mix, so it is measured, not
derived: the scenario is run overloaded (arrivals well above what it can serve, `drain_s` 0
so the backlog is cut off rather than drained) and the requests it completes per second in
its metrics window are its capacity. The probe starts at the scenario's own rate and
quadruples it until the fleet falls behind (delivers under 80% of the offered rate with work
left over), which takes a handful of cheap runs at most.

What it delivers is measured in tokens: the output tokens generated inside the window over
the workload's mean output length are its requests per second. (Counting the requests that
finished in the window would understate a fleet that starts empty, by up to the share of the
window its first end-to-end times fill.) Its warm-up is `auto` (MSER-5, `sim.metrics.steady`)
and its length follows the workload (`run_length_s`), so a long-output mix is probed long
enough to fill its batches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sim.errors import InputError
from sim.montecarlo.overrides import validated
from sim.runner.build import saturated_e2e_s
from sim.runner.single import run
from sim.scenario import Scenario

RATE_KEY = "workload.arrival.rate_per_s"
BEHIND_FRACTION = 0.8  # delivering less than this share of the offered rate: saturated
GROWTH = 4.0
MAX_PROBE_REQUESTS = 5_000_000  # a fleet that keeps up with this many is not going to saturate
RUN_E2E_TIMES = 12.0  # a run of a plan or probe lasts this many saturated E2E times ...
MAX_RUN_S = 3600.0  # ... but at most this long (the budget), unless the scenario runs longer
AUTO = "auto"


def run_length_s(scenario: Scenario) -> float:
    """How long a plan's or probe's run lasts when its settings do not say: the scenario's
    own duration, or RUN_E2E_TIMES × the time a request spends in a saturated replica at
    the workload's mean lengths (`sim.runner.build.saturated_e2e_s`) when that is longer,
    capped at MAX_RUN_S. MSER may drop up to half the run as warm-up and a fleet that
    starts empty fills its batches over one to two E2E times, so this leaves a window of at
    least several E2E times: long outputs get long runs, short ones keep the scenario's."""
    e2e_s = saturated_e2e_s(scenario)
    if e2e_s is None:
        return scenario.duration_s
    return max(scenario.duration_s, min(RUN_E2E_TIMES * e2e_s, MAX_RUN_S))


@dataclass(frozen=True)
class Capacity:
    requests_per_s: float
    input_tokens_per_s: float
    output_tokens_per_s: float
    probe_rate_per_s: float  # the overloaded arrival rate that measured it
    window_s: float
    seed: int

    def describe(self) -> str:
        return (f"saturation throughput {self.requests_per_s:.4g} req/s "
                f"({self.input_tokens_per_s:,.0f} input + {self.output_tokens_per_s:,.0f} "
                f"output tokens/s), measured once by an overloaded run ({self.probe_rate_per_s:.4g}"
                f" req/s offered, drain_s 0, warm-up auto, {self.window_s:g} s window, "
                f"seed {self.seed})")

    def to_dict(self) -> dict[str, Any]:
        return {"method": "saturation run", **asdict(self)}


def measure(raw: Mapping[str, Any], base_dir: Path, seed: int) -> Capacity:
    """Run the nominal scenario overloaded until it falls behind; its delivered rate."""
    where = {RATE_KEY: "sweep.utilization", "drain_s": "drain_s", "warmup_s": "warmup_s",
             "duration_s": "duration_s"}
    nominal = validated(raw, {}, where, base_dir)
    arrival = nominal.workload.arrival
    assert arrival is not None  # a utilization sweep refuses trace replay before this
    rate = arrival.rate_per_s
    length = {"duration_s": run_length_s(nominal), "warmup_s": AUTO}
    while True:
        scenario = validated(raw, {RATE_KEY: rate, "drain_s": 0.0, **length}, where, base_dir)
        done = run(scenario, seed=seed, warn_window=False)  # overloaded on purpose
        r = done.record
        mean_output = float(done.workload.output_tokens.mean()) if len(done.workload) else 0.0
        delivered = r.output_tokens_per_s / mean_output if mean_output > 0 else 0.0
        if delivered < BEHIND_FRACTION * rate and r.requests_unfinished > 0:
            return Capacity(delivered, r.input_tokens_per_s, r.output_tokens_per_s, rate,
                            r.window_end_s - r.window_start_s, seed)
        rate *= GROWTH
        if rate * scenario.duration_s > MAX_PROBE_REQUESTS:
            raise InputError("sweep.utilization", raw["sweep"]["utilization"],
                             f"a fleet with a finite saturation throughput (it kept up with "
                             f"{rate / GROWTH:.4g} req/s; does its profile give steps a time?)")
