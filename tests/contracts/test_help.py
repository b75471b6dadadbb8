"""`tokenfactory run --help` teaches what a scenario may name: every scheduler policy (with
its one-line summary) and every router, read from the engine's registries, so a policy or
router added there shows up in the help without anyone remembering to write it down."""

from __future__ import annotations

import contextlib
import io

import pytest

from sim.cli import main
from sim.engine.router import ROUTERS
from sim.engine.scheduler import POLICIES


@pytest.fixture(scope="module")
def run_help() -> str:
    """The help printed once for the whole module (argparse prints it, then exits 0)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), pytest.raises(SystemExit) as info:
        main(["run", "--help"])
    assert info.value.code in (0, None)
    return buffer.getvalue()


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_run_help_names_every_scheduler_policy_with_its_summary(run_help: str,
                                                                policy: str) -> None:
    lines = [line for line in run_help.splitlines() if line.split()[:1] == [policy]]
    assert lines, f"run --help does not list the scheduler policy {policy!r}"
    assert POLICIES[policy].summary in lines[0]


@pytest.mark.parametrize("router", sorted(ROUTERS))
def test_run_help_names_every_router(run_help: str, router: str) -> None:
    assert router in run_help, f"run --help does not name the router {router!r}"
