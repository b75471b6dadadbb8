"""Help text read from the engine's registries, so `--help` names every scheduler policy and
router a scenario accepts, and cannot fall behind when one is added."""

from __future__ import annotations

from sim.engine.router import ROUTERS
from sim.engine.scheduler import POLICIES
from sim.report.text import Column, row


def policies_and_routers() -> str:
    """The scheduler policies with their one-line summaries, then the router names."""
    key = Column("policy", "<", max(len(name) for name in POLICIES))
    summary = Column("summary", "<", 0)
    lines = ["scheduler policies (deployment.scheduler.policy):"]
    lines += ["  " + row((key, summary), (name, policy.summary))
              for name, policy in POLICIES.items()]
    lines.append(f"routers (deployment.router): {', '.join(ROUTERS)}")
    return "\n".join(lines) + "\n"
