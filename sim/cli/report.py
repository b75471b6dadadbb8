"""`tokenfactory report DIR`: the capacity-review report of a run, sweep or plan folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.cli.commands import COMMANDS
from sim.cli.common import (
    FIGURE_BYTES,
    Outputs,
    add_quiet,
    check_output_path,
    check_writable_dir,
    outputs,
    wrote,
)
from sim.errors import InputError

if TYPE_CHECKING:
    from sim.report.load import Results

# The report modules are imported where a report is written: drawing loads matplotlib,
# which `tokenfactory run` without --report never needs.

FORMATS = ("html", "md")
REPORT_BYTES = 16 * 1024**2  # about a run's report: its JSON and a few figures, with room


def add_parser(sub) -> argparse.ArgumentParser:
    report = sub.add_parser(
        "report", help=COMMANDS["report"],
        description="Read the files run, sweep or plan wrote (never re-running anything) and "
        "write one self-contained HTML file: executive summary, charts, assumptions and "
        "provenance, and every table's data. --format md writes a Markdown twin with its "
        "figures and CSV files in NAME_files/ beside it.",
        epilog="examples:\n  tokenfactory report out/sweep\n"
        "  tokenfactory report out/sweep --format md -o review/sweep.md\n"
        "  tokenfactory report result.json -o result.html",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    report.add_argument("results", type=Path, metavar="DIR",
                        help="a sweep or plan folder, or a run's --json file (or its folder)")
    report.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="where to write (default: DIR/report.html or .md; for a run's "
                        "file, NAME-report.html beside it)")
    report.add_argument("--format", choices=FORMATS,
                        help="html (default, or from -o's suffix) or md")
    add_quiet(report)
    return report


def report_format(path: Path, given: str | None = None) -> str:
    """The format named, else the one the output's suffix says (html unless .md)."""
    return given or ("md" if path.suffix.lower() in (".md", ".markdown") else "html")


def execute(args: argparse.Namespace) -> int:
    from sim.report.load import load

    fmt = args.format or (report_format(args.output) if args.output else "html")
    results = load(args.results)  # the input is judged first: its error is the useful one
    output = args.output or _default_output(args.results, fmt)
    check_report_output("-o", output, fmt, _expected_bytes(results))
    with outputs("-o") as staged:
        _write(results, output, fmt, staged, "-o")
    if not args.quiet:
        print(wrote(_shown(output, fmt)))
    return 0


def _default_output(results: Path, fmt: str) -> Path:
    if results.is_file():  # `load` has judged the path: this cannot fail now
        return results.with_name(f"{results.stem}-report.{fmt}")
    return results / f"report.{fmt}"


def _expected_bytes(results: Results) -> int:
    """About what the report writes: every source embedded (base64 in HTML: 4/3 of it,
    shown as text too), the figures, and room for the charts it draws."""
    embedded = sum(map(len, results.sources.values())) + sum(map(len,
                                                                  results.figures.values()))
    return 3 * embedded + 8 * FIGURE_BYTES


def check_report_output(flag: str, output: Path, fmt: str, expected_bytes: int) -> None:
    """The report's file checked before any work, and for Markdown its NAME_files folder
    beside it (a folder or nothing there, a name that fits)."""
    check_output_path(flag, output, expected_bytes)
    if fmt == "md":
        files_dir = _files_dir(output)
        try:
            linked = files_dir.is_symlink()
        except (OSError, ValueError):
            linked = False  # a name too long, say: judged below, with the reason
        if linked:  # its name is derived, not given: never written through
            raise InputError(flag, str(files_dir), "a directory for the report's figures "
                             "and data, not a symbolic link")
        check_writable_dir(flag, files_dir, create=True)


def _files_dir(output: Path) -> Path:
    return output.with_name(f"{output.stem}_files")


def _shown(output: Path, fmt: str) -> list[Path]:
    return [output, _files_dir(output)] if fmt == "md" else [output]


def write_report(source: Path | dict[str, Any], output: Path, fmt: str, staged: Outputs,
                 flag: str) -> list[Path]:
    """Read `source` (a results path, or a run's result already in memory) and stage the
    report into `staged` (its refusals naming `flag`); the paths it will have (the Markdown
    twin's folder second)."""
    from sim.report.load import from_run_data, load

    results = from_run_data(source) if isinstance(source, dict) else load(source)
    _write(results, output, fmt, staged, flag)
    return _shown(output, fmt)


def write_dir_report(out: Path, flag: str) -> Path:
    """--report of the commands that fill a directory: DIR/report.html from DIR's files,
    written once the results themselves are in place."""
    output = out / "report.html"
    with outputs(flag) as staged:
        write_report(out, output, "html", staged, flag)
    return output


def _write(results: Results, output: Path, fmt: str, staged: Outputs, flag: str) -> None:
    from sim.report import html, markdown
    from sim.report.document import compose

    document = compose(results)
    if fmt == "html":
        staged.text(output, html.render(document), flag)
        return
    if fmt != "md":
        raise InputError("--format", fmt, " or ".join(FORMATS))
    files_dir = _files_dir(output)
    text, files = markdown.render(document, files_dir.name)
    staged.directory(files_dir, flag)
    for name, content in files.items():
        staged.bytes(files_dir / name, content, flag)
    staged.text(output, text, flag)  # last: the twin links to its files
