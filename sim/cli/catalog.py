"""`tokenfactory catalog [gpus|models]`: what a scenario can name."""

from __future__ import annotations

import argparse

from sim.cli.commands import COMMANDS
from sim.hardware import catalog
from sim.report.catalog_text import format_gpus, format_models


def add_parser(sub) -> argparse.ArgumentParser:
    cat = sub.add_parser("catalog", help=COMMANDS["catalog"],
                         description="List the catalogue: GPUs with their peak figures, models "
                         "with their size and KV-cache bytes per token.")
    cat.add_argument("what", nargs="?", choices=("gpus", "models"), help="only this list")
    return cat


def execute(args: argparse.Namespace) -> int:
    if args.what in (None, "gpus"):
        print(format_gpus(catalog.gpus()))
    if args.what is None:
        print()
    if args.what in (None, "models"):
        print(format_models(catalog.models()))
    return 0
