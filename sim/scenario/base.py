"""Building blocks for validated config objects, shared by every block of a scenario.

`Strict` models are frozen and reject unknown keys with the list of keys that are accepted, so
a typo is an error rather than a silently ignored setting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError


class Strict(BaseModel):
    """Frozen, strict about types (no `true` for 1, no "3" for 3), and unknown keys are
    reported together with the keys that are accepted."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True,
                              arbitrary_types_allowed=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key in data:
                if key not in cls.model_fields:
                    raise PydanticCustomError(
                        "unknown_key",
                        "unknown key",
                        {"key": str(key), "accepted": ", ".join(cls.model_fields)},
                    )
        return data


def check_order(low: float, high: float, field: str, below: str) -> None:
    """`high` must not be under `low`; the error names `field` and says what it accepts."""
    if high < low:
        raise PydanticCustomError("order", f"{field} must be ≥ {below}",
                                  {"field": field, "expected": f"a number ≥ {below} ({low:g})"})


# ---- bounds ---------------------------------------------------------------------------------
# Every number a scenario holds has an upper bound, stated here in the schema, so that a value
# that validates is one the simulator can run: each bound is far above any real use and below
# where arithmetic overflows, an array no machine holds is allocated, or a loop never ends.
# (How much work a valid scenario asks for in all, rate × duration × runs, is checked
# separately, before anything runs.)

MAX_MAGNITUDE = 1e15  # any number without a tighter bound: sums and products stay finite
MAX_INTEGER = 10**15  # any integer without a tighter bound: exact in a float, fits in int64
MAX_SEED = 2**63 - 1  # a seed fits a signed 64-bit integer wherever it is stored
MAX_RATE_PER_S = 1e6  # requests per second: a million, far above one service's traffic
MAX_DURATION_S = 1e7  # any span of simulated time in seconds: ~115 days
MAX_MULTIPLIER = 1e3  # a factor on demand, a speed-up, a scale: ×1000
MAX_REPLICAS = 100_000  # replicas of a fleet (×tensor_parallel GPUs each)
MAX_DRAWS = 10_000  # Monte Carlo draws per candidate fleet (plan, stress)
MAX_REPLICATIONS = 100_000  # runs per sweep point
MAX_GRID_POINTS = 100_000  # points of one sweep (the product of a grid's lists)
MAX_MONTHS = 600  # forecast periods of a plan: fifty years of months
MAX_LIST_ITEMS = 1_000  # lists a person writes out: spikes, plan options, stress multipliers
MAX_LOG_SIGMA = 10.0  # spread of log(value): e^10 ≈ 22,000× per standard deviation
MAX_NUM_SEQS = 65_536  # sequences in one batch (the engine tables per-batch-size costs)
MAX_BATCHED_TOKENS = 2**22  # tokens in one step: ~4 million
MIN_INTERVAL_S = 0.1  # between autoscaling decisions (real autoscalers: seconds to minutes)


Pos = Annotated[float, Field(gt=0, le=MAX_MAGNITUDE, allow_inf_nan=False)]
NonNeg = Annotated[float, Field(ge=0, le=MAX_MAGNITUDE, allow_inf_nan=False)]
PosInt = Annotated[int, Field(gt=0, le=MAX_INTEGER)]
Rate = Annotated[float, Field(gt=0, le=MAX_RATE_PER_S, allow_inf_nan=False)]
Seconds = Annotated[float, Field(gt=0, le=MAX_DURATION_S, allow_inf_nan=False)]
NonNegSeconds = Annotated[float, Field(ge=0, le=MAX_DURATION_S, allow_inf_nan=False)]
Multiplier = Annotated[float, Field(gt=0, le=MAX_MULTIPLIER, allow_inf_nan=False)]
Replicas = Annotated[int, Field(gt=0, le=MAX_REPLICAS)]
Draws = Annotated[int, Field(gt=0, le=MAX_DRAWS)]


def check_curve_bounds(curve: list[list[float]]) -> None:
    """A rate curve's [t_s, rate] points within the bounds of every other time and rate."""
    if max(t for t, _ in curve) > MAX_DURATION_S or max(r for _, r in curve) > MAX_RATE_PER_S:
        raise PydanticCustomError("order", "out of range", {
            "field": "rate_curve", "expected": f"[t_s, rate_per_s] pairs with t_s ≤ "
            f"{MAX_DURATION_S:g} and rates ≤ {MAX_RATE_PER_S:g}"})


def tag_values(union: Any, tag: str) -> tuple[str, ...]:
    """The values a tagged union's `tag` key accepts (`Annotated[A | B, Field(discriminator=
    tag)]`), read off its members' `Literal` annotations, for error messages and --help."""
    members = get_args(get_args(union)[0])
    return tuple(value for member in members
                 for value in get_args(member.model_fields[tag].annotation))


def known_name(value: str, names: Iterable[str]) -> str:
    """`value` if it is one of `names` (a registry's keys: schedulers, routers, dtypes), so the
    names a scenario accepts are the registry's own, never a copy kept in step by hand."""
    accepted = tuple(names)
    if value not in accepted:
        listed = ", ".join(repr(n) for n in accepted[:-1]) + f" or {accepted[-1]!r}"
        raise PydanticCustomError("literal_error", "not an accepted name", {"expected": listed})
    return value


def by_name(value: Any, known: Mapping[str, BaseModel]) -> Any:
    """A catalogue entry given by its name (a model, a GPU), or `value` itself (inline)."""
    if isinstance(value, str):
        if value not in known:
            raise PydanticCustomError(
                "unknown_name", "unknown name", {"accepted": ", ".join(sorted(known))}
            )
        return known[value]
    return value


MAX_TOKEN_COUNT = 10**9  # far beyond any context window; keeps counts inside int64 sums
TokenCount = Annotated[int, Field(gt=0, le=MAX_TOKEN_COUNT)]
