"""The discrete-event engine: takes plain config, arrays and a generator; returns plain data.

It imports numpy and simpy only, nothing else of the simulator, and does no I/O. Its
registries (`scheduler.POLICIES`, `router.ROUTERS`) are what the scenario accepts; reading
them loads neither simpy nor the engine's processes, as the names below load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.engine.records import DecodePool, EngineConfig, EngineResult, ReplicaCounters
    from sim.engine.simulation import simulate

__all__ = ["DecodePool", "EngineConfig", "EngineResult", "ReplicaCounters", "simulate"]

_HOME = {"DecodePool": "records", "EngineConfig": "records", "EngineResult": "records",
         "ReplicaCounters": "records", "simulate": "simulation"}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(import_module(f"sim.engine.{_HOME[name]}"), name)
    raise AttributeError(f"module 'sim.engine' has no attribute {name!r}")
