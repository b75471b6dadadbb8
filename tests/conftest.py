"""Shared test set-up: the tiers live in subfolders (stories, theory, contracts, units,
validation); `builders` (scenario mappings, repository paths) is importable from all."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
