"""Help text read from the engine's registries, so `--help` names every scheduler policy and
router a scenario accepts, and cannot fall behind when one is added."""

from __future__ import annotations

from sim.engine.router import ROUTERS
from sim.engine.scheduler import POLICIES
from sim.report.text import Column, row


def policies_and_routers() -> str:
    """The scheduler policies, then the routers, each with its one-line summary."""
    key = Column("name", "<", max(len(name) for name in (*POLICIES, *ROUTERS)))
    summary = Column("summary", "<", 0)
    lines = ["scheduler policies (deployment.scheduler.policy):"]
    lines += ["  " + row((key, summary), (name, policy.summary))
              for name, policy in POLICIES.items()]
    lines.append("routers (deployment.router):")
    lines += ["  " + row((key, summary), (name, router.summary))
              for name, router in ROUTERS.items()]
    return "\n".join(lines) + "\n"
