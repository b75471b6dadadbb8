"""The fleet's saturation throughput for its workload mix, measured once per sweep.

A utilisation sweep sets the arrival rate to a fraction of what the fleet can deliver. That
capacity depends on the scheduler, the KV cache and the length mix, so it is measured, not
derived: the scenario is run overloaded (arrivals well above what it can serve, `drain_s` 0
so the backlog is cut off rather than drained) and the requests it completes per second in
its metrics window are its capacity. The probe starts at the scenario's own rate and
quadruples it until the fleet falls behind (delivers under 80% of the offered rate with work
left over), which takes a handful of cheap runs at most.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sim.errors import InputError
from sim.montecarlo.overrides import validated
from sim.runner.single import run

RATE_KEY = "workload.arrival.rate_per_s"
BEHIND_FRACTION = 0.8  # delivering less than this share of the offered rate: saturated
GROWTH = 4.0
MAX_PROBE_REQUESTS = 5_000_000  # a fleet that keeps up with this many is not going to saturate


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
                f" req/s offered, drain_s 0, {self.window_s:g} s window, seed {self.seed})")

    def to_dict(self) -> dict[str, Any]:
        return {"method": "saturation run", **asdict(self)}


def measure(raw: Mapping[str, Any], base_dir: Path, seed: int) -> Capacity:
    """Run the nominal scenario overloaded until it falls behind; its delivered rate."""
    where = {RATE_KEY: "sweep.utilization", "drain_s": "drain_s"}
    arrival = validated(raw, {}, where, base_dir).workload.arrival
    assert arrival is not None  # a utilization sweep refuses trace replay before this
    rate = arrival.rate_per_s
    while True:
        scenario = validated(raw, {RATE_KEY: rate, "drain_s": 0.0}, where, base_dir)
        r = run(scenario, seed=seed).record
        if r.requests_per_s < BEHIND_FRACTION * rate and r.requests_unfinished > 0:
            return Capacity(r.requests_per_s, r.input_tokens_per_s, r.output_tokens_per_s,
                            rate, scenario.duration_s - scenario.warmup_s, seed)
        rate *= GROWTH
        if rate * scenario.duration_s > MAX_PROBE_REQUESTS:
            raise InputError("sweep.utilization", raw["sweep"]["utilization"],
                             f"a fleet with a finite saturation throughput (it kept up with "
                             f"{rate / GROWTH:.4g} req/s; does its profile give steps a time?)")
