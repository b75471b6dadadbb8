"""The Markdown twin: the same sections, figures and CSV files written beside it in a
`<name>_files/` folder and linked, for wikis and code review.

Every text of the report is plain text, as the HTML renderer treats it (it escapes it all),
and much of it is the user's: scenario, option, period and price names, keys, notes, file
names. Markdown gives meaning to characters in plain text, so each text is escaped for the
place it is written: `inline` for text inside a line (a newline in a name would start a
heading or a list, `<script>` would pass to the page, `[x](javascript:…)` would be a
link), `paragraph` for a text that starts a line, `fenced` for code, whose fence must be
longer than any run of backticks in it, and `destination` for link targets. Ordinary
names (letters, digits, `-`, `.`, `_` inside a word) come out as they went in.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from sim.report.document import Chart, Code, DataFile, Report, Table, cell_text
from sim.report.text import printable

# Characters that mean something wherever they stand in a line of CommonMark or GitHub
# Markdown: the escape itself, code spans, emphasis, links and images, attribute blocks,
# strikethrough, table cells and (closing) heading marks. `_` only counts where it can open
# or close emphasis, i.e. not between two letters or digits, and `~` where it can open or
# close strikethrough, i.e. not between two spaces. `-`, `+`, `.`, `!`, `(` and `)`
# mean something only at the start of a line (lists) or next to a `[` (links, images), so
# they are escaped there (`paragraph`), and `[` always is.
_SPECIAL = re.compile(r"[\\`*{}\[\]#|]|(?<![^\W_])_|_(?![^\W_])|(?<!\s)~|~(?!\s)")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}  # raw HTML, autolinks, entity references
_HTML_CHARS = re.compile("[&<>]")
# What would make a paragraph's line something else, left for `paragraph`: a list item
# (`-`, `+`, `1.`, `1)`), a thematic break or a setext underline (`-`, `=`). `inline` has
# already escaped `*`, `#`, `|`, `_` and backticks and turned `>` into an entity.
_BLOCK_START = re.compile(r"^(\d{1,9})([.)])|^([-+=])")
_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c\x85]+")


def inline(text: str) -> str:
    """`text` as literal Markdown inside a line: line breaks become spaces, other control
    characters are shown as escapes, Markdown punctuation is backslash-escaped and `&<>`
    written as entities (so no HTML, autolink or entity reaches the page)."""
    text = printable(_BREAKS.sub(" ", text))
    text = _SPECIAL.sub(lambda m: "\\" + m.group(), text)
    return _HTML_CHARS.sub(lambda m: _HTML[m.group()], text)


def paragraph(text: str) -> str:
    """`inline` for a text that starts its line: also what would make that line a list
    item, a quote, a heading or a rule is escaped (the text is the paragraph's own)."""
    text = inline(text).lstrip(" \t")  # four leading spaces would make it code
    return _BLOCK_START.sub(lambda m: f"{m.group(1)}\\{m.group(2)}" if m.group(1)
                            else "\\" + m.group(3), text, count=1)


def fenced(language: str, text: str) -> list[str]:
    """`text` as a fenced code block whose fence is longer than any run of backticks in
    it, so nothing inside can close it; control characters other than the line breaks and
    tabs are shown as escapes."""
    lines = [printable(line, keep="\t") for line in text.rstrip().split("\n")]
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + re.sub(r"[^\w+-]", "", language), *lines, fence]


def destination(path: str) -> str:
    """A link target: percent-encoded, so that no space, bracket or scheme in a file name
    can end the link or turn it into another (`/`, letters, digits and `-._~` stay)."""
    return quote(path, safe="/")


def render(report: Report, files_dir: str) -> tuple[str, dict[str, bytes]]:
    """The Markdown text and the files it links ({name: bytes}, to go in `files_dir`)."""
    lines = [f"# {inline(report.title)}", "", f"*{inline(report.subtitle)}*", ""]
    files: dict[str, bytes] = {}
    for number, section in enumerate(report.sections, start=1):
        lines += [f"## {number}. {inline(section.title)}", ""]
        for block in section.blocks:
            lines += _block(block, files_dir, files) + [""]
    return "\n".join(lines), files


def _block(block: Any, files_dir: str, files: dict[str, bytes]) -> list[str]:
    if isinstance(block, str):
        return [paragraph(block)]
    if isinstance(block, Chart):
        files[block.name] = block.png
        return [f"![{inline(block.name)}]({destination(f'{files_dir}/{block.name}')})", "",
                f"*{inline(block.caption)}*"]
    if isinstance(block, Table):
        rows = [[inline(cell_text(v)) for v in row] for row in block.rows]
        return [f"**{inline(block.title)}**", "",
                "| " + " | ".join(inline(str(c)) for c in block.columns) + " |",
                "|" + "---|" * len(block.columns), *("| " + " | ".join(r) + " |" for r in rows)]
    if isinstance(block, Code):
        return [f"**{inline(block.title)}**", "", *fenced(block.language, block.text)]
    if isinstance(block, DataFile):
        files[block.name] = block.content
        return [f"- [{inline(block.name)}]({destination(f'{files_dir}/{block.name}')}) "
                f"({len(block.content):,} bytes)"]
    raise TypeError(f"no Markdown for {type(block).__name__}")
