"""The discrete-event engine: takes plain config, arrays and a generator; returns plain data."""

from sim.engine.records import EngineConfig, EngineResult, ReplicaCounters
from sim.engine.simulation import simulate

__all__ = ["EngineConfig", "EngineResult", "ReplicaCounters", "simulate"]
