"""Hostile outputs and tampered result files: every command judges where it will write before
any work, writes whole files with the mode the umask gives, and `--resume` and `report` read
only what they can check.

The first table runs `python -m sim` bounded in time and memory (`check_rejected_bounded`):
outputs in /proc (which refuses new files even to root), /sys, over a device, with a name or
path past the file system's limits, for every command that writes; a run whose output cannot
be written refused before a scenario that would simulate for minutes; and result folders
holding a link, a FIFO or a huge file, which a report must refuse rather than follow, wait on
or read into memory. The plain tests below need fixtures: a read-only mount and a full file
system (private mounts, as root), file modes under two umasks, result folders tampered in many
ways, and plan.csv re-rendered from its parsed rows.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from builders import FIXTURES, REPO, Builder, Case, params, scenario_file, tiny

from sim.cli import main

PLAN_FIXTURE = FIXTURES / "report_plan"
# A run of some 2 million requests: minutes of simulation, were the output not judged first.
LONG_RUN = tiny(duration_s=3600.0, workload__arrival__rate_per_s=600.0)


def _with(*argv: str) -> Builder:
    """A builder for commands whose input is fixed (no scenario to write)."""
    return lambda tmp: list(argv)


def _plan_folder(change: Callable[[Path], None] = lambda folder: None) -> Builder:
    """A copy of the plan fixture as `plan/`, changed by `change`; its path as the input."""

    def build(tmp: Path) -> list[str]:
        folder = tmp / "plan"
        shutil.copytree(PLAN_FIXTURE, folder)
        change(folder)
        return [str(folder)]

    return build


def _symlink(name: str, target: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).symlink_to(target)


def _moved(name: str, elsewhere: str) -> Callable[[Path], None]:
    """`name` moved to `elsewhere` in the folder, and a symbolic link to it in its place."""

    def change(folder: Path) -> None:
        (folder / name).rename(folder / elsewhere)
        (folder / name).symlink_to(folder / elsewhere)

    return change


def _sparse(name: str, size: int) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        with (folder / name).open("wb") as handle:
            handle.truncate(size)

    return change


def _fifo(name: str) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        (folder / name).unlink(missing_ok=True)
        os.mkfifo(folder / name)

    return change


LONG_NAME = "n" * 300 + ".json"
LONG_PATH = "/".join(["d" * 200] * 25) + "/out.json"

CASES = [
    # ---- output files of `run` ----------------------------------------------------------
    Case("json-into-proc", tiny(), "--json", "/proc/tokenfactory.json", ("/proc",),
         flags=("--json", "/proc/tokenfactory.json"), output=False),
    Case("json-into-sys", tiny(), "--json", "/sys/tokenfactory.json", ("/sys",),
         flags=("--json", "/sys/tokenfactory.json"), output=False),
    Case("json-over-a-device", tiny(), "--json", "/dev/null", ("character device",),
         flags=("--json", "/dev/null"), output=False),
    Case("json-name-too-long", tiny(), "--json", "nnnnnnnnnn", ("255 bytes",),
         flags=("--json", LONG_NAME), output=False),
    Case("json-path-too-long", tiny(), "--json", "dddddddddd", ("PATH_MAX",),
         flags=("--json", LONG_PATH), output=False),
    Case("json-into-proc-before-a-long-run", LONG_RUN, "--json", "/proc/tokenfactory.json",
         flags=("--json", "/proc/tokenfactory.json"), output=False),
    Case("report-into-proc", tiny(), "--report", "/proc/report.html", ("/proc",),
         flags=("--report", "/proc/report.html"), output=False),
    Case("markdown-report-name-too-long", tiny(), "--report", "nnnnnnnnnn", ("255 bytes",),
         flags=("--report", "n" * 250 + ".md"), output=False),
    # ---- output directories ---------------------------------------------------------------
    Case("sweep-into-proc", LONG_RUN, "-o", "/proc/sweep", ("/proc",), command="sweep",
         flags=("-o", "/proc/sweep"), output=False),
    Case("sweep-name-too-long", LONG_RUN, "-o", "oooooooooo", ("255 bytes",), command="sweep",
         flags=("-o", "o" * 300), output=False),
    Case("plan-into-proc", LONG_RUN, "-o", "/proc/plan", ("/proc",), command="plan",
         flags=("-o", "/proc/plan"), output=False),
    Case("stress-into-proc", LONG_RUN, "-o", "/proc/stress", ("/proc",), command="stress",
         flags=("-o", "/proc/stress"), output=False),
    Case("stress-into-sys", LONG_RUN, "-o", "/sys/stress", ("/sys",), command="stress",
         flags=("-o", "/sys/stress"), output=False),
    # ---- the other commands' outputs ------------------------------------------------------
    Case("validate-csv-into-proc", _with(str(FIXTURES / "validate_measurements.yaml")),
         "--csv", "/proc/validation.csv", command="validate",
         flags=("--csv", "/proc/validation.csv"), output=False),
    Case("validate-plot-into-proc", _with(str(FIXTURES / "validate_measurements.yaml")),
         "--plot", "/proc/validation.png", command="validate",
         flags=("--plot", "/proc/validation.png"), output=False),
    Case("trace-fit-into-proc", _with("fit", str(FIXTURES / "azure_small.csv")), "--output",
         "/proc/workload.yaml", command="trace", flags=("-o", "/proc/workload.yaml"),
         output=False),
    Case("trace-plots-into-proc", _with("stats", str(FIXTURES / "azure_small.csv")), "--plot",
         "/proc/figures", command="trace", flags=("--plot", "/proc/figures"), output=False),
    Case("trace-json-name-too-long", _with("stats", str(FIXTURES / "azure_small.csv")),
         "--json", "nnnnnnnnnn", ("255 bytes",), command="trace", flags=("--json", LONG_NAME),
         output=False),
    Case("calibrate-profile-into-proc", _with("fit", "measurements.csv"), "--output",
         "/proc/profile.yaml", command="calibrate", flags=("-o", "/proc/profile.yaml"),
         output=False),
    Case("report-output-into-proc", _plan_folder(), "-o", "/proc/report.html", ("/proc",),
         command="report", flags=("-o", "/proc/report.html"), output=False),
    # ---- result folders a report must not follow, wait on or swallow ----------------------
    Case("report-plan-csv-symlink", _plan_folder(_symlink("plan.csv", "/etc/passwd")),
         "plan/plan.csv", "symbolic link", command="report", output=False, key_first=False),
    Case("report-figure-symlink", _plan_folder(_symlink("fleet_plan.png", "/etc/passwd")),
         "plan/fleet_plan.png", "symbolic link", command="report", output=False,
         key_first=False),
    Case("report-plan-json-symlink", _plan_folder(_moved("plan.json", "real.json")),
         "plan/plan.json", "symbolic link", command="report", output=False, key_first=False),
    Case("report-plan-csv-device", _plan_folder(_symlink("plan.csv", "/dev/zero")),
         "plan/plan.csv", "symbolic link", command="report", output=False, key_first=False),
    Case("report-plan-json-fifo", _plan_folder(_fifo("plan.json")), "plan/plan.json",
         "FIFO", command="report", output=False, key_first=False),
    Case("report-huge-plan-csv", _plan_folder(_sparse("plan.csv", 65 * 1024**2)),
         "plan/plan.csv", "68,157,440 bytes", ("64 MiB",), command="report", output=False,
         key_first=False),
    Case("report-huge-plan-json", _plan_folder(_sparse("plan.json", 3 * 1024**3)),
         "plan/plan.json", "3,221,225,472 bytes", ("64 MiB",), command="report",
         output=False, key_first=False),
]


@pytest.mark.parametrize("case", params(CASES))
def test_hostile_output_or_result_folder(case: Case,
                                         check_rejected_bounded: Callable[..., None]) -> None:
    # The long run would take minutes: 10 s is ample only if it is refused before it starts.
    check_rejected_bounded(case, timeout_s=10.0 if "long-run" in case.id else 30.0)


def test_case_ids_are_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)


# ---- a read-only mount and a full file system -------------------------------------------------


def _private_mount(setup: str, argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m sim ARGV` in a private mount namespace after the shell commands `setup`
    (mounts seen by that process only); skipped where namespaces or mounts are not allowed."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not installed")
    command = " ".join([setup, "&&", "exec", *map(_quote, [sys.executable, "-m", "sim", *argv])])
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"{setup} && echo ok"], cwd=cwd,
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0 or "ok" not in probe.stdout:
        pytest.skip(f"private mounts are not allowed here ({probe.stderr.strip()[:80]})")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(["unshare", "-m", "sh", "-c", command], cwd=cwd, capture_output=True,
                          text=True, timeout=60, env=env)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _one_line_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


def test_json_into_a_read_only_directory_is_refused_before_simulating(tmp_path: Path) -> None:
    scenario = scenario_file(LONG_RUN)(tmp_path)[0]
    locked = tmp_path / "locked"
    locked.mkdir()
    argv = ["run", scenario, "--json", str(locked / "result.json")]
    if os.geteuid() != 0:  # permission bits stop an ordinary user
        locked.chmod(0o555)
        try:
            proc = subprocess.run([sys.executable, "-m", "sim", *argv], cwd=tmp_path,
                                  capture_output=True, text=True, timeout=10)
        finally:
            locked.chmod(0o755)
        _one_line_error(proc, "--json", "Permission denied")
    else:  # root writes whatever the bits say: a read-only bind mount refuses even root
        where = _quote(str(locked))
        proc = _private_mount(f"mount --bind {where} {where} && "
                              f"mount -o remount,bind,ro {where}", argv, tmp_path)
        _one_line_error(proc, "--json", "Read-only file system")
    assert list(locked.iterdir()) == []


def test_a_full_file_system_is_refused_before_the_sweep_starts(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    scenario = scenario_file(tiny(sweep={"grid": {"deployment.replicas": [1, 2]},
                                         "replications": 2}))(tmp_path)[0]
    disk = tmp_path / "disk"
    disk.mkdir()
    proc = _private_mount(f"mount -t tmpfs -o size=64k tmpfs {_quote(str(disk))}",
                          ["sweep", scenario, "-o", str(disk / "out"), "--workers", "1"],
                          tmp_path)
    _one_line_error(proc, "-o", "room for the output", "free")
    assert list(disk.iterdir()) == []  # the mount was private: nothing here either way


# ---- modes follow the umask --------------------------------------------------------------------


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_output_files_get_the_mode_the_umask_gives(tmp_path: Path, mask: int,
                                                   mode: int) -> None:
    scenario = scenario_file(tiny(sweep={"grid": {"deployment.replicas": [1, 2]},
                                         "replications": 2}))(tmp_path)[0]

    def umask() -> None:
        os.umask(mask)

    for argv in (["run", scenario, "--json", "r.json", "--report", "r.md", "--quiet"],
                 ["sweep", scenario, "-o", "sweep", "--workers", "1", "--quiet", "--report"]):
        proc = subprocess.run([sys.executable, "-m", "sim", *argv], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120, preexec_fn=umask)
        assert proc.returncode == 0, proc.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "scenario.yaml"]
    assert {"r.json", "r.md", "runs.csv", "sweep.json", "summary.json", "report.html"} <= \
        {p.name for p in written}
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in written} == \
        {p.name: oct(mode) for p in written}
    folders = [p for p in tmp_path.rglob("*") if p.is_dir()]
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in folders} == {oct(0o777 & ~mask)}


# ---- tampered result folders -------------------------------------------------------------------


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small utilisation sweep folder and a run's JSON, written by the commands."""
    tmp = tmp_path_factory.mktemp("results")
    data = tiny(sweep={"utilization": [0.3, 0.7], "replications": 2},
                uncertainty={"cost.gpu_hour_usd": {"dist": "uniform", "low": 2.0, "high": 3.0}})
    sweep = scenario_file(data)(tmp)[0]
    assert main(["sweep", sweep, "-o", str(tmp / "sweep"), "--workers", "1", "--quiet"]) == 0
    run = scenario_file(tiny(), "run.yaml")(tmp)[0]
    assert main(["run", run, "--json", str(tmp / "run.json"), "--quiet"]) == 0
    return {"sweep": tmp / "sweep", "run": tmp / "run.json", "plan": PLAN_FIXTURE}


def _edit_json(name: str, change: Callable[[Any], Any]) -> Callable[[Path], None]:
    """Rewrite `name` (in the copied folder; the run's JSON when the copy is that file) with
    `change` applied to its parsed content; NaN is written as JSON's NaN literal."""

    def apply(copy: Path) -> None:
        path = copy if copy.is_file() else copy / name
        data = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps(change(data), allow_nan=True), encoding="utf-8")

    return apply


def _setting(path: str, value: Any) -> Callable[[Any], Any]:
    """Set (or, with DELETE, remove) the value at a dotted key path with [i] indices."""

    def change(data: Any) -> Any:
        parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
        node = data
        for part in parts[:-1]:
            node = node[int(part[1:-1])] if part.startswith("[") else node[part]
        last = parts[-1]
        key: Any = int(last[1:-1]) if last.startswith("[") else last
        if value is DELETE:
            del node[key]
        else:
            node[key] = value
        return data

    return change


DELETE = object()


def _edit_csv(name: str, change: Callable[[list[list[str]]], list[list[str]]]
              ) -> Callable[[Path], None]:
    def apply(copy: Path) -> None:
        path = copy / name
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(change(rows))
        path.write_text(buffer.getvalue(), encoding="utf-8")

    return apply


def _cell(column: str, text: str, row: int = 1) -> Callable[[list[list[str]]], list[list[str]]]:
    def change(rows: list[list[str]]) -> list[list[str]]:
        rows[row][rows[0].index(column)] = text
        return rows

    return change


def _replace(name: str, content: bytes | str) -> Callable[[Path], None]:
    def apply(copy: Path) -> None:
        data = content.encode("utf-8") if isinstance(content, str) else content
        (copy / name).write_bytes(data)

    return apply


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"x": value}
    return value


P0 = "points[0]"
TAMPERED: list[tuple[str, str, Callable[[Path], None], tuple[str, ...]]] = [
    # (id, which folder, the change, words the one-line error must hold)
    ("summary-probability-a-string", "sweep",
     _edit_json("summary.json", _setting(f"{P0}.slo_met_probability", "high")),
     ("summary.json: points[0].slo_met_probability", "'high'", "a number")),
    ("summary-nan-cost", "sweep",
     _edit_json("summary.json", _setting(f"{P0}.usd_per_million_tokens.blended.p50",
                                         float("nan"))),
     ("summary.json: points[0].usd_per_million_tokens.blended.p50", "nan", "finite")),
    ("summary-infinite-latency", "sweep",
     _edit_json("summary.json", _setting(f"{P0}.ttft_p99_s.p95", float("inf"))),
     ("points[0].ttft_p99_s.p95", "inf")),
    ("summary-empty-points", "sweep", _edit_json("summary.json", _setting("points", [])),
     ("summary.json: points", "[]", "at least 1")),
    ("summary-missing-convergence", "sweep",
     _edit_json("summary.json", _setting(f"{P0}.convergence", DELETE)),
     ("summary.json: points[0].convergence", "missing")),
    ("summary-feasible-a-number", "sweep",
     _edit_json("summary.json", _setting(f"{P0}.slo_feasible", 1)),
     ("points[0].slo_feasible", "true or false")),
    ("summary-unknown-axis", "sweep",
     _edit_json("summary.json", _setting("sweep.axis", "diagonal")),
     ("summary.json: sweep.axis", "'diagonal'")),
    ("summary-no-capacity", "sweep", _edit_json("summary.json", _setting("capacity", None)),
     ("summary.json: capacity", "saturation")),
    ("summary-not-an-object", "sweep", _replace("summary.json", "[1, 2]"),
     ("summary.json", "JSON object")),
    ("summary-not-json", "sweep", _replace("summary.json", "{\"points\": ["),
     ("summary.json", "readable JSON")),
    ("summary-deeply-nested", "sweep", _replace("summary.json", "[" * 100_000),
     ("summary.json",)),
    ("manifest-no-scenario", "sweep",
     _edit_json("sweep.json", _setting("scenario_config", DELETE)),
     ("sweep.json: scenario_config", "missing")),
    ("manifest-slo-a-number", "sweep",
     _edit_json("sweep.json", _setting("scenario_config.slo", 3)),
     ("sweep.json: scenario_config.slo", "a mapping")),
    ("runs-busy-a-string", "sweep", _edit_csv("runs.csv", _cell("busy_fraction", "busy")),
     ("runs.csv:2: busy_fraction", "'busy'", "finite number")),
    ("runs-negative-cost", "sweep",
     _edit_csv("runs.csv", _cell("usd_per_million_blended", "-1")),
     ("runs.csv:2: usd_per_million_blended", "≥ 0")),
    ("runs-sampled-input-a-name", "sweep",
     _edit_csv("runs.csv", _cell("cost.gpu_hour_usd", "cheap")),
     ("runs.csv:2: cost.gpu_hour_usd", "'cheap'", "a number")),
    ("runs-busy-fraction-empty", "sweep", _edit_csv("runs.csv", _cell("busy_fraction", "")),
     ("runs.csv:2: busy_fraction", "every run has one")),
    ("manifest-nested-too-deep", "sweep",
     _edit_json("sweep.json", _setting("scenario_config.cost", _nested(200))),
     ("sweep.json: scenario_config.cost", "levels")),
    ("runs-unknown-point", "sweep", _edit_csv("runs.csv", _cell("point", "7")),
     ("runs.csv:2: point", "7")),
    ("runs-header-changed", "sweep",
     _edit_csv("runs.csv", lambda rows: [[c.upper() for c in rows[0]], *rows[1:]]),
     ("runs.csv:1", "'RUN'", "sweep.json")),
    ("runs-ragged-row", "sweep", _edit_csv("runs.csv", lambda rows: [*rows, ["0", "1"]]),
     ("runs.csv:6", "2 cells")),
    ("runs-duplicate-run", "sweep", _edit_csv("runs.csv", lambda rows: [*rows, rows[1]]),
     ("runs.csv:6: run", "each run once")),
    ("runs-no-rows", "sweep", _edit_csv("runs.csv", lambda rows: rows[:1]),
     ("runs.csv", "at least one")),
    ("runs-symlink", "sweep",
     lambda copy: ((copy / "runs.csv").unlink(), (copy / "runs.csv").symlink_to("/etc/passwd")),
     ("runs.csv", "symbolic link")),
    ("summary-symlink", "sweep", _moved("summary.json", "elsewhere.json"),
     ("summary.json", "symbolic link")),
    ("runs-huge", "sweep", _sparse("runs.csv", 65 * 1024**2), ("runs.csv", "64 MiB")),
    ("run-replicas-a-string", "run", _edit_json("", _setting("fleet.replicas", "two")),
     ("run.json: fleet.replicas", "'two'", "an integer")),
    ("run-missing-ttft", "run", _edit_json("", _setting("latency_s.ttft", DELETE)),
     ("run.json: latency_s.ttft", "missing")),
    ("run-met-a-string", "run", _edit_json("", _setting("slo.met", "yes")),
     ("run.json: slo.met", "'yes'")),
    ("run-nan-cost", "run",
     _edit_json("", _setting("cost.usd_per_million_tokens.blended", float("nan"))),
     ("run.json: cost.usd_per_million_tokens.blended", "nan")),
    ("run-profile-source-a-list", "run", _edit_json("", _setting("profile.source", ["a"])),
     ("run.json: profile.source", "a string")),
    ("plan-no-periods", "plan", _edit_json("plan.json", _setting("periods", DELETE)),
     ("plan.json: periods", "missing")),
    ("plan-empty-periods", "plan", _edit_json("plan.json", _setting("periods", [])),
     ("plan.json: periods", "[]")),
    ("plan-replicas-a-string", "plan",
     _edit_json("plan.json", _setting("periods[0].options[0].replicas", "four")),
     ("plan.json: periods[0].options[0].replicas", "'four'")),
    ("plan-priced-without-gpus", "plan",
     _edit_json("plan.json", _setting("periods[1].options[0].gpus", None)),
     ("plan.json: periods[1].options[0].gpus", "monthly price")),
    ("plan-recommends-an-unknown-option", "plan",
     _edit_json("plan.json", _setting("periods[0].recommended", "tpu")),
     ("plan.json: periods[0].recommended", "'tpu'", "h100-tp1")),
    ("plan-nan-probability", "plan",
     _edit_json("plan.json", _setting("periods[2].options[1].slo_met_probability",
                                      float("nan"))),
     ("periods[2].options[1].slo_met_probability", "nan")),
    ("plan-figure-not-a-png", "plan", _replace("fleet_plan.png", "<svg/>"),
     ("fleet_plan.png", "PNG")),
    ("plan-csv-wrong-columns", "plan", _replace("plan.csv", "period,option\n2027-01,x\n"),
     ("plan.csv:1", "columns")),
]


@pytest.mark.parametrize(("folder", "change", "words"),
                         [pytest.param(f, c, w, id=i) for i, f, c, w in TAMPERED])
def test_report_refuses_a_tampered_result(folder: str, change: Callable[[Path], None],
                                          words: tuple[str, ...], results: dict[str, Path],
                                          tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    source = results[folder]
    copy = tmp_path / source.name
    if source.is_dir():
        shutil.copytree(source, copy)
    else:
        shutil.copy(source, copy)
    change(copy)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    capsys.readouterr()
    assert main(["report", str(copy)]) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in err and out == "" and err.count("\n") == 1, err
    for word in words:
        assert word in err, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no report, no temp file


def test_the_untampered_results_make_reports(results: dict[str, Path], tmp_path: Path) -> None:
    """The control for the table above: each folder, copied as it is, is reported."""
    for name, source in results.items():
        copy = tmp_path / name
        if source.is_dir():
            shutil.copytree(source, copy)
        else:
            shutil.copy(source, copy)
        assert main(["report", str(copy), "-o", str(tmp_path / f"{name}.html"),
                     "--quiet"]) == 0


# ---- plan.csv is parsed and re-rendered, never embedded as found --------------------------


def test_plan_csv_reaches_the_report_as_its_parsed_rows(tmp_path: Path) -> None:
    from sim.planning.document import CSV_COLUMNS

    folder = tmp_path / "plan"
    shutil.copytree(PLAN_FIXTURE, folder)
    plan = json.loads((folder / "plan.json").read_text(encoding="utf-8"))
    hostile = "<script>alert(1)</script>"
    plan["periods"][0]["options"][1]["option"] = hostile
    plan["periods"][1]["period"] = "2027|02"
    (folder / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
    rows = []
    for period in plan["periods"]:
        for option in period["options"]:
            row = dict.fromkeys(CSV_COLUMNS, "")
            row.update(period=period["period"], option=option["option"],
                       recommended=option["option"] == period["recommended"],
                       replicas=option["replicas"], gpus=option["gpus"],
                       usd_per_month=option["usd_per_month"],
                       slo_met_probability=option["slo_met_probability"],
                       fleets_tried="3 4", simulations=16)
            rows.append(row)
    # As a different writer might lay it out: every cell quoted, CRLF line ends, 1e3-style.
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, quoting=csv.QUOTE_ALL,
                            lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    verbatim = buffer.getvalue().replace('"8200.0"', '"8.2e3"')
    (folder / "plan.csv").write_text(verbatim, encoding="utf-8", newline="")

    expected = io.StringIO()
    plain = csv.DictWriter(expected, fieldnames=CSV_COLUMNS, lineterminator="\n")
    plain.writeheader()
    plain.writerows(rows)
    parsed = expected.getvalue().encode("utf-8")

    assert main(["report", str(folder), "--format", "md", "--quiet"]) == 0
    embedded = (folder / "report_files" / "plan.csv").read_bytes()
    assert embedded == parsed and embedded != verbatim.encode("utf-8")
    assert hostile in embedded.decode("utf-8") and "2027|02" in embedded.decode("utf-8")

    assert main(["report", str(folder), "--quiet"]) == 0
    html = (folder / "report.html").read_text(encoding="utf-8")
    link = re.search(r'download="plan\.csv" href="data:text/csv;base64,([^"]+)"', html)
    assert link is not None and base64.b64decode(link.group(1)) == parsed

    (folder / "plan.csv").write_text(verbatim.replace(hostile, "an option plan.json lacks"),
                                     encoding="utf-8", newline="")
    assert main(["report", str(folder), "--quiet"]) == 2
