"""The YAML loader for user files (`sim.scenario.yamlfile`), with both parsers: libyaml's (what
runs wherever PyYAML has it) and the pure-Python one (the fallback), which must agree.

Checked: a repeated key is refused at its line (keys merged in with `<<:` may be overridden);
nesting, values and values repeated through aliases are bounded; YAML 1.2 floats load as
numbers while integers, dates and YAML 1.1 floats load as before; syntax errors read as
PyYAML's always did; files are read no further than their limit.
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from sim.errors import InputError
from sim.scenario import yamlfile
from sim.scenario.yamlfile import LOADERS, loads, read_text

LOADER_NAMES = sorted(LOADERS)


@pytest.fixture(params=LOADER_NAMES)
def load(request: pytest.FixtureRequest) -> Any:
    """`loads` with one of the parsers, naming the document `f.yaml`."""
    loader = LOADERS[request.param]
    return lambda text: loads(text, "f.yaml", loader=loader)


def _refused(load: Any, text: str) -> InputError:
    with pytest.raises(InputError) as info:
        load(text)
    return info.value


def test_the_c_parser_is_used_where_pyyaml_has_it() -> None:
    if not yaml.__with_libyaml__:
        pytest.skip("PyYAML built without libyaml")
    assert set(LOADERS) == {"c", "python"}
    assert yamlfile.DEFAULT_LOADER is LOADERS["c"]


# ---- repeated keys --------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "line", "key"), [
    ("a: 1\nb: 2\na: 3\n", 3, "'a'"),
    ("x:\n  y: 1\n  z: 2\n  y: 3\n", 4, "'y'"),
    ("list:\n  - {k: 1, k: 2}\n", 2, "'k'"),
    ("a: 1\n'a': 2\n", 2, "'a'"),  # quoting does not make another key
    ("1: a\n0x1: b\n", 2, "1"),  # nor another spelling of the same number
    ("true: 1\nyes: 2\n", 2, "True"),
    ("a: 1\r\nb: 2\r\na: 3\r\n", 3, "'a'"),
])
def test_a_repeated_key_is_refused_at_its_line(load: Any, text: str, line: int,
                                                key: str) -> None:
    error = _refused(load, text)
    assert error.where == f"f.yaml:{line}"
    assert str(error).startswith(f"f.yaml:{line}: {key} — expected a key given once")


def test_the_first_line_of_a_repeated_key_is_named(load: Any) -> None:
    assert "(also at line 2)" in str(_refused(load, "x: 0\nseed: 1\nname: a\nseed: 2\n"))


def test_different_keys_and_merged_keys_overridden_are_not_repeats(load: Any) -> None:
    assert load("1: a\n'1': b\n") == {1: "a", "1": "b"}
    text = ("base: &b {a: 1, c: 2}\nother: &o {a: 9, d: 4}\n"
            "top: {<<: [*b, *o], a: 5}\n")
    assert load(text)["top"] == {"a": 5, "c": 2, "d": 4}


# ---- aliases, nesting and size --------------------------------------------------------------


def _bomb(levels: int) -> str:
    rows = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    names = "abcdefghijklmnop"
    for before, anchor in zip(names[:levels - 1], names[1:levels], strict=True):
        rows.append(f"{anchor}: &{anchor} [{', '.join([f'*{before}'] * 9)}]")
    return "\n".join(rows) + "\n"


def test_an_alias_bomb_stops_at_once(load: Any) -> None:
    start = time.perf_counter()
    error = _refused(load, _bomb(12))  # 9¹² ≈ 2.8e11 strings expanded
    assert time.perf_counter() - start < 1.0
    assert "aliases that repeat at most 100,000 values" in str(error)
    assert str(error.value).startswith("*")


def test_aliases_repeating_a_few_values_load(load: Any) -> None:
    data = load(_bomb(4))  # 9³ × 9 = 6,561 strings through aliases
    assert len(data["d"]) == 9 and data["d"][0] is data["c"]


def test_a_recursive_alias_is_refused(load: Any) -> None:
    error = _refused(load, "a: &r [1, *r]\n")
    assert error.where == "f.yaml:1" and error.value == "*r"


def test_an_undefined_alias_is_a_syntax_error(load: Any) -> None:
    error = _refused(load, "a: *nowhere\n")
    assert error.where == "f.yaml:1" and "undefined alias" in str(error)


def _flow(depth: int) -> str:
    return "[" * depth + "]" * depth + "\n"


def _block(depth: int) -> str:
    return "".join("  " * i + "-\n" for i in range(depth - 1)) + "  " * (depth - 1) + "- x\n"


@pytest.mark.parametrize(("nested", "far"), [(_flow, 100_000), (_block, 1_000)],
                         ids=["flow", "block"])
def test_nesting_is_bounded_without_recursion_error(load: Any, nested: Any, far: int) -> None:
    assert load(nested(yamlfile.MAX_DEPTH)) is not None
    error = _refused(load, nested(yamlfile.MAX_DEPTH + 1))
    assert "nested at most 64 deep" in str(error)
    assert "nested at most 64 deep" in str(_refused(load, nested(far)))


def test_values_are_bounded(load: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlfile, "MAX_NODES", 1_000)
    # The mapping, its key, the list and 997 zeros: 1,000 values.
    assert len(load("a: [" + "0, " * 996 + "0]\n")["a"]) == 997
    error = _refused(load, "a: [" + "0, " * 997 + "0]\n")
    assert error.value == "more than 1,000 values"
    # Values repeated through an alias count as many times as they are repeated.
    text = "a: &a [" + "0, " * 399 + "0]\nb: *a\nc: *a\n"
    assert "more than 1,000 values" in str(_refused(load, text))


# ---- what the values are --------------------------------------------------------------------


def test_yaml_1_2_floats_are_numbers(load: Any) -> None:
    text = ("a: 1e3\nb: -2.5E-4\nc: .5\nd: -.5\ne: 1.e5\nf: +1e3\ng: 6.02e+23\n"
            "h: 1.5\ni: 1.0e+3\nj: .inf\n")
    assert load(text) == {"a": 1000.0, "b": -0.00025, "c": 0.5, "d": -0.5, "e": 1e5,
                          "f": 1000.0, "g": 6.02e23, "h": 1.5, "i": 1000.0,
                          "j": float("inf")}


def test_integers_dates_and_strings_are_as_before(load: Any) -> None:
    text = ("a: 1000\nb: 0x10\nc: 2024-01-31\nd: 1e\ne: e3\nf: 1_000\ng: '1e3'\nh: 10**3\n"
            "i: 1.2.3\nj: yes\n")
    data = load(text)
    assert data == yaml.safe_load(text)  # what PyYAML's own loader makes of them
    assert data["a"] == 1000 and isinstance(data["a"], int)
    assert data["c"] == datetime.date(2024, 1, 31)
    assert data["g"] == "1e3" and data["d"] == "1e"


def test_malformed_values_are_errors_at_their_line(load: Any) -> None:
    assert _refused(load, "a: 1\nd: 2024-02-30\n").where == "f.yaml:2"
    error = _refused(load, "a: 1" + "0" * 5000 + "\n")
    assert error.where == "f.yaml:1" and "integer of 5,001 characters" in str(error)


@pytest.mark.parametrize("text", [
    "name: x\nseed: 1\n\tduration_s: 20\n",
    "a: [1, 2\n",
    "a: b: c\n",
    "a: 1\n---\nb: 2\n",
    "- a\nb: c\n",
    "a: 'unclosed\n",
])
def test_syntax_errors_read_as_pyyaml_s(load: Any, text: str) -> None:
    with pytest.raises(yaml.MarkedYAMLError) as reference:
        yaml.safe_load(text)
    expected = reference.value
    assert expected.problem_mark is not None
    error = _refused(load, text)
    assert error.where == f"f.yaml:{expected.problem_mark.line + 1}"
    assert error.value == expected.problem
    assert error.expected == "valid YAML"


def test_control_characters_are_refused(load: Any) -> None:
    error = _refused(load, "a: \x01\n")
    assert error.where == "f.yaml" and "not allowed" in str(error)


# ---- reading files --------------------------------------------------------------------------


def test_a_file_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a: 1\n" + b"#" * 3 * 1024**2)
    with pytest.raises(InputError) as info:
        read_text(path, "a scenario file", max_bytes=1024**2)
    assert str(info.value) == (f"{path}: '3.0 MiB' — expected a scenario file of at most 1 MiB")
    assert read_text(path, "a scenario file").startswith("a: 1\n")


def test_a_device_is_read_no_further_than_the_limit() -> None:
    start = time.perf_counter()
    with pytest.raises(InputError) as info:
        read_text(Path("/dev/zero"), "a scenario file")
    assert time.perf_counter() - start < 5.0
    assert "more than 16 MiB" in str(info.value)


def test_undecodable_and_missing_files_are_left_to_the_caller(tmp_path: Path) -> None:
    (tmp_path / "latin.yaml").write_bytes(b"name: \xff\n")
    with pytest.raises(UnicodeDecodeError):
        read_text(tmp_path / "latin.yaml", "a scenario file")
    with pytest.raises(FileNotFoundError):
        read_text(tmp_path / "none.yaml", "a scenario file")
