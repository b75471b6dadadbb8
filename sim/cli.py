"""Command line: `tokenfactory run SCENARIO`, `tokenfactory catalog`.

The only module that prints or exits. Bad input of any kind (flags, YAML, data files) ends
with exit status 2 and one line on stderr naming what was wrong and what is accepted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from tqdm import tqdm

import sim
from sim import catalog
from sim.errors import InputError
from sim.summary import format_summary

EXAMPLES = """\
examples:
  tokenfactory run scenarios/chat-8b-h100.yaml
      simulate the default chat fleet and print latency, utilisation and $/1M tokens
  tokenfactory run scenarios/chat-8b-h100.yaml --json out/result.json --seed 7
      same with another seed, and write the machine-readable result
  tokenfactory run scenarios/rag-70b-h100-tp4.yaml --exact
      simulate every decode step one by one (slow; for checking the fast mode)
  tokenfactory catalog
      list the GPUs and models scenarios can name

A scenario is a YAML file; see scenarios/ and the README for every key.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse's contract too)
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer ≥ 0") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer ≥ 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tokenfactory",
        description="Discrete-event capacity planning for LLM inference fleets: simulate "
        "arrivals, routing, continuous batching and KV-cache memory on a GPU fleet, and report "
        "latency percentiles, utilisation, SLO attainment and cost per delivered token.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {sim.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)

    run = sub.add_parser(
        "run", help="simulate one scenario and print a summary",
        description="Simulate one scenario: requests arrive over duration_s, are routed to "
        "replicas, batched step by step, and drained (or cut at drain_s). Metrics count requests "
        "arriving after warmup_s; throughput and cost count what finished inside the window.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("scenario", type=Path, help="scenario YAML file")
    run.add_argument("--json", type=Path, metavar="FILE",
                     help="also write the full result (the documented JSON contract) to FILE")
    run.add_argument("--seed", type=_seed, metavar="N",
                     help="override the scenario's seed (same seed → identical result)")
    run.add_argument("--exact", action="store_true",
                     help="simulate decode steps one at a time instead of skipping over runs of "
                     "them; same results, slower")
    run.add_argument("--quiet", action="store_true", help="print nothing but errors")

    cat = sub.add_parser("catalog", help="list the GPUs and models a scenario can name",
                         description="List the catalogue: GPUs with their peak figures, models "
                         "with their size and KV-cache bytes per token.")
    cat.add_argument("what", nargs="?", choices=("gpus", "models"), help="only this list")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        return _catalog(args)
    except InputError as exc:
        sys.stderr.write(f"tokenfactory: error: {exc}\n")
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.json is not None and not args.json.parent.is_dir():
        raise InputError("--json", str(args.json), "a file path in an existing directory")
    scenario = sim.load_scenario(args.scenario)
    with tqdm(total=1, unit="req", desc="simulating", disable=None if not args.quiet else True,
              file=sys.stderr, leave=False) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        result = sim.run(scenario, seed=args.seed, exact=args.exact, progress=progress)
    data = result.to_dict()
    if args.json is not None:
        _write_json(args.json, data)
    if not args.quiet:
        print(format_summary(data))
    return 0


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write whole or not at all: a temporary file in the same directory, then a rename."""
    text = json.dumps(_finite(data), indent=2, allow_nan=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity; such numbers become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _catalog(args: argparse.Namespace) -> int:
    if args.what in (None, "gpus"):
        print(f"{'gpu':<12}{'memory GiB':>11}{'HBM TB/s':>10}{'BF16 TFLOPS':>13}"
              f"{'FP8 TFLOPS':>12}  name")
        for name, g in catalog.gpus().items():
            fp8 = "—" if g.fp8_tflops is None else f"{g.fp8_tflops:,.0f}"
            print(f"{name:<12}{g.memory_gib:>11g}{g.memory_bandwidth_tb_s:>10g}"
                  f"{g.bf16_tflops:>13,.0f}{fp8:>12}  {g.display_name}")
    if args.what is None:
        print()
    if args.what in (None, "models"):
        print(f"{'model':<16}{'params B':>10}{'active B':>10}{'layers':>8}{'KV KiB/token':>14}"
              f"  name")
        for name, m in catalog.models().items():
            kv_kib = m.kv_bytes_per_token(2.0) / 1024
            print(f"{name:<16}{m.params / 1e9:>10.1f}{m.active_params / 1e9:>10.1f}"
                  f"{m.layers:>8}{kv_kib:>14.0f}  {m.display_name}")
    return 0
