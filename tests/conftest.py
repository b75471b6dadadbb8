"""Shared test set-up: the tiers live in subfolders (stories, theory, contracts, units,
validation); `builders` (scenario mappings, repository paths) is importable from all.

The bad-input harness lives here too: the tables in tests/contracts (scenario keys, sweeps,
plans) hold only their rows (`builders.Case`), and the fixtures below run a row and check the
README's promise for bad input: exit status 2, nothing on stdout, one line on stderr that
names the key, the value and what is accepted, no traceback, and no file left behind.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from builders import Case, scenario_file  # noqa: E402  (importable once the line above ran)

# The output flag each command gets when a row asks for one (Case.output).
OUTPUT_FLAGS: dict[str, Callable[[Path], list[str]]] = {
    "run": lambda tmp: ["--json", str(tmp / "out.json")],
    "sweep": lambda tmp: ["-o", str(tmp / "out")],
    "plan": lambda tmp: ["-o", str(tmp / "out"), "--workers", "1"],
    "stress": lambda tmp: ["-o", str(tmp / "out"), "--workers", "1"],
}


def _arguments(case: Case, tmp: Path) -> list[str]:
    """Write the row's files into `tmp` and return its full command line after `sim`."""
    for name, text in case.setup.items():
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_text(text, encoding="utf-8")
    build = case.input if callable(case.input) else scenario_file(case.input)
    argv = [case.command, *build(tmp)]
    # --resume names the sweep directory to continue, so it takes the place of -o.
    if case.output and not (case.command == "sweep" and "--resume" in case.flags):
        argv += OUTPUT_FLAGS[case.command](tmp)
    return [*argv, *case.flags]


def _listing(tmp: Path) -> set[str]:
    """Every path under `tmp`: compared before and after, it shows any file left behind."""
    return {str(p.relative_to(tmp)) for p in tmp.rglob("*")}


def _check(case: Case, code: object, stdout: str, stderr: str) -> None:
    """The promise for one row: each check is the strictest of the former per-table copies
    (only `key_first` is left to the row, where the message cannot lead with the key)."""
    assert "Traceback" not in stderr, stderr
    assert code == 2, f"exit status {code}; stderr: {stderr!r}"
    assert stdout == ""
    assert stderr.endswith("\n") and stderr.count("\n") == 1, f"not one line: {stderr!r}"
    line = stderr.rstrip("\n")
    assert "error" in line
    if case.key_first:
        assert f"error: {case.where}: " in line, f"{case.where!r} not the key in {line!r}"
    else:
        assert case.where in line, f"{case.where!r} not named in {line!r}"
    assert case.value in line, f"value {case.value!r} not shown in {line!r}"
    for text in case.also:
        assert text in line, f"{text!r} missing from {line!r}"


@pytest.fixture
def check_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   capsys: pytest.CaptureFixture[str]) -> Callable[[Case], None]:
    """Run a bad-input row through `sim.cli.main` in its own directory (relative paths in a
    row are inside it) and check the promise, including that no file appeared there."""
    from sim.cli import main  # here, not at the top: collecting tests must not import sim

    monkeypatch.chdir(tmp_path)

    def run(case: Case) -> None:
        argv = _arguments(case, tmp_path)
        before = _listing(tmp_path)
        capsys.readouterr()
        try:
            code: object = main(argv)
        except SystemExit as exc:  # argparse exits rather than returning
            code = exc.code
        out, err = capsys.readouterr()
        _check(case, code, out, err)
        # Nothing written: no result, no temporary file, no directory.
        assert _listing(tmp_path) == before

    return run


@pytest.fixture
def check_rejected_by_subprocess(tmp_path: Path) -> Callable[[Case], None]:
    """The same as `check_rejected` through a real `python -m sim` process: what a user sees,
    with the interpreter's own handling of exit status and stderr."""

    def run(case: Case) -> None:
        argv = _arguments(case, tmp_path)
        before = _listing(tmp_path)
        proc = subprocess.run([sys.executable, "-m", "sim", *argv], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
        _check(case, proc.returncode, proc.stdout, proc.stderr)
        assert _listing(tmp_path) == before

    return run


# Hostile rows run in a process that cannot take the machine down with it: a hang or an
# unbounded allocation fails the row (MemoryError or a timeout) instead.
ADDRESS_SPACE_BYTES = 4 * 1024**3


def _bounded_process() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_BYTES, ADDRESS_SPACE_BYTES))


@pytest.fixture
def check_rejected_bounded(tmp_path: Path) -> Callable[..., None]:
    """`check_rejected_by_subprocess` for hostile input: `python -m sim` with a 4 GiB address
    space and a wall-clock limit (`timeout_s`, 30 s unless the row needs more)."""

    def run(case: Case, timeout_s: float = 30.0) -> None:
        argv = _arguments(case, tmp_path)
        before = _listing(tmp_path)
        try:
            proc = subprocess.run([sys.executable, "-m", "sim", *argv], cwd=tmp_path,
                                  capture_output=True, text=True, timeout=timeout_s,
                                  preexec_fn=_bounded_process)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{case.id}: still running after {timeout_s:g} s")
        _check(case, proc.returncode, proc.stdout, proc.stderr)
        assert _listing(tmp_path) == before

    return run
