"""Hostile names and the process edge: what a scenario names (itself, options, periods,
prices, grid values, trace files) is shown on the terminal and in reports as text, never
obeyed; anything unexpected, Ctrl-C and exhausted memory end with one line; a killed sweep
leaves no worker behind; workers' warnings are shown once, as one line, or not with --quiet.

The process checks start `python -m sim` in its own session and act on it as a terminal or
a supervisor would (SIGINT to the whole process group, SIGKILL to the command); each waits
for the state it needs (a busy simulator, live workers) rather than sleeping, and stops
within seconds.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import FIXTURES, REPO, outside_fences, replay_scenario, scenario, tiny

from sim.cli import main

ESC = "\x1b"
# Clear screen, an OSC 52 clipboard write, a newline that starts a heading, HTML, a
# javascript: link and a code fence: what a name must never do.
HOSTILE = (f"evil{ESC}[2J{ESC}]52;c;aGk=\x07\n# pwned <script>alert(1)</script> "
           "[x](javascript:alert(1)) ```")
INTERRUPTED_LINE = "tokenfactory: interrupted\n"


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
                    encoding="utf-8")
    return path


def _no_raw_control(text: str) -> None:
    """No control character but our own line breaks, and the name's ESC shown as \\x1b."""
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", text), repr(text[:200])


# ---- the terminal ---------------------------------------------------------------------------


def test_run_shows_a_hostile_scenario_name_escaped(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "s.yaml", tiny(name=HOSTILE))
    assert main(["run", str(path), "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    _no_raw_control(out)
    first = out.splitlines()[0]
    assert first.startswith("scenario evil\\x1b[2J\\x1b]52;c;aGk=\\x07\\n# pwned")
    assert not any(line.startswith("# pwned") for line in out.splitlines())
    _check_reports(tmp_path / "r.json", tmp_path)


def _plan_data(name: str = "test") -> dict[str, Any]:
    """A two-option, one-period plan of short cheap runs (tests/units/test_plan.py's fleet),
    its option, period and price names hostile."""
    data = scenario(
        name=name, seed=5, duration_s=20.0, warmup_s=2.0,
        profile={"kind": "constant", "step_s": 0.02},
        deployment={"replicas": 2, "scheduler": {"policy": "chunked-prefill",
                                                 "max_num_seqs": 4, "max_batched_tokens": 4096}},
        workload={"arrival": {"process": "poisson", "rate_per_s": 5.0},
                  "prompt_tokens": {"dist": "fixed", "value": 100},
                  "output_tokens": {"dist": "geometric", "mean": 25}},
        slo={"ttft_s": 0.6, "tpot_s": 0.05})
    data["cost"] = {"prices": {f"od{HOSTILE}": 3.0, "reserved": 2.0}, "price": f"od{HOSTILE}"}
    data["plan"] = {"periods": [{"name": f"p{HOSTILE}", "peak_rate_per_s": 6.0}],
                    "options": [{"name": f"a{HOSTILE}"},
                                {"name": f"b{HOSTILE}",
                                 "deployment": {"scheduler": {"max_num_seqs": 8}}}],
                    "target": {"confidence": 0.5, "draws": 2}}
    return data


def test_plan_and_stress_show_hostile_names_escaped(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "plan.yaml", _plan_data(HOSTILE))
    assert main(["plan", str(path), "-o", str(tmp_path / "plan"), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    _no_raw_control(out)
    assert "a" + "evil\\x1b[2J" in out and "p" + "evil\\x1b[2J" in out
    assert not any(line.startswith("# pwned") for line in out.splitlines())
    _check_reports(tmp_path / "plan", tmp_path)

    data = _plan_data(HOSTILE)
    data["stress"] = {"multipliers": [1.5], "draws": 2, "confidence": 0.5}
    path = _write(tmp_path / "stress.yaml", data)
    assert main(["stress", str(path), "-o", str(tmp_path / "stress"), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    _no_raw_control(out)
    assert out.startswith("stress evil\\x1b[2J")


def test_sweep_shows_hostile_grid_values_escaped(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data = tiny(name=HOSTILE, duration_s=10, warmup_s=1,
                cost={"prices": {f"x{HOSTILE}": 4.0, "y": 2.0}, "price": "y"},
                sweep={"grid": {"cost.price": [f"x{HOSTILE}", "y"]}, "replications": 1})
    path = _write(tmp_path / "sweep.yaml", data)
    assert main(["sweep", str(path), "-o", str(tmp_path / "out"), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    _no_raw_control(out)
    assert "xevil\\x1b[2J" in out
    _check_reports(tmp_path / "out", tmp_path)


def test_a_hostile_trace_file_name_is_shown_escaped_in_output_and_warnings(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / f"t{ESC}]52;c;aGk=\x07\nx.csv"  # a file the fixture warns about
    trace.write_bytes((FIXTURES / "burstgpt_small.csv").read_bytes())
    assert main(["trace", "stats", str(trace)]) == 0
    out, err = capsys.readouterr()
    _no_raw_control(out + err)
    assert "t\\x1b]52;c;aGk=\\x07\\nx.csv (burstgpt)" in out
    assert err.startswith("tokenfactory: warning: ") and err.count("\n") == 1


def test_a_hostile_key_in_an_error_is_shown_escaped(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    data = tiny()
    data["deployment"][f"replicas{ESC}]52;c;aGk=\x07\nfake"] = 2
    code = main(["run", str(_write(tmp_path / "s.yaml", data))])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and ESC not in err and "\x07" not in err
    assert "\\x1b" in err


# ---- reports -----------------------------------------------------------------------------------


def _check_reports(source: Path, tmp: Path) -> None:
    """The Markdown and HTML reports of `source`: user text is text in both."""
    md, page = tmp / f"{source.stem}-hostile.md", tmp / f"{source.stem}-hostile.html"
    assert main(["report", str(source), "-o", str(md), "--quiet"]) == 0
    assert main(["report", str(source), "-o", str(page), "--quiet"]) == 0
    text = md.read_text(encoding="utf-8")
    _no_raw_control(text)
    lines = outside_fences(text)
    headings = [line for line in lines if line.startswith("#")]
    assert all(re.match(r"(# Capacity review: |## \d\. )", h) for h in headings), headings
    outside = "\n".join(lines)
    assert "<script" not in outside
    assert not re.search(r"(?<!\\)\]\(javascript", outside)
    html_text = page.read_text(encoding="utf-8")
    assert "<script>" not in html_text and "&lt;script&gt;" in html_text
    assert ESC not in html_text


# ---- the catch-all ---------------------------------------------------------------------------


@pytest.mark.parametrize("raised, status, start", [
    (RuntimeError(f"boom{ESC}[2J\nsecond line " + "x" * 5000), 1,
     "tokenfactory: internal error: RuntimeError: boom\\x1b[2J second line x"),
    (MemoryError(), 1, "tokenfactory: error: the run needs more memory than is available"),
    (BrokenProcessPool("gone"), 1, "tokenfactory: error: a worker process stopped abruptly"),
    (KeyboardInterrupt(), 130, "tokenfactory: interrupted"),
])
def test_anything_unexpected_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str],
                                         raised: BaseException, status: int,
                                         start: str) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise raised

    monkeypatch.delenv("TOKENFACTORY_DEBUG", raising=False)
    monkeypatch.setattr("sim.runner.single.simulate", fail)  # deep in the run path
    path = _write(tmp_path / "s.yaml", tiny())
    assert main(["run", str(path)]) == status
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(start), err
    assert err.endswith("\n") and err.count("\n") == 1 and len(err) < 500
    assert "Traceback" not in err and ESC not in err
    if type(raised) is RuntimeError:
        assert err.endswith("— please report it with the command that caused it\n")
    monkeypatch.setenv("TOKENFACTORY_DEBUG", "1")  # developers get the exception itself
    with pytest.raises(type(raised)):
        main(["run", str(path)])


# ---- processes ----------------------------------------------------------------------------------


def _start(*argv: str, cwd: Path) -> subprocess.Popen[str]:
    """`python -m sim ARGV` in a session of its own (its process group is the command's)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("TOKENFACTORY_DEBUG", None)
    return subprocess.Popen([sys.executable, "-m", "sim", *argv], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


@contextmanager
def _started(*argv: str, cwd: Path) -> Iterator[subprocess.Popen[str]]:
    proc = _start(*argv, cwd=cwd)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def _until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    with suppress(OSError):  # a process that has ended has none
        for task in Path(f"/proc/{pid}/task").iterdir():
            kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _workers(pid: int) -> list[int]:
    """The pool workers (and resource tracker) among `pid`'s children, once at least two
    workers have started and ignore SIGINT, i.e. are past their start-up."""
    found, ready = [], 0
    for kid in _children(pid):
        try:
            command = Path(f"/proc/{kid}/cmdline").read_bytes()
            status = Path(f"/proc/{kid}/status").read_text()
        except OSError:
            continue
        if b"multiprocessing" in command:
            found.append(kid)
            ignored = int(re.search(r"SigIgn:\s*([0-9a-f]+)", status).group(1), 16)
            ready += b"spawn_main" in command and bool(ignored & (1 << (signal.SIGINT - 1)))
    return found if ready >= 2 else []


needs_proc = pytest.mark.skipif(not Path("/proc/self/task").is_dir(),
                                reason="reads processes from /proc")


def _long_sweep(tmp: Path) -> Path:
    """8 runs of a few seconds each: a sweep still busy when it is interrupted or killed."""
    data = tiny(duration_s=8000, workload__arrival__rate_per_s=20,
                sweep={"grid": {"deployment.replicas": [1, 2]}, "replications": 4})
    return _write(tmp / "long-sweep.yaml", data)


@needs_proc
def test_ctrl_c_during_a_run_is_one_line_and_status_130(tmp_path: Path) -> None:
    # Decode steps one at a time over a long horizon: ~20 s of simulation if not stopped.
    data = tiny(duration_s=20000, workload__output_tokens={"dist": "fixed", "value": 1000})
    path = _write(tmp_path / "slow.yaml", data)
    with _started("run", str(path), "--exact", cwd=tmp_path) as proc:
        _until(lambda: _cpu_s(proc.pid) > 1.5, 30, "the run under way")
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert (proc.returncode, out, err) == (130, "", INTERRUPTED_LINE)


@needs_proc
@pytest.mark.parametrize("command", ["sweep", "plan"])
def test_ctrl_c_during_a_pool_stops_it_at_once(tmp_path: Path, command: str) -> None:
    """The terminal's SIGINT reaches the workers too: they ignore it, the command stops
    them and says so in one line (a sweep how to resume), and no worker is left."""
    if command == "sweep":
        path = _long_sweep(tmp_path)
    else:  # its capacity probes run while the workers start
        data = _plan_data()
        data["duration_s"] = 600.0
        data["plan"]["target"]["draws"] = 8
        data["plan"]["periods"][0]["peak_rate_per_s"] = 60.0
        path = _write(tmp_path / "long-plan.yaml", data)
    with _started(command, str(path), "-o", str(tmp_path / "out"), "--workers", "2",
                  "--quiet", cwd=tmp_path) as proc:
        workers = _until(lambda: _workers(proc.pid), 30, "two workers started")
        os.killpg(proc.pid, signal.SIGINT)
        started = time.monotonic()
        out, err = proc.communicate(timeout=30)
    assert time.monotonic() - started < 5
    assert proc.returncode == 130 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err == INTERRUPTED_LINE or err.startswith("tokenfactory: interrupted: ")
    _until(lambda: not any(map(_alive, workers)), 5, "the workers gone")


@needs_proc
def test_a_killed_sweep_leaves_no_worker_running(tmp_path: Path) -> None:
    path = _long_sweep(tmp_path)
    with _started("sweep", str(path), "-o", str(tmp_path / "out"), "--workers", "2",
                  "--quiet", cwd=tmp_path) as proc:
        workers = _until(lambda: _workers(proc.pid), 30, "two workers started")
        assert proc.poll() is None  # still at work: the check below is not vacuous
        proc.kill()  # SIGKILL to the command alone, as a supervisor or the OOM killer would
        proc.communicate(timeout=10)
        try:
            _until(lambda: not any(map(_alive, workers)), 5,
                   "the workers and the resource tracker gone")
        finally:
            for pid in filter(_alive, workers):
                os.kill(pid, signal.SIGKILL)


def test_worker_warnings_are_shown_once_as_one_line_or_not_with_quiet(tmp_path: Path) -> None:
    """Each run's trace is cut by duration_s, which warns in every worker: one line in all."""
    data = replay_scenario({"path": str(FIXTURES / "azure_small.csv")}, 10.0)
    data["sweep"] = {"grid": {"deployment.replicas": [1, 2]}, "replications": 2}
    path = _write(tmp_path / "trace-sweep.yaml", data)
    stderr = {}
    for name, flags in (("plain", []), ("quiet", ["--quiet"])):
        proc = subprocess.run([sys.executable, "-m", "sim", "sweep", str(path), "-o",
                               str(tmp_path / name), "--workers", "2", *flags],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        assert proc.returncode == 0, proc.stderr
        stderr[name] = proc.stderr
    lines = stderr["plain"].splitlines()
    assert len(lines) == 1, stderr["plain"]
    assert lines[0].startswith("tokenfactory: warning: ")
    assert "2 of 6 replayed requests arrive at or after duration_s" in lines[0]
    assert stderr["quiet"] == ""
