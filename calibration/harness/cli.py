"""`python -m calibration.harness`: measure operator times on this machine's GPU (or CPU).

The only module of the harness that prints or exits. Everything the run needs is checked
before the first measurement (model, tp, device, dtype, output folder); bad input ends with
one line on stderr and exit status 2, and no file is written.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from calibration.harness import csvio, grid
from calibration.harness.estimate import STARTUP_S, estimate
from calibration.harness.shapes import LayerShape, shard, tiny_model
from sim.cli.common import Parser, non_negative_int, positive_int, positive_number
from sim.errors import InputError
from sim.hardware import catalog

PROG = "python -m calibration.harness"
ALL_JOBS = (("llama-3.1-8b", 1), ("llama-3.1-70b", 2), ("llama-3.1-70b", 4),
            ("llama-3.1-70b", 8))
ALL_BUDGET_S = 420.0  # --all must finish within 8 minutes on an H100, start-up included
DEFAULTS = {  # (warmup, repeats) per device
    "cuda": (10, 50),
    "cpu": (2, 10),
}

EXAMPLES = """\
examples:
  python -m calibration.harness --tiny --device cpu --out out/measurements
      a few seconds on a laptop: a made-up small model, small grid
  python -m calibration.harness --model llama-3.1-70b --tp 2 --tp 4 --tp 8 --out out/m
      one file per tp, on the first CUDA GPU, bf16
  python -m calibration.harness --all --out "$OUT"
      the standard device job: Llama-3.1-8B tp1 and Llama-3.1-70B tp 2/4/8 (about 2 minutes)
  python -m calibration.harness --all --estimate h100-sxm
      how long that would take on an H100, without running anything
"""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="Time the operators of one decoder layer (linear layers, lm_head, prefill "
        "and decode attention) on one GPU, with weights sharded for each tensor-parallel degree, "
        "and write one measurements CSV per (model, tp) for the step-time profile fitter.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="a model in calibration/models.yaml, e.g. llama-3.1-8b")
    which.add_argument("--tiny", action="store_true",
                       help="a made-up small model and grid (seconds on a CPU; for tests)")
    jobs = ", ".join(f"{m} tp{t}" for m, t in ALL_JOBS)
    which.add_argument("--all", action="store_true", help=f"the standard device job: {jobs}")
    parser.add_argument("--tp", type=positive_int, action="append",
                        help="tensor-parallel degree to shard weights for; repeat for several "
                        "(default 1)")
    parser.add_argument("--device", choices=("cuda", "cpu"),
                        help="default: cuda when available, else cpu")
    parser.add_argument("--dtype", choices=("bf16", "fp16", "fp32"),
                        help="default: bf16 on cuda, fp32 on cpu (bf16 matmuls are slow on CPUs)")
    parser.add_argument("--repeats", type=positive_int,
                        help="timed calls per point (default 50 on cuda, 10 on cpu)")
    parser.add_argument("--warmup", type=non_negative_int,
                        help="untimed calls per point first (default 10 on cuda, 2 on cpu)")
    parser.add_argument("--max-tokens", type=positive_int,
                        help="leave out grid points with more tokens than this in any dimension")
    parser.add_argument("--kv-budget-gib", type=positive_number(), default=16.0,
                        help="leave out decode points whose KV cache exceeds this (default 16)")
    parser.add_argument("--time-budget-s", type=positive_number(),
                        help="trim repeats (never below 3) when the run would take longer "
                        f"than this; default none, {ALL_BUDGET_S:.0f} with --all")
    parser.add_argument("--out", type=Path, default=Path("out/measurements"),
                        help="folder for the CSV files (created; default out/measurements)")
    parser.add_argument("--estimate", metavar="GPU",
                        help="print how long the run would take on this catalogue GPU "
                        "(e.g. h100-sxm) and exit without measuring")
    return parser


def plan(args: argparse.Namespace) -> tuple[grid.GridSpec, list[LayerShape]]:
    """The grid and the sharded shapes to measure, or an InputError."""
    if args.all:
        if args.tp:
            raise InputError("--tp", args.tp, "no --tp with --all (it fixes the jobs)")
        models = catalog.models()
        return grid.FULL, [shard(models[name], tp) for name, tp in ALL_JOBS]
    if args.tiny:
        model = tiny_model()
    else:
        models = catalog.models()
        if args.model not in models:
            raise InputError("--model", args.model, f"one of {', '.join(models)}")
        model = models[args.model]
    tps = list(dict.fromkeys(args.tp or [1]))
    return (grid.TINY if args.tiny else grid.FULL), [shard(model, tp) for tp in tps]


def points_for(spec: grid.GridSpec, shape: LayerShape, args: argparse.Namespace,
               elem_bytes: int) -> list[grid.Point]:
    return grid.points(spec, args.max_tokens, shape.kv_bytes_per_token(elem_bytes),
                       args.kv_budget_gib * 2**30)


def main(argv: list[str] | None = None) -> int:
    started_s = time.perf_counter()
    args = build_parser().parse_args(argv)
    try:
        return run(args, started_s)
    except InputError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return 2


def run(args: argparse.Namespace, started_s: float) -> int:
    spec, shapes = plan(args)
    if args.estimate is not None:
        return print_estimate(args, spec, shapes)
    try:
        import torch
    except ImportError:
        raise InputError("torch", "not installed",
                         "torch ≥ 2.1: pip install 'tokenfactory[harness]'") from None
    from calibration.harness import runner, timing  # import torch: only once we know we run

    device_name = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device_name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device", "cuda", f"cpu: this torch ({torch.__version__}) sees no GPU")
    dtype = args.dtype or ("bf16" if device_name == "cuda" else "fp32")
    warmup_default, repeats_default = DEFAULTS[device_name]
    settings = runner.Settings(
        device=torch.device(device_name), dtype=dtype,
        warmup=warmup_default if args.warmup is None else args.warmup,
        repeats=args.repeats or repeats_default)
    elem = runner.DTYPES[dtype].itemsize
    jobs = [(shape, points_for(spec, shape, args, elem)) for shape in shapes]
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = f"a folder that can be created ({exc.strerror})"
        raise InputError("--out", str(args.out), why) from None

    from tqdm import tqdm

    budget_s = args.time_budget_s or (ALL_BUDGET_S if args.all else None)
    env = runner.environment(settings.device)
    timer = timing.make_timer(settings.device)
    total = sum(len(points) for _, points in jobs)
    # The budget counts from process start: start-up and CUDA init are part of the 8 minutes.
    budget = runner.Budget(None if budget_s is None else budget_s
                           - (time.perf_counter() - started_s), total)
    skipped_all: list[str] = []
    with tqdm(total=total, unit="pt", file=sys.stderr, dynamic_ncols=True) as bar:
        for shape, points in jobs:
            def on_point(point: grid.Point, bar: tqdm = bar, shape: LayerShape = shape) -> None:
                bar.set_description(f"{shape.model} tp{shape.tp} {point.op}", refresh=False)
                bar.update(1)

            rows, skipped = runner.measure_shape(shape, points, settings, timer, budget, on_point)
            header = {**env, "model": shape.model, "tensor_parallel": str(shape.tp),
                      "dtype": dtype, "device": device_name, "source": "tokenfactory harness"}
            path = args.out / csvio.file_name(env["gpu"], shape.model, shape.tp)
            csvio.write(path, header, rows)
            trimmed = sum(1 for r in rows if r.repeats < settings.repeats)
            bar.write(f"wrote {path} ({len(rows)} rows"
                      + (f", {trimmed} with fewer repeats" if trimmed else "") + ")")
            skipped_all += [f"{shape.model} tp{shape.tp} {p}: {why}" for p, why in skipped]
    for line in skipped_all:
        print(f"skipped {line}", file=sys.stderr)
    print(f"elapsed {time.perf_counter() - started_s:.1f} s for {total} points on {env['gpu']} "
          f"({dtype})")
    return 0


def print_estimate(args: argparse.Namespace, spec: grid.GridSpec,
                   shapes: list[LayerShape]) -> int:
    gpus = catalog.gpus()
    if args.estimate not in gpus:
        raise InputError("--estimate", args.estimate, f"one of {', '.join(gpus)}")
    warmup, repeats = DEFAULTS["cuda"]
    warmup = warmup if args.warmup is None else args.warmup
    repeats = args.repeats or repeats
    elem = 4 if args.dtype == "fp32" else 2
    jobs = [(shape, points_for(spec, shape, args, elem)) for shape in shapes]
    for shape, points in jobs:
        one = estimate(gpus[args.estimate], [(shape, points)], warmup, repeats)
        print(f"{shape.model} tp{shape.tp}: {one.points} points, "
              f"{one.total_s - STARTUP_S:.0f} s ({one.gpu_s:.0f} s of kernels)")
    whole = estimate(gpus[args.estimate], jobs, warmup, repeats)
    print(f"total: {whole.points} points, about {whole.total_s:.0f} s on {args.estimate} "
          f"with warm-up {warmup}, {repeats} repeats (start-up included)")
    return 0
