"""`tokenfactory catalog [gpus|models]`: what a scenario can name."""

from __future__ import annotations

import argparse

from sim.hardware import catalog


def add_parser(sub) -> argparse.ArgumentParser:
    cat = sub.add_parser("catalog", help="list the GPUs and models a scenario can name",
                         description="List the catalogue: GPUs with their peak figures, models "
                         "with their size and KV-cache bytes per token.")
    cat.add_argument("what", nargs="?", choices=("gpus", "models"), help="only this list")
    return cat


def execute(args: argparse.Namespace) -> int:
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
