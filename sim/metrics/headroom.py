"""Headroom: how much of what the fleet could deliver the offered load asks for.

    offered_requests_per_s   = requests that arrived in the window / window seconds
    capacity_requests_per_s  = one saturated replica's requests/s at the mix
                               (`sim.metrics.capacity`) × replicas working (time mean)
    load_fraction            = offered / capacity

Offered load is counted from arrivals rather than read from the arrival process, so a
trace, a time-varying rate and a Poisson draw are treated alike (for Poisson it is the
configured rate up to its sampling noise). The mix is that of the requests that arrived in
the window (all requests when none did). load_fraction above 1 means the fleet cannot keep
up; the further below 1, the more headroom. MFU and MBU (`sim.metrics.intensity`) say the
same from the hardware's side.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.metrics.capacity import Mix, Saturation
from sim.metrics.intensity import Demands, Intensity, WindowWork, intensity


@dataclass(frozen=True)
class StepFacts:
    """What the step-time model and the model's shape say about this fleet and mix (built
    by the runner, which has the step model)."""

    mix: Mix | None  # None: no request at all
    saturation: Saturation | None  # one replica at full load on `mix`
    demands: Demands


@dataclass(frozen=True)
class Headroom:
    offered_requests_per_s: float
    capacity_requests_per_s: float | None  # None: no mix, or steps that take no time
    load_fraction: float | None  # None: no capacity (no mix, or no replica working)
    mfu: float | None
    mbu: float | None


def headroom(facts: StepFacts, arrived: int, window_s: float, replicas_working: float,
             work: WindowWork, gpu_s: float) -> Headroom:
    """The headroom of the module docstring; `work` done in `gpu_s` paid GPU-seconds."""
    offered = arrived / window_s
    sat = facts.saturation
    # Steps that take no time have no finite capacity: nothing to hold the load against.
    capacity = (None if sat is None or sat.requests_per_s <= 0
                else sat.requests_per_s * replicas_working)
    used: Intensity | None = intensity(facts.demands, work, gpu_s)
    return Headroom(
        offered_requests_per_s=offered,
        capacity_requests_per_s=capacity,
        load_fraction=offered / capacity if capacity else None,
        mfu=None if used is None else used.mfu,
        mbu=None if used is None else used.mbu,
    )
