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


Pos = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNeg = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PosInt = Annotated[int, Field(gt=0)]



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


MAX_TOKEN_COUNT = 10**9  # far beyond any context window; keeps counts inside int64 sums
