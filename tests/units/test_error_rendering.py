"""Showing the bad value in an `InputError`: exactly `repr` cut to 80 characters, as always, but
built only as far as it is shown, so a value of any size costs the same.

The reference below is the rendering InputError always had (`repr`, cut to 77 characters and
"..."); ordinary values must read exactly as it reads them, and huge ones must never be
rendered whole (an object whose `repr` raises shows whether it was reached).
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from sim.errors import MISSING, InputError


def _reference(value: Any) -> str:
    """The rule, from the whole repr: up to 80 characters as they are; a longer string keeps
    its first 39 and last 38 characters (a path's file name is at its end); anything else
    its first 77, then '...'."""
    text = repr(value)
    if len(text) <= 80:
        return text
    if type(value) is str:
        return text[:39] + "..." + text[-38:]
    return text[:77] + "..."


def _shown(value: Any) -> str:
    message = str(InputError("key", value, "something"))
    return message.removeprefix("key: ").removesuffix(" — expected something")


class Unshowable:
    """A value whose repr must never be asked for."""

    def __repr__(self) -> str:
        raise AssertionError("repr called on a value past the cut")


ORDINARY = [
    -3, 0, 2.5, 1e308, float("nan"), float("inf"), True, None, "fast", "", "it's",
    'say "hi"', "both ' and \"", "tab\there", "é😀\x00", [1, 2], (), (1,), (1, 2), {},
    {"spot": 1.0}, {"a": [1, {"b": (2,)}]}, set(), {3}, frozenset(), frozenset({1}),
    [[], {}, ()], list(range(30)), "x" * 200, "'" * 100, "\\" * 90, 10**40,
    {"k" * 50: "v" * 50}, [0.1] * 40, ("a" * 30, "b" * 30, "c" * 30),
]


@pytest.mark.parametrize("value", ORDINARY, ids=range(len(ORDINARY)))
def test_ordinary_values_read_as_they_always_did(value: Any) -> None:
    assert _shown(value) == _reference(value) + (
        f" ({len(value):,} {'keys' if type(value) is dict else 'items'})"
        if type(value) in (list, tuple, dict, set, frozenset) and len(repr(value)) > 80
        else "")


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    """Strings full of quotes and escapes, numbers, and nested containers."""
    pick = rng.random()
    if depth > 3 or pick < 0.4:
        kind = rng.random()
        if kind < 0.4:
            return "".join(rng.choice("ab'\"\\\n\té😀 ") for _ in range(rng.randint(0, 120)))
        if kind < 0.6:
            return rng.randint(-10**30, 10**30)
        if kind < 0.8:
            return rng.random() * 10 ** rng.randint(-5, 300)
        return rng.choice([None, True, False])
    items = [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 6))]
    kind = rng.random()
    if kind < 0.4:
        return items
    if kind < 0.6:
        return tuple(items)
    if kind < 0.8:
        return {rng.randint(0, 99) if i % 2 else f"k{i}": v for i, v in enumerate(items)}
    return {rng.randint(0, 99) for _ in items}


def test_random_values_read_as_repr_cut() -> None:
    rng = random.Random(7)
    for _ in range(5_000):
        value = _random_value(rng)
        shown = _shown(value)
        reference = _reference(value)
        if type(value) is str:
            assert shown == reference, (value, shown)
        else:
            assert shown.startswith(reference.removesuffix("...")), (value, shown)
        if len(repr(value)) <= 80:
            assert shown == repr(value)


def test_ten_million_items_are_shown_at_once() -> None:
    value = list(range(10**7))
    start = time.perf_counter()
    shown = _shown(value)
    assert time.perf_counter() - start < 0.1
    assert shown == _reference(list(range(30))) + " (10,000,000 items)"


def test_repr_is_never_asked_of_what_is_not_shown() -> None:
    value = [0] * 1000 + [Unshowable()]
    assert _shown(value).endswith("... (1,001 items)")
    nested = {"a": [list(range(100)), Unshowable()], "b": Unshowable()}
    assert len(_shown(nested)) < 100


def test_a_value_that_cannot_show_itself_still_gets_its_message_out() -> None:
    assert _shown([1, Unshowable()]) == "[1, <Unshowable>]"


def test_a_huge_string_or_integer_is_shown_by_its_ends_or_its_size() -> None:
    start = time.perf_counter()
    assert _shown("x" * 10**8 + ".json") == "'" + "x" * 38 + "..." + "x" * 32 + ".json'"
    assert _shown(10**100_000) == "<an integer of about 100,001 digits>"
    assert _shown(-(10**5000)) == "<a negative integer of about 5,001 digits>"
    assert time.perf_counter() - start < 0.5


def test_cycles_read_as_repr_reads_them() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    mapping: dict[str, Any] = {}
    mapping["self"] = mapping
    assert _shown(loop) == repr(loop) == "[1, [...]]"
    assert _shown(mapping) == repr(mapping)


def test_missing_is_shown_as_such() -> None:
    assert str(InputError("slo", MISSING, "a value")) == "slo: missing — expected a value"


def test_input_error_survives_a_trip_to_a_worker_process_and_back() -> None:
    """Raised in a sweep worker, an InputError must reach the CLI as itself (exit 2 and its
    line), so it pickles from its three parts; MISSING stays the one MISSING."""
    import pickle

    from sim.errors import MISSING, InputError

    for value in (3, MISSING, "x" * 500):
        error = InputError("workload.arrival.rate_per_s", value, "a number > 0")
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is InputError and str(back) == str(error)
        assert (back.where, back.expected) == (error.where, error.expected)
    assert pickle.loads(pickle.dumps(MISSING)) is MISSING
