"""Turning pydantic's validation errors into one `InputError`: key path, value, accepted.

pydantic reports every failed branch of every union with its own location labels; the user
wants one line about the key they wrote. So the most specific error wins, the location is
walked through the raw input (dropping pydantic's branch labels), and the message says what
would have been accepted, in words (``a number > 0``, ``one of poisson, gamma``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from sim.errors import MISSING, InputError
from sim.scenario.uncertain import DISTRIBUTIONS

_EXPECTED = {
    "greater_than": "a number > {gt}",
    "greater_than_equal": "a number ≥ {ge}",
    "less_than": "a number < {lt}",
    "less_than_equal": "a number ≤ {le}",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "literal_error": "one of {expected}",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "too_short": "at least {min_length} item",
    "missing": "a value (this key is required)",
    "unknown_key": "no such key here; accepted keys: {accepted}",
    "unknown_name": "one of {accepted}",
    "union_tag_invalid": "one of {expected_tags}",
    "union_tag_not_found": "a mapping with a {discriminator} key: one of {expected_tags}",
    "order": "{expected}",
    "cdf": "{expected}",
}


def translate(exc: ValidationError, raw: Mapping[str, Any],
              tags: Mapping[str, tuple[str, ...]]) -> InputError:
    """Pick the most specific pydantic error and phrase it as key path, value, accepted."""
    candidates = [_describe(error, raw, tags) for error in exc.errors()]
    return max(candidates, key=lambda e: e.where.count("."))


def _describe(error: Any, raw: Mapping[str, Any],
              tags: Mapping[str, tuple[str, ...]]) -> InputError:
    path, value = _walk(raw, error["loc"])
    ctx = {k: _pretty(v) for k, v in (error.get("ctx") or {}).items()}
    kind = error["type"]
    extra_key = {"unknown_key": "key", "order": "field"}.get(kind)
    if extra_key == "key":
        path = [*path, ctx["key"]]
        value = _at(raw, path)
    elif extra_key:
        # An "order" error names a key below where it was raised: a sibling ("high"), or
        # a dotted path from a block that sees several ("deployment.tensor_parallel"). A
        # key left at its default is not in the input: the error brings the value it used.
        path = [*path, *str(ctx["field"]).split(".")]
        value = _at(raw, path)
        used = error.get("ctx") or {}
        if value is MISSING and "value" in used:
            value = used["value"]
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = ctx.get("discriminator", "").strip("'")
        path = [*path, tag]
        value = _at(raw, path)
        accepted = DISTRIBUTIONS if path[:1] == ["uncertainty"] else tags.get(tag, ())
        ctx["expected_tags"] = ", ".join(accepted)
    template = _EXPECTED.get(kind)
    try:
        expected = template.format(**ctx) if template else error["msg"]
    except (KeyError, IndexError):
        expected = error["msg"]
    return InputError(_key_path(path), value, expected)


def _key_path(path: list) -> str:
    """Dotted, as the sweep keys are written (`sweep.utilization.1`); inside the plan and
    stress blocks list items are `[i]`, as their keys are documented (`plan.options[1].gpu`)."""
    if not path:
        return "scenario"
    bracketed = path[0] in ("plan", "stress")
    text = str(path[0])
    for part in path[1:]:
        text += f"[{part}]" if bracketed and isinstance(part, int) else f".{part}"
    return text


def _pretty(value: Any) -> Any:
    """Bounds as they read best: 1e+06 for a float, 100,000 for a large integer."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    return value


# pydantic names the members of a union in error locations: 'str', 'tagged-union[...]', ...
_UNION_LABEL = re.compile(r"^(str|int|float|bool|none|[a-z-]+\[.*\]|[A-Z]\w*)$")


def _walk(raw: Any, loc: tuple) -> tuple[list, Any]:
    """Follow `loc` through the raw input, dropping pydantic's union-branch labels."""
    path: list = []
    node = raw
    for part in loc:
        in_mapping = isinstance(node, Mapping) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_mapping or in_list:
            node = node[part]
            path.append(part)
        elif isinstance(node, Mapping | list):
            if part in _branch_labels(node) or _UNION_LABEL.match(str(part)):
                continue
            path.append(part)
            node = MISSING
    return path, node


def _branch_labels(node: Any) -> set:
    # Discriminated unions insert the tag value (e.g. 'lognormal') into the error location.
    if isinstance(node, Mapping):
        return {node.get("dist"), node.get("process"), node.get("kind")} - {None}
    return set()


def _at(raw: Any, path: list) -> Any:
    node = raw
    for part in path:
        if isinstance(node, list) and isinstance(part, str) and part.isdigit():
            part = int(part)  # a list index inside an "order" error's dotted key
        in_mapping = isinstance(node, Mapping) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_mapping or in_list):
            return MISSING
        node = node[part]
    return node
