"""`tokenfactory report`: HTML and Markdown reports of a small sweep, a run and a hand-made
plan.json; the HTML parses, its figures are real PNGs, every section is there, the Markdown
twin matches it, bad folders exit 2, and headless Chromium renders a non-blank page."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml
from builders import FIXTURES, scenario
from matplotlib.image import imread

from sim.cli import main
from sim.report.document import SECTIONS

PLAN_FIXTURE = FIXTURES / "report_plan"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VOID = {"meta", "img", "br", "hr", "link", "input", "col", "area", "base", "source", "wbr"}


class Checker(HTMLParser):
    """Balances tags and collects each <img>'s src."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")
        self.links += [v or "" for k, v in attrs if k in ("src", "href")]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()


def check_html(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    checker = Checker()
    checker.feed(text)
    checker.close()
    assert not checker.errors and not checker.stack, (checker.errors, checker.stack)
    assert checker.images, "no figures"
    for src in checker.images:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix), src[:40]
        png = base64.b64decode(src[len(prefix):], validate=True)
        assert png.startswith(PNG_SIGNATURE) and len(png) > 5000
    for number, title in enumerate(SECTIONS, start=1):
        assert f"<h2>{number}. {title}</h2>" in text
    assert all(link.startswith("data:") for link in checker.links)  # nothing to fetch
    return text


def check_markdown(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    for number, title in enumerate(SECTIONS, start=1):
        assert f"\n## {number}. {title}\n" in text
    files = path.with_name(f"{path.stem}_files")
    linked = [line.split("](")[1].split(")")[0] for line in text.splitlines()
              if line.startswith(("![", "- ["))]
    pngs = [name for name in linked if name.endswith(".png")]
    assert pngs
    for name in linked:
        target = path.parent / name
        assert target.is_file() and target.stat().st_size > 0, name
        assert target.parent == files
    for name in pngs:
        assert (path.parent / name).read_bytes().startswith(PNG_SIGNATURE)
    return text


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny sweep: 3 utilisation points × 3 replications, short runs, one worker."""
    tmp = tmp_path_factory.mktemp("report")
    data = scenario(duration_s=20.0, warmup_s=2.0,
                    sweep={"utilization": [0.3, 0.6, 0.9], "replications": 3},
                    uncertainty={"cost.gpu_hour_usd": {"dist": "uniform", "low": 2.0,
                                                       "high": 3.0},
                                 "workload.output_tokens.mean": {"dist": "normal", "mean": 150,
                                                                 "std": 15}})
    path = tmp / "sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    out = tmp / "out"
    assert main(["sweep", str(path), "-o", str(out), "--workers", "1", "--quiet",
                 "--report"]) == 0
    return out


def test_sweep_report_html_has_every_section_and_figure(swept: Path) -> None:
    text = check_html(swept / "report.html")
    for figure in ("cost per 1M tokens", "TTFT and TPOT p99", "regression of log cost",
                   "Where the cost of the median run"):
        assert figure in text
    assert "Recommendation:" in text or "No swept point meets the SLO" in text
    assert "P95" in text and ("Main risk" in text or "moves the P50 cost" in text)
    assert "runs.csv" in text and "summary.json" in text and "sweep.json" in text
    assert "<details" in text and "data:text/csv;base64," in text
    assert "@media print" in text and "break-before: page" in text


def test_markdown_twin_has_the_same_sections_and_files(swept: Path, tmp_path: Path) -> None:
    out = tmp_path / "review.md"
    assert main(["report", str(swept), "-o", str(out), "--quiet"]) == 0
    text = check_markdown(out)
    html_text = (swept / "report.html").read_text(encoding="utf-8")
    html_figures = html_text.count("<img ")
    assert text.count("![") == html_figures
    assert "```yaml" in text


def test_report_reads_files_only(swept: Path, tmp_path: Path) -> None:
    """A copy of the result files alone (no scenario file) is enough, and nothing is added."""
    copy = tmp_path / "copy"
    shutil.copytree(swept, copy)
    (copy / "report.html").unlink()
    before = sorted(p.name for p in copy.iterdir())
    assert main(["report", str(copy), "-o", str(tmp_path / "r.html"), "--quiet"]) == 0
    assert sorted(p.name for p in copy.iterdir()) == before


def test_plan_report_from_the_contract(tmp_path: Path) -> None:
    folder = tmp_path / "plan"
    shutil.copytree(PLAN_FIXTURE, folder)
    assert main(["report", str(folder), "--quiet"]) == 0
    text = check_html(folder / "report.html")
    assert "2027-01: 4 GPUs as 4 replicas of h100-tp1" in text
    assert "$0.031 / $0.036" in text  # P50 / P95 cost per 1M tokens from plan.json
    assert text.count("<img ") == 2  # fleet per period, option comparison
    assert main(["report", str(folder), "--format", "md", "--quiet"]) == 0
    check_markdown(folder / "report.md")


def test_plan_report_says_how_sure_each_probability_is(tmp_path: Path) -> None:
    folder = tmp_path / "plan"
    shutil.copytree(PLAN_FIXTURE, folder)
    document = json.loads((folder / "plan.json").read_text(encoding="utf-8"))
    for period in document["periods"]:
        for option in period["options"]:
            option["slo_met_probability_ci"], option["draws"] = [0.806, 1.0], 16
    (folder / "plan.json").write_text(json.dumps(document), encoding="utf-8")
    assert main(["report", str(folder), "--quiet"]) == 0
    text = check_html(folder / "report.html")
    assert "(95% interval 80.6%–100.0% from 16 draws)" in text
    # The fixture, written before intervals were reported, says nothing it does not know.
    shutil.copytree(PLAN_FIXTURE, tmp_path / "old")
    assert main(["report", str(tmp_path / "old"), "--quiet"]) == 0
    assert "95% interval" not in check_html(tmp_path / "old" / "report.html")


def test_run_report_from_run_flag(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(scenario(duration_s=20.0, warmup_s=2.0)), encoding="utf-8")
    assert main(["run", str(path), "--quiet", "--json", str(tmp_path / "r.json"),
                 "--report", str(tmp_path / "r.html")]) == 0
    text = check_html(tmp_path / "r.html")
    assert "The fleet as configured" in text and "from the p50, p90 and p99" in text
    assert main(["report", str(tmp_path / "r.json"), "--format", "md", "--quiet"]) == 0
    check_markdown(tmp_path / "r-report.md")


def _expect_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str], words: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err


def test_bad_folders_exit_2(swept: Path, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    _expect_exit_2(["report", str(empty)], capsys, "holds no results")
    _expect_exit_2(["report", str(tmp_path / "missing")], capsys, "a folder written by")

    old = tmp_path / "old"
    shutil.copytree(swept, old)
    summary = json.loads((old / "summary.json").read_text())
    del summary["format_version"]
    (old / "summary.json").write_text(json.dumps(summary))
    _expect_exit_2(["report", str(old)], capsys, "format_version")

    plan = tmp_path / "plan"
    plan.mkdir()
    (plan / "plan.json").write_text(json.dumps({"format_version": 99, "periods": []}))
    _expect_exit_2(["report", str(plan)], capsys, "format_version")
    (plan / "plan.json").write_text(json.dumps({"periods": [{"period": "x", "options": [
        {"option": "a", "gpus": 1}]}]}))
    _expect_exit_2(["report", str(plan)], capsys, "replicas")

    run = tmp_path / "run.json"
    run.write_text(json.dumps({"latency_s": {}, "cost": {}}))
    _expect_exit_2(["report", str(run)], capsys, "format_version")


def test_chromium_renders_a_non_blank_page(swept: Path, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("headless Chromium is not installed (apt-get install chromium)")
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
                    f"--screenshot={shot}", "--window-size=1280,2000",
                    (swept / "report.html").resolve().as_uri()],
                   check=True, capture_output=True, timeout=120)
    pixels = imread(shot)
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000
    colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 500, f"only {len(colours)} colours: a blank or broken page"
