"""Capacity-review reports: result files in, one self-contained HTML file (or a Markdown
twin with its figures beside it) out. Reports read what run, sweep and plan wrote and never
re-run a simulation: `load` reads and checks a folder, `document` turns it into sections
(`summary` writes the sentences, `analysis` derives the numbers, `figures` draws), and
`html` and `markdown` render the same sections."""
