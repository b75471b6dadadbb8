"""The Markdown twin: the same sections, figures and CSV files written beside it in a
`<name>_files/` folder and linked, for wikis and code review."""

from __future__ import annotations

from typing import Any

from sim.report.document import Chart, Code, DataFile, Report, Table, cell_text


def render(report: Report, files_dir: str) -> tuple[str, dict[str, bytes]]:
    """The Markdown text and the files it links ({name: bytes}, to go in `files_dir`)."""
    lines = [f"# {report.title}", "", f"*{report.subtitle}*", ""]
    files: dict[str, bytes] = {}
    for number, section in enumerate(report.sections, start=1):
        lines += [f"## {number}. {section.title}", ""]
        for block in section.blocks:
            lines += _block(block, files_dir, files) + [""]
    return "\n".join(lines), files


def _block(block: Any, files_dir: str, files: dict[str, bytes]) -> list[str]:
    if isinstance(block, str):
        return [block]
    if isinstance(block, Chart):
        files[block.name] = block.png
        return [f"![{block.name}]({files_dir}/{block.name})", "", f"*{block.caption}*"]
    if isinstance(block, Table):
        rows = [[_escape(cell_text(v)) for v in row] for row in block.rows]
        return [f"**{block.title}**", "", "| " + " | ".join(block.columns) + " |",
                "|" + "---|" * len(block.columns), *("| " + " | ".join(r) + " |" for r in rows)]
    if isinstance(block, Code):
        return [f"**{block.title}**", "", f"```{block.language}", block.text.rstrip(), "```"]
    if isinstance(block, DataFile):
        files[block.name] = block.content
        return [f"- [{block.name}]({files_dir}/{block.name}) ({len(block.content):,} bytes)"]
    raise TypeError(f"no Markdown for {type(block).__name__}")


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
