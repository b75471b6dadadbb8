"""Error summaries of the measured-row comparisons: median |error| by GPU, engine, model
family, precision and concurrency band, the worst rows, and the skips by reason.

The groups are the ones a step-time model's error follows: kernels differ by GPU and engine,
architectures by model family, GEMM speed by precision, and a closed loop at concurrency 1 is
all decode-latency while one at 256 is batching and queueing. The median is the headline (as
in `breakdown`); the worst rows are listed next to it so that they are not hidden either.
Aggregated and disaggregated rows are summarised apart (`mode`): a disaggregated row's error
also holds the pools, the KV link and, where the row states no worker counts, the one
replica a pool assumed for them, so its figures are their own block (`mode_summary`),
grouped by GPU, engine, model family and whether the worker counts were stated.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from sim.validation.breakdown import GroupError
from sim.validation.silicon import METRICS, SiliconComparison
from sim.validation.silicon_mapping import ASSUMED, concurrency_band, model_family

Grouping = tuple[tuple[str, Callable[[SiliconComparison], str]], ...]
GROUPINGS: Grouping = (
    ("all", lambda c: "all"),
    ("gpu", lambda c: c.gpu),
    ("engine", lambda c: c.engine),
    ("model", lambda c: model_family(c.model)),
    ("precision", lambda c: c.precision),
    ("concurrency", lambda c: concurrency_band(c.concurrency)),
)
DISAGG_GROUPINGS: Grouping = (
    ("all", lambda c: "all"),
    ("gpu", lambda c: c.gpu),
    ("engine", lambda c: c.engine),
    ("model", lambda c: model_family(c.model)),
    ("workers", lambda c: "not stated (assumed)" if c.pools.endswith(ASSUMED)
     else "stated"),
)
BAND_ORDER = ("1–4", "5–32", "33–128", ">128", "unknown")
AGGREGATED = "agg"
DISAGGREGATED = "disagg"
MODE_WORDS = {AGGREGATED: "aggregated", DISAGGREGATED: "disaggregated"}


@dataclass(frozen=True)
class ModeSummary:
    """One serving mode's rows: how many, how many compared, the groups' errors per metric
    (`METRICS`), the skips by reason."""

    mode: str
    rows: int
    compared: int
    groups: dict[str, list[GroupError]]
    skips: list[tuple[str, int]]

    def median_pct(self, metric: str, by: str = "all") -> dict[str, float]:
        """group → median |error| of `metric`, for the groups of `by`."""
        return {g.group: g.median_abs_pct for g in self.groups[metric] if g.by == by}


def mode_summary(comparisons: Iterable[SiliconComparison], mode: str) -> ModeSummary:
    chosen = [c for c in comparisons if c.mode == mode]
    return ModeSummary(mode, len({c.id for c in chosen}),
                       len({c.id for c in chosen if c.compared}),
                       {metric: silicon_groups(chosen, metric, mode) for metric in METRICS},
                       skip_reasons(chosen, mode))


def figures_line(summary: ModeSummary) -> str:
    """The summary in one sentence, as the README quotes validation figures: rows, compared,
    median |error| of TTFT and TPOT overall, then by GPU and by model family."""
    line = (f"{summary.rows:,} {MODE_WORDS.get(summary.mode, summary.mode)} rows, "
            f"{summary.compared:,} compared")
    overall = {m: summary.median_pct(m).get("all") for m in METRICS}
    if overall["ttft_ms"] is None or overall["tpot_ms"] is None:
        return line
    line += (f" ({100 * summary.compared / summary.rows:.0f} %): median |error| TTFT "
             f"{overall['ttft_ms']:.1f} %, TPOT {overall['tpot_ms']:.1f} %")
    for by, title in (("gpu", "by GPU"), ("model", "by model family")):
        ttft, tpot = (summary.median_pct(m, by) for m in METRICS)
        line += f"; {title} (TTFT / TPOT) " + ", ".join(
            f"{group} {_pct(ttft.get(group))} / {_pct(tpot.get(group))}"
            for group in sorted({*ttft, *tpot}))
    return line


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} %"


def silicon_groups(comparisons: Iterable[SiliconComparison], metric: str,
                   mode: str = AGGREGATED) -> list[GroupError]:
    """Median |error| and worst row per group, over the compared entries of `metric` of the
    rows of one serving mode."""
    chosen = [c for c in comparisons if c.mode == mode and c.compared and c.metric == metric
              and c.error_pct is not None]
    out = []
    for by, key in GROUPINGS if mode == AGGREGATED else DISAGG_GROUPINGS:
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


def worst(comparisons: Iterable[SiliconComparison], count: int = 10,
          mode: str = AGGREGATED) -> list[SiliconComparison]:
    """The `count` compared entries of one serving mode with the largest |error|, largest
    first (ties by id)."""
    compared = [c for c in comparisons if c.mode == mode and c.compared
                and c.error_pct is not None]
    return sorted(compared, key=lambda c: (-abs(c.error_pct or 0.0), c.id, c.metric))[:count]


def skip_reasons(comparisons: Iterable[SiliconComparison],
                 mode: str = AGGREGATED) -> list[tuple[str, int]]:
    """(reason, rows) for every skip reason of one serving mode's rows, most rows first: a
    row counts once per reason."""
    pairs = {(c.id, c.status.removeprefix("skipped: ")) for c in comparisons
             if c.mode == mode and not c.compared}
    counts = Counter(reason for _, reason in pairs)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))
