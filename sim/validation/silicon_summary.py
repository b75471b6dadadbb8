"""Error summaries of the measured-row comparisons: median |error| by GPU, engine, model
family, precision and concurrency band, the worst rows, and the skips by reason.

The groups are the ones a step-time model's error follows: kernels differ by GPU and engine,
architectures by model family, GEMM speed by precision, and a closed loop at concurrency 1 is
all decode-latency while one at 256 is batching and queueing. The median is the headline (as
in `breakdown`); the worst rows are listed next to it so that they are not hidden either.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

import numpy as np

from sim.validation.breakdown import GroupError
from sim.validation.silicon import SiliconComparison
from sim.validation.silicon_mapping import concurrency_band, model_family

GROUPINGS: tuple[tuple[str, Callable[[SiliconComparison], str]], ...] = (
    ("all", lambda c: "all"),
    ("gpu", lambda c: c.gpu),
    ("engine", lambda c: c.engine),
    ("model", lambda c: model_family(c.model)),
    ("precision", lambda c: c.precision),
    ("concurrency", lambda c: concurrency_band(c.concurrency)),
)
BAND_ORDER = ("1–4", "5–32", "33–128", ">128", "unknown")


def silicon_groups(comparisons: Iterable[SiliconComparison], metric: str) -> list[GroupError]:
    """Median |error| and worst row per group, over the compared entries of `metric`."""
    chosen = [c for c in comparisons if c.compared and c.metric == metric
              and c.error_pct is not None]
    out = []
    for by, key in GROUPINGS:
        groups: dict[str, list[SiliconComparison]] = {}
        for c in chosen:
            groups.setdefault(key(c), []).append(c)
        order = BAND_ORDER if by == "concurrency" else sorted(groups)
        for name in (g for g in order if g in groups):
            members = groups[name]
            errors = np.array([c.error_pct for c in members])
            worst = int(np.argmax(np.abs(errors)))
            out.append(GroupError(by, name, len(members), float(np.median(np.abs(errors))),
                                  members[worst].id, float(errors[worst])))
    return out


def worst(comparisons: Iterable[SiliconComparison], count: int = 10) -> list[SiliconComparison]:
    """The `count` compared entries with the largest |error|, largest first (ties by id)."""
    compared = [c for c in comparisons if c.compared and c.error_pct is not None]
    return sorted(compared, key=lambda c: (-abs(c.error_pct or 0.0), c.id, c.metric))[:count]


def skip_reasons(comparisons: Iterable[SiliconComparison]) -> list[tuple[str, int]]:
    """(reason, rows) for every skip reason, most rows first: a row counts once per reason."""
    pairs = {(c.id, c.status.removeprefix("skipped: ")) for c in comparisons if not c.compared}
    counts = Counter(reason for _, reason in pairs)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))
