"""`tokenfactory report DIR`: the capacity-review report of a run, sweep or plan folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.cli.commands import COMMANDS
from sim.cli.common import add_quiet, check_output_path, write_bytes, write_text, wrote
from sim.errors import InputError

if TYPE_CHECKING:
    from sim.report.load import Results

# The report modules are imported where a report is written: drawing loads matplotlib,
# which `tokenfactory run` without --report never needs.

FORMATS = ("html", "md")


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
    check_output_path("-o", output)
    written = _write(results, output, fmt)
    if not args.quiet:
        print(wrote(written))
    return 0


def _default_output(results: Path, fmt: str) -> Path:
    if results.is_file():
        return results.with_name(f"{results.stem}-report.{fmt}")
    return results / f"report.{fmt}"


def write_report(source: Path | dict[str, Any], output: Path, fmt: str) -> list[Path]:
    """Read `source` (a results path, or a run's result already in memory), write the report;
    the paths written (the Markdown twin's folder of figures and data second)."""
    from sim.report.load import from_run_data, load

    return _write(from_run_data(source) if isinstance(source, dict) else load(source),
                  output, fmt)


def write_dir_report(out: Path) -> Path:
    """--report of the commands that fill a directory: DIR/report.html from DIR's files."""
    return write_report(out, out / "report.html", "html")[0]


def _write(results: Results, output: Path, fmt: str) -> list[Path]:
    from sim.report import html, markdown
    from sim.report.document import compose

    document = compose(results)
    if fmt == "html":
        write_text(output, html.render(document))
        return [output]
    if fmt != "md":
        raise InputError("--format", fmt, " or ".join(FORMATS))
    files_dir = output.with_name(f"{output.stem}_files")
    text, files = markdown.render(document, files_dir.name)
    files_dir.mkdir(exist_ok=True)
    for name, content in files.items():
        write_bytes(files_dir / name, content)
    write_text(output, text)
    return [output, files_dir]
