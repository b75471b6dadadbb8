"""The command line: `tokenfactory run`, `catalog`, `--help`, `--version`, the console script.

Runs `sim.cli.main` in-process on a small scenario (two replicas, half a minute of traffic)
and checks what the README promises: the JSON contract, the printed summary, `--seed`,
`--quiet`, the help texts and the catalogue.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import REPO

import sim
from sim.cli import main

SMALL: dict[str, Any] = {
    "name": "cli-small",
    "seed": 11,
    "duration_s": 30,
    "warmup_s": 3,
    "model": "llama-3.1-8b",
    "gpu": "h100-sxm",
    "deployment": {
        "replicas": 2,
        "tensor_parallel": 1,
        "scheduler": {"policy": "chunked-prefill", "max_num_seqs": 32,
                      "max_batched_tokens": 2048},
        "router": "least-loaded",
    },
    "workload": {
        "arrival": {"process": "poisson", "rate_per_s": 4},
        "prompt_tokens": {"dist": "lognormal", "mean": 300, "sigma": 0.6},
        "output_tokens": {"dist": "lognormal", "mean": 60, "sigma": 0.6},
    },
    "slo": {"ttft_s": 2.0, "tpot_s": 0.05, "percentile": 99},
    "cost": {"gpu_hour_usd": 2.5},
}

# The README's "Result (--json)" contract (also ../shared/DESIGN.md): dotted key paths.
STATS = ("mean", "p50", "p90", "p99")
CONTRACT_KEYS = [
    *(f"requests.{k}" for k in ("arrived", "completed", "unfinished", "preempted", "rejected")),
    *(f"latency_s.{m}.{s}" for m in ("ttft", "tpot", "e2e", "queue") for s in STATS),
    *(f"throughput.{k}" for k in ("requests_per_s", "input_tokens_per_s",
                                  "output_tokens_per_s")),
    *(f"utilization.{k}" for k in ("busy_fraction", "batch_size_mean",
                                   "kv_cache_fraction_mean")),
    "slo.attainment",
    "slo.met",
    "cost.fleet_usd_per_hour",
    *(f"cost.usd_per_million_tokens.{k}" for k in ("input", "output", "blended")),
    "tokens.input",
    "tokens.output",
    *(f"profile.{k}" for k in ("name", "source", "fit_error_pct")),
    *(f"sim.{k}" for k in ("wall_s", "events", "requests_per_wall_s")),
]
# When the run was written and how fast it ran: the only keys that may differ between
# two runs of one scenario and seed.
WALL_CLOCK_KEYS = {("sim", "wall_s"), ("sim", "requests_per_wall_s"),
                   ("provenance", "created_utc")}


def _write(tmp: Path, data: dict[str, Any], name: str = "small.yaml") -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def small(tmp_path: Path) -> Path:
    return _write(tmp_path, copy.deepcopy(SMALL))


def _strict_json(path: Path) -> dict[str, Any]:
    """Load JSON, refusing NaN and ±Infinity (which json.dumps would write by default)."""

    def refuse(token: str) -> None:
        raise AssertionError(f"{path} contains {token}, which is not valid JSON")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def _get(data: dict[str, Any], dotted: str) -> Any:
    node: Any = data
    for key in dotted.split("."):
        assert isinstance(node, dict) and key in node, f"missing key {dotted}"
        node = node[key]
    return node


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _without_wall_clock(data: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    for section, key in WALL_CLOCK_KEYS:
        del data[section][key]
    return data


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        found = [f"{path}.{k}" for k in a.keys() ^ b.keys()]
        for key in a.keys() & b.keys():
            found += _differences(a[key], b[key], f"{path}.{key}")
        return found
    return [] if a == b else [path]


# ---- run -------------------------------------------------------------------------------------


def test_run_writes_every_contract_key(small: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "result.json"
    code, out, err = _run(capsys, "run", str(small), "--json", str(out_json))
    assert code == 0, err
    data = _strict_json(out_json)
    for key in CONTRACT_KEYS:
        value = _get(data, key)
        if key.startswith(("profile.name", "profile.source")):
            assert isinstance(value, str) and value
        elif key == "slo.met":
            assert isinstance(value, bool)
        elif key == "profile.fit_error_pct":
            assert value is None or isinstance(value, int | float)
        else:
            assert value is None or isinstance(value, int | float), f"{key} = {value!r}"
    # Only the result and the scenario are in the directory: no temporary file left over.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json", "small.yaml"]


def test_run_json_is_consistent_with_itself(small: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Sanity relations that hold for any run, so a wrong or swapped field shows up."""
    out_json = tmp_path / "result.json"
    assert _run(capsys, "run", str(small), "--json", str(out_json), "--quiet")[0] == 0
    d = _strict_json(out_json)
    req = d["requests"]
    assert req["arrived"] > 0
    assert req["completed"] + req["unfinished"] == req["arrived"]
    for metric in ("ttft", "tpot", "e2e", "queue"):
        s = d["latency_s"][metric]
        assert 0 <= s["p50"] <= s["p90"] <= s["p99"], metric
    assert d["latency_s"]["ttft"]["mean"] <= d["latency_s"]["e2e"]["mean"]
    assert 0 <= d["utilization"]["busy_fraction"] <= 1
    assert 0 <= d["utilization"]["kv_cache_fraction_mean"] <= 1
    assert 0 <= d["slo"]["attainment"] <= 1
    gpus = SMALL["deployment"]["replicas"] * SMALL["deployment"].get("tensor_parallel", 1)
    assert d["cost"]["fleet_usd_per_hour"] == pytest.approx(gpus * SMALL["cost"]["gpu_hour_usd"])
    # README "Cost per token": the window cost is split between input and output tokens
    # delivered in the window, and blended spreads the same cost over all of them, so
    # $/1M input × input + $/1M output × output = $/1M blended × (input + output) = window cost.
    window_s = SMALL["duration_s"] - SMALL["warmup_s"]
    per_m = d["cost"]["usd_per_million_tokens"]
    delivered_in = d["throughput"]["input_tokens_per_s"] * window_s
    delivered_out = d["throughput"]["output_tokens_per_s"] * window_s
    window_usd = d["cost"]["fleet_usd_per_hour"] * window_s / 3600
    assert delivered_in > 0 and delivered_out > 0
    assert per_m["blended"] * (delivered_in + delivered_out) / 1e6 == pytest.approx(window_usd)
    assert (per_m["input"] * delivered_in + per_m["output"] * delivered_out) / 1e6 == (
        pytest.approx(window_usd))
    # `tokens` counts every completed request, the window's deliveries among them.
    assert d["tokens"]["input"] >= round(delivered_in)
    assert d["tokens"]["output"] >= round(delivered_out)
    assert d["sim"]["events"] > 0
    assert d["seed"] == SMALL["seed"]


def test_run_without_requests_writes_null_not_nan(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """README: numbers that cannot be computed (no requests measured) are null."""
    data = copy.deepcopy(SMALL)
    data["workload"]["arrival"]["rate_per_s"] = 1e-9  # P(any arrival in 30 s) ≈ 3e-8
    out_json = tmp_path / "result.json"
    code, out, err = _run(capsys, "run", str(_write(tmp_path, data)), "--json", str(out_json))
    assert code == 0, err
    d = _strict_json(out_json)
    assert d["requests"]["arrived"] == 0
    assert d["latency_s"]["ttft"] == {s: None for s in STATS}
    assert d["cost"]["usd_per_million_tokens"] == {"input": None, "output": None,
                                                   "blended": None, "goodput": None}
    assert d["slo"]["attainment"] is None
    assert "nan" not in out.lower()


def test_summary_mentions_latency_slo_and_cost(small: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "result.json"
    code, out, err = _run(capsys, "run", str(small), "--json", str(out_json))
    assert code == 0, err
    d = _strict_json(out_json)
    assert "TTFT" in out
    assert "TPOT" in out
    assert "per 1M tokens" in out
    verdicts = re.findall(r"\b(MET|MISSED)\b", out)
    assert verdicts == ["MET" if d["slo"]["met"] else "MISSED"]
    blended = d["cost"]["usd_per_million_tokens"]["blended"]
    cost_lines = [line for line in out.splitlines() if "blended" in line]
    assert len(cost_lines) == 1 and f"{blended:.4f}" in cost_lines[0] and "$" in cost_lines[0]
    assert "nan" not in out.lower()


def test_same_seed_gives_identical_json(small: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert _run(capsys, "run", str(small), "--seed", "5", "--json", str(a), "--quiet")[0] == 0
    assert _run(capsys, "run", str(small), "--seed", "5", "--json", str(b), "--quiet")[0] == 0
    da, db = _strict_json(a), _strict_json(b)
    assert da["seed"] == db["seed"] == 5
    assert _without_wall_clock(da) == _without_wall_clock(db)


def test_seed_changes_the_result(small: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert _run(capsys, "run", str(small), "--seed", "5", "--json", str(a), "--quiet")[0] == 0
    assert _run(capsys, "run", str(small), "--seed", "6", "--json", str(b), "--quiet")[0] == 0
    da, db = _strict_json(a), _strict_json(b)
    assert (da["seed"], db["seed"]) == (5, 6)
    changed = _differences(_without_wall_clock(da), _without_wall_clock(db))
    # Another seed draws other arrivals and lengths: latencies and token counts move.
    assert ".latency_s.ttft.mean" in changed
    assert ".tokens.input" in changed


def test_seed_flag_overrides_the_scenario_seed(small: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """`--seed N` equal to the scenario's own seed reproduces the run without the flag."""
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert _run(capsys, "run", str(small), "--json", str(a), "--quiet")[0] == 0
    seed = str(SMALL["seed"])
    assert _run(capsys, "run", str(small), "--seed", seed, "--json", str(b), "--quiet")[0] == 0
    assert _without_wall_clock(_strict_json(a)) == _without_wall_clock(_strict_json(b))


def test_missing_seed_is_drawn_recorded_and_reproducible(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = copy.deepcopy(SMALL)
    del data["seed"]
    path = _write(tmp_path, data)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert _run(capsys, "run", str(path), "--json", str(a), "--quiet")[0] == 0
    drawn = _strict_json(a)["seed"]
    assert isinstance(drawn, int) and drawn >= 0
    assert _run(capsys, "run", str(path), "--seed", str(drawn), "--json", str(b),
                "--quiet")[0] == 0
    assert _without_wall_clock(_strict_json(a)) == _without_wall_clock(_strict_json(b))


def test_quiet_prints_nothing(small: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "result.json"
    code, out, err = _run(capsys, "run", str(small), "--quiet", "--json", str(out_json))
    assert (code, out, err) == (0, "", "")
    assert out_json.is_file()  # quiet, but the result is still written


def test_quiet_prints_nothing_in_a_subprocess(small: Path, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "sim", "run", str(small), "--quiet"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_json_replaces_an_existing_file(small: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "result.json"
    out_json.write_text("old contents that are not JSON", encoding="utf-8")
    assert _run(capsys, "run", str(small), "--json", str(out_json), "--quiet")[0] == 0
    assert _strict_json(out_json)["seed"] == SMALL["seed"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json", "small.yaml"]


# ---- help, version, catalogue ----------------------------------------------------------------


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"]], ids=["top", "run"])
def test_help_exits_zero_and_shows_examples(argv: list[str],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code in (0, None)
    out = capsys.readouterr().out
    assert "examples:" in out
    assert "tokenfactory run scenarios/chat-8b-h100.yaml" in out
    if argv[0] == "run":
        for flag in ("--json", "--seed", "--exact", "--quiet"):
            assert flag in out
    else:
        assert "run" in out and "catalog" in out


def test_examples_in_help_name_bundled_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    repo = REPO
    named = set(re.findall(r"scenarios/[\w.-]+\.yaml", out))
    assert named
    for rel in named:
        assert (repo / rel).is_file(), f"--help names {rel}, which does not exist"


def test_catalog_lists_gpus_and_models(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "catalog")
    assert code == 0
    assert "h100-sxm" in out and "llama-3.1-8b" in out

    code, gpus_only, _ = _run(capsys, "catalog", "gpus")
    assert code == 0
    assert "h100-sxm" in gpus_only and "llama-3.1-8b" not in gpus_only

    code, models_only, _ = _run(capsys, "catalog", "models")
    assert code == 0
    assert "llama-3.1-8b" in models_only and "h100-sxm" not in models_only


def test_python_m_sim_version() -> None:
    proc = subprocess.run([sys.executable, "-m", "sim", "--version"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"tokenfactory {sim.__version__}"
    assert sim.__version__ != "0+unknown"  # the package is installed


def test_console_script_runs(small: Path, tmp_path: Path) -> None:
    exe = shutil.which("tokenfactory")
    if exe is None:
        pytest.skip("the `tokenfactory` console script is not on PATH "
                    "(install the package with pip to get it)")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"tokenfactory {sim.__version__}"

    out_json = tmp_path / "result.json"
    proc = subprocess.run([exe, "run", str(small), "--json", str(out_json)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "TTFT" in proc.stdout
    assert _strict_json(out_json)["seed"] == SMALL["seed"]
