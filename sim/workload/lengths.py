"""Token-length samples for prompts and outputs: a distribution's draws, floored and capped.

Each length distribution (`sim.scenario.workload`) draws its own raw samples and knows its
own mean and variance, so capacity estimates need no sampling. What every distribution
shares is here, once: nothing is clipped silently, so a `max_tokens` cap is a named key, and
the samples it cut (and any rounded up to the minimum of 1 token) are counted and reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.scenario.workload import LengthSpec


@dataclass(frozen=True)
class Lengths:
    tokens: np.ndarray  # int64, ≥ 1
    was_capped: np.ndarray  # bool: the sample was cut to max_tokens
    was_floored: np.ndarray  # bool: a continuous sample that rounded below 1, raised to 1

    @property
    def capped(self) -> int:
        return int(np.count_nonzero(self.was_capped))

    @property
    def floored(self) -> int:
        return int(np.count_nonzero(self.was_floored))

    def head(self, n: int) -> Lengths:
        """The first n samples (a closed loop's pool, cut to the requests it sent)."""
        return Lengths(self.tokens[:n], self.was_capped[:n], self.was_floored[:n])


def sample_lengths(spec: LengthSpec, rng: np.random.Generator, n: int) -> Lengths:
    """n lengths drawn from `spec`, each at least 1 token and at most its `max_tokens`."""
    raw = spec.draw(rng, n)
    floored = raw < 1
    tokens = np.maximum(raw, 1).astype(np.int64)
    capped = np.zeros(n, dtype=bool)
    if spec.max_tokens is not None:
        capped = tokens > spec.max_tokens
        tokens[capped] = spec.max_tokens
    return Lengths(tokens, capped, floored)


def mean_tokens(spec: LengthSpec) -> float:
    """Mean of the distribution before any cap (exact, not sampled)."""
    return spec.mean_tokens
