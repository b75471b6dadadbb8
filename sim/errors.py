"""The one error type for bad input.

Every problem with a scenario, a data file or a command-line flag is reported as an
`InputError` that names where the problem is (a key path, or a file and line), the value
found there and what would have been accepted. The CLI turns it into one line on stderr
and exit status 2; library users can catch it.
"""

from __future__ import annotations

from typing import Any

MISSING = object()


class InputError(ValueError):
    """Bad input: `where` (key path or file:line), the offending value, what is accepted."""

    def __init__(self, where: str, value: Any, expected: str) -> None:
        self.where = where
        self.value = value
        self.expected = expected
        shown = "missing" if value is MISSING else _show(value)
        super().__init__(f"{where}: {shown} — expected {expected}")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
