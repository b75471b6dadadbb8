"""Trace readers: hand-written fixtures (exact values) and every kind of malformed file (the
real public traces against an independent parse are in tests/validation/test_real_traces.py)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from builders import FIXTURES

from sim.errors import InputError
from sim.scenario.traces import TraceWarning, read_trace, sniff

# ---- fixtures: exact values ------------------------------------------------------------------


def test_azure_fixture() -> None:
    trace = read_trace(FIXTURES / "azure_small.csv")
    assert trace.format == "azure"
    # Seconds after 2024-02-29 23:59:58.25, across midnight into March (a leap year).
    expected = [0.0, 1.5012345, 1.7500001, 2.25, 13.75, 22.25]
    assert trace.arrival_s.tolist() == pytest.approx(expected, abs=1e-9)
    assert trace.prompt_tokens.tolist() == [300, 410, 800, 90, 1200, 20]
    assert trace.output_tokens.tolist() == [40, 100, 60, 15, 300, 1]


def test_mooncake_fixture() -> None:
    trace = read_trace(FIXTURES / "mooncake_small.jsonl")
    assert trace.format == "mooncake"
    assert trace.arrival_s.tolist() == [0.0, 0.0, 3.0, 3.001, 6.002]
    assert trace.prompt_tokens.tolist() == [6000, 7300, 1000, 512, 900]
    assert trace.output_tokens.tolist() == [500, 480, 3, 12, 7]


def test_burstgpt_fixture_drops_failed_requests_with_a_warning() -> None:
    with pytest.warns(TraceWarning, match=r"left out 1 of 4 requests, those with 0 prompt or "
                      r"0 output tokens \(the first at line 3\)"):
        trace = read_trace(FIXTURES / "burstgpt_small.csv")
    assert trace.format == "burstgpt"
    assert trace.arrival_s.tolist() == [0.0, 113.0, 115.5]
    assert trace.prompt_tokens.tolist() == [472, 417, 1360]
    assert trace.output_tokens.tolist() == [18, 276, 192]


def test_generic_csv_with_named_columns_and_ms() -> None:
    columns = {"timestamp": "t_ms", "prompt_tokens": "in", "output_tokens": "out"}
    trace = read_trace(FIXTURES / "generic_small.csv", "csv", columns, "ms")
    assert trace.arrival_s.tolist() == [0.0, 0.5, 1.25]
    assert trace.prompt_tokens.tolist() == [10, 20, 30]
    assert trace.output_tokens.tolist() == [5, 6, 7]
    # format auto with a column mapping means the generic CSV reader.
    assert read_trace(FIXTURES / "generic_small.csv", "auto", columns, "ms").format == "csv"


@pytest.mark.parametrize(("name", "fmt"), [("azure_small.csv", "azure"),
                                           ("mooncake_small.jsonl", "mooncake"),
                                           ("burstgpt_small.csv", "burstgpt"),
                                           ("generic_small.csv", "csv")])
def test_sniffing(name: str, fmt: str) -> None:
    path = FIXTURES / name
    assert sniff(path, path.read_bytes()) == fmt


def test_unsorted_rows_are_sorted_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("timestamp,prompt_tokens,output_tokens\n10,1,2\n5,3,4\n5,5,6\n20,7,8\n")
    with pytest.warns(TraceWarning, match=r"not in order \(the first going back in time at "
                      r"line 3, 1 in all\)"):
        trace = read_trace(path)
    # Stable: the two requests at t = 5 keep their file order.
    assert trace.arrival_s.tolist() == [0.0, 0.0, 5.0, 15.0]
    assert trace.prompt_tokens.tolist() == [3, 5, 1, 7]
    assert trace.output_tokens.tolist() == [4, 6, 2, 8]


def test_spaces_and_scientific_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("timestamp , prompt_tokens,output_tokens\n 1.5e2 , 7 ,8\n151.25,9, 10\n")
    trace = read_trace(path)
    assert trace.arrival_s.tolist() == [0.0, 1.25]
    assert trace.prompt_tokens.tolist() == [7, 9]


# ---- malformed files ---------------------------------------------------------------------

AZURE_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
OK_ROW = "2023-11-16 18:15:46.6805900,374,44\n"
GENERIC_HEADER = "timestamp,prompt_tokens,output_tokens\n"


@pytest.mark.parametrize(("name", "content", "where", "value", "expected"), [
    ("empty.csv", "", "empty.csv", "'empty file'", "at least one request"),
    ("blank.csv", "\n \n", "blank.csv", "'empty file'", "at least one request"),
    ("header.csv", AZURE_HEADER, "header.csv", "'no requests'", "header line"),
    ("azure-missing-column.csv", "TIMESTAMP,ContextTokens,Generated\n" + OK_ROW,
     "azure-missing-column.csv:1", "'TIMESTAMP,ContextTokens,Generated'",
     "azure: TIMESTAMP, ContextTokens, GeneratedTokens; burstgpt: "),
    ("azure-bad-tokens.csv", AZURE_HEADER + OK_ROW + "2023-11-16 18:15:47,abc,3\n",
     "azure-bad-tokens.csv:3:ContextTokens", "'abc'", "token count"),
    ("azure-float-tokens.csv", AZURE_HEADER + OK_ROW + "2023-11-16 18:15:47,12.5,3\n",
     "azure-float-tokens.csv:3:ContextTokens", "'12.5'", "an integer"),
    ("azure-negative-tokens.csv", AZURE_HEADER + "2023-11-16 18:15:47,12,-3\n",
     "azure-negative-tokens.csv:2:GeneratedTokens", "'-3'", "an integer from 0"),
    ("azure-bad-date.csv", AZURE_HEADER + OK_ROW + "2023-02-30 18:15:47,12,3\n",
     "azure-bad-date.csv:3:TIMESTAMP", "'2023-02-30 18:15:47'", "YYYY-MM-DD HH:MM:SS"),
    ("azure-time-zone.csv", AZURE_HEADER + "2023-11-16T18:15:47Z,12,3\n",
     "azure-time-zone.csv:2:TIMESTAMP", "'2023-11-16T18:15:47Z'", "no time zone"),
    ("azure-empty-field.csv", AZURE_HEADER + OK_ROW + ",12,3\n",
     "azure-empty-field.csv:3:TIMESTAMP", "''", "date and time"),
    ("fields.csv", AZURE_HEADER + OK_ROW + OK_ROW.strip() + ",9\n",
     "fields.csv:3", "'2023-11-16 18:15:46.6805900,374,44,9'", "3 comma-separated fields"),
    ("negative-time.csv", GENERIC_HEADER + "1,2,3\n-1.5,2,3\n", "negative-time.csv:3:timestamp",
     "'-1.5'", "a time ≥ 0"),
    ("text-time.csv", GENERIC_HEADER + "1,2,3\nsoon,2,3\n", "text-time.csv:3:timestamp",
     "'soon'", "a time ≥ 0"),
    ("double-dot.csv", GENERIC_HEADER + "1,2,3\n1.2.3,2,3\n", "double-dot.csv:3:timestamp",
     "'1.2.3'", "a number"),
    ("huge-tokens.csv", GENERIC_HEADER + "1,99999999999999999999,3\n",
     "huge-tokens.csv:2:prompt_tokens", "'99999999999999999999'", "1,000,000,000"),
    ("all-empty.csv", GENERIC_HEADER + "1,0,3\n2,5,0\n", "all-empty.csv",
     "'no request with tokens'", "at least one request"),
    ("no-key.jsonl", '{"timestamp": 0, "input_length": 5, "output_length": 2}\n'
     '{"timestamp": 1, "output_length": 2}\n', "no-key.jsonl:2:input_length", "'no such key'",
     "'input_length' key on every line"),
    ("not-object.jsonl", '{"timestamp": 0, "input_length": 5, "output_length": 2}\n[1, 2]\n',
     "not-object.jsonl:2", "'[1, 2]'", "one JSON object per line"),
    ("quoted-number.jsonl", '{"timestamp": "0", "input_length": 5, "output_length": 2}\n',
     "quoted-number.jsonl:1:timestamp", "'\"0\"'", "a time ≥ 0"),
    ("long-number.jsonl", '{"timestamp": 1' + "0" * 40 + ', "input_length": 5, '
     '"output_length": 2}\n', "long-number.jsonl:1:timestamp",
     "'1" + "0" * 40 + ', "input_length": 5, "o\'', "a time ≥ 0"),
    ("twice.jsonl", '{"timestamp": 0, "input_length": 5, "input_length": 6, '
     '"output_length": 2}\n', "twice.jsonl:1:input_length", "'the key more than once'",
     "on every line"),
])
def test_malformed_traces_name_file_line_and_column(tmp_path: Path, name: str, content: str,
                                                   where: str, value: str,
                                                   expected: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceWarning)
        read_trace(path)
    message = str(info.value)
    assert info.value.where == str(tmp_path / where)
    assert f"{tmp_path / where}: {value} — expected" in message
    assert expected in message


def test_missing_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        read_trace(tmp_path / "nowhere.csv", key="workload.trace.path")
    assert info.value.where == "workload.trace.path"
    assert "nowhere.csv" in str(info.value)


def test_explicit_format_names_the_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("TIMESTAMP,ContextTokens,Generated\n2023-11-16 18:15:46,1,2\n")
    with pytest.raises(InputError, match=r"column named 'GeneratedTokens' \(output_tokens\)"):
        read_trace(path, "azure")


def test_column_mapping_for_a_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("ts,in,out\n1,2,3\n")
    with pytest.raises(InputError, match=r"t.csv:1: 'ts,in,out' — expected a header with a "
                       r"column named 'prompt' \(prompt_tokens\); name your columns"):
        read_trace(path, "csv", {"timestamp": "ts", "prompt_tokens": "prompt",
                                 "output_tokens": "out"})
