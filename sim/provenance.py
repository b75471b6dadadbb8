"""Where a step-time model's numbers come from, carried into every result."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Provenance:
    name: str
    source: str  # measured | fitted-roofline | roofline | inline
    fit_error_pct: float | None = None
    details: dict = field(default_factory=dict)
