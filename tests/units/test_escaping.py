"""Escaping user text on its way out: `printable` for the terminal (control characters shown,
never obeyed), the Markdown escapes (names stay text: no heading, list, link, HTML or code
fence of their own), the same strings through the HTML renderer, and the executor pieces
that carry worker warnings and Ctrl-C (tested here with threads; with processes in
tests/contracts/test_hostile_names_and_processes.py)."""

from __future__ import annotations

import re
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import pytest
from builders import outside_fences

from sim.montecarlo.execute import WarningRelay
from sim.planning.runs import InlineExecutor, Stoppable, result
from sim.report import html, markdown
from sim.report.document import Chart, Code, DataFile, Report, Section, Table
from sim.report.markdown import destination, fenced, inline, paragraph
from sim.report.plan_text import describe
from sim.report.text import Column, printable, table

ESC = "\x1b"
# A name a hostile or careless scenario may hold: clear screen, OSC 52 clipboard write,
# a newline starting a heading, HTML, a javascript: link and a code fence.
HOSTILE = (f"evil{ESC}[2J{ESC}]52;c;aGk=\x07\n# pwned <script>alert(1)</script> "
           "[x](javascript:alert(1)) ```")
ORDINARY = ["llama-3.1-8b", "h100-tp1", "2027-01", "cost.gpu_hour_usd", "a ~ b", "P5–P95",
            "capex + maintenance", "-0.5", "$0.031 / $0.036", "(fit error 8.6%)"]


# ---- the terminal -----------------------------------------------------------------------------


def test_printable_shows_control_characters_as_escapes() -> None:
    assert printable(f"a{ESC}[2Jb\n\tc\x07\x9b\u202e") == "a\\x1b[2Jb\\n\\tc\\x07\\x9b\\u202e"
    assert printable("plain — text ≤ 5 µs") == "plain — text ≤ 5 µs"
    assert printable("a\tb\nc", keep="\t") == "a\tb\\nc"
    shown = printable(HOSTILE)
    assert printable(shown) == shown  # idempotent: the result is printable
    assert not re.search("[\x00-\x1f\x7f-\x9f]", shown)


def test_table_cells_and_titles_are_printable_and_aligned() -> None:
    lines = table([Column("name", "<"), Column(f"t{ESC}")], [[HOSTILE, "1"], ["ok", "22"]])
    assert all(ESC not in line and "\n" not in line for line in lines)
    assert len({len(line) for line in lines}) == 1  # widths measured as shown


def test_plan_text_shows_hostile_option_and_period_names_escaped() -> None:
    option = {"option": HOSTILE, "tensor_parallel": 1, "gpu": f"g{ESC}", "dtype": "bf16",
              "scheduler": "chunked-prefill", "capacity_per_replica": {"requests_per_s": 7.0}}
    entry = {"option": HOSTILE, "replicas": 2, "gpus": 2, "usd_per_month": 100.0,
             "usd_per_million_tokens": {"p50": 0.1, "p95": 0.2}, "utilization": {"peak": 0.5},
             "slo_met_probability": 1.0, "search": {"fleets_tried": [1, 2], "simulations": 4,
                                                    "average_load_simulations": 0}}
    document: dict[str, Any] = {
        "scenario": HOSTILE, "seed": 1,
        "target": {"confidence": 0.9, "draws": 4,
                   "slo": {"ttft_s": 1, "tpot_s": 0.1, "percentile": 99}},
        "run": {"duration_s": 10, "warmup_s": 1}, "options": [option],
        "periods": [{"period": HOSTILE, "peak_rate_per_s": 5.0, "recommended": HOSTILE,
                     "options": [entry]}],
        "search": {"simulations": 4, "average_load_simulations": 0, "capacity_probes": 1},
        "mix": [], "notes": [HOSTILE]}
    text = describe(document)
    assert ESC not in text and "\x07" not in text
    assert "\\x1b[2J" in text
    assert not any(line.startswith("# pwned") for line in text.splitlines())


# ---- Markdown -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ORDINARY)
def test_ordinary_names_come_out_as_they_went_in(name: str) -> None:
    assert inline(name) == name
    assert paragraph(f"Note: {name}") == f"Note: {name}"


def test_inline_markdown_is_literal_text() -> None:
    text = inline(HOSTILE)
    assert "\n" not in text and ESC not in text
    assert "<" not in text and ">" not in text  # no HTML, no autolink
    assert "\\[x\\](javascript:" in text  # a bracket that opens no link
    assert "\\`\\`\\`" in text and "\\# pwned" in text
    assert inline("_x_ *y* ~~z~~ a_b {#id} a|b \\") == (
        "\\_x\\_ \\*y\\* \\~\\~z\\~\\~ a_b \\{\\#id\\} a\\|b \\\\")
    assert inline("P&L") == "P&amp;L"


@pytest.mark.parametrize("start", ["# h", "- item", "+ item", "1. one", "12) twelve", "> q",
                                   "=== x", "    code", "* star", "| cell"])
def test_a_paragraph_of_user_text_stays_a_paragraph(start: str) -> None:
    text = paragraph(start)
    assert not re.match(r"(#|[-+*>=|]|\d+[.)]|\s)", text), text


def test_fences_are_longer_than_any_backtick_run_inside() -> None:
    lines = fenced("yaml", "a: 1\n  ```\nb: `````\n\tc: \x1b")
    assert lines[0] == "``````yaml" and lines[-1] == "``````"
    assert "\tc: \\x1b" in lines  # tabs kept, control characters shown
    assert fenced("yaml", "a: 1")[0] == "```yaml"


def test_link_destinations_are_percent_encoded() -> None:
    assert destination("report_files/latency_cdf.png") == "report_files/latency_cdf.png"
    assert destination("x y)/(javascript:alert(1)") == "x%20y%29/%28javascript%3Aalert%281%29"


def _hostile_report() -> Report:
    return Report(f"Capacity review: {HOSTILE}", HOSTILE, [Section(HOSTILE, [
        HOSTILE, f"Recommendation: run {HOSTILE}",
        Chart(f"c{HOSTILE}.png", HOSTILE, b"\x89PNG"),
        Table("t.csv", HOSTILE, [HOSTILE, "value"], [[HOSTILE, 1.5], ["ok", None]]),
        Code(HOSTILE, "yaml", f"name: '{HOSTILE}'\n````\n"),
        DataFile(f"{HOSTILE}.csv", "text/csv", HOSTILE.encode())])])


def test_markdown_of_hostile_names_has_only_its_own_structure() -> None:
    text, files = markdown.render(_hostile_report(), "r_files")
    assert ESC not in text and "\x07" not in text
    lines = outside_fences(text)
    headings = [line for line in lines if line.startswith("#")]
    assert [h.split(" ")[0] for h in headings] == ["#", "##"]  # the title and one section
    # Every link is one of ours, to a file beside the report; the name's own is escaped.
    for line in lines:
        for target in re.findall(r"(?<!\\)\]\(([^)]*)\)", line):
            assert target.startswith("r_files/") and ":" not in target, line
    assert "<script" not in "\n".join(lines)  # in the code block it is only code
    assert len(files) == 2


def test_html_of_hostile_names_escapes_everything() -> None:
    page = html.render(_hostile_report())
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert ESC not in page and "\\x1b[2J" in page
    assert 'href="javascript' not in page


# ---- worker warnings and Ctrl-C, with threads for processes --------------------------------------


def _warns(n: int) -> int:
    warnings.warn(f"the same thing {ESC}", UserWarning, stacklevel=1)
    return n * 2


def test_warnings_of_tasks_are_reissued_once_where_results_are_read() -> None:
    with ThreadPoolExecutor(1) as pool:
        relay = WarningRelay(pool)
        with warnings.catch_warnings(record=True) as shown:
            warnings.simplefilter("default")
            futures = [relay.submit(_warns, n) for n in range(4)]
            assert sorted(f.result() for f in as_completed(futures)) == [0, 2, 4, 6]
        assert [str(w.message) for w in shown] == [f"the same thing {ESC}"]
        assert not relay.unfinished()
        with warnings.catch_warnings(record=True) as quiet:
            warnings.simplefilter("ignore")  # what --quiet does
            relay.submit(_warns, 1).result()
        assert quiet == []


def test_a_relayed_future_cancels_and_fails_with_the_pool_s() -> None:
    gate = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        relay = WarningRelay(pool)
        running = relay.submit(gate.wait)
        queued = relay.submit(_warns, 1)
        assert queued.cancel() and queued.cancelled()
        assert relay.unfinished()  # the running one
        gate.set()
        assert running.result() is True
        failing = relay.submit(int, "x")
        with pytest.raises(ValueError):
            failing.result()
        assert list(as_completed([queued, running, failing])) != []
        assert not relay.unfinished()


def test_a_stopped_planning_executor_refuses_and_stops_waiting() -> None:
    gate = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        executor = Stoppable(pool)
        future = executor.submit(gate.wait)
        executor.stopped.set()
        with pytest.raises(KeyboardInterrupt):
            result(executor, future)
        with pytest.raises(KeyboardInterrupt):
            executor.submit(int, "1")
        gate.set()
    assert result(InlineExecutor(), InlineExecutor().submit(int, "3")) == 3
