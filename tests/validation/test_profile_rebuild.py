"""The shipped Vidur step-time profiles rebuild from Vidur's published timings to the same
files: what is shipped is what the published data gives (the fits themselves are tested on
synthetic measurements in tests/units/test_calibration.py). The rebuild leaves
`roofline_fits.yaml` alone: that one is fitted on the operator tables
(tests/units/test_roofline_fits.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from builders import PUBLISHED, REPO

VIDUR = PUBLISHED / "vidur"


def _same(rebuilt: object, shipped: object) -> bool:
    """Equal, floats to 1e-12 relative: the least-squares fits round differently in the last
    bit on different BLAS kernels, which is no change to a profile."""
    if isinstance(rebuilt, dict) and isinstance(shipped, dict):
        return rebuilt.keys() == shipped.keys() and all(
            _same(rebuilt[k], shipped[k]) for k in rebuilt)
    if isinstance(rebuilt, list) and isinstance(shipped, list):
        return len(rebuilt) == len(shipped) and all(map(_same, rebuilt, shipped))
    if isinstance(rebuilt, float) and isinstance(shipped, float):
        return rebuilt == pytest.approx(shipped, rel=1e-12, abs=0.0)
    return rebuilt == shipped


@pytest.mark.skipif(not VIDUR.is_dir(), reason="Vidur's published timings (../shared) absent")
def test_shipped_profiles_rebuild_identically_from_the_published_timings(tmp_path: Path) -> None:
    from calibration.sources.build import build

    written = build(VIDUR, tmp_path)
    assert not (tmp_path / "roofline_fits.yaml").exists()
    assert all(path.parent.name == "profiles" for path in written)
    shipped = REPO / "calibration"
    for path in (tmp_path / "profiles").glob("*.yaml"):
        assert _same(yaml.safe_load(path.read_text()), yaml.safe_load(
            (shipped / "profiles" / path.name).read_text())), path.name
    assert {p.name for p in (tmp_path / "profiles").glob("*.yaml")} == {
        p.name for p in (shipped / "profiles").glob("*.yaml")}
