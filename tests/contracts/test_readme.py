"""The README's commands and code are promises: run them.

* Every `$ ` line in a ```console block is run (with `tokenfactory` replaced by
  `python -m sim`, so no console script is needed) in a scratch directory holding a copy of
  `scenarios/`; it must exit 0 and print something unless it asks for `--quiet`.
* The Quickstart block (two commands that install with pip) is checked structurally only:
  nothing here runs pip.
* The ```python block is executed from the repository root.
"""

from __future__ import annotations

import ast
import json
import math
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from builders import REPO

import sim
from sim.cli import main

README = REPO / "README.md"
SLOW_S = 15.0  # a README command slower than this is a finding to report, not to skip


def _blocks(language: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    return re.findall(rf"^```{language}[ \t]*\n(.*?)^```[ \t]*$", text, flags=re.M | re.S)


def _dollar_commands() -> list[str]:
    commands = []
    for block in _blocks("console"):
        for line in block.splitlines():
            if line.startswith("$ "):
                commands.append(line[2:].strip())
    return commands


def _quickstart_block() -> list[str]:
    """The console block without prompts: the Quickstart's copy-paste commands."""
    plain = [block for block in _blocks("console") if not any(
        line.startswith("$ ") for line in block.splitlines())]
    assert len(plain) == 1, "expected exactly one console block without `$ ` prompts"
    return [line.strip() for line in plain[0].splitlines() if line.strip()]


def _argv(command: str) -> list[str]:
    """A README command as argv for this interpreter, without relying on PATH."""
    assert not any(op in command for op in ("|", ">", "<", ";", "&&")), (
        f"README command {command!r} needs a shell; extend this test to run it")
    argv = shlex.split(command)
    if argv[0] == "tokenfactory":
        return [sys.executable, "-m", "sim", *argv[1:]]
    if argv[0] in ("python", "python3"):
        return [sys.executable, *argv[1:]]
    raise AssertionError(f"README command {command!r} starts with an unexpected program")


COMMANDS = _dollar_commands()


def test_readme_has_commands() -> None:
    assert len(COMMANDS) >= 3
    assert any(c.startswith("tokenfactory run ") for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs(command: str, tmp_path: Path) -> None:
    shutil.copytree(REPO / "scenarios", tmp_path / "scenarios")
    before = {p.name for p in tmp_path.iterdir()}
    started = time.perf_counter()
    proc = subprocess.run(_argv(command), cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0, f"{command!r} exited {proc.returncode}: {proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stderr
    argv = shlex.split(command)
    if "--quiet" in argv:
        assert proc.stdout == "", f"{command!r} printed despite --quiet"
    else:
        assert proc.stdout.strip(), f"{command!r} printed nothing"
    if "--json" in argv:
        target = argv[argv.index("--json") + 1]
        data = _strict_json(tmp_path / target)
        if "--seed" in argv:
            assert data["seed"] == int(argv[argv.index("--seed") + 1])
    else:
        assert {p.name for p in tmp_path.iterdir()} == before, "wrote files it was not asked to"
    assert elapsed < SLOW_S, f"README command {command!r} took {elapsed:.1f} s"


def _strict_json(path: Path) -> dict[str, Any]:
    def refuse(token: str) -> None:
        raise AssertionError(f"{path} contains {token}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def test_quickstart_commands() -> None:
    commands = _quickstart_block()
    assert len(commands) == 2
    first, second = commands
    assert first.startswith("python3 -m pip install ")
    assert second.startswith("python3 -m pip install ")
    # The first ends by simulating a bundled scenario that exists.
    match = re.search(r"&& tokenfactory run (scenarios/[\w.-]+\.yaml)$", first)
    assert match, first
    assert (REPO / match.group(1)).is_file()
    # ...and that scenario is the default the README describes: llama-3.1-8b on H100s.
    default = yaml.safe_load((REPO / match.group(1)).read_text(encoding="utf-8"))
    assert default["model"] == "llama-3.1-8b" and default["gpu"] == "h100-sxm"
    # The second installs the test extra and runs pytest.
    assert ".[test]" in second
    assert re.search(r"&& python3 -m pytest$", second), second


def _ci_script() -> str:
    return (REPO / ".ci" / "run").read_text(encoding="utf-8")


def test_ci_runs_each_part_of_the_quickstart_test_command_in_order() -> None:
    second = _quickstart_block()[1]
    ci = _ci_script()
    position = 0
    for part in (p.strip() for p in second.split("&&")):
        found = ci.find(part, position)
        assert found >= 0, f".ci/run does not run {part!r} (after position {position})"
        position = found + len(part)
    assert "ruff check ." in ci  # README: "CI runs exactly that, after `ruff check .`"


def test_ci_contains_the_quickstart_test_command_verbatim() -> None:
    assert _quickstart_block()[1] in _ci_script()


def test_python_block_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Execute the README's Python example statement by statement from the repo root,
    keeping the value of each bare expression so the displayed results can be checked."""
    blocks = _blocks("python")
    assert len(blocks) == 1
    monkeypatch.chdir(REPO)
    namespace: dict[str, Any] = {}
    shown: list[Any] = []
    for node in ast.parse(blocks[0]).body:
        if isinstance(node, ast.Expr):
            code = compile(ast.Expression(node.value), "README.md", "eval")
            shown.append(eval(code, namespace))  # the README's own code
        else:
            exec(compile(ast.Module([node], []), "README.md", "exec"), namespace)
    assert isinstance(namespace["scenario"], sim.Scenario)
    assert isinstance(namespace["result"], sim.Result)
    costs = [v for v in shown if isinstance(v, dict) and "blended" in v]
    assert len(costs) == 1
    assert set(costs[0]) >= {"input", "output", "blended"}
    for value in costs[0].values():
        assert isinstance(value, float) and math.isfinite(value) and value > 0
    columns = [v for v in shown if isinstance(v, np.ndarray)]
    assert len(columns) == 1
    assert len(columns[0]) == namespace["result"].to_dict()["requests"]["arrived"]


def test_scenario_keys_block_is_a_valid_scenario() -> None:
    """The 'Scenario keys' YAML block documents every key; it must also validate."""
    blocks = [b for b in _blocks("yaml") if "duration_s" in b]
    assert len(blocks) == 1
    data = yaml.safe_load(blocks[0])
    scenario = sim.load_scenario(data)
    assert scenario.model.name == data["model"]
    # Every key the validator accepts is documented there (top level and deployment).
    assert set(data) == set(sim.Scenario.model_fields)
    assert set(data["deployment"]) == set(type(scenario.deployment).model_fields)


def test_bundled_scenarios_table_matches_the_folder() -> None:
    text = README.read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([\w.-]+\.yaml)` \|", text, flags=re.M))
    on_disk = {p.name for p in (REPO / "scenarios").glob("*.yaml")}
    assert listed == on_disk


def test_bundled_scenarios_validate() -> None:
    for path in sorted((REPO / "scenarios").glob("*.yaml")):
        scenario = sim.load_scenario(path)
        assert scenario.name == path.stem


def test_readme_example_error_message(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    text = README.read_text(encoding="utf-8")
    quoted = re.search(r"`(workload\.arrival\.rate_per_s: -3 — [^`]+)`", text)
    assert quoted, "README no longer quotes the example error"
    data = yaml.safe_load((REPO / "scenarios" / "chat-8b-h100.yaml").read_text("utf-8"))
    data["workload"]["arrival"]["rate_per_s"] = -3
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["run", str(path)]) == 2
    assert capsys.readouterr().err == f"tokenfactory: error: {quoted.group(1)}\n"
