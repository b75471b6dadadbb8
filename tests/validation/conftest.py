"""The validation tier: checks of the simulator and its readers against the real measured and
published data in ../shared/data (beside the checkout, not in it). Each test skips with a
reason where its data is absent.

Every test collected in this folder is marked `slow` here, not file by file, so that a new
file cannot miss it and `python -m pytest -m "not slow"` leaves the whole tier out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The hook sees the whole session's items, wherever its conftest.py is: mark only ours.
    for item in items:
        if item.path.resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.slow)
