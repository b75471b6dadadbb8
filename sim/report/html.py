"""One self-contained HTML file: inline CSS, figures as base64 PNG data URIs, data files as
data: links and <details> blocks; no network needed, and it prints to PDF a section a page.

Every text is the report's plain text (much of it the user's: names, keys, notes): it is
HTML-escaped, and its control characters are shown as escapes (ESC as \\x1b), as they are
on the terminal and in the Markdown twin."""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from sim.report.document import Chart, Code, DataFile, Report, Table, cell_text
from sim.report.text import printable

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       max-width: 1100px; margin: 2em auto; padding: 0 1.5em; line-height: 1.45; }
h1 { margin-bottom: 0.1em; } .subtitle { color: #666; margin-top: 0; }
h2 { border-bottom: 2px solid #1f77b4; padding-bottom: 0.2em; margin-top: 2em; }
figure { margin: 1.5em 0; } figure img { width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { color: #444; font-size: 0.92em; margin-top: 0.3em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #eef3f8; } td:first-child, th:first-child { text-align: left; }
caption { text-align: left; font-weight: bold; padding-bottom: 0.3em; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
details { margin: 0.5em 0; } summary { cursor: pointer; }
@media print {
  body { max-width: none; margin: 0; font-size: 10pt; }
  section { page-break-before: always; break-before: page; }
  section:first-of-type { page-break-before: avoid; break-before: avoid; }
  figure, table { page-break-inside: avoid; break-inside: avoid; }
  details > *:not(summary) { display: none; }
  a { color: inherit; text-decoration: none; }
}
"""


def _text(text: str) -> str:
    """Plain text as HTML (attribute values too): escaped, control characters shown."""
    return escape(printable(text, keep="\n\r\t"))  # HTML whitespace, shown as such


def render(report: Report) -> str:
    body = [f"<h1>{_text(report.title)}</h1>",
            f"<p class=\"subtitle\">{_text(report.subtitle)}</p>"]
    for number, section in enumerate(report.sections, start=1):
        body.append(f"<section id=\"s{number}\">\n<h2>{number}. {_text(section.title)}</h2>")
        body += [_block(b) for b in section.blocks]
        body.append("</section>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_text(report.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def _block(block: Any) -> str:
    if isinstance(block, str):
        return f"<p>{_text(block)}</p>"
    if isinstance(block, Chart):
        data = base64.b64encode(block.png).decode("ascii")
        return (f"<figure><img alt=\"{_text(block.caption)}\" src=\"data:image/png;base64,"
                f"{data}\"><figcaption>{_text(block.caption)}</figcaption></figure>")
    if isinstance(block, Table):
        head = "".join(f"<th>{_text(str(c))}</th>" for c in block.columns)
        rows = "".join("<tr>" + "".join(f"<td>{_text(cell_text(v))}</td>" for v in row) + "</tr>"
                       for row in block.rows)
        return (f"<table><caption>{_text(block.title)}</caption><thead><tr>{head}</tr></thead>"
                f"<tbody>{rows}</tbody></table>")
    if isinstance(block, Code):
        return (f"<details open><summary>{_text(block.title)}</summary>"
                f"<pre><code>{_text(block.text)}</code></pre></details>")
    if isinstance(block, DataFile):
        data = base64.b64encode(block.content).decode("ascii")
        return (f"<details><summary><a download=\"{_text(block.name)}\" href=\"data:"
                f"{block.mime};base64,{data}\">{_text(block.name)}</a> "
                f"({len(block.content):,} bytes)</summary>"
                f"<pre>{_text(block.content.decode('utf-8', 'replace'))}</pre></details>")
    raise TypeError(f"no HTML for {type(block).__name__}")

