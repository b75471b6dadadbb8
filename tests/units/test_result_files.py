"""Result files, from the writing side and the reading side: outputs judged before any work,
written whole with the mode the umask gives (or not at all, when the file system refuses
part-way), read back by --resume only when every line belongs to this sweep, and read by a
report without following links, past a size cap or into a FIFO."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import short

from sim.cli import common, main
from sim.errors import InputError
from sim.montecarlo import files
from sim.montecarlo.design import build

GRID = {"grid": {"deployment.replicas": [1, 2]}, "replications": 2}


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _listing(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


# ---- writing: modes, atomicity, refusals --------------------------------------------------


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o027, 0o640),
                                            (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path: Path, mask: int, mode: int) -> None:
    with umask(mask):
        assert files.file_mode() == mode
        common.write_text(tmp_path / "a.txt", "x")
        files.write_whole(tmp_path / "b.bin", b"y")
    assert _mode(tmp_path / "a.txt") == mode
    assert _mode(tmp_path / "b.bin") == mode
    assert _listing(tmp_path) == ["a.txt", "b.bin"]  # no temporary file left


def _failing_write(monkeypatch: pytest.MonkeyPatch, code: int,
                   when: Callable[[Path], bool] = lambda path: True) -> None:
    """Make staging a file fail with errno `code` (ENOSPC: the disk is full) for the paths
    `when` picks, after the temporary file was created, as a real full disk does."""
    real = files.stage

    def stage(path: Path, data: bytes) -> Path:
        if not when(path):
            return real(path, data)
        tmp = real(path, b"")
        tmp.unlink()
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(files, "stage", stage)


def test_a_full_disk_while_writing_is_one_input_error_and_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "result.json"
    target.write_text("the previous result", encoding="utf-8")
    real_fdopen = os.fdopen

    class Full:
        def __init__(self, handle: Any) -> None:
            self.handle = handle

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def fileno(self) -> int:
            return int(self.handle.fileno())

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    with pytest.raises(InputError) as info:
        common.write_json(target, {"a": 1}, "--json")
    message = str(info.value)
    assert message.startswith(f"--json: '{target}'")
    assert "No space left on device" in message and "\n" not in message
    assert target.read_text(encoding="utf-8") == "the previous result"
    assert _listing(tmp_path) == ["result.json"]


def test_a_set_of_outputs_is_written_whole_or_not_at_all(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    _failing_write(monkeypatch, errno.ENOSPC, lambda path: path.name == "c.png")
    with pytest.raises(InputError) as info, common.outputs("-o") as staged:
        staged.directory(out)
        staged.text(out / "a.json", "{}")
        staged.text(out / "b.csv", "x\n")
        staged.bytes(out / "c.png", b"png")
    assert str(info.value).startswith(f"-o: '{out / 'c.png'}'")
    assert _listing(tmp_path) == []  # not even the directory it made


def test_a_set_of_outputs_appears_only_once_all_are_staged(tmp_path: Path) -> None:
    with common.outputs("-o") as staged:
        staged.text(tmp_path / "first.json", "{}")
        assert not (tmp_path / "first.json").exists()  # staged, not yet in place
        staged.text(tmp_path / "second.csv", "x\n")
    assert _listing(tmp_path) == ["first.json", "second.csv"]


# ---- outputs judged before any work ---------------------------------------------------------


def _refused(check: Callable[[], None]) -> str:
    with pytest.raises(InputError) as info:
        check()
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(("path", "words"), [
    ("/proc/tokenfactory.json", "creating a file in /proc fails"),
    ("/sys/tokenfactory.json", "/sys"),
    ("/dev/null", "character device"),
    ("/proc/no-such-dir/out.json", "existing directory"),
])
def test_output_files_that_cannot_be_written_are_refused_first(path: str, words: str) -> None:
    message = _refused(lambda: common.check_output_path("--json", Path(path)))
    assert message.startswith(f"--json: '{path}'") and words in message


def test_names_and_paths_beyond_the_file_system_limits_are_refused(tmp_path: Path) -> None:
    long_name = tmp_path / ("n" * 300 + ".json")
    assert "at most 255 bytes" in _refused(lambda: common.check_output_path("--json",
                                                                             long_name))
    long_path = tmp_path.joinpath(*["d" * 200] * 25, "out.json")
    assert "PATH_MAX" in _refused(lambda: common.check_output_path("--json", long_path))
    assert "at most 255 bytes" in _refused(lambda: common.check_new_dir(tmp_path / ("o" * 256)))
    # A name that just fits is written, although its temporary file's name would not fit.
    fits = tmp_path / ("f" * 250 + ".json")
    common.check_output_path("--json", fits)
    common.write_json(fits, {"ok": True})
    assert json.loads(fits.read_text(encoding="utf-8")) == {"ok": True}
    assert _listing(tmp_path) == [fits.name]


def test_too_little_free_space_is_refused_before_any_work(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common.shutil, "disk_usage",
                        lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    message = _refused(lambda: common.check_new_dir(tmp_path / "out"))
    assert "room for the output" in message and "1,000 bytes free" in message
    assert "room" in _refused(lambda: common.check_output_path("--json", tmp_path / "r.json"))


def test_output_directories_are_judged_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x", encoding="utf-8")
    (tmp_path / "file").write_text("x", encoding="utf-8")
    assert "new or empty" in _refused(lambda: common.check_new_dir(tmp_path / "full"))
    assert "new or empty" in _refused(lambda: common.check_new_dir(tmp_path / "file"))
    assert "/proc" in _refused(lambda: common.check_new_dir(Path("/proc/out")))
    assert "parent exists" in _refused(lambda: common.check_new_dir(tmp_path / "a" / "b"))
    common.check_new_dir(tmp_path / "new")
    assert not (tmp_path / "new").exists()
    assert _listing(tmp_path) == ["file", "full", "full/keep.txt"]  # the probe is gone


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes whatever the permission bits say "
                    "(tests/contracts/test_hostile_outputs.py checks a read-only mount)")
def test_a_read_only_directory_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert "Permission denied" in _refused(
            lambda: common.check_output_path("--json", locked / "r.json"))
    finally:
        locked.chmod(0o755)


# ---- reading without following links --------------------------------------------------------


def test_reading_refuses_links_fifos_directories_and_huge_files(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("{}", encoding="utf-8")
    (tmp_path / "link.json").symlink_to(real)
    os.mkfifo(tmp_path / "fifo.json")
    (tmp_path / "dir.json").mkdir()
    with (tmp_path / "huge.json").open("wb") as handle:
        handle.truncate(2000)

    def read(name: str) -> str:
        return _refused(lambda: files.read_regular(tmp_path / name, 1000, "a file"))

    assert files.read_regular(real, 1000, "a file") == b"{}"
    assert read("link.json").startswith(f"{tmp_path / 'link.json'}: 'a symbolic link'")
    assert "FIFO" in read("fifo.json")  # refused at once, not waited on
    assert "directory" in read("dir.json")
    assert "at most 1,000 bytes" in read("huge.json") and "2,000" in read("huge.json")
    assert "no such file" in read("missing.json")


# ---- --resume reads only this sweep's rows ---------------------------------------------------


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A finished two-point grid sweep (no capacity probe), 2 replications: the scenario and
    the sweep folder."""
    tmp = tmp_path_factory.mktemp("grid")
    scenario = tmp / "grid.yaml"
    scenario.write_text(yaml.safe_dump(short(sweep=GRID)), encoding="utf-8")
    assert main(["sweep", str(scenario), "-o", str(tmp / "out"), "--workers", "1",
                 "--quiet"]) == 0
    return scenario, tmp / "out"


def _design(scenario: Path) -> Any:
    return build(yaml.safe_load(scenario.read_text(encoding="utf-8")), scenario.parent)


def _lines(folder: Path) -> list[str]:
    return (folder / "runs.csv").read_text(encoding="utf-8").splitlines(keepends=True)


def _cells(line: str) -> list[str]:
    return line.rstrip("\n").split(",")


def _set(lines: list[str], row: int, column: str, text: str) -> list[str]:
    """The lines with the cell of `column` in line `row` (1: the first run) set to `text`."""
    cells = _cells(lines[row])
    cells[_cells(lines[0]).index(column)] = text
    return [*lines[:row], ",".join(cells) + "\n", *lines[row + 1:]]


DAMAGED_RUNS: dict[str, tuple[Callable[[list[str]], list[str]], str, str]] = {
    # name: (damage to the lines, where the message must point, words it must hold)
    "renamed-column": (lambda ls: [ls[0].replace("busy_fraction", "busy"), *ls[1:]],
                       "runs.csv:1", "different sweep"),
    "text-in-a-metric": (lambda ls: _set(ls, 1, "usd_per_million_input", "cheap"),
                         "runs.csv:2: usd_per_million_input", "finite number"),
    "nan-in-a-metric": (lambda ls: _set(ls, 1, "usd_per_million_input", "NaN"),
                        "runs.csv:2: usd_per_million_input", "finite number"),
    "run-out-of-range": (lambda ls: _set(ls, 1, "run", "99"),
                         "runs.csv:2: run", "0 to 3"),
    "run-not-a-number": (lambda ls: _set(ls, 1, "run", "-1"),
                         "runs.csv:2: run", "0 to 3"),
    "run-twice": (lambda ls: [ls[0], ls[1], ls[1], *ls[2:]], "runs.csv:3: run",
                  "each run once"),
    "row-from-another-sweep": (lambda ls: _set(ls, 1, "seed", "12345"),
                               "runs.csv:2: seed", "another sweep"),
    "grid-value-changed": (lambda ls: _set(ls, 1, "deployment.replicas", "7"),
                           "runs.csv:2: deployment.replicas", "another sweep"),
    "missing-cells": (lambda ls: [ls[0], ",".join(_cells(ls[1])[:5]) + "\n", *ls[2:]],
                      "runs.csv:2", "cells"),
    "slo-verdict-not-boolean": (lambda ls: _set(ls, 1, "slo_met", "maybe"),
                                "runs.csv:2: slo_met", "true, false"),
}


@pytest.mark.parametrize("name", list(DAMAGED_RUNS))
def test_resume_refuses_a_damaged_runs_csv(name: str, grid_sweep: tuple[Path, Path],
                                           tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    scenario, out = grid_sweep
    damage, where, words = DAMAGED_RUNS[name]
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "summary.json").unlink()
    damaged = "".join(damage(_lines(out)))
    (copy / "runs.csv").write_text(damaged, encoding="utf-8")
    capsys.readouterr()
    assert main(["sweep", str(scenario), "--resume", str(copy), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"{copy}/{where}" in err and words in err, err
    assert (copy / "runs.csv").read_text(encoding="utf-8") == damaged  # nothing kept or lost
    assert not (copy / "summary.json").exists()


def test_resume_keeps_complete_rows_and_drops_a_truncated_last_line(
        grid_sweep: tuple[Path, Path], tmp_path: Path) -> None:
    scenario, out = grid_sweep
    lines = _lines(out)
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "runs.csv").write_text("".join([lines[0], lines[2], lines[3][:20]]),
                                   encoding="utf-8")
    assert main(["sweep", str(scenario), "--resume", str(copy), "--quiet"]) == 0
    assert _lines(copy) == lines


DAMAGED_MANIFEST: dict[str, tuple[Callable[[dict[str, Any]], Any], str]] = {
    "not-json": (lambda m: "{not json", "readable JSON"),
    "a-list": (lambda m: [m], "JSON object"),
    "seed-a-string": (lambda m: {**m, "seed": "11"}, "sweep.json: seed"),
    "negative-replications": (lambda m: {**m, "replications": -2}, "sweep.json: replications"),
    "fingerprint-missing": (lambda m: {k: v for k, v in m.items() if k != "fingerprint"},
                            "sweep.json: fingerprint"),
    "fingerprint-not-hex": (lambda m: {**m, "fingerprint": "x" * 64},
                            "sweep.json: fingerprint"),
    "fingerprint-of-another-sweep": (lambda m: {**m, "fingerprint": "0" * 64},
                                     "changed since it was started"),
    "columns-not-names": (lambda m: {**m, "columns": [1, 2]}, "sweep.json: columns"),
    "capacity-a-string": (lambda m: {**m, "capacity": "fast"}, "sweep.json: capacity"),
    "capacity-negative": (lambda m: {**m, "capacity": {
        "requests_per_s": -1, "input_tokens_per_s": 1, "output_tokens_per_s": 1,
        "probe_rate_per_s": 1, "window_s": 1, "seed": 1}}, "sweep.json: capacity.requests"),
    "format-version": (lambda m: {**m, "format_version": 0}, "sweep.json: format_version"),
}


@pytest.mark.parametrize("name", list(DAMAGED_MANIFEST))
def test_resume_refuses_a_damaged_sweep_json(name: str, grid_sweep: tuple[Path, Path],
                                             tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    scenario, out = grid_sweep
    damage, words = DAMAGED_MANIFEST[name]
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    damaged = damage(json.loads((out / "sweep.json").read_text(encoding="utf-8")))
    (copy / "sweep.json").write_text(damaged if isinstance(damaged, str)
                                     else json.dumps(damaged), encoding="utf-8")
    before = (copy / "runs.csv").read_bytes()
    capsys.readouterr()
    assert main(["sweep", str(scenario), "--resume", str(copy), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert words in err, err
    assert (copy / "runs.csv").read_bytes() == before


def test_runs_file_checks_each_line_against_the_design(grid_sweep: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    scenario, out = grid_sweep
    design = _design(scenario)
    lines = _lines(out)
    path = tmp_path / "runs.csv"
    path.write_text("".join([lines[0], lines[4], lines[1]]), encoding="utf-8")
    runs = files.RunsFile(path, design, resume=True)
    runs.close()
    assert sorted(runs.rows) == [0, 3]
    assert _lines(tmp_path) == [lines[0], lines[1], lines[4]]  # rewritten in order
    path.write_bytes(lines[0].encode() + b"\xff\xfe\n")
    assert "runs.csv:2" in _refused(lambda: files.RunsFile(path, design, resume=True))


# ---- a sweep stopped by a full disk ----------------------------------------------------------


def test_a_full_disk_mid_sweep_leaves_a_resumable_folder_that_is_not_complete(
        grid_sweep: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    scenario, pristine = grid_sweep
    out = tmp_path / "out"
    real_append = files.RunsFile.append
    calls = []

    def append(self: files.RunsFile, cells: list[str]) -> None:
        calls.append(cells)
        if len(calls) == 2:  # the second row finds the disk full half-way through
            self.handle.write(files._line(cells)[:10])
            self.handle.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_append(self, cells)

    monkeypatch.setattr(files.RunsFile, "append", append)
    capsys.readouterr()
    assert main(["sweep", str(scenario), "-o", str(out), "--workers", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err, err
    assert "1 of 4 runs are kept" in err and "--resume" in err
    assert sorted(p.name for p in out.iterdir()) == ["runs.csv", "sweep.json"]  # no summary

    monkeypatch.setattr(files.RunsFile, "append", real_append)
    assert main(["sweep", str(scenario), "--resume", str(out), "--quiet"]) == 0
    for name in ("runs.csv", "summary.json"):
        assert (out / name).read_bytes() == (pristine / name).read_bytes()


def test_a_full_disk_at_the_summary_writes_neither_summary_nor_chart(
        grid_sweep: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    scenario, pristine = grid_sweep
    out = tmp_path / "out"
    _failing_write(monkeypatch, errno.ENOSPC, lambda path: path.name == "summary.json")
    assert main(["sweep", str(scenario), "-o", str(out), "--workers", "1", "--quiet"]) == 2
    assert "summary.json" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["runs.csv", "sweep.json"]
    assert (out / "runs.csv").read_bytes() == (pristine / "runs.csv").read_bytes()


def test_a_new_sweep_that_cannot_start_leaves_no_folder(
        grid_sweep: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    scenario, _ = grid_sweep
    _failing_write(monkeypatch, errno.EROFS, lambda path: path.name == "runs.csv")
    assert main(["sweep", str(scenario), "-o", str(tmp_path / "out"), "--quiet"]) == 2
    assert "Read-only file system" in capsys.readouterr().err
    assert _listing(tmp_path) == []


def test_run_writes_its_json_and_report_together_or_neither(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "run.yaml"
    scenario.write_text(yaml.safe_dump(short()), encoding="utf-8")
    _failing_write(monkeypatch, errno.ENOSPC, lambda path: path.suffix == ".html")
    assert main(["run", str(scenario), "--quiet", "--json", str(tmp_path / "r.json"),
                 "--report", str(tmp_path / "r.html")]) == 2
    assert "--report" in capsys.readouterr().err
    assert _listing(tmp_path) == ["run.yaml"]


# ---- what a report embeds is what it parsed, byte-identical for the commands' own files ------


def test_embedded_sources_are_the_files_as_the_commands_wrote_them(
        grid_sweep: tuple[Path, Path], tmp_path: Path) -> None:
    from sim.report.load import load

    _, out = grid_sweep
    results = load(out)
    for name in ("summary.json", "sweep.json", "runs.csv"):
        assert results.sources[name] == (out / name).read_bytes(), name
    scenario = tmp_path / "run.yaml"
    scenario.write_text(yaml.safe_dump(short()), encoding="utf-8")
    assert main(["run", str(scenario), "--json", str(tmp_path / "r.json"), "--quiet"]) == 0
    assert load(tmp_path / "r.json").sources["r.json"] == (tmp_path / "r.json").read_bytes()


def test_plan_csv_as_the_plan_command_writes_it_is_re_rendered_identically(
        tmp_path: Path) -> None:
    from sim.planning.document import CSV_COLUMNS
    from sim.report.load import PLAN_CSV, _plan_rows

    plan = {"periods": [{"period": "2027-01", "options": [{"option": "h100"},
                                                            {"option": "h200 fp8"}]}]}
    row = dict.fromkeys(CSV_COLUMNS)
    row.update(period="2027-01", option="h100", recommended=True, peak_rate_per_s=40,
               average_rate_per_s=27.5, replicas=4, gpus=4, usd_per_month=7300.000000000001,
               usd_per_million_p50_peak=0.031, usd_per_million_p95_peak=3.5e-05,
               utilization_peak=0.8123, busy_fraction_peak=1.0, slo_met_probability=0.97,
               first_guess=3, fleets_tried="3 4 5", simulations=24)
    infeasible = dict.fromkeys(CSV_COLUMNS)
    infeasible.update(period="2027-01", option="h200 fp8", recommended=False,
                      peak_rate_per_s=40, first_guess=1, fleets_tried="1 2", simulations=16)
    text = common.to_csv([row, infeasible], CSV_COLUMNS)
    (tmp_path / PLAN_CSV).write_text(text, encoding="utf-8")
    rendered = _plan_rows(tmp_path / PLAN_CSV, plan)
    assert "".join(",".join(r) + "\n" for r in rendered) == text


def test_a_markdown_report_never_writes_through_a_linked_files_folder(
        grid_sweep: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    _, out = grid_sweep
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "review_files").symlink_to(elsewhere)
    assert main(["report", str(out), "-o", str(tmp_path / "review.md")]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert list(elsewhere.iterdir()) == [] and not (tmp_path / "review.md").exists()
