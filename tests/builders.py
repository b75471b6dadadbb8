"""Small scenario mappings for tests: a valid base, changed with dotted-key overrides.

Also the plain data the bad-input tables are made of (`Case` and the input builders it
takes): the harness that runs and checks a row lives in conftest.py, as fixtures, so that
the tables in tests/contracts hold nothing but rows.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:  # sim is imported where used: importing builders must not import sim
    from sim.scenario.workload import TraceSpec

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
FIXTURES = TESTS / "fixtures"
SHARED_DATA = REPO.parent / "shared" / "data"  # the shared measured data, where it is present
PUBLISHED = SHARED_DATA / "published"  # published specs, measurements and timings
TRACES = SHARED_DATA / "traces"  # the public request traces

# An override value that removes the key instead of setting it.
DELETE: Any = object()

BASE: dict[str, Any] = {
    "name": "test",
    "seed": 11,
    "duration_s": 60.0,
    "warmup_s": 5.0,
    "model": "llama-3.1-8b",
    "gpu": "h100-sxm",
    "profile": "auto",
    "deployment": {
        "replicas": 2,
        "tensor_parallel": 1,
        "scheduler": {"policy": "chunked-prefill", "max_num_seqs": 64, "max_batched_tokens": 4096},
        "router": "least-loaded",
    },
    "workload": {
        "arrival": {"process": "poisson", "rate_per_s": 10.0},
        "prompt_tokens": {"dist": "lognormal", "mean": 800, "sigma": 0.8},
        "output_tokens": {"dist": "lognormal", "mean": 150, "sigma": 0.7},
    },
    "slo": {"ttft_s": 2.0, "tpot_s": 0.05},
    "cost": {"gpu_hour_usd": 2.5},
}


def derive(base: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    """A deep copy of `base` with overrides; keys use '__' for nesting (workload__arrival=...),
    missing parents are created and the value DELETE removes the key."""
    data = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        *parents, leaf = key.split("__")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        if value is DELETE:
            del node[leaf]
        else:
            node[leaf] = copy.deepcopy(value)  # a shared constant must not change under it
    return data


def scenario(**overrides: Any) -> dict[str, Any]:
    """BASE with overrides; keys use '__' for nesting: workload__arrival={...}."""
    return derive(BASE, **overrides)


def short(**overrides: Any) -> dict[str, Any]:
    """BASE cut to 10 s: the base of the sweep and plan bad-input tables, whose rows stop
    before anything is simulated, and of the rows that would simulate only if a check broke."""
    return scenario(duration_s=10.0, warmup_s=1.0, **overrides)


# BASE made tiny (20 s at 2 requests/s of short requests, no profile key) so that the one
# check that runs it whole finishes in well under a second; each row of the bad-input table
# breaks one thing in a copy, and the warm-up rows lean on its duration of 20 s.
TINY: dict[str, Any] = derive(
    BASE, name="bad-input-base", seed=1, duration_s=20, warmup_s=2, profile=DELETE,
    deployment__scheduler__max_num_seqs=32, deployment__scheduler__max_batched_tokens=2048,
    deployment__gpu_memory_utilization=0.9,
    workload__arrival__rate_per_s=2,
    workload__prompt_tokens={"dist": "lognormal", "mean": 200, "sigma": 0.5},
    workload__output_tokens={"dist": "lognormal", "mean": 40, "sigma": 0.5},
    slo__percentile=99)


def tiny(**overrides: Any) -> dict[str, Any]:
    """TINY with overrides ('__' for nesting, DELETE to remove a key)."""
    return derive(TINY, **overrides)


# A queue-bound fleet that is cheap to simulate, for plans: constant 20 ms steps, at most 4
# sequences per replica, ~25-token answers, so each replica completes ~7 requests/s and
# TTFT is all about waiting for a slot.
PLAN_FLEET: dict[str, Any] = {
    "duration_s": 60.0, "warmup_s": 10.0,
    "profile": {"kind": "constant", "step_s": 0.02},
    "deployment": {"replicas": 1, "scheduler": {"policy": "chunked-prefill", "max_num_seqs": 4,
                                                "max_batched_tokens": 4096}},
    "workload": {"arrival": {"process": "poisson", "rate_per_s": 10.0},
                 "prompt_tokens": {"dist": "fixed", "value": 100},
                 "output_tokens": {"dist": "geometric", "mean": 25}},
    "slo": {"ttft_s": 0.6, "tpot_s": 0.05},
}


def plan_verdicts(data: Mapping[str, Any], tmp: Path,
                  limit: int) -> dict[tuple[int, int], bool]:
    """Every pair of counts up to `limit` of the plan's second option (a disaggregated or
    two-pool one), judged by the planner's own rule on its own draws at the first period's
    peak, after checking the premise of its search: feasibility never turns false as either
    count grows."""
    import itertools

    import numpy as np

    from sim.planning import forecast
    from sim.planning import options as option_specs
    from sim.planning.runs import Draws, Evaluator, InlineExecutor
    from sim.scenario import load_scenario

    base = load_scenario(dict(data), base_dir=tmp)
    spec = base.plan
    assert spec is not None
    option = option_specs.load(dict(data), spec, tmp)[1]
    draws = Draws.spawn(np.random.SeedSequence(base.seed).spawn(2)[0], spec.target.most_draws)
    evaluator = Evaluator(InlineExecutor(), draws, spec.target.confidence,
                          first=spec.target.draws)
    demand = forecast.demands(spec, draws.demand_u)[0]
    sampled, _ = draws.sampled(option)
    verdicts = {(a, b): evaluator.feasible(option, (a, b), demand.peak_draws, sampled)
                for a, b in itertools.product(range(1, limit + 1), repeat=2)}
    for (a, b), ok in verdicts.items():
        if ok:
            assert all(verdicts[(a2, b2)] for a2 in range(a, limit + 1)
                       for b2 in range(b, limit + 1))
    return verdicts


# One kind of fleet change each, frequent enough to happen several times in 90 s.
DYNAMIC: dict[str, dict[str, Any]] = {
    "failures": {"deployment": {"failures": {"mtbf_h": 0.02, "mttr_h": 0.005}}},
    "spot": {"deployment": {"spot": {"preemptions_per_h": 60.0, "notice_s": 1.0,
                                     "replace_s": 10.0}}},
    "outage": {"deployment": {"outage": {"replicas": 2, "at_s": 30.0, "duration_s": 20.0}}},
    "autoscaling": {"deployment": {"replicas": 2, "autoscaling": {
        "policy": "target-utilization", "target": 0.1, "min_replicas": 1, "max_replicas": 5,
        "provisioning_delay_s": {"dist": "uniform", "low": 5.0, "high": 15.0},
        "interval_s": 10.0}}},
    "queue-autoscaling": {"deployment": {"replicas": 1, "autoscaling": {
        "policy": "queue", "target": 1, "min_replicas": 1, "max_replicas": 4,
        "provisioning_delay_s": 8.0, "interval_s": 5.0}}},
}


def dynamic(kind: str, policy: str) -> dict[str, Any]:
    """A small busy fleet with one kind of change (a key of DYNAMIC) under `policy`."""
    data = scenario(
        duration_s=90.0,
        deployment={"replicas": 3, "scheduler": {"policy": policy, "max_num_seqs": 16,
                                                 "max_batched_tokens": 2048}},
        workload={"arrival": {"process": "gamma", "rate_per_s": 8.0, "cv": 2.0},
                  "prompt_tokens": {"dist": "lognormal", "mean": 900, "sigma": 1.0},
                  "output_tokens": {"dist": "uniform", "low": 1, "high": 400}})
    data["deployment"].update(DYNAMIC[kind]["deployment"])
    return data


# ---- trace replay ------------------------------------------------------------------------


def replay_scenario(trace: dict[str, Any], duration_s: float,
                    replicas: int = 2) -> dict[str, Any]:
    """A scenario whose workload is the trace `trace` (a workload.trace mapping), with room
    (256 sequences, 8192 batched tokens) for the bursts of the public traces."""
    return {
        "name": "replay", "seed": 3, "duration_s": duration_s, "warmup_s": 0.0,
        "model": "llama-3.1-8b", "gpu": "h100-sxm",
        "deployment": {"replicas": replicas,
                       "scheduler": {"max_num_seqs": 256, "max_batched_tokens": 8192}},
        "workload": {"trace": trace},
        "slo": {"ttft_s": 2.0, "tpot_s": 0.05}, "cost": {"gpu_hour_usd": 2.5},
    }


def trace_spec(path: Path, **options: Any) -> TraceSpec:
    """A validated workload.trace spec for `path` with its requests read, as a scenario
    would hold it: what the replay functions take."""
    from sim.scenario.traces import read_trace
    from sim.scenario.workload import TraceSpec

    return TraceSpec.model_validate({"path": str(path), **options}).with_requests(
        read_trace(path))


# ---- tokenfactory validate -----------------------------------------------------------------


def run_validate(capsys: pytest.CaptureFixture[str],
                 *argv: str) -> tuple[int | str | None, str, str]:
    """`tokenfactory validate ARGV` in process: exit status, stdout, stderr."""
    from sim.cli import main

    capsys.readouterr()
    try:
        code: int | str | None = main(["validate", *argv])
    except SystemExit as exc:  # argparse errors exit rather than return
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file with a header, as the validate command writes it."""
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


# Measured end-to-end rows (the CSV format of silicon_sample.csv), made up: the header of
# that format, a dense decoder small enough to simulate in milliseconds written as a hub
# config.json, and one aggregated row of it that every test changes a cell or two of.
SILICON_HEADER = [
    "id", "silicon_data_source", "backend", "backend_version", "model_path", "system",
    "precision", "mode", "isl", "osl", "gemm_quant_mode", "moe_quant_mode", "batch_size",
    "tp_size", "pp_size", "attention_dp_size", "moe_tp_size", "moe_ep_size", "prefill_batch_size",
    "prefill_num_workers", "prefill_tp_size", "prefill_pp_size", "prefill_attention_dp_size",
    "prefill_moe_tp_size", "prefill_moe_ep_size", "decode_batch_size", "decode_num_workers",
    "decode_tp_size", "decode_pp_size", "decode_attention_dp_size", "decode_moe_tp_size",
    "decode_moe_ep_size", "silicon_ttft_ms", "silicon_tpot_ms",
]

SILICON_TINY_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 4,
    "hidden_size": 512, "intermediate_size": 1024, "num_attention_heads": 8,
    "num_key_value_heads": 4, "head_dim": 64, "vocab_size": 1000,
    "max_position_embeddings": 8192, "tie_word_embeddings": False}
SILICON_DENSE = {
    "id": "dense-h100-vllm-c8", "backend": "vllm", "model_path": "tiny/Dense-4L",
    "system": "h100_sxm", "mode": "agg", "isl": "1000", "osl": "100", "gemm_quant_mode": "",
    "moe_quant_mode": "", "batch_size": "8", "tp_size": "1", "pp_size": "1",
    "attention_dp_size": "1", "moe_tp_size": "1", "moe_ep_size": "1",
    "silicon_ttft_ms": "20", "silicon_tpot_ms": "5"}


def silicon_csv_text(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SILICON_HEADER, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_silicon_fixture(folder: Path, rows: list[dict[str, str]]) -> tuple[Path, Path]:
    """`rows` as folder/silicon.csv, and folder/models holding the tiny config."""
    models = folder / "models"
    models.mkdir(exist_ok=True)
    (models / "tiny--Dense-4L_config.json").write_text(json.dumps(SILICON_TINY_CONFIG),
                                                        encoding="utf-8")
    path = folder / "silicon.csv"
    path.write_text(silicon_csv_text(rows), encoding="utf-8")
    return path, models


# ---- bad-input tables ----------------------------------------------------------------------

# A builder gets the row's working directory, writes the files the row needs and returns the
# command-line arguments that follow the command (the scenario file first).
Builder = Callable[[Path], list[str]]


@dataclass(frozen=True)
class Case:
    """One row of a bad-input table: input that breaks one thing, and how the one-line
    error must name it (the `check_rejected` fixtures in conftest.py run and check it)."""

    id: str
    input: Mapping[str, Any] | Builder  # a scenario mapping (written to scenario.yaml) or a builder
    where: str  # the key path, file or flag the message must name
    value: str  # how the bad value must be shown
    also: tuple[str, ...] = ()  # further text the message must contain (e.g. accepted names)
    command: str = "run"
    flags: tuple[str, ...] = ()  # after the scenario and the output flag
    setup: Mapping[str, str] = field(default_factory=dict)  # files to create: name → text
    # Pass the command's output (run: --json out.json; sweep, plan, stress: -o out) so that
    # the check that nothing is left behind covers it; off for rows about that flag itself.
    output: bool = True
    # The message must read `error: WHERE: ...`, the key first. Off for rows whose message
    # comes from the argument parser (`error: argument --seed: ...`) or names a file by its
    # full path (`error: /tmp/.../broken.yaml:3: ...`): there WHERE need only appear.
    key_first: bool = True


def params(cases: Iterable[Case]) -> list[Any]:
    """The rows as pytest parameters, each under its own id."""
    return [pytest.param(case, id=case.id) for case in cases]


def scenario_file(data: Mapping[str, Any], name: str = "scenario.yaml") -> Builder:
    """A builder writing `data` as the scenario file `name`."""

    def build(tmp: Path) -> list[str]:
        path = tmp / name
        path.write_text(yaml.safe_dump(dict(data), sort_keys=False), encoding="utf-8")
        return [str(path)]

    return build


def raw_file(content: bytes | str, name: str = "scenario.yaml") -> Builder:
    """A builder writing `content` as it is (broken YAML, undecodable bytes) as the scenario."""

    def build(tmp: Path) -> list[str]:
        data = content.encode("utf-8") if isinstance(content, str) else content
        (tmp / name).write_bytes(data)
        return [str(tmp / name)]

    return build


def make_dir(path: Path) -> Path:
    """Create the directory `path` (for rows where a directory stands where a file should)."""
    path.mkdir(exist_ok=True)
    return path


def outside_fences(text: str) -> list[str]:
    """The lines of Markdown `text` not inside a fenced code block, checking on the way that
    every fence closes with one of its own length (a rough CommonMark reading)."""
    lines, fence = [], None
    for line in text.splitlines():
        run = re.match(r"(`{3,})", line)
        if fence is None and run:
            fence = run.group(1)
        elif fence is not None and line.rstrip() == fence:
            fence = None
        elif fence is None:
            lines.append(line)
    assert fence is None, "a fence left open"
    return lines
